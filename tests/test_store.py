"""
The queue store's contract, run against the real MariaDB and against SQLite:
claims, the guarded life cycle, the dead check, the listener's updates, the
recovery rule and tracked calls.
"""

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

import time
from datetime import datetime, timedelta
from functools import partial

from twisted.internet import reactor

from acqs.store import IQueueStore, StoreUnavailable
from acqs.store.interfaces import CannotWait
from acqs.store.dialects import STATEMENTS_KEPT, MySQLDialect, SQLiteDialect
from acqs.store.reads import NewRows
from acqs.store.records import (
    CallDead,
    CallDialing,
    CallEnded,
    CallMoved,
    CallUpdated,
    InstanceConflict,
    Pruned,
    Recovery,
    SendResult,
)

from .databases import addServer, createServers, scratchMySQL, scratchSQLite

SERVER = "10.10.11.12"
OTHER = "10.10.11.13"
LONG_AGO = "2000-01-01 00:00:00"
CID = "M1130172253000000001"


class QueueStoreTests:
    """Mixed into a TestCase whose C{scratch(testCase, tables=True)} makes a database."""

    scratch = None

    def setUp(self):
        self.db = self.scratch(self)
        self.store = self.db.openStore()

    async def claimAll(self, server_ip=SERVER, limit=100, instance="box1"):
        return await self.store.claim(server_ip, limit, instance)

    def ids(self, rows):
        return [row.man_id for row in rows]

    def claims(self, rows):
        return [(row.man_id, row.claim) for row in rows]

    def results(self, rows, answered=True, text="ok", **kwargs):
        return [SendResult(row.man_id, row.claim, answered, text, **kwargs) for row in rows]

    async def sendAll(self, rows, **kwargs):
        """Mark the rows and record Asterisk's answer, as the sender does."""
        await self.store.markSending(self.claims(rows))
        await self.store.recordSent(self.results(rows, **kwargs))

    def test_interface(self):
        """The store provides IQueueStore as the sender and listener use it."""
        self.assertTrue(verifyObject(IQueueStore, self.store))

    # -- claim -------------------------------------------------------------

    async def test_claimOldestFirst(self):
        """Claims take the oldest NEW rows (lowest man_id) first, in order."""
        ids = self.db.insertActions(SERVER, 5)
        first = await self.store.claim(SERVER, 2, "box1")
        second = await self.store.claim(SERVER, 2, "box1")
        self.assertEqual(self.ids(first), ids[:2])
        self.assertEqual(self.ids(second), ids[2:4])

    async def test_claimLimit(self):
        """A claim takes at most C{limit} rows; they become QUEUE, the rest stay NEW."""
        ids = self.db.insertActions(SERVER, 4)
        rows = await self.store.claim(SERVER, 3, "box1")
        self.assertEqual(len(rows), 3)
        self.assertEqual([self.db.status(i) for i in ids], ["QUEUE"] * 3 + ["NEW"])

    async def test_claimOriginatesWithinTheirRoom(self):
        """With a room for Originates, a claim takes at most that many, oldest first; those
        beyond stay NEW, and rows of other actions behind them are claimed up to the
        limit, in man_id order."""
        ids = [self.db.insertAction(SERVER, action, f"M{n:019d}")
               for n, action in enumerate(["Originate"] * 4 + ["Hangup", "Originate",
                                                               "Redirect", "Hangup"], 1)]
        rows = await self.store.claim(SERVER, 2, "box1", originates=1)
        self.assertEqual(self.ids(rows), [ids[0], ids[4], ids[6]])
        self.assertEqual([self.db.status(i) for i in ids],
                         ["QUEUE", "NEW", "NEW", "NEW", "QUEUE", "NEW", "QUEUE", "NEW"])
        rows = await self.store.claim(SERVER, 0, "box1", originates=2)
        self.assertEqual(self.ids(rows), ids[1:3])
        rows = await self.store.claim(SERVER, 5, "box1", originates=0)
        self.assertEqual(self.ids(rows), [ids[7]])
        self.assertEqual([i for i in ids if self.db.status(i) == "NEW"], [ids[3], ids[5]])

    async def test_claimPastAFullLookOfOriginates(self):
        """Originates without room that fill a claim's first look do not hide the rows of
        other actions behind them."""
        originates = self.db.insertActions(SERVER, 6)
        hangups = self.db.insertActions(SERVER, 2, action="Hangup")
        rows = await self.store.claim(SERVER, 2, "box1", originates=1)
        self.assertEqual(self.ids(rows), originates[:1] + hangups)

    async def test_lookForClasses(self):
        """A look may ask for Originates only, or for rows of other actions only."""
        self.db.insertAction(SERVER, "Originate", CID)
        self.assertFalse(await self.store.lookForNew(SERVER, originates=False))
        self.assertTrue(await self.store.lookForNew(SERVER, others=False))
        self.db.insertAction(SERVER, "Hangup", CID)
        self.assertTrue(await self.store.lookForNew(SERVER, originates=False))
        if self.waits:
            self.assertEqual(await self.store.waitForNew(SERVER, 0.05, 0.01, others=False),
                             (True, 1))
            await self.claimAll()
            self.db.insertAction(SERVER, "Originate", CID)
            self.assertEqual(
                (await self.store.waitForNew(SERVER, 0.05, 0.01, originates=False))[0], False)

    async def test_claimNothing(self):
        """With no NEW rows, or a limit below 1, a claim returns no rows."""
        self.assertEqual(await self.claimAll(), [])
        self.db.insertActions(SERVER, 1)
        self.assertEqual(await self.store.claim(SERVER, 0, "box1"), [])

    async def test_claimedRowContents(self):
        """A claimed row carries action, callerid and the ten cmd lines, NULL read as ''."""
        lines = ["Channel: Local/8600011@demo", "Context: default", "Exten: 917274515135"]
        man_id = self.db.insertAction(SERVER, "Originate", CID, lines + [None])
        [row] = await self.claimAll()
        self.assertEqual(
            (row.man_id, row.server_ip, row.action, row.callerid),
            (man_id, SERVER, "Originate", CID),
        )
        self.assertEqual(row.cmd_lines, tuple(lines) + ("",) * 7)

    async def test_claimOneServer(self):
        """A claim takes only rows of its server_ip."""
        mine = self.db.insertActions(SERVER, 2)
        theirs = self.db.insertAction(OTHER, "Originate", CID)
        self.assertEqual(self.ids(await self.claimAll()), mine)
        self.assertEqual(self.db.status(theirs), "NEW")

    async def test_claimOnlyNew(self):
        """Rows already claimed, sent, updated or dead are never claimed."""
        for status in ("QUEUE", "SENT", "UPDATED", "DEAD"):
            self.db.insertAction(SERVER, "Originate", CID, status=status)
        fresh = self.db.insertAction(SERVER, "Originate", CID)
        self.assertEqual(self.ids(await self.claimAll()), [fresh])
        self.assertEqual(await self.claimAll(), [])

    async def test_claimRecordsClaimant(self):
        """The claiming instance and time are recorded with outcome queued."""
        man_id = self.db.insertAction(SERVER, "Originate", CID)
        await self.claimAll(instance="box1")
        record = self.db.action(man_id)
        self.assertEqual((record["claimed_by"], record["outcome"]), ("box1", "queued"))
        self.assertIsNotNone(record["claimed_at"])

    async def test_claimMany(self):
        """Batches larger than one statement's worth of rows are claimed and recorded whole."""
        ids = self.db.insertActions(SERVER, 1203)
        rows = await self.claimAll(limit=2000)
        self.assertEqual(self.ids(rows), ids)
        self.assertEqual(await self.store.markSending(self.claims(rows)), ids)
        self.assertEqual(await self.store.recordSent(self.results(rows, text="Success")), ids)
        self.assertEqual(
            self.db.rows("SELECT status, response, COUNT(*) FROM vicidial_manager GROUP BY 1, 2"),
            [("SENT", "Y", 1203)],
        )

    # -- the dead check ----------------------------------------------------

    def deadCall(self, callerid=CID, server_ip=SERVER):
        return self.db.insertAction(server_ip, "Originate", callerid, status="DEAD")

    async def test_deadCheckHangup(self):
        """A Hangup of a callerid already DEAD is not returned but made DEAD, with the reason."""
        dead = self.deadCall()
        man_id = self.db.insertAction(SERVER, "Hangup", CID, ["Channel: SIP/100-0001"])
        self.assertEqual(await self.claimAll(), [])
        row, record = self.db.row(man_id), self.db.action(man_id)
        self.assertEqual((row["status"], row["response"]), ("DEAD", "N"))
        self.assertEqual(record["outcome"], "dead_check")
        self.assertIn(CID, record["reason"])
        self.assertIn(f"man_id {dead}", record["reason"])

    async def test_deadCheckRedirectAnyCase(self):
        """Redirect rows are dead-checked too, whatever the case of the action."""
        self.deadCall()
        man_id = self.db.insertAction(SERVER, "REDIRECT", CID, ["Channel: SIP/100-0001"])
        keep = self.db.insertAction(SERVER, "Originate", "M1130172253000000002")
        self.assertEqual(self.ids(await self.claimAll()), [keep])
        self.assertEqual(self.db.status(man_id), "DEAD")

    async def test_deadCheckRecordingsExempt(self):
        """Hangups and Redirects with Exten: 8309 or 8310 (recordings) pass the dead check."""
        self.deadCall()
        ids = [
            self.db.insertAction(SERVER, "Hangup", CID, ["Channel: x", "", "Exten: 8309"]),
            self.db.insertAction(SERVER, "Redirect", CID, ["Channel: x", "Exten: 8310"]),
        ]
        self.assertEqual(self.ids(await self.claimAll()), ids)

    async def test_deadCheckOnlyHangupAndRedirect(self):
        """Other actions with a dead call's callerid are claimed as usual."""
        self.deadCall()
        man_id = self.db.insertAction(SERVER, "Originate", CID)
        self.assertEqual(self.ids(await self.claimAll()), [man_id])

    async def test_deadCheckSameServer(self):
        """Only a DEAD call of the same server_ip stops a Hangup."""
        self.deadCall(server_ip=OTHER)
        man_id = self.db.insertAction(SERVER, "Hangup", CID, ["Channel: x"])
        self.assertEqual(self.ids(await self.claimAll()), [man_id])

    async def test_deadCheckNeedsCallerid(self):
        """An empty callerid identifies no call: such a Hangup is claimed."""
        self.deadCall(callerid="")
        man_id = self.db.insertAction(SERVER, "Hangup", "", ["Channel: x"])
        self.assertEqual(self.ids(await self.claimAll()), [man_id])

    # -- marking, sending, refusing, releasing ------------------------------

    async def test_markSending(self):
        """Marking makes claimed rows SENT, recording the time and outcome sending; it returns
        the rows marked, and a row marked once is not marked again."""
        [a, b] = self.db.insertActions(SERVER, 2)
        [row] = await self.store.claim(SERVER, 1, "box1")
        self.assertEqual(await self.store.markSending([(a, row.claim), (b, row.claim)]), [a])
        self.assertEqual((self.db.status(a), self.db.status(b)), ("SENT", "NEW"))
        self.assertEqual(self.db.action(a)["outcome"], "sending")
        self.assertIsNotNone(self.db.action(a)["sending_at"])
        self.assertIsNone(self.db.action(b))
        self.assertEqual(await self.store.markSending([(a, row.claim)]), [])

    async def test_claimTokens(self):
        """Every claim has a token of its own, recorded with its rows."""
        self.db.insertActions(SERVER, 3)
        first = await self.store.claim(SERVER, 2, "box1")
        [second] = await self.store.claim(SERVER, 2, "box1")
        self.assertEqual(len({row.claim for row in first}), 1)
        self.assertNotEqual(first[0].claim, second.claim)
        self.assertEqual(len(second.claim), 16)
        self.assertEqual(self.db.action(second.man_id)["claim_token"], second.claim)

    async def test_markNeedsTheClaim(self):
        """A mark naming another claim's token marks nothing: the row is not the caller's."""
        self.db.insertActions(SERVER, 1)
        [row] = await self.claimAll()
        self.assertEqual(await self.store.markSending([(row.man_id, "0" * 16)]), [])
        self.assertEqual(self.db.status(row.man_id), "QUEUE")

    async def test_claimLostToRecovery(self):
        """A stalled claimant's rows taken back and claimed again are lost to it: its mark,
        answer and release change nothing, and only the new claimant sends."""
        [man_id] = self.db.insertActions(SERVER, 1)
        stalled = self.db.openStore()
        [old] = await stalled.claim(SERVER, 10, "box1")
        self.db.execute("UPDATE acqs_action SET claimed_at = %s", (LONG_AGO,))
        await self.store.recoverStranded(SERVER, "box2", 60)
        [new] = await self.claimAll(instance="box2")
        self.assertEqual(new.man_id, man_id)
        self.assertEqual(await stalled.markSending([(man_id, old.claim)]), [])
        self.assertEqual(await stalled.release([(man_id, old.claim)], "late"), [])
        self.assertEqual(
            await stalled.recordSent([SendResult(man_id, old.claim, True, "x")]), [])
        self.assertEqual(self.db.status(man_id), "QUEUE")
        self.assertEqual(await self.store.markSending(self.claims([new])), [man_id])
        self.assertEqual(self.db.action(man_id)["claimed_by"], "box2")

    async def test_sameNameTwice(self):
        """Two processes with one instance name: the second's start-up recovery takes back the
        first's unmarked rows, whose marks then fail; no row is marked by both."""
        ids = self.db.insertActions(SERVER, 4)
        first = self.db.openStore()
        rows = await first.claim(SERVER, 10, "box1")
        await first.markSending(self.claims(rows[:1]))
        recovery = await self.store.recoverStranded(SERVER, "box1", 3600)
        self.assertEqual(recovery, Recovery(requeued=tuple(ids[1:]), unknown=(ids[0],)))
        again = await self.claimAll(instance="box1")
        self.assertEqual(await first.markSending(self.claims(rows)), [])
        self.assertEqual(await self.store.markSending(self.claims(again)), ids[1:])

    async def test_releaseMarkedButUnwritten(self):
        """A marked row whose action was never written goes back to NEW; an answered one stays."""
        [a, b] = self.db.insertActions(SERVER, 2)
        rows = await self.claimAll()
        await self.store.markSending(self.claims(rows))
        await self.store.recordSent(self.results(rows[1:], text="Success"))
        self.assertEqual(
            await self.store.release(self.claims(rows), "connection closed before the action"
                                     " was written"), [a])
        self.assertEqual((self.db.status(a), self.db.status(b)), ("NEW", "SENT"))
        self.assertEqual(self.db.action(a)["outcome"], "released")
        self.assertEqual(self.ids(await self.claimAll()), [a])

    async def test_releaseHalfMarked(self):
        """A row made SENT by a mark whose record was lost (MyISAM: the status statement took
        effect, the transaction did not) was never sent: release makes it NEW again."""
        [a] = self.db.insertActions(SERVER, 1)
        [row] = await self.claimAll()
        self.db.execute("UPDATE vicidial_manager SET status = 'SENT' WHERE man_id = %s", (a,))
        self.assertEqual(await self.store.release(self.claims([row]), "mark failed"), [a])
        self.assertEqual(self.db.status(a), "NEW")

    async def test_recordSent(self):
        """Sent rows become SENT with response Y or N and Asterisk's message kept."""
        [ok, bad] = await self.claimed(2)
        await self.store.markSending(self.claims([ok, bad]))
        recorded = await self.store.recordSent(
            [
                SendResult(ok.man_id, ok.claim, True, "Originate successfully queued",
                           actionID="acqs-17"),
                SendResult(bad.man_id, bad.claim, False, "x" * 300),
            ]
        )
        self.assertEqual(recorded, [ok.man_id, bad.man_id])
        okRow, badRow = self.db.row(ok.man_id), self.db.row(bad.man_id)
        self.assertEqual((okRow["status"], okRow["response"]), ("SENT", "Y"))
        self.assertEqual((badRow["status"], badRow["response"]), ("SENT", "N"))
        record = self.db.action(ok.man_id)
        self.assertEqual((record["response_text"], record["action_id"], record["outcome"]),
                         ("Originate successfully queued", "acqs-17", "sent"))
        self.assertIsNotNone(record["answered_at"])
        self.assertEqual(self.db.action(bad.man_id)["response_text"], "x" * 255)

    async def test_recordSentAnsweredCall(self):
        """An answer that means the call was answered (synchronous Originate) marks the call
        live and answered; another answer does not."""
        [sync, other] = await self.claimed(2)
        await self.store.markSending(self.claims([sync, other]))
        await self.store.recordSent(self.results([sync], callAnswered=True)
                                    + self.results([other]))
        self.assertIsNotNone(self.db.action(sync.man_id)["call_answered_at"])
        self.assertEqual(self.db.action(sync.man_id)["live"], 1)
        self.assertIsNone(self.db.action(other.man_id)["call_answered_at"])
        self.assertIsNone(self.db.action(other.man_id)["live"])

    async def test_answerWithItsCall(self):
        """Answers that come with their calls' updates in one batch: each answered row gets
        its response and its call's status, channel and uniqueid (one write of the row); a
        row the batch does not move gets its response alone; a lost claim's answer is not
        written."""
        [up, hungUp, still, lost] = await self.claimed(4)
        await self.store.markSending(self.claims([up, hungUp, still, lost]))
        self.db.execute("UPDATE acqs_action SET claim_token = 'other' WHERE man_id = %s",
                        (lost.man_id,))
        await self.store.record(SERVER, self.results([up, hungUp, lost], callAnswered=True)
                                + [SendResult(still.man_id, still.claim, False, "no")]
                                + [CallUpdated(f"M{1:019d}", "PJSIP/trunk-1", "1700000000.1"),
                                   CallUpdated(f"M{2:019d}", "PJSIP/trunk-2", "1700000000.2"),
                                   CallDead("1700000000.2", "PJSIP/trunk-2"),
                                   CallUpdated(f"M{4:019d}", "PJSIP/trunk-4", "1700000000.4")])
        self.assertEqual(
            [(r["status"], r["response"], r["channel"], r["uniqueid"])
             for r in map(self.db.row, (up.man_id, hungUp.man_id, still.man_id,
                                        lost.man_id))],
            [("UPDATED", "Y", "PJSIP/trunk-1", "1700000000.1"),
             ("DEAD", "Y", "PJSIP/trunk-2", "1700000000.2"),
             ("SENT", "N", "", ""),
             ("UPDATED", "N", "PJSIP/trunk-4", "1700000000.4")])
        self.assertEqual(self.db.action(up.man_id)["outcome"], "sent")
        self.assertEqual(self.db.action(lost.man_id)["outcome"], "sending")

    async def claimed(self, count, **kwargs):
        self.db.insertActions(SERVER, count, **kwargs)
        return await self.claimAll()

    async def test_recordSentKeepsListenerStatus(self):
        """SENT never overwrites the listener's UPDATED or DEAD, but the response is recorded."""
        [updated, dead] = await self.claimed(2)
        await self.store.markSending(self.claims([updated, dead]))
        await self.store.applyUpdates(
            SERVER,
            [
                CallUpdated(f"M{1:019d}", "PJSIP/trunk-00000001", "1700000000.0"),
                CallUpdated(f"M{2:019d}", "PJSIP/trunk-00000002", "1700000000.1"),
                CallDead("1700000000.1", "PJSIP/trunk-00000002"),
            ],
        )
        await self.store.recordSent(self.results([updated, dead], callAnswered=True))
        self.assertEqual(
            (self.db.status(updated.man_id), self.db.row(updated.man_id)["response"]),
            ("UPDATED", "Y"))
        self.assertEqual(
            (self.db.status(dead.man_id), self.db.row(dead.man_id)["response"]), ("DEAD", "Y"))
        self.assertEqual(self.db.action(updated.man_id)["live"], 1)
        self.assertFalse(self.db.action(dead.man_id)["live"])

    async def test_refuseInTheClaim(self):
        """Rows the claimant's rule refuses become DEAD in the claim, response N, reason
        kept; the others are claimed."""
        [bad, good] = self.db.insertActions(SERVER, 2)

        def refuse(row):
            return "no Channel header" if row.man_id == bad else None

        rows = await self.store.claim(SERVER, 10, "box1", refuse=refuse)
        self.assertEqual(self.ids(rows), [good])
        dbRow, record = self.db.row(bad), self.db.action(bad)
        self.assertEqual((dbRow["status"], dbRow["response"]), ("DEAD", "N"))
        self.assertEqual((record["outcome"], record["reason"]), ("refused", "no Channel header"))
        self.assertEqual(self.db.status(good), "QUEUE")

    premarks = True  # whether a claim marks rows sending itself (not on MyISAM)

    async def test_claimMarksTheFirstRows(self):
        """A claim told that C{send} sessions are ready marks its first rows sending in the
        same transaction; the rest stay QUEUE to be marked later.  On MyISAM it marks none:
        each is marked later."""
        ids = self.db.insertActions(SERVER, 3)
        rows = await self.store.claim(SERVER, 10, "box1", send=2)
        if not self.premarks:
            self.assertEqual([r.marked for r in rows], [False] * 3)
            self.assertEqual([self.db.status(i) for i in ids], ["QUEUE"] * 3)
            self.assertEqual(await self.store.markSending(self.claims(rows)), ids)
            return
        self.assertEqual([r.marked for r in rows], [True, True, False])
        self.assertEqual([self.db.status(i) for i in ids], ["SENT", "SENT", "QUEUE"])
        self.assertEqual([self.db.action(i)["outcome"] for i in ids],
                         ["sending", "sending", "queued"])
        self.assertIsNotNone(self.db.action(ids[0])["sending_at"])
        self.assertIsNone(self.db.action(ids[2])["sending_at"])
        self.assertEqual(await self.store.markSending(self.claims(rows)), [ids[2]])
        self.assertEqual(await self.store.release(self.claims(rows[:1]), "session gone"),
                         [ids[0]])

    async def test_release(self):
        """Released rows go back to NEW with reason and attempt count, and are claimed again."""
        [row] = await self.claimed(1)
        await self.store.release(self.claims([row]), "AMI connection refused")
        record = self.db.action(row.man_id)
        self.assertEqual(self.db.status(row.man_id), "NEW")
        self.assertEqual(
            (record["outcome"], record["reason"], record["attempts"], record["claimed_by"],
             record["claim_token"]),
            ("released", "AMI connection refused", 1, None, None),
        )
        [again] = await self.claimAll(instance="box2")
        self.assertEqual(again.man_id, row.man_id)
        await self.store.release(self.claims([again]), "AMI connection refused again")
        record = self.db.action(row.man_id)
        self.assertEqual(
            (record["attempts"], record["reason"]), (2, "AMI connection refused again")
        )

    async def test_releaseKeepsReasonOnClaim(self):
        """Claiming a released row again keeps why it was released."""
        [row] = await self.claimed(1)
        await self.store.release(self.claims([row]), "AMI login failed")
        await self.claimAll(instance="box2")
        record = self.db.action(row.man_id)
        self.assertEqual(
            (record["claimed_by"], record["outcome"], record["reason"]),
            ("box2", "queued", "AMI login failed"),
        )

    async def test_releaseOnlyUnsent(self):
        """Releasing a row whose answer is recorded never turns it back to NEW."""
        [row] = await self.claimed(1)
        await self.sendAll([row])
        self.assertEqual(await self.store.release(self.claims([row]), "late"), [])
        self.assertEqual(self.db.status(row.man_id), "SENT")

    async def test_claimStartsAFreshRecord(self):
        """A new claim clears what an earlier send recorded (a man_id used again after a
        flush): no uniqueid, answer, liveness or hangup of the old row survives."""
        [row] = await self.claimed(1)
        await self.sendAll([row], callAnswered=True)
        await self.store.applyUpdates(SERVER, [CallUpdated(f"M{1:019d}", "SIP/a-1", "17.1")])
        self.db.execute("UPDATE vicidial_manager SET status = 'NEW' WHERE man_id = %s",
                        (row.man_id,))
        await self.claimAll()
        record = self.db.action(row.man_id)
        self.assertEqual(
            [record[c] for c in ("sending_at", "answered_at", "uniqueid", "live",
                                 "call_answered_at", "response_text", "outcome")],
            [None, None, None, None, None, None, "queued"])

    # -- the listener's updates --------------------------------------------

    async def sentCall(self, callerid=CID, uniqueid="", server_ip=SERVER, cmdLines=(),
                       channel="SIP/c-1", **answer):
        """A sent Originate; UPDATED with C{uniqueid} by acqs' listener if given."""
        man_id = self.db.insertAction(server_ip, "Originate", callerid, cmdLines)
        rows = await self.store.claim(server_ip, 100, "box1")
        await self.sendAll([r for r in rows if r.man_id == man_id], **answer)
        if uniqueid:
            await self.store.applyUpdates(server_ip, [CallUpdated(callerid, channel, uniqueid)])
        return man_id

    def updatedByOthers(self, man_id, uniqueid, channel="SIP/p-1"):
        """The row as VICIdial's Perl listener leaves it: UPDATED, acqs knowing nothing of it."""
        self.db.execute(
            "UPDATE vicidial_manager SET status = 'UPDATED', uniqueid = %s, channel = %s"
            " WHERE man_id = %s", (uniqueid, channel, man_id))

    def assertCall(self, man_id, status, channel, uniqueid):
        row = self.db.row(man_id)
        self.assertEqual(
            (row["status"], row["channel"], row["uniqueid"]), (status, channel, uniqueid)
        )

    async def test_callUpdated(self):
        """A ringing call makes its rows UPDATED with channel and uniqueid, matched by callerid;
        acqs records the whole uniqueid and holds the call live."""
        man_id = await self.sentCall()
        changed = await self.store.applyUpdates(
            SERVER, [CallUpdated(CID, "PJSIP/trunk-00000001", "1700000000.1")]
        )
        self.assertEqual(changed, 1)
        self.assertCall(man_id, "UPDATED", "PJSIP/trunk-00000001", "1700000000.1")
        record = self.db.action(man_id)
        self.assertEqual((record["uniqueid"], record["live"]), ("1700000000.1", 1))
        self.assertIsNotNone(record["updated_at"])

    async def test_callUpdatedAgain(self):
        """A later, better channel updates an UPDATED row; a repeat of the same changes nothing."""
        man_id = await self.sentCall()
        update = CallUpdated(CID, "Local/8600011@demo-00000001;1", "1700000000.1")
        self.assertEqual(await self.store.applyUpdates(SERVER, [update]), 1)
        self.assertEqual(await self.store.applyUpdates(SERVER, [update]), 0)
        better = CallUpdated(CID, "PJSIP/trunk-00000002", "1700000000.2")
        self.assertEqual(await self.store.applyUpdates(SERVER, [better]), 1)
        self.assertEqual(self.db.row(man_id)["channel"], "PJSIP/trunk-00000002")

    async def test_callUpdatedNeverNewOrDead(self):
        """UPDATED never applies to NEW rows (not yet claimed) nor DEAD ones."""
        new = self.db.insertAction(SERVER, "Originate", CID)
        dead = self.db.insertAction(SERVER, "Originate", CID, status="DEAD")
        changed = await self.store.applyUpdates(SERVER, [CallUpdated(CID, "SIP/1-1", "1.1")])
        self.assertEqual(changed, 0)
        self.assertEqual((self.db.status(new), self.db.status(dead)), ("NEW", "DEAD"))

    async def test_callUpdatedBeforeSent(self):
        """A listener faster than the sender moves a QUEUE row to UPDATED, and it stays so."""
        [row] = await self.claimed(1)
        await self.store.markSending(self.claims([row]))
        await self.store.applyUpdates(SERVER, [CallUpdated(f"M{1:019d}", "SIP/1-1", "1.1")])
        await self.store.recordSent(self.results([row]))
        self.assertEqual(self.db.status(row.man_id), "UPDATED")

    async def test_callUpdatedOneServer(self):
        """Updates apply only to rows of the listener's server_ip."""
        theirs = await self.sentCall(server_ip=OTHER)
        self.assertEqual(
            await self.store.applyUpdates(SERVER, [CallUpdated(CID, "SIP/1-1", "1.1")]), 0
        )
        self.assertEqual(self.db.status(theirs), "SENT")

    async def test_callUpdatedCallerIDAnyCase(self):
        """The callerid matches whatever its case, as MySQL compares it."""
        man_id = await self.sentCall(callerid="DL40130172253cc160")
        await self.store.applyUpdates(SERVER, [CallUpdated("dl40130172253CC160", "SIP/a-1", "1.1")])
        self.assertEqual(self.db.status(man_id), "UPDATED")

    async def test_callUpdatedRowOfOthers(self):
        """A row acqs never sent (another sender's) is UPDATED too, and acqs keeps a record."""
        man_id = self.db.insertAction(SERVER, "Originate", CID, status="SENT")
        await self.store.applyUpdates(SERVER, [CallUpdated(CID, "SIP/a-1", "1.1")])
        self.assertCall(man_id, "UPDATED", "SIP/a-1", "1.1")
        record = self.db.action(man_id)
        self.assertEqual((record["outcome"], record["uniqueid"]), ("external", "1.1"))

    async def test_callDead(self):
        """A hangup makes the rows with its uniqueid DEAD, with the channel and the cause."""
        man_id = await self.sentCall(uniqueid="1700000000.1")
        changed = await self.store.applyUpdates(
            SERVER, [CallDead("1700000000.1", "PJSIP/trunk-1", "16 Normal Clearing")]
        )
        row, record = self.db.row(man_id), self.db.action(man_id)
        self.assertEqual(changed, 1)
        self.assertEqual((row["status"], row["channel"]), ("DEAD", "PJSIP/trunk-1"))
        self.assertEqual(record["hangup_cause"], "16 Normal Clearing")
        self.assertFalse(record["live"])
        self.assertIsNotNone(record["dead_at"])

    async def test_callDeadWithoutChannelKeepsIt(self):
        """A hangup found by catching up (no channel known) keeps the row's channel."""
        man_id = await self.sentCall(uniqueid="1700000000.1", channel="SIP/c-1")
        await self.store.applyUpdates(SERVER, [CallDead("1700000000.1", "")])
        self.assertCall(man_id, "DEAD", "SIP/c-1", "1700000000.1")

    async def test_deadIsFinal(self):
        """Nothing moves a DEAD row: not another hangup, not a late ringing event."""
        man_id = await self.sentCall(uniqueid="1700000000.1", channel="SIP/c-1")
        await self.store.applyUpdates(SERVER, [CallDead("1700000000.1", "PJSIP/trunk-1")])
        changed = await self.store.applyUpdates(
            SERVER,
            [
                CallDead("1700000000.1", "PJSIP/other-2"),
                CallUpdated(CID, "SIP/late-3", "1700000000.3"),
            ],
        )
        self.assertEqual(changed, 0)
        self.assertCall(man_id, "DEAD", "PJSIP/trunk-1", "1700000000.1")

    async def test_callDeadSparesRecordings(self):
        """Rows with cmd_line_d Exten: 8309/8310 (recordings) never die, though acqs records
        that their call ended; NULL does not protect."""
        recording = await self.sentCall(
            "20240130-172253_100", "1.1", cmdLines=["Channel: x", "", "Exten: 8309"]
        )
        plain = await self.sentCall(
            "M1130172253000000002", "1.1", cmdLines=["Channel: x", "", None]
        )
        changed = await self.store.applyUpdates(SERVER, [CallDead("1.1", "Local/8309@demo-1;1")])
        self.assertEqual(changed, 1)
        self.assertEqual((self.db.status(recording), self.db.status(plain)), ("UPDATED", "DEAD"))
        self.assertFalse(self.db.action(recording)["live"])
        self.assertIsNotNone(self.db.action(recording)["dead_at"])

    async def test_emptyKeysMatchNothing(self):
        """An empty callerid or uniqueid matches no row, not even rows where they are empty."""
        man_id = await self.sentCall(callerid="")
        changed = await self.store.applyUpdates(
            SERVER, [CallUpdated("", "SIP/1-1", "1.1"), CallDead("", "SIP/1-1")]
        )
        self.assertEqual(changed, 0)
        self.assertEqual(self.db.status(man_id), "SENT")

    async def test_updatesInOrder(self):
        """Updates apply in order: ringing then hangup ends DEAD, and the count adds up."""
        first = await self.sentCall()
        second = await self.sentCall("M1130172253000000002")
        changed = await self.store.applyUpdates(
            SERVER,
            [
                CallUpdated(CID, "SIP/1-1", "1.1"),
                CallUpdated("M1130172253000000002", "SIP/1-2", "1.2"),
                CallDead("1.1", "SIP/1-1"),
            ],
        )
        self.assertEqual(changed, 3)
        self.assertEqual((self.db.status(first), self.db.status(second)), ("DEAD", "UPDATED"))

    async def test_updatesCutToColumnWidths(self):
        """Values are cut to vicidial_manager's columns (acqs keeps the whole uniqueid), and a
        long callerid matches its cut stored form."""
        man_id = await self.sentCall("20240130-172253_1000")
        await self.store.applyUpdates(
            SERVER,
            [CallUpdated("20240130-172253_1000_agent", "C" * 150, "1700000000.123456789012")],
        )
        self.assertCall(man_id, "UPDATED", "C" * 100, "1700000000.123456789")
        self.assertEqual(self.db.action(man_id)["uniqueid"], "1700000000.123456789012")

    async def test_longUniqueidsApart(self):
        """With Asterisk's systemname, uniqueids of different calls share their first 20
        characters: each hangup makes only its own row DEAD."""
        first = await self.sentCall(CID, "vicibox-ast01-1796107644.1")
        second = await self.sentCall("M1130172253000000002", "vicibox-ast01-1796107644.2")
        self.assertEqual(self.db.row(first)["uniqueid"], self.db.row(second)["uniqueid"])
        changed = await self.store.applyUpdates(
            SERVER, [CallDead("vicibox-ast01-1796107644.1", "SIP/c-1")])
        self.assertEqual(changed, 1)
        self.assertEqual((self.db.status(first), self.db.status(second)), ("DEAD", "UPDATED"))
        self.assertEqual(
            (await self.store.trackedCalls(SERVER, 60)).uniqueids,
            ("vicibox-ast01-1796107644.2",))

    async def test_rowsOfOtherListeners(self):
        """A row UPDATED by another listener (no whole uniqueid known) dies by its short
        uniqueid, never by a long one it may be the cut of, and is never tracked as live."""
        short = await self.sentCall()
        cut = await self.sentCall("M1130172253000000002")
        self.updatedByOthers(short, "1700000000.5")
        self.updatedByOthers(cut, "vicibox-ast01-179610")
        changed = await self.store.applyUpdates(SERVER, [
            CallDead("vicibox-ast01-1796107644.9", "SIP/x-1"),
            CallDead("1700000000.5", "SIP/p-1"),
        ])
        self.assertEqual(changed, 1)
        self.assertEqual((self.db.status(short), self.db.status(cut)), ("DEAD", "UPDATED"))
        self.assertEqual((await self.store.trackedCalls(SERVER, 60)).uniqueids, ())

    async def test_callEnded(self):
        """An answered call that ended unseen makes its SENT row DEAD, outcome ended_unseen,
        with the reason; rows not answered, or already UPDATED, are left alone."""
        answered = await self.sentCall(CID, callAnswered=True)
        unanswered = await self.sentCall("M1130172253000000002")
        seen = await self.sentCall("M1130172253000000003", "1.3", callAnswered=True)
        changed = await self.store.applyUpdates(SERVER, [
            CallEnded(CID, "no channel carries it"),
            CallEnded("M1130172253000000002", "no channel carries it"),
            CallEnded("M1130172253000000003", "no channel carries it"),
        ])
        self.assertEqual(changed, 1)
        self.assertEqual(
            [self.db.status(m) for m in (answered, unanswered, seen)],
            ["DEAD", "SENT", "UPDATED"])
        record = self.db.action(answered)
        self.assertEqual((record["outcome"], record["reason"]),
                         ("ended_unseen", "no channel carries it"))
        self.assertFalse(record["live"])

    async def test_callDialing(self):
        """A dialing leg gives a SENT row its channel and uniqueid and it stays SENT, live;
        the leg's hangup makes it DEAD on that channel (as VICIdial's readers see it)."""
        man_id = await self.sentCall()
        dialing = CallDialing(CID, "DAHDI/i1/3125551234-1", "1700000000.5")
        self.assertEqual(await self.store.applyUpdates(SERVER, [dialing]), 1)
        self.assertEqual(await self.store.applyUpdates(SERVER, [dialing]), 0)
        self.assertCall(man_id, "SENT", "DAHDI/i1/3125551234-1", "1700000000.5")
        record = self.db.action(man_id)
        self.assertEqual((record["uniqueid"], record["live"]), ("1700000000.5", 1))
        self.assertEqual((await self.store.trackedCalls(SERVER, 60)).uniqueids,
                         ("1700000000.5",))
        await self.store.applyUpdates(SERVER, [CallDead("1700000000.5", "DAHDI/i1/3125551234-1")])
        self.assertCall(man_id, "DEAD", "DAHDI/i1/3125551234-1", "1700000000.5")

    async def test_callDialingThenRinging(self):
        """The dialing leg's ringing makes the row UPDATED."""
        man_id = await self.sentCall()
        await self.store.applyUpdates(SERVER, [
            CallDialing(CID, "DAHDI/i1/3125551234-1", "1.5"),
            CallUpdated(CID, "DAHDI/i1/3125551234-1", "1.5")])
        self.assertCall(man_id, "UPDATED", "DAHDI/i1/3125551234-1", "1.5")

    async def test_callDialingGuarded(self):
        """Dialing never moves a NEW, QUEUE or DEAD row, nor one UPDATED on a non-Local
        channel; a row UPDATED on a Local channel keeps what VICIdial's readers see but
        takes the uniqueid, so that the dialing leg's hangup makes it DEAD on its channel."""
        new = self.db.insertAction(SERVER, "Originate", CID)
        queued = self.db.insertAction(SERVER, "Originate", CID, status="QUEUE")
        dead = self.db.insertAction(SERVER, "Originate", CID, status="DEAD")
        rung = self.db.insertAction(SERVER, "Originate", CID, status="UPDATED",
                                    channel="SIP/c-1", uniqueid="1.1")
        local = self.db.insertAction(SERVER, "Originate", CID, status="UPDATED",
                                     channel="Local/8600051@default-00000001;1", uniqueid="1.2")
        changed = await self.store.applyUpdates(SERVER, [CallDialing(CID, "DAHDI/1-1", "1.3")])
        self.assertEqual(changed, 0)
        self.assertEqual([self.db.status(m) for m in (new, queued, dead)],
                         ["NEW", "QUEUE", "DEAD"])
        self.assertCall(rung, "UPDATED", "SIP/c-1", "1.1")
        self.assertCall(local, "UPDATED", "Local/8600051@default-00000001;1", "1.2")
        await self.store.applyUpdates(SERVER, [CallDead("1.3", "DAHDI/1-1")])
        self.assertCall(local, "DEAD", "DAHDI/1-1", "1.3")
        self.assertEqual(self.db.status(rung), "UPDATED")

    async def test_callMoved(self):
        """A masqueraded call's rows take the uniqueid it goes on with; its hangup is DEAD,
        the old uniqueid's is not."""
        man_id = await self.sentCall(CID, "1700000000.1", channel="SIP/trunk-00000001")
        moved = CallMoved("1700000000.1", "1700000000.9", "SIP/trunk-00000001")
        self.assertEqual(await self.store.applyUpdates(SERVER, [moved]), 1)
        self.assertCall(man_id, "UPDATED", "SIP/trunk-00000001", "1700000000.9")
        self.assertEqual(await self.store.applyUpdates(SERVER, [CallDead("1700000000.1", "x")]),
                         0)
        await self.store.applyUpdates(SERVER, [CallDead("1700000000.9", "SIP/trunk-00000001")])
        self.assertEqual(self.db.status(man_id), "DEAD")

    async def test_trackedChannels(self):
        """Live calls come back with the channel of each uniqueid."""
        await self.sentCall(CID, "1.1", channel="SIP/trunk-00000001")
        tracked = await self.store.trackedCalls(SERVER, 60)
        self.assertEqual((tracked.uniqueids, tracked.channels), (("1.1",), ("SIP/trunk-00000001",)))

    async def test_applyUpdatesRefusesOthers(self):
        """Anything but the call updates is a programming error."""
        with self.assertRaises(TypeError):
            await self.store.applyUpdates(SERVER, ["Hangup"])

    # -- recovery ------------------------------------------------------------

    async def claimedAndMarked(self, instance="box1"):
        """Two rows claimed by C{instance} through another store; the first marked sending."""
        previous = self.db.openStore()
        [unmarked, marked] = self.db.insertActions(SERVER, 2)
        rows = await previous.claim(SERVER, 2, instance)
        await previous.markSending(self.claims(rows[1:]))
        await previous.close()
        return unmarked, marked

    async def test_recoverPreviousRun(self):
        """At start-up, unmarked rows go back to NEW; marked ones stay SENT with response N,
        never resent."""
        unmarked, marked = await self.claimedAndMarked("box1")
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        recovery = await self.store.recoverStranded(SERVER, "box1", 3600)
        self.assertEqual(recovery, Recovery(requeued=(unmarked,), unknown=(marked,)))
        self.assertEqual(
            [formatEvent(e) for e in observer
             if e["log_level"] == LogLevel.warn and "stranded" in formatEvent(e)],
            [
                f"1 stranded rows of {SERVER} were never sent: back to NEW (man_id {unmarked})",
                f"1 stranded rows of {SERVER} may have been sent, with no answer recorded:"
                f" response N, not resent (man_id {marked})",
            ],
        )
        self.assertEqual(self.db.status(unmarked), "NEW")
        record = self.db.action(unmarked)
        self.assertEqual(
            (record["outcome"], record["attempts"], record["claimed_by"]), ("requeued", 1, None)
        )
        self.assertIn("box1", record["reason"])
        row, record = self.db.row(marked), self.db.action(marked)
        self.assertEqual(
            (row["status"], row["response"], record["outcome"]), ("SENT", "N", "unknown")
        )
        self.assertIn("not resent", record["reason"])
        self.assertEqual(self.ids(await self.claimAll()), [unmarked])

    async def test_recoverMarkedRowMovedOn(self):
        """A marked row the listener already UPDATED keeps its status and channel;
        only what Asterisk answered is unknown."""
        unmarked, marked = await self.claimedAndMarked("box1")
        callerid = self.db.row(marked)["callerid"]
        await self.store.applyUpdates(SERVER, [CallUpdated(callerid, "SIP/c-1", "1700000000.1")])
        recovery = await self.store.recoverStranded(SERVER, "box1", 3600)
        self.assertEqual(recovery.unknown, (marked,))
        self.assertCall(marked, "UPDATED", "SIP/c-1", "1700000000.1")
        self.assertEqual(self.db.action(marked)["outcome"], "unknown")

    async def test_recoverSparesOwnInFlightRows(self):
        """Recovery run by the live instance leaves alone the rows it is sending now."""
        self.db.insertActions(SERVER, 2)
        rows = await self.claimAll(instance="box1")
        await self.store.markSending(self.claims(rows[1:]))
        recovery = await self.store.recoverStranded(SERVER, "box1", 0)
        self.assertEqual(recovery, Recovery(requeued=(), unknown=()))
        self.assertEqual([self.db.status(r.man_id) for r in rows], ["QUEUE", "SENT"])

    async def test_recoverDuringClaim(self):
        """A recovery overlapping a claim of the live instance never takes the rows claimed."""
        ids = self.db.insertActions(SERVER, 20)
        for _ in range(10):
            claiming = self.store.claim(SERVER, 2, "box1")
            recovery = await self.store.recoverStranded(SERVER, "box1", 0)
            self.assertEqual(recovery, Recovery((), ()))
            await claiming
        self.assertEqual({self.db.status(i) for i in ids}, {"QUEUE"})

    async def test_recoverStaleInstance(self):
        """Rows of another instance silent for longer than staleAfter are recovered by the rule."""
        unmarked, marked = await self.claimedAndMarked("box1")
        await self.store.heartbeat(SERVER, "box1")
        self.db.execute("UPDATE acqs_instance SET heartbeat_at = %s", (LONG_AGO,))
        self.db.execute("UPDATE acqs_action SET claimed_at = %s", (LONG_AGO,))
        recovery = await self.store.recoverStranded(SERVER, "box2", 60)
        self.assertEqual(recovery, Recovery(requeued=(unmarked,), unknown=(marked,)))

    async def test_recoverSparesLiveInstance(self):
        """Rows of an instance with a recent heartbeat are left alone, however old the claim."""
        await self.claimedAndMarked("box1")
        self.db.execute("UPDATE acqs_action SET claimed_at = %s", (LONG_AGO,))
        await self.store.heartbeat(SERVER, "box1")
        self.assertEqual(await self.store.recoverStranded(SERVER, "box2", 60), Recovery((), ()))

    async def test_recoverSparesRecentClaim(self):
        """A recent claim is a sign of life: without a heartbeat, the claimant is not stale yet."""
        await self.claimedAndMarked("box1")
        self.assertEqual(await self.store.recoverStranded(SERVER, "box2", 60), Recovery((), ()))

    async def test_recoverUnknownClaimant(self):
        """QUEUE rows with no acqs claim go back to NEW once older than staleAfter."""
        old = self.db.insertAction(SERVER, "Originate", CID, status="QUEUE", entry_date=LONG_AGO)
        recent = self.db.insertAction(SERVER, "Originate", CID, status="QUEUE")
        recovery = await self.store.recoverStranded(SERVER, "box2", 60)
        self.assertEqual(recovery, Recovery(requeued=(old,), unknown=()))
        self.assertEqual((self.db.status(old), self.db.status(recent)), ("NEW", "QUEUE"))
        self.assertIn("no acqs claim", self.db.action(old)["reason"])

    async def test_recoverUnclaimedAtOnce(self):
        """With unclaimedAfter 0 (no Perl sender can run), a QUEUE row with no acqs claim goes
        back to NEW at once, whatever its entry_date says, with the reason; rows claimed by a
        live acqs, and SENT rows, are left alone."""
        future = "2999-01-01 00:00:00"  # a GUI client whose clock runs ahead
        perl = self.db.insertAction(SERVER, "Originate", CID, status="QUEUE")
        ahead = self.db.insertAction(SERVER, "Hangup", CID, status="QUEUE", entry_date=future)
        sent = self.db.insertAction(SERVER, "Hangup", CID, status="SENT")
        [live] = self.db.insertActions(SERVER, 1)
        await self.store.claim(SERVER, 1, "box1")
        await self.store.heartbeat(SERVER, "box1")
        other = self.db.openStore()
        self.assertEqual(await other.recoverStranded(SERVER, "box2", 60), Recovery((), ()))
        recovery = await other.recoverStranded(SERVER, "box2", 60, unclaimedAfter=0)
        self.assertEqual(recovery, Recovery(requeued=(perl, ahead), unknown=()))
        self.assertEqual([self.db.status(i) for i in (perl, ahead, sent, live)],
                         ["NEW", "NEW", "SENT", "QUEUE"])
        self.assertIn("left by VICIdial's Perl sender", self.db.action(perl)["reason"])

    async def test_heartbeatReadsServersRow(self):
        """With readServer, the heartbeat's transaction reads VICIdial's servers row: the
        first of the server IP, the role users under the >3-characters rule, the shared
        secret, 5038 for an empty port; none for another IP."""
        createServers(self.db)
        addServer(self.db, SERVER, telnet_host="10.0.0.9", telnet_port=0,
                  ASTmgrUSERNAMEsend="abc", ASTmgrUSERNAMElisten="listencron",
                  vd_server_logs="N", max_vicidial_trunks=40, asterisk_version="13.38.3")
        addServer(self.db, SERVER, telnet_host="second-row")
        read = await self.store.heartbeat(SERVER, "box1", "host-a", 1, readServer=True)
        row = read.row
        self.assertEqual((row.ami, row.send_user, row.listen_user, row.secret),
                         ("tcp:host=10.0.0.9:port=5038", "cron", "listencron", "1234"))
        self.assertEqual((row.vd_server_logs, row.max_vicidial_trunks, row.asterisk_version),
                         (False, 40, "13.38.3"))
        self.assertNotIn("1234", repr(row))
        self.assertEqual(self.db.rows("SELECT host FROM acqs_instance"), [("host-a",)])
        read = await self.store.heartbeat(OTHER, "box1", readServer=True)
        self.assertEqual((read.row, read.missing), (None, None))

    async def test_heartbeatWithoutServersTable(self):
        """Without a servers table (not VICIdial) the heartbeat still beats and says why no
        row was read."""
        read = await self.store.heartbeat(SERVER, "box1", "host-a", 1, readServer=True)
        self.assertIsNone(read.row)
        self.assertIn("servers", read.missing)
        self.assertEqual(self.db.rows("SELECT host FROM acqs_instance"), [("host-a",)])

    async def test_recoverHalfMarked(self):
        """A SENT row whose record still says queued (a MyISAM mark that failed half-way) was
        never sent: recovery makes it NEW again."""
        previous = self.db.openStore()
        [man_id] = self.db.insertActions(SERVER, 1)
        await previous.claim(SERVER, 1, "box1")
        await previous.close()
        self.db.execute("UPDATE vicidial_manager SET status = 'SENT'")
        recovery = await self.store.recoverStranded(SERVER, "box1", 3600)
        self.assertEqual(recovery, Recovery(requeued=(man_id,), unknown=()))
        self.assertEqual(self.db.status(man_id), "NEW")

    async def test_recoverOneServer(self):
        """Recovery touches only rows of its server_ip."""
        man_id = self.db.insertAction(OTHER, "Originate", CID, status="QUEUE", entry_date=LONG_AGO)
        self.assertEqual(await self.store.recoverStranded(SERVER, "box1", 0), Recovery((), ()))
        self.assertEqual(self.db.status(man_id), "QUEUE")

    # -- waiting for NEW rows ----------------------------------------------------

    waits = True  # whether this database can wait in the server

    async def test_lookForNew(self):
        """A look says whether a NEW row of the server is there, not of another server, nor a
        row claimed already."""
        self.db.insertAction(OTHER, "Originate", CID)
        self.assertFalse(await self.store.lookForNew(SERVER))
        self.db.insertAction(SERVER, "Originate", CID)
        self.assertTrue(await self.store.lookForNew(SERVER))
        await self.claimAll()
        self.assertFalse(await self.store.lookForNew(SERVER))

    async def test_waitForNew(self):
        """Where the server can wait: a wait with no NEW row of this server returns after its
        time, one that a row INSERTed meanwhile ends returns as soon as it comes, and one
        with a row already there at once; each says how many looks it took.  Where it
        cannot, the wait fails with CannotWait, saying why."""
        self.db.insertAction(OTHER, "Originate", CID)
        started = time.monotonic()
        if not self.waits:
            with self.assertRaises(CannotWait) as caught:
                await self.store.waitForNew(SERVER, 0.2, 0.01)
            self.assertIn("cannot wait", str(caught.exception))
            return
        self.assertEqual(await self.store.waitForNew(SERVER, 0.2, 0.01), (False, 21))
        self.assertGreaterEqual(time.monotonic() - started, 0.19)
        gui = self.db.connect()
        self.addCleanup(gui.close)
        reactor.callLater(0.1, lambda: self.db.insertAction(SERVER, "Originate", CID,
                                                            connection=gui))
        started = time.monotonic()
        found, looks = await self.store.waitForNew(SERVER, 5, 0.01)
        self.assertTrue(found)
        self.assertLess(looks, 400)
        self.assertLess(time.monotonic() - started, 4)
        self.assertEqual(await self.store.waitForNew(SERVER, 5, 0.01), (True, 1))

    async def test_waitLooksEveryStep(self):
        """A wait looks for NEW rows every step: a row INSERTed just after a look is seen at
        the next one, not before."""
        if not self.waits:
            raise SkipTest("this database cannot wait in the server")
        await self.store.waitForNew(SERVER, 0, 0.4)  # connected, and the server known
        gui = self.db.connect()
        self.addCleanup(gui.close)
        reactor.callLater(0.05, lambda: self.db.insertAction(SERVER, "Originate", CID,
                                                             connection=gui))
        started = time.monotonic()
        self.assertEqual(await self.store.waitForNew(SERVER, 5, 0.4), (True, 2))
        self.assertGreaterEqual(time.monotonic() - started, 0.35)
        self.assertLess(time.monotonic() - started, 4)

    # -- instances -------------------------------------------------------------

    async def test_heartbeat(self):
        """A heartbeat records the instance, its server_ip, host, pid and the time, and moves
        the time on."""
        await self.store.heartbeat(SERVER, "box1", "host-a", 4242)
        self.db.execute("UPDATE acqs_instance SET heartbeat_at = %s", (LONG_AGO,))
        await self.store.heartbeat(SERVER, "box1", "host-a", 4242)
        [(server_ip, instance, host, pid, when)] = self.db.rows(
            "SELECT server_ip, instance, host, pid, heartbeat_at FROM acqs_instance"
        )
        self.assertEqual((server_ip, instance, host, pid), (SERVER, "box1", "host-a", 4242))
        self.assertGreater(str(when), LONG_AGO)

    def register(self, host="host-b", pid=2, alive=(), staleAfter=60, instance="box1"):
        return self.store.register(SERVER, instance, host, pid, staleAfter,
                                   lambda p: p in alive)

    async def test_registerBesideLiveInstance(self):
        """A second process may not take the name of a live instance, here or on another host;
        the sentence says where that one runs."""
        await self.store.heartbeat(SERVER, "box1", "host-a", 1)
        with self.assertRaises(InstanceConflict) as caught:
            await self.register(host="host-b")
        self.assertIn("'box1' of 10.10.11.12 already runs on host-a as pid 1",
                      str(caught.exception))
        with self.assertRaises(InstanceConflict):
            await self.register(host="host-a", pid=2, alive=(1,))
        await self.register(instance="box2")

    async def test_registerAfterDeadInstance(self):
        """The name of a process gone from this host, or of an instance silent for longer than
        staleAfter, is free; registering records host, pid and the start."""
        await self.store.heartbeat(SERVER, "box1", "host-a", 1)
        await self.register(host="host-a", pid=2, alive=())
        self.db.execute("UPDATE acqs_instance SET heartbeat_at = %s", (LONG_AGO,))
        await self.register(host="host-c", pid=3)
        [(host, pid, started)] = self.db.rows("SELECT host, pid, started_at FROM acqs_instance")
        self.assertEqual((host, pid), ("host-c", 3))
        self.assertIsNotNone(started)

    # -- tracked calls ----------------------------------------------------------

    async def test_trackedCalls(self):
        """Tracked: claimed Originates, those sent within the ring window, and live calls
        (callerids; whole uniqueids of UPDATED ones; callerids of answered ones unseen)."""
        queued = self.db.insertAction(SERVER, "Originate", f"M{1:019d}", status="QUEUE")
        ringing = await self.sentCall(f"M{2:019d}")
        up = await self.sentCall(f"M{3:019d}", "vicibox-ast01-1796107644.3")
        answered = await self.sentCall(f"M{4:019d}", callAnswered=True)
        old = await self.sentCall(f"M{5:019d}")
        self.db.execute("UPDATE acqs_action SET sending_at = %s WHERE man_id = %s",
                        (LONG_AGO, old))
        dead = await self.sentCall(f"M{6:019d}", "1.6")
        await self.store.applyUpdates(SERVER, [CallDead("1.6", "SIP/c-1")])
        hangup = self.db.insertAction(SERVER, "Hangup", f"M{8:019d}", ["Channel: SIP/c-1"])
        await self.sendAll(await self.claimAll())
        self.db.insertAction(SERVER, "Originate", f"M{7:019d}", status="NEW")
        await self.sentCall(f"M{9:019d}", server_ip=OTHER)
        tracked = await self.store.trackedCalls(SERVER, 60)
        self.assertEqual(sorted(tracked.callerids), [f"M{n:019d}" for n in (1, 2, 3, 4)])
        self.assertEqual(tracked.uniqueids, ("vicibox-ast01-1796107644.3",))
        self.assertEqual(tracked.answered, (f"M{4:019d}",))
        self.assertTrue(queued and ringing and up and answered and dead and hangup)

    # -- pruning -----------------------------------------------------------------

    async def test_pruneOrphans(self):
        """Records whose vicidial_manager row was flushed (VICIdial's AST_flush_DBqueue.pl)
        are deleted, at most a batch at a time; the others stay."""
        rows = await self.claimed(5)
        await self.sendAll(rows)
        self.db.execute("DELETE FROM vicidial_manager WHERE man_id < %s", (rows[3].man_id,))
        self.assertEqual(await self.store.prune(SERVER, batch=2), Pruned(records=2, rows=0))
        self.assertEqual(await self.store.prune(SERVER, batch=2), Pruned(records=1, rows=0))
        self.assertEqual(await self.store.prune(SERVER, batch=2), Pruned(records=0, rows=0))
        self.assertEqual([m for (m,) in self.db.rows("SELECT man_id FROM acqs_action")],
                         self.ids(rows[3:]))

    async def test_pruneEverythingWhenFlushed(self):
        """With vicidial_manager emptied, every record goes."""
        await self.sendAll(await self.claimed(3))
        self.db.execute("DELETE FROM vicidial_manager")
        self.assertEqual(await self.store.prune(SERVER), Pruned(records=3, rows=0))

    async def test_keepHours(self):
        """With keepHours, rows of this server older than that go too (oldest first, a batch
        at a time), with their records; other servers' rows and young rows stay."""
        old = [self.db.insertAction(SERVER, "Originate", CID, entry_date=LONG_AGO)
               for _ in range(3)]
        theirs = self.db.insertAction(OTHER, "Originate", CID, entry_date=LONG_AGO)
        young = self.db.insertAction(SERVER, "Originate", CID)
        await self.sendAll(await self.claimAll())
        self.assertEqual(await self.store.prune(SERVER, keepHours=1, batch=2),
                         Pruned(records=0, rows=2))
        self.assertEqual(await self.store.prune(SERVER, keepHours=1, batch=2),
                         Pruned(records=0, rows=1))
        left = [m for (m,) in self.db.rows("SELECT man_id FROM vicidial_manager ORDER BY 1")]
        self.assertEqual(left, [theirs, young])
        self.assertEqual([m for (m,) in self.db.rows("SELECT man_id FROM acqs_action")],
                         [young])
        self.assertTrue(old)

    # -- failures --------------------------------------------------------------

    async def test_closed(self):
        """A closed store fails calls with StoreUnavailable instead of touching the database."""
        await self.store.close()
        with self.assertRaises(StoreUnavailable):
            await self.claimAll()

    async def test_missingTables(self):
        """Without its tables the store fails with StoreUnavailable saying how to create them."""
        store = self.scratch(self, tables=False).openStore()
        with self.assertRaises(StoreUnavailable) as caught:
            await store.claim(SERVER, 10, "box1")
        self.assertIn("acqs initdb --db", str(caught.exception))

    # -- reads for operators -------------------------------------------------

    async def test_newRows(self):
        """newRows counts this server's NEW rows and gives the oldest's man_id and age by
        its entry_date; other servers' rows and claimed rows do not count."""
        old = self.db.insertAction(SERVER, "Hangup", "HL1",
                                   entry_date=(datetime.now() - timedelta(seconds=90))
                                   .strftime("%Y-%m-%d %H:%M:%S"))
        later = self.db.insertActions(SERVER, 3)
        self.db.insertAction("10.9.9.9", "Hangup", "ELSEWHERE")
        found = await self.store.newRows(SERVER)
        self.assertEqual((found.count, found.oldest), (4, old))
        self.assertTrue(89 <= found.age < 120, found.age)
        await self.store.claim(SERVER, 2, "box1")
        found = await self.store.newRows(SERVER)
        self.assertEqual((found.count, found.oldest), (2, later[1]))
        await self.store.claim(SERVER, 10, "box1")
        self.assertEqual(await self.store.newRows(SERVER), NewRows(0, None, None))


class MariaDBQueueStoreTests(QueueStoreTests, TestCase):
    """The contract on the real MariaDB (InnoDB)."""

    scratch = staticmethod(scratchMySQL)

    async def test_skipsLockedRows(self):
        """On InnoDB with MariaDB 10.6+, claims skip locked rows rather than serialising."""
        self.db.insertActions(SERVER, 1)
        await self.claimAll()
        self.assertTrue(self.store.serverInfo.skipLocked)
        self.assertEqual(self.store.serverInfo.engine, "InnoDB")


class MyISAMQueueStoreTests(QueueStoreTests, TestCase):
    """The contract on VICIdial's MyISAM vicidial_manager (acqs' own tables InnoDB)."""

    scratch = staticmethod(partial(scratchMySQL, engine="MyISAM"))
    premarks = False

    async def test_failedClaimLeavesNoRowSent(self):
        """A claim that fails after its status changes took effect (MyISAM keeps them, its
        records roll back) leaves no row SENT, even with sessions ready: the rows it left
        QUEUE are recovered to NEW and claimed again."""
        ids = self.db.insertActions(SERVER, 2)
        self.db.execute(
            "CREATE TRIGGER no_dead BEFORE UPDATE ON vicidial_manager FOR EACH ROW"
            " IF NEW.status = 'DEAD' THEN"
            " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no DEAD today'; END IF")

        def refuseSecond(row):
            return "refused" if row.man_id == ids[1] else None

        with self.assertRaises(StoreUnavailable):
            await self.store.claim(SERVER, 10, "box1", send=2, refuse=refuseSecond)
        self.assertEqual([self.db.status(i) for i in ids], ["QUEUE", "NEW"])
        self.db.execute("DROP TRIGGER no_dead")
        recovery = await self.store.recoverStranded(SERVER, "box2", 0)
        self.assertEqual(recovery.requeued, (ids[0],))
        self.assertEqual(self.ids(await self.claimAll()), ids)

    async def test_serialised(self):
        """MyISAM has no row locks: claims are serialised."""
        self.db.insertActions(SERVER, 1)
        await self.claimAll()
        self.assertFalse(self.store.serverInfo.skipLocked)

    async def test_failedMarkLeavesRowClaimed(self):
        """A mark whose record cannot be written fails before vicidial_manager changes: the
        row stays QUEUE (not SENT and never sent), and release makes it NEW."""
        [row] = await self.claimed(1)
        self.db.execute("ALTER TABLE acqs_action DROP COLUMN sending_at")
        with self.assertRaises(StoreUnavailable):
            await self.store.markSending(self.claims([row]))
        self.assertEqual(self.db.status(row.man_id), "QUEUE")
        self.db.execute("ALTER TABLE acqs_action ADD COLUMN sending_at DATETIME(6)")
        await self.store.release(self.claims([row]), "mark failed")
        self.assertEqual(self.db.status(row.man_id), "NEW")

    async def test_failedClaimLeavesRowNew(self):
        """A claim whose records cannot be written leaves its rows NEW, not QUEUE."""
        [man_id] = self.db.insertActions(SERVER, 1)
        self.db.execute("ALTER TABLE acqs_action DROP COLUMN claim_token")
        with self.assertRaises(StoreUnavailable):
            await self.claimAll()
        self.assertEqual(self.db.status(man_id), "NEW")


class OldServerQueueStoreTests(QueueStoreTests, TestCase):
    """The contract as a server without SKIP LOCKED nor compound statements (MySQL 5.7)
    runs it: plain FOR UPDATE under the claim lock, and no wait in the server; forced on
    the real MariaDB."""

    waits = False

    def scratch(self, testCase, tables=True):
        db = scratchMySQL(testCase, tables)
        db.openStore = partial(db.openStore, skipLocked=False, waits=False)
        return db

    async def test_serialised(self):
        """Claims are serialised, though vicidial_manager is InnoDB."""
        self.db.insertActions(SERVER, 1)
        await self.claimAll()
        self.assertEqual(self.store.serverInfo.engine, "InnoDB")
        self.assertFalse(self.store.serverInfo.skipLocked)


class SQLiteQueueStoreTests(QueueStoreTests, TestCase):
    """The contract on SQLite."""

    scratch = staticmethod(scratchSQLite)
    waits = False


class StatementTests(SynchronousTestCase):
    def test_filledInStatementsBounded(self):
        """However many statement shapes a busy instance fills in (one for each chunk
        size), each comes out as filled in, in its database's style, and a dialect keeps
        at most STATEMENTS_KEPT of them."""
        mysql, sqlite = MySQLDialect(), SQLiteDialect()
        for count in range(1, 2 * STATEMENTS_KEPT):
            ids = ", ".join(["%s"] * count)
            template = "UPDATE t SET a = %s WHERE id IN ({ids})"
            self.assertEqual(mysql.sql(template, ids=ids),
                             f"UPDATE t SET a = %s WHERE id IN ({ids})")
            self.assertEqual(sqlite.sql(template, ids=ids),
                             f"UPDATE t SET a = ? WHERE id IN ({ids.replace('%s', '?')})")
            self.assertLessEqual(len(mysql._statements), STATEMENTS_KEPT)

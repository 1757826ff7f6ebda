"""
The queue store's contract, run against the real MariaDB and against SQLite:
claims, the guarded life cycle, the dead check, the listener's updates, the
recovery rule and tracked calls.
"""

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from acqs.store import IQueueStore, StoreUnavailable
from acqs.store.records import (
    CallDead,
    CallUpdated,
    Recovery,
    Refusal,
    SendResult,
    TrackedCalls,
)

from .databases import scratchMySQL, scratchSQLite

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
        self.assertEqual(await self.store.markSending(ids), 1203)
        await self.store.recordSent([SendResult(i, True, "Success") for i in ids])
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
        """Marking makes claimed rows SENT, recording the time and outcome sending."""
        [a, b] = self.db.insertActions(SERVER, 2)
        await self.store.claim(SERVER, 1, "box1")
        self.assertEqual(await self.store.markSending([a, b]), 1)
        self.assertEqual((self.db.status(a), self.db.status(b)), ("SENT", "NEW"))
        self.assertEqual(self.db.action(a)["outcome"], "sending")
        self.assertIsNotNone(self.db.action(a)["sending_at"])
        self.assertIsNone(self.db.action(b))
        self.assertEqual(await self.store.markSending([a]), 0)

    async def test_releaseMarkedButUnwritten(self):
        """A marked row whose action was never written goes back to NEW; an answered one stays."""
        [a, b] = self.db.insertActions(SERVER, 2)
        await self.claimAll()
        await self.store.markSending([a, b])
        await self.store.recordSent([SendResult(b, True, "Success")])
        await self.store.release([a, b], "connection closed before the action was written")
        self.assertEqual((self.db.status(a), self.db.status(b)), ("NEW", "SENT"))
        self.assertEqual(self.db.action(a)["outcome"], "released")
        self.assertEqual(self.ids(await self.claimAll()), [a])

    async def test_recordSent(self):
        """Sent rows become SENT with response Y or N and Asterisk's message kept."""
        [ok, bad] = self.db.insertActions(SERVER, 2)
        await self.claimAll()
        await self.store.recordSent(
            [
                SendResult(ok, True, "Originate successfully queued"),
                SendResult(bad, False, "x" * 300),
            ]
        )
        self.assertEqual((self.db.row(ok)["status"], self.db.row(ok)["response"]), ("SENT", "Y"))
        self.assertEqual((self.db.row(bad)["status"], self.db.row(bad)["response"]), ("SENT", "N"))
        self.assertEqual(self.db.action(ok)["response_text"], "Originate successfully queued")
        self.assertEqual(self.db.action(bad)["response_text"], "x" * 255)
        self.assertEqual(self.db.action(ok)["outcome"], "sent")
        self.assertIsNotNone(self.db.action(ok)["answered_at"])

    async def test_recordSentKeepsListenerStatus(self):
        """SENT never overwrites the listener's UPDATED or DEAD, but the response is recorded."""
        [updated, dead] = self.db.insertActions(SERVER, 2)
        await self.claimAll()
        self.db.execute(
            "UPDATE vicidial_manager SET uniqueid = '1700000000.1' WHERE man_id = %s", (dead,)
        )
        await self.store.applyUpdates(
            SERVER,
            [
                CallUpdated(f"M{1:019d}", "PJSIP/trunk-00000001", "1700000000.0"),
                CallDead("1700000000.1", "PJSIP/trunk-00000002"),
            ],
        )
        await self.store.recordSent(
            [SendResult(updated, True, "ok"), SendResult(dead, True, "ok")]
        )
        self.assertEqual(
            (self.db.status(updated), self.db.row(updated)["response"]), ("UPDATED", "Y")
        )
        self.assertEqual((self.db.status(dead), self.db.row(dead)["response"]), ("DEAD", "Y"))

    async def test_refuse(self):
        """Refused rows become DEAD with response N and the reason kept."""
        man_id = self.db.insertAction(SERVER, "Originate", CID)
        await self.claimAll()
        await self.store.refuse([Refusal(man_id, "no Channel header")])
        row, record = self.db.row(man_id), self.db.action(man_id)
        self.assertEqual((row["status"], row["response"]), ("DEAD", "N"))
        self.assertEqual((record["outcome"], record["reason"]), ("refused", "no Channel header"))

    async def test_refuseOnlyQueued(self):
        """Refusing a row that is no longer in QUEUE changes nothing."""
        man_id = self.db.insertAction(SERVER, "Originate", CID)
        await self.claimAll()
        await self.store.recordSent([SendResult(man_id, True, "ok")])
        await self.store.refuse([Refusal(man_id, "too late")])
        self.assertEqual(self.db.status(man_id), "SENT")
        self.assertEqual(self.db.action(man_id)["outcome"], "sent")

    async def test_release(self):
        """Released rows go back to NEW with reason and attempt count, and are claimed again."""
        man_id = self.db.insertAction(SERVER, "Originate", CID)
        await self.claimAll()
        await self.store.release([man_id], "AMI connection refused")
        record = self.db.action(man_id)
        self.assertEqual(self.db.status(man_id), "NEW")
        self.assertEqual(
            (record["outcome"], record["reason"], record["attempts"], record["claimed_by"]),
            ("released", "AMI connection refused", 1, None),
        )
        self.assertEqual(self.ids(await self.claimAll(instance="box2")), [man_id])
        await self.store.release([man_id], "AMI connection refused again")
        record = self.db.action(man_id)
        self.assertEqual(
            (record["attempts"], record["reason"]), (2, "AMI connection refused again")
        )

    async def test_releaseKeepsReasonOnClaim(self):
        """Claiming a released row again keeps why it was released."""
        man_id = self.db.insertAction(SERVER, "Originate", CID)
        await self.claimAll()
        await self.store.release([man_id], "AMI login failed")
        await self.claimAll(instance="box2")
        record = self.db.action(man_id)
        self.assertEqual(
            (record["claimed_by"], record["outcome"], record["reason"]),
            ("box2", "queued", "AMI login failed"),
        )

    async def test_releaseOnlyQueued(self):
        """Releasing a row that is no longer in QUEUE never turns it back to NEW."""
        man_id = self.db.insertAction(SERVER, "Originate", CID)
        await self.claimAll()
        await self.store.recordSent([SendResult(man_id, True, "ok")])
        await self.store.release([man_id], "late")
        self.assertEqual(self.db.status(man_id), "SENT")

    # -- the listener's updates --------------------------------------------

    async def sentCall(self, callerid=CID, uniqueid="", server_ip=SERVER, cmdLines=()):
        man_id = self.db.insertAction(server_ip, "Originate", callerid, cmdLines)
        await self.store.claim(server_ip, 100, "box1")
        await self.store.recordSent([SendResult(man_id, True, "ok")])
        if uniqueid:
            self.db.execute(
                "UPDATE vicidial_manager SET uniqueid = %s WHERE man_id = %s", (uniqueid, man_id)
            )
        return man_id

    def assertCall(self, man_id, status, channel, uniqueid):
        row = self.db.row(man_id)
        self.assertEqual(
            (row["status"], row["channel"], row["uniqueid"]), (status, channel, uniqueid)
        )

    async def test_callUpdated(self):
        """A ringing call makes its rows UPDATED with channel and uniqueid, matched by callerid."""
        man_id = await self.sentCall()
        changed = await self.store.applyUpdates(
            SERVER, [CallUpdated(CID, "PJSIP/trunk-00000001", "1700000000.1")]
        )
        self.assertEqual(changed, 1)
        self.assertCall(man_id, "UPDATED", "PJSIP/trunk-00000001", "1700000000.1")

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
        man_id = self.db.insertAction(SERVER, "Originate", CID)
        await self.claimAll()
        await self.store.applyUpdates(SERVER, [CallUpdated(CID, "SIP/1-1", "1.1")])
        await self.store.recordSent([SendResult(man_id, True, "ok")])
        self.assertEqual(self.db.status(man_id), "UPDATED")

    async def test_callUpdatedOneServer(self):
        """Updates apply only to rows of the listener's server_ip."""
        theirs = await self.sentCall(server_ip=OTHER)
        self.assertEqual(
            await self.store.applyUpdates(SERVER, [CallUpdated(CID, "SIP/1-1", "1.1")]), 0
        )
        self.assertEqual(self.db.status(theirs), "SENT")

    async def test_callDead(self):
        """A hangup makes the rows with its uniqueid DEAD, with the channel."""
        man_id = await self.sentCall(uniqueid="1700000000.1")
        changed = await self.store.applyUpdates(
            SERVER, [CallDead("1700000000.1", "PJSIP/trunk-1", "16")]
        )
        row = self.db.row(man_id)
        self.assertEqual(changed, 1)
        self.assertEqual((row["status"], row["channel"]), ("DEAD", "PJSIP/trunk-1"))

    async def test_callDeadWithoutChannelKeepsIt(self):
        """A hangup found by catching up (no channel known) keeps the row's channel."""
        man_id = await self.sentCall(uniqueid="1700000000.1")
        await self.store.applyUpdates(SERVER, [CallUpdated(CID, "SIP/c-1", "1700000000.1")])
        await self.store.applyUpdates(SERVER, [CallDead("1700000000.1", "")])
        self.assertCall(man_id, "DEAD", "SIP/c-1", "1700000000.1")

    async def test_deadIsFinal(self):
        """Nothing moves a DEAD row: not another hangup, not a late ringing event."""
        man_id = await self.sentCall(uniqueid="1700000000.1")
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
        """Rows with cmd_line_d Exten: 8309/8310 (recordings) never die; NULL does not protect."""
        recording = await self.sentCall(
            "20240130-172253_100", "1.1", cmdLines=["Channel: x", "", "Exten: 8309"]
        )
        plain = await self.sentCall(
            "M1130172253000000002", "1.1", cmdLines=["Channel: x", "", None]
        )
        changed = await self.store.applyUpdates(SERVER, [CallDead("1.1", "Local/8309@demo-1;1")])
        self.assertEqual(changed, 1)
        self.assertEqual((self.db.status(recording), self.db.status(plain)), ("SENT", "DEAD"))

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
        """Values are cut to their columns, and a long callerid matches its cut stored form."""
        man_id = await self.sentCall("20240130-172253_1000")
        await self.store.applyUpdates(
            SERVER,
            [CallUpdated("20240130-172253_1000_agent", "C" * 150, "1700000000.123456789012")],
        )
        self.assertCall(man_id, "UPDATED", "C" * 100, "1700000000.123456789")

    async def test_applyUpdatesRefusesOthers(self):
        """Anything but CallUpdated and CallDead is a programming error, reported as such."""
        with self.assertRaises(TypeError):
            await self.store.applyUpdates(SERVER, ["Hangup"])

    # -- recovery ------------------------------------------------------------

    async def claimedAndMarked(self, instance="box1"):
        """Two rows claimed by C{instance} through another store; the first marked sending."""
        previous = self.db.openStore()
        [unmarked, marked] = self.db.insertActions(SERVER, 2)
        await previous.claim(SERVER, 2, instance)
        await previous.markSending([marked])
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
            [formatEvent(e) for e in observer if e["log_level"] == LogLevel.warn],
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
        await self.store.markSending([rows[1].man_id])
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

    async def test_recoverOneServer(self):
        """Recovery touches only rows of its server_ip."""
        man_id = self.db.insertAction(OTHER, "Originate", CID, status="QUEUE", entry_date=LONG_AGO)
        self.assertEqual(await self.store.recoverStranded(SERVER, "box1", 0), Recovery((), ()))
        self.assertEqual(self.db.status(man_id), "QUEUE")

    # -- heartbeat and tracked calls -----------------------------------------

    async def test_heartbeat(self):
        """A heartbeat records the instance, its server_ip and the time, and moves the time on."""
        await self.store.heartbeat(SERVER, "box1")
        self.db.execute("UPDATE acqs_instance SET heartbeat_at = %s", (LONG_AGO,))
        await self.store.heartbeat(SERVER, "box1")
        [(server_ip, instance, when)] = self.db.rows(
            "SELECT server_ip, instance, heartbeat_at FROM acqs_instance"
        )
        self.assertEqual((server_ip, instance), (SERVER, "box1"))
        self.assertGreater(str(when), LONG_AGO)

    async def test_trackedCalls(self):
        """Tracked: recent Originates in QUEUE/SENT/UPDATED (callerids), UPDATED (uniqueids)."""
        queued = self.db.insertAction(SERVER, "Originate", "M0000000000000000001", status="QUEUE")
        self.db.insertAction(SERVER, "ORIGINATE", "M0000000000000000002", status="SENT")
        self.db.insertAction(
            SERVER, "originate", "M0000000000000000003", status="UPDATED", uniqueid="1.3"
        )
        self.db.insertAction(
            SERVER, "Originate", "M0000000000000000004", status="UPDATED", uniqueid=""
        )
        self.db.insertAction(SERVER, "Originate", "M0000000000000000005", status="NEW")
        self.db.insertAction(
            SERVER, "Originate", "M0000000000000000006", status="DEAD", uniqueid="1.6"
        )
        self.db.insertAction(
            SERVER, "Originate", "M0000000000000000007", status="SENT", entry_date=LONG_AGO
        )
        self.db.insertAction(SERVER, "Hangup", "M0000000000000000008", status="SENT")
        self.db.insertAction(OTHER, "Originate", "M0000000000000000009", status="SENT")
        tracked = await self.store.trackedCalls(SERVER, 3600)
        self.assertEqual(
            tracked,
            TrackedCalls(
                callerids=tuple(f"M{n:019d}" for n in (1, 2, 3, 4)),
                uniqueids=("1.3",),
            ),
        )
        self.assertIsNotNone(queued)

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


class MariaDBQueueStoreTests(QueueStoreTests, TestCase):
    """The contract on the real MariaDB (InnoDB)."""

    scratch = staticmethod(scratchMySQL)


class SQLiteQueueStoreTests(QueueStoreTests, TestCase):
    """The contract on SQLite."""

    scratch = staticmethod(scratchSQLite)

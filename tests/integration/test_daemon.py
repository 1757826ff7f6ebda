"""
acqs end to end: the service tree on the real reactor, a scratch database on
the real MariaDB, and the simulator (every dialect) or the real Asterisk 22.
"""

import json
import secrets
import uuid

import attr

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from acqs import app
from acqs.ami.protocol import AMIFactory
from acqs.health import check
from acqs.listener import Listener
from acqs.sender import Sender
from acqs.store import openStore

from ..databases import mysqlConnection, scratchMySQL
from ..test_store_mariadb import ACQS_INSERT
from . import asterisk
from .daemon import SERVER, USERS, History, SimulatorOnTCP, eventually, startAcqs
from .proxy import RecordingProxy

LIFE_CYCLE = ["NEW", "QUEUE", "SENT", "UPDATED", "DEAD"]


async def spy(endpoint):
    """Every channel event Asterisk prints, seen by a listener of our own."""
    protocol = await AMIFactory("listener", "listenersecret", reactor, events="on").login(endpoint)
    seen = []
    protocol.registerEvent("Newstate", seen.append)
    return protocol, seen


def callerid():
    return "V" + uuid.uuid4().int.__str__()[:19]


def eventsTo(proxy, username):
    """The names of the events Asterisk wrote to C{username}'s connections, but for the
    lists its own actions asked for."""
    asked = {m.get("ActionID") for m in proxy.actionsOf(username)}
    return [m["Event"] for m in proxy.receivedBy(username)
            if m.get("Event") and m.get("ActionID") not in asked]


# What the listener needs; with Asterisk's filter, all it gets.
# The events the listener reads on a database without VICIdial's duty tables, and
# FullyBooted, which Asterisk sends at login to a session that reads system events
# (unfiltered, as an answer is).
NEEDED = {"Newstate", "Hangup", "OriginateResponse", "Rename", "FullyBooted"}


class EndToEnd:
    """
    What every end-to-end case needs: a scratch database (vicidial_manager in C{engine},
    InnoDB by default) and the GUI client's INSERTs.
    """

    engine = None

    def setUp(self):
        self.db = scratchMySQL(self, engine=self.engine)

    def insert(self, action, *lines, callerid=None):
        return self.db.insertAction(SERVER, action, callerid or globals()["callerid"](), lines)

    async def reached(self, man_id, status, timeout=15.0):
        """the row reaches a status; returns the statuses it was seen in"""
        return await History(self.db, man_id).until(status, timeout)

    async def answered(self, man_id, timeout=15.0):
        """Asterisk's answer to the row's action is recorded (SENT comes just before
        the action is written)."""
        def recorded():
            """the row's answer is recorded"""
            return (self.db.action(man_id) or {}).get("answered_at")
        await eventually(recorded, timeout)
        return self.db.row(man_id)["response"]

    def assertLifeCycle(self, man_id, seen, *required):
        """
        The statuses seen are in life-cycle order and include C{required},
        and the row was made SENT (marked) before its action went out: SENT
        may last only a millisecond before the listener's UPDATED, too short
        to be seen by polling.
        """
        self.assertEqual(seen, sorted(seen, key=LIFE_CYCLE.index), seen)
        for status in required:
            self.assertIn(status, seen)
        record = self.db.action(man_id)
        self.assertIsNotNone(record["sending_at"], "never marked SENT")
        self.assertLessEqual(record["claimed_at"], record["sending_at"])


class SimulatorCalls(EndToEnd):
    """Calls through acqs on the simulator: what differs between Asterisk versions."""

    dialect = "asterisk22"
    local1 = ";1"
    filters = True  # whether this Asterisk has the Filter action (10 and later)

    def setUp(self):
        super().setUp()
        self.asterisk = SimulatorOnTCP(self, self.dialect)
        self.sim = self.asterisk.simulator

    def start(self, endpoint=None, **settings):
        return startAcqs(self, self.db, endpoint or self.asterisk.endpoint, **settings)

    async def test_acqsInsertVerbatim(self):
        """ACQS.txt's INSERT, unchanged: SENT, UPDATED with the dialled carrier leg
        and its uniqueid, then DEAD when it hangs up."""
        self.start()
        spyProtocol, events = await spy(self.asterisk.endpoint)
        self.addCleanup(spyProtocol.logoff)
        gui = self.db.connect()
        self.addCleanup(gui.close)
        cursor = gui.cursor()
        cursor.execute("SET SESSION sql_mode=''")
        cursor.execute(ACQS_INSERT)
        man_id = cursor.lastrowid
        seen = await self.reached(man_id, "DEAD")
        self.assertLifeCycle(man_id, seen, "UPDATED", "DEAD")
        row, record = self.db.row(man_id), self.db.action(man_id)
        self.assertTrue(row["channel"].startswith("SIP/carrier-"), row["channel"])
        [leg] = {e["Uniqueid"] for e in events if e["Channel"] == row["channel"]}
        self.assertEqual(row["uniqueid"], leg)
        self.assertEqual((row["response"], record["outcome"]), ("Y", "sent"))

    async def test_localOnlyCall(self):
        """A call on Local channels only gets the originated ;1 leg, then DEAD."""
        self.start()
        man_id = self.insert("Originate", "Channel: Local/100@e2e", "Context: e2e",
                             "Exten: 300", "Priority: 1", "Callerid: CIDX")
        self.db.execute("UPDATE vicidial_manager SET callerid = 'CIDX' WHERE man_id = %s",
                        (man_id,))
        seen = await self.reached(man_id, "DEAD")
        self.assertLifeCycle(man_id, seen, "UPDATED", "DEAD")
        channel = self.db.row(man_id)["channel"]
        self.assertTrue(channel.startswith("Local/100@e2e-") and channel.endswith(self.local1),
                        channel)

    async def test_listenerGetsFewEvents(self):
        """The listener asks for call, DTMF and system events and, where Asterisk can filter
        them, only for those it reads: a call's row still goes UPDATED, then DEAD."""
        proxy = RecordingProxy(self, "127.0.0.1", self.asterisk.number)
        startAcqs(self, self.db, proxy.endpoint)
        man_id = self.insert("Originate", "Channel: Local/100@e2e", "Context: e2e",
                             "Exten: 300", "Priority: 1", "Callerid: CIDF")
        self.db.execute("UPDATE vicidial_manager SET callerid = 'CIDF' WHERE man_id = %s",
                        (man_id,))
        self.assertLifeCycle(man_id, await self.reached(man_id, "DEAD"), "UPDATED", "DEAD")
        received = set(eventsTo(proxy, "listener"))
        self.assertTrue({"Newstate", "Hangup"} <= received, received)
        if self.filters:
            self.assertLessEqual(received, NEEDED)
        else:
            self.assertIn("Newchannel", received)

    async def liveCall(self):
        cid = callerid()
        man_id = self.insert("Originate", "Channel: Local/200@e2e", "Context: e2e",
                             "Exten: 200", "Priority: 1", f"Callerid: {cid}", callerid=cid)
        await self.reached(man_id, "UPDATED")
        return man_id, cid, self.db.row(man_id)["channel"]

    async def test_answerWrittenWithItsCall(self):
        """An Originate's answer and the first UPDATEs of its call, which Asterisk prints
        within the write window of each other, are written in one transaction."""
        self.patch(app, "WRITE_WINDOW", 0.5)  # wide enough for a loaded machine
        store = self.db.openStore()
        batches = []

        def record(server_ip, items, record=store.record):
            batches.append(sorted({type(item).__name__ for item in items}))
            return record(server_ip, items)

        store.record = record
        self.start(store=store)
        man_id, _, _ = await self.liveCall()
        self.assertEqual(self.db.row(man_id)["response"], "Y")
        self.assertEqual(batches, [["CallUpdated", "SendResult"]])

    async def test_redirectLiveCall(self):
        """A Redirect row moves a live call (it then ends at its new extension: DEAD)."""
        self.start()
        man_id, cid, channel = await self.liveCall()
        redirect = self.insert("Redirect", f"Channel: {channel}", "Context: e2e", "Exten: 300",
                               "Priority: 1", f"CallerID: {cid}")
        self.assertEqual(await self.answered(redirect), "Y")
        await self.reached(man_id, "DEAD", timeout=5)
        self.assertEqual(self.db.action(redirect)["response_text"], "Redirect successful")

    async def test_hangupLiveCall(self):
        """A Hangup row hangs up a live call, whose row becomes DEAD."""
        self.start()
        man_id, cid, channel = await self.liveCall()
        hangup = self.insert("Hangup", f"Channel: {channel}")
        await self.reached(man_id, "DEAD", timeout=5)
        self.assertEqual(await self.answered(hangup), "Y")

    async def test_deadCheck(self):
        """A Hangup row for a call already DEAD is not sent: DEAD, reason recorded."""
        self.start()
        man_id, cid, channel = await self.liveCall()
        self.sim.hangup(channel)
        await self.reached(man_id, "DEAD")
        late = self.insert("Hangup", f"Channel: {channel}", callerid=cid)
        await self.reached(late, "DEAD")
        self.assertEqual(self.db.action(late)["outcome"], "dead_check")
        self.assertEqual([m for _, m in self.sim.actions if m["Action"] == "Hangup"], [])

    async def test_listenerDropCaughtUp(self):
        """A call that hangs up while the listener is cut off still ends DEAD."""
        acqs = self.start()
        man_id, cid, channel = await self.liveCall()
        self.sim.dropAll()
        self.sim.hangup(channel)
        await self.reached(man_id, "DEAD", timeout=20)
        listener = next(s for s in acqs if isinstance(s, Listener))
        await eventually(lambda: listener.protocol is not None)

    async def test_liveCallSurvivesCatchUp(self):
        """A call still up while the listener was cut off stays UPDATED once the listener is
        back and has caught up from the live channels (whose list has no caller ID name in
        1.6), and goes DEAD when it ends."""
        acqs = self.start()
        man_id, cid, channel = await self.liveCall()
        listener = next(s for s in acqs if isinstance(s, Listener))
        asked = len(self.catchUps())
        self.sim.dropAll("listener")
        await eventually(lambda: len(self.catchUps()) > asked, timeout=20)
        await deferLater(reactor, 1.0, lambda: None)  # the list answered and applied
        self.assertIsNotNone(listener.protocol)
        self.assertEqual(self.db.status(man_id), "UPDATED")
        self.sim.hangup(channel)
        await self.reached(man_id, "DEAD")

    async def test_answeredUnseenCallStaysUpdated(self):
        """A synchronous Originate answered while the listener was away: once back, the
        listener catches up from the live channels and does not take the call, still up,
        for ended (1.6's list has no caller ID name to find it by)."""
        self.start()
        listenerUser = self.sim.users["listener"]

        def cut(user, action):
            """The listener is cut off as the Originate arrives, and cannot log in again."""
            if action["Action"] == "Originate":
                self.sim.users.pop("listener", None)
                self.sim.dropAll("listener")

        self.sim.onAction = cut
        cid = callerid()
        man_id = self.insert("Originate", "Channel: Local/400@e2e", "Context: e2e",
                             "Exten: 200", "Priority: 1", f"Callerid: {cid}", callerid=cid)
        self.assertEqual(await self.answered(man_id), "Y")
        asked = len(self.catchUps())
        self.sim.onAction = None
        self.sim.users["listener"] = listenerUser
        await eventually(lambda: len(self.catchUps()) > asked, timeout=20)
        await deferLater(reactor, 1.0, lambda: None)  # the list answered and applied
        self.assertNotEqual(self.db.status(man_id), "DEAD")
        self.assertTrue([c for c in self.sim.channels.values() if c.callerIDName == cid])

    def catchUps(self):
        """The listener's actions that list live channels."""
        return [m for user, m in self.sim.actions if user == "listener"
                and m["Action"] in ("CoreShowChannels", "Status", "Command")]

    async def test_redirectedCarrierLegStaysUpdated(self):
        """Redirecting a call's carrier leg, which runs no dialplan, keeps its row UPDATED
        while it lives on: on 1.4 - 11 the masquerade's ZOMBIE hangs up with the row's
        uniqueid, as the Perl listener (which drops ZOMBIE events) ignores."""
        self.start()
        cid = callerid()
        man_id = self.insert("Originate", "Channel: Local/7555@e2e/n", "Context: e2e",
                             "Exten: 200", "Priority: 1", f"Callerid: {cid}", callerid=cid)
        await self.reached(man_id, "UPDATED")
        row = self.db.row(man_id)
        self.assertTrue(row["channel"].startswith("SIP/carrier-"), row["channel"])
        await eventually(lambda: self.sim.channels[row["channel"]].bridge)  # answered
        await deferLater(reactor, 0.3, lambda: None)  # the answer seen
        row = self.db.row(man_id)
        redirect = self.insert("Redirect", f"Channel: {row['channel']}", "Context: e2e",
                               "Exten: 200", "Priority: 1")
        self.assertEqual(await self.answered(redirect), "Y")
        await deferLater(reactor, 1.0, lambda: None)
        self.assertIn(row["channel"], self.sim.channels)
        self.assertEqual(self.db.status(man_id), "UPDATED")
        self.assertEqual(self.db.row(man_id)["channel"], row["channel"])


    async def test_optimisedLocalCallStaysUpdated(self):
        """A call whose Local channel dials a carrier leg stays UPDATED while it is up: on
        1.4 - 11 the Local pair is optimised away and the ZOMBIE left hangs up with the
        carrier leg's (the row's) uniqueid; the call, gone on as SIP/carrier-..., lives."""
        self.start()
        cid = callerid()
        man_id = self.insert("Originate", "Channel: Local/7555@e2e", "Context: e2e",
                             "Exten: 200", "Priority: 1", f"Callerid: {cid}", callerid=cid)
        await self.reached(man_id, "UPDATED")
        channel = self.db.row(man_id)["channel"]
        self.assertTrue(channel.startswith("SIP/carrier-"), channel)
        await eventually(lambda: len(self.sim.channels) == (1 if self.sim.dialect.masquerades
                                                            else 3))
        await deferLater(reactor, 0.5, lambda: None)
        self.assertIn(channel, self.sim.channels)
        self.assertEqual(self.db.status(man_id), "UPDATED")


class SimulatorLifeCycle(SimulatorCalls):
    """Calls, and the sender's sessions and queue (the same on every Asterisk version)."""

    async def test_badRows(self):
        """Malformed rows, and actions VICIdial never writes (Command), are refused with
        their reason, and nothing of them reaches Asterisk."""
        self.start()
        malformed = self.insert("Orig inate", "Channel: Local/100@e2e")
        injected = self.insert("Hangup", "Channel: SIP/x-1\r\nAction: Originate")
        command = self.insert("Command", "Command: core stop now")
        for man_id, reason in ((malformed, "not an AMI action name"),
                               (injected, "holds CR or LF"),
                               (command, "action Command is not in --allow-actions")):
            await self.reached(man_id, "DEAD")
            record = self.db.action(man_id)
            self.assertEqual(record["outcome"], "refused")
            self.assertIn(reason, record["reason"])
        self.assertEqual({m["Action"] for _, m in self.sim.actions if "Action" in m}
                         & {"Orig inate", "Originate", "Command"}, set())

    async def test_unknownActionAllowed(self):
        """With every action allowed, an unknown one is sent and Asterisk's refusal kept."""
        self.start(allow_actions=("*",))
        unknown = self.insert("NoSuchAction", "Channel: SIP/x-1")
        self.assertEqual(await self.answered(unknown), "N")
        self.assertIn("Invalid/unknown command", self.db.action(unknown)["response_text"])

    def senders(self):
        """The sender's sessions Asterisk has logged in."""
        return [s for s in self.sim.sessions if s.username == "sender" and s.welcomed]

    async def warmSessionCarries(self, **settings):
        """A row goes out on one of two warm sessions, and another logs in to take its
        place; no session logs in for the row.  The row's acqs_action record."""
        self.start(linger=0, **settings)
        await eventually(lambda: len(self.senders()) == 2)
        first = self.insert("Hangup", "Channel: SIP/none-0001")
        self.assertEqual(await self.answered(first), "N")
        await eventually(lambda: len(self.senders()) == 2)
        warm = self.senders()
        man_id = self.insert("Hangup", "Channel: SIP/none-0002")
        self.assertEqual(await self.answered(man_id), "N")
        gone = await eventually(lambda: [s for s in warm if s not in self.sim.sessions])
        self.assertEqual(len(gone), 1)  # the one that carried the row logged off
        await eventually(lambda: len(self.senders()) == 2)
        logins = [m for user, m in self.sim.actions if user == "sender" and m["Action"] == "Login"]
        self.assertEqual(len(logins), 4)  # no session logged in for a row
        return self.db.action(man_id)

    async def test_warmSessionsCarryRows(self):
        """By default two send sessions wait logged in, and a row goes out on one of them.
        The wait for rows is apart from the claim, so the claim marks the row for the warm
        session itself, in the same statement, where the table has transactions."""
        self.claimMarked(await self.warmSessionCarries())

    async def test_claimMarksForWarmSessions(self):
        """The same where the database cannot wait: the sender polls."""
        self.claimMarked(await self.warmSessionCarries(store=self.db.openStore(waits=False)))

    def claimMarked(self, record):
        if self.engine == "MyISAM":  # its SENT would outlive a failed claim: a step of its own
            self.assertGreater(record["sending_at"], record["claimed_at"])
        else:
            self.assertEqual(record["sending_at"], record["claimed_at"])  # one statement

    async def test_warmSessionsReplaced(self):
        """A warm session left idle for --warm-idle logs off and another takes its place,
        also while a wait for rows runs: none lives long."""
        self.start(linger=0, warm_idle=0.5)  # it expires during a wait
        await eventually(lambda: len(self.senders()) == 2)
        first = set(self.senders())

        def replaced():
            """both warm sessions were replaced"""
            return len(self.senders()) == 2 and not first & set(self.senders())

        await eventually(replaced, timeout=5)

    async def test_coldSessions(self):
        """With --warm-sessions 0 no send session waits: a row's session logs in for it,
        and the row is marked SENT in a step of its own, once that session is ready."""
        acqs = self.start(linger=0, warm_sessions=0)
        listener = next(s for s in acqs if isinstance(s, Listener))
        await eventually(lambda: listener.protocol)
        man_id = self.insert("Hangup", "Channel: SIP/none-0001")
        self.assertEqual(await self.answered(man_id), "N")
        record = self.db.action(man_id)
        self.assertGreater(record["sending_at"], record["claimed_at"])
        self.assertEqual(self.senders(), [])
        logins = [m for user, m in self.sim.actions if user == "sender" and m["Action"] == "Login"]
        self.assertEqual(len(logins), 1)

    async def test_boundedSessionsFIFO(self):
        """A burst never opens more than max-sessions at once, and rows go out oldest first."""
        self.start(max_sessions=3, linger=0.3)
        ids = [self.insert("Hangup", f"Channel: SIP/none-{n:04d}") for n in range(15)]
        peak = []

        def allAnswered():
            """every row's answer is recorded"""
            peak.append(sum(1 for s in self.sim.sessions if s.username == "sender"))
            return all((self.db.action(i) or {}).get("answered_at") for i in ids)

        await eventually(allAnswered, interval=0.01)
        self.assertLessEqual(max(peak), 3)
        channels = [m["Channel"] for _, m in self.sim.actions if m["Action"] == "Hangup"]
        self.assertEqual(sorted(channels), [f"SIP/none-{n:04d}" for n in range(15)])
        # Rows out on sessions at the same time may reach Asterisk in either order, but
        # none overtakes a row queued max-sessions places before it.
        arrived = {int(c.rsplit("-", 1)[1]): at for at, c in enumerate(channels)}
        overtaken = [(n, m) for n in range(15) for m in range(n + 3, 15)
                     if arrived[m] < arrived[n]]
        self.assertEqual(overtaken, [])

    async def test_connectsPaced(self):
        """A burst never has more than max-connecting sessions connecting or logging in at
        once (Asterisk's AMI listen backlog is 10), and every row still goes out."""
        acqs = self.start(max_connecting=3, max_sessions=20, linger=0)
        listener = next(s for s in acqs if isinstance(s, Listener))
        await eventually(lambda: listener.protocol)
        self.sim.responseDelay = 0.3  # every login takes a while
        ids = [self.insert("Hangup", f"Channel: SIP/none-{n:04d}") for n in range(30)]
        peak = []

        def allAnswered():
            """every row's answer is recorded"""
            peak.append(sum(1 for s in self.sim.sessions if not s.welcomed))
            return all((self.db.action(i) or {}).get("answered_at") for i in ids)

        await eventually(allAnswered, timeout=30, interval=0.005)
        self.assertEqual(max(peak), 3)  # the limit, reached, was what held them back

    async def test_asteriskDown(self):
        """While Asterisk is down rows stay NEW, never claimed, not even by a claim that was
        waiting for rows as it went (issue 16, item 4: it asks again whether it may claim),
        so a standby could send them; once it is back each goes once."""
        acqs = self.start()
        listener = next(s for s in acqs if isinstance(s, Listener))
        await eventually(lambda: self.sim.sessions)
        await self.asterisk.down()
        await eventually(lambda: listener.protocol is None)
        ids = [self.insert("Hangup", f"Channel: SIP/none-{n}") for n in range(3)]
        histories = [History(self.db, man_id) for man_id in ids]
        for _ in range(100):  # 2 s of outage, longer than a wait
            for history in histories:
                history.look()
            await deferLater(reactor, 0.02, lambda: None)
        self.assertEqual([h.seen for h in histories], [["NEW"]] * 3)
        self.assertEqual([self.db.action(i) for i in ids], [None] * 3)  # never claimed
        self.asterisk.up()
        for man_id in ids:
            self.assertEqual(await self.answered(man_id, timeout=40), "N")
        sent = [m["Channel"] for _, m in self.sim.actions if m["Action"] == "Hangup"]
        self.assertEqual(sorted(sent), [f"SIP/none-{n}" for n in range(3)])

    async def test_rowClaimedAsAMIGoesNotLeftSent(self):
        """A row that comes just after AMI went away, while warm sessions were ready, is
        neither marked SENT nor claimed: it stays NEW (a crash then would lose nothing, and a
        standby could send it); it is sent once when AMI is back."""
        acqs = self.start(linger=0)
        sender = next(s for s in acqs if isinstance(s, Sender))
        await eventually(lambda: len(self.senders()) == 2)
        first = self.insert("Hangup", "Channel: SIP/none-0000")
        self.assertEqual(await self.answered(first), "N")
        await eventually(lambda: len(self.senders()) == 2)
        await self.asterisk.down()  # a wait now runs, with the warm sessions ready
        await eventually(lambda: sender.amiDownSince is not None)
        man_id = self.insert("Hangup", "Channel: SIP/none-0001")
        history = History(self.db, man_id)
        for _ in range(75):
            history.look()
            await deferLater(reactor, 0.02, lambda: None)
        self.assertEqual((history.seen, self.db.action(man_id)), (["NEW"], None))
        self.asterisk.up()
        self.assertEqual(await self.answered(man_id, timeout=40), "N")
        sent = [m["Channel"] for _, m in self.sim.actions if m["Action"] == "Hangup"]
        self.assertEqual(sent, ["SIP/none-0000", "SIP/none-0001"])

    async def test_warmLoginsPaced(self):
        """An AMI (here a proxy) that accepts the sender's login and then closes is not sent
        logins in a loop: warm sessions are replaced after pauses of 0.5, 1, 2 s ..."""
        proxy = RecordingProxy(self, "127.0.0.1", self.asterisk.number,
                               closeAfterLogin={"sender"})
        acqs = self.start(endpoint=proxy.endpoint, linger=0)
        listener = next(s for s in acqs if isinstance(s, Listener))
        await eventually(lambda: listener.protocol)

        def logins():
            return [c for c in proxy.connections if c.actions
                    and c.actions[0].get("Username") == "sender"]

        await eventually(logins)
        await deferLater(reactor, 3, lambda: None)
        # 2 at once, then 2 after each pause (0.5, 1 s; the 2 s one ends at 3.5 s): 6.
        self.assertLessEqual(len(logins()), 8)

    async def test_stopMidLoad(self):
        """Stopping mid-load leaves no row in QUEUE; each row was sent once, or not at all."""
        acqs = self.start(max_sessions=4, linger=0.3)
        ids = [self.insert("Hangup", f"Channel: SIP/none-{n:03d}") for n in range(60)]
        await eventually(lambda: sum(self.db.status(i) == "SENT" for i in ids) >= 8)
        await acqs.stopService()
        statuses = {i: self.db.status(i) for i in ids}
        self.assertEqual(set(statuses.values()) - {"NEW", "SENT"}, set())
        sent = [m["Channel"] for _, m in self.sim.actions if m["Action"] == "Hangup"]
        self.assertEqual(len(sent), len(set(sent)), "no action went twice")
        self.assertEqual(len(sent), sum(s == "SENT" for s in statuses.values()))
        for i in ids:
            if statuses[i] == "SENT":
                self.assertIn(self.db.row(i)["response"], ("Y", "N"))
                self.assertIsNotNone(self.db.action(i)["answered_at"])


class FilterRefusedTests(EndToEnd, TestCase):
    async def test_listenerWithoutSystemPermission(self):
        """A listener user that may not add filters (no write permission for system) is
        told no once, says so in the log, and reads the call events (only those: no
        dialplan or security events) itself."""
        users = [u if u.username != "listener" else attr.evolve(u, write="call")
                 for u in USERS]
        asterisk = SimulatorOnTCP(self)
        asterisk.simulator.users = {u.username: u for u in users}
        proxy = RecordingProxy(self, "127.0.0.1", asterisk.number)
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        startAcqs(self, self.db, proxy.endpoint)
        man_id = self.insert("Originate", "Channel: Local/100@e2e", "Context: e2e",
                             "Exten: 300", "Priority: 1", "Callerid: CIDG")
        self.db.execute("UPDATE vicidial_manager SET callerid = 'CIDG' WHERE man_id = %s",
                        (man_id,))
        await self.reached(man_id, "DEAD")
        received = set(eventsTo(proxy, "listener"))
        self.assertTrue({"Newchannel", "Newstate", "Hangup"} <= received, received)
        self.assertTrue(received.isdisjoint({"Newexten", "VarSet", "SuccessfulAuth"}), received)
        said = [formatEvent(e) for e in logged if "does not filter" in formatEvent(e)]
        self.assertEqual(said, ["Asterisk does not filter events for the listener"
                                " (Permission denied); it skips the events it does not read"
                                " itself"])


class ClaimFailureTests(EndToEnd, TestCase):
    """Claims that fail while the rest of the database works show in acqs health."""

    async def test_failingClaimsUnhealthy(self):
        """A database account that may not change vicidial_manager (as an old server
        refusing the claim's SQL): nothing is sent, heartbeats go on, the status file says
        claims fail and why, and acqs health is unhealthy."""
        user, password = f"acqs_{secrets.token_hex(4)}", secrets.token_hex(8)
        admin = mysqlConnection()
        self.addCleanup(admin.close)
        cursor = admin.cursor()
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        self.addCleanup(admin.cursor().execute, "DROP USER %s@'%%'", (user,))
        name = self.db.url.database
        cursor.execute(f"GRANT SELECT ON `{name}`.vicidial_manager TO %s@'%%'", (user,))
        cursor.execute(f"GRANT ALL ON `{name}`.acqs_action TO %s@'%%'", (user,))
        cursor.execute(f"GRANT ALL ON `{name}`.acqs_instance TO %s@'%%'", (user,))
        store = openStore(attr.evolve(self.db.url, user=user), reactor, password=password)
        self.addCleanup(store.close)
        status = self.mktemp()
        simulator = SimulatorOnTCP(self)
        startAcqs(self, self.db, simulator.endpoint, store=store, status_file=status)
        man_id = self.insert("Hangup", "Channel: SIP/x-1")

        def written():
            """the status file says claims fail"""
            try:
                with open(status) as f:
                    return json.load(f).get("claims_ok") is False
            except (OSError, ValueError):
                return False

        await eventually(written, timeout=20)
        self.assertEqual(self.db.status(man_id), "NEW")
        self.assertTrue(self.db.rows("SELECT 1 FROM acqs_instance"))
        verdict, problems = check(status, 30, grace=0)
        self.assertEqual(verdict, "UNHEALTHY")
        [claims] = [p for p in problems if p.startswith("claiming rows fails")]
        self.assertIn("UPDATE command denied", claims)
        self.assertNotIn(password, claims)


class ShuttingDown:
    """Asterisk 13 and later answer every action "Asterisk is shutting down" then."""

    async def test_shuttingDownSentAgain(self):
        """Actions Asterisk answers "Asterisk is shutting down" never ran: their rows go
        back to NEW (attempts counted, the reason kept), claiming pauses as for an AMI
        failure, and once Asterisk answers again each is sent again, and runs, once."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.start(linger=0)
        await eventually(lambda: len(self.senders()) == 2)
        self.sim.shuttingDown = True
        man_id = self.insert("Hangup", "Channel: SIP/none-0001")
        await eventually(lambda: (self.db.action(man_id) or {}).get("attempts"))
        record = self.db.action(man_id)
        self.assertIsNone(record["answered_at"])
        # A claim under way when it came back may have claimed it again meanwhile.
        self.assertIn(record["reason"], (
            "not sent: Asterisk did not run it: Asterisk is shutting down",
            "not sent: AMI unreachable when it was claimed"))
        self.assertIn("claiming paused until it answers", " ".join(formatEvent(e) for e in logged))
        self.sim.shuttingDown = False
        self.assertEqual(await self.answered(man_id, timeout=30), "N")
        self.assertEqual(self.db.action(man_id)["response_text"], "No such channel")
        sent = [m["Channel"] for _, m in self.sim.actions if m["Action"] == "Hangup"]
        self.assertEqual(sent, ["SIP/none-0001"] * 2)  # refused unrun, then run


class Asterisk22LifeCycleTests(ShuttingDown, SimulatorLifeCycle, TestCase):
    """End to end on the simulator speaking Asterisk 22."""


class Asterisk22MyISAMLifeCycleTests(ShuttingDown, SimulatorLifeCycle, TestCase):
    """End to end on the simulator speaking Asterisk 22, vicidial_manager as VICIdial ships
    it: MyISAM."""

    engine = "MyISAM"


class Asterisk14LifeCycleTests(SimulatorLifeCycle, TestCase):
    """End to end on the simulator speaking Asterisk 1.4."""

    dialect = "asterisk14"
    local1 = ",1"
    filters = False


class RealAsteriskTests(EndToEnd, TestCase):
    """End to end on the real Asterisk 22 of CI."""

    skip = asterisk.SKIP

    def setUp(self):
        super().setUp()
        self.acqs = startAcqs(self, self.db, asterisk.endpoint())

    async def callToDead(self):
        """The ACQS.txt INSERT of a call of the test dialplan, followed through UPDATED to
        DEAD; its man_id."""
        cid = callerid()
        man_id = self.insert("Originate", "Channel: Local/8600012@acqs-test",
                             "Context: acqs-test", "Exten: 8600100", "Priority: 1",
                             f"Callerid: {cid}", callerid=cid)
        seen = await self.reached(man_id, "DEAD", timeout=20)
        self.assertLifeCycle(man_id, seen, "UPDATED", "DEAD")
        return man_id

    async def test_acqsInsertShape(self):
        """The ACQS.txt INSERT (in the test dialplan): SENT, UPDATED with the originated
        Local ;1 leg and its uniqueid, then DEAD."""
        spyProtocol, events = await spy(asterisk.endpoint())
        self.addCleanup(spyProtocol.logoff)
        man_id = await self.callToDead()
        row = self.db.row(man_id)
        self.assertTrue(row["channel"].startswith("Local/8600012@acqs-test-"), row["channel"])
        self.assertTrue(row["channel"].endswith(";1"))
        [ringing] = [e for e in events if e["Channel"] == row["channel"]
                     and e["ChannelStateDesc"] == "Ringing"]
        self.assertEqual((row["uniqueid"], ringing["Linkedid"]), (ringing["Uniqueid"],) * 2)
        self.assertEqual(row["response"], "Y")

    async def test_listenerGetsFewEvents(self):
        """The real Asterisk filters the listener's events down to those it reads, and the
        call's row still goes UPDATED, then DEAD."""
        host, port = asterisk.ENDPOINT.split("host=")[1].split(":port=")
        proxy = RecordingProxy(self, host, int(port))
        await self.acqs.stopService()
        startAcqs(self, self.db, proxy.endpoint)
        await self.callToDead()
        received = eventsTo(proxy, "listener")
        self.assertTrue({"Newstate", "Hangup"} <= set(received) <= NEEDED, received)

    async def test_redirectAndHangup(self):
        """Redirect and Hangup rows act on a live call on the real Asterisk."""
        cid = callerid()
        call = self.insert("Originate", "Channel: Local/8600014@acqs-test",
                           "Context: acqs-test", "Exten: 8600014", "Priority: 1",
                           f"Callerid: {cid}", "Async: true", callerid=cid)
        await self.reached(call, "UPDATED", timeout=20)
        channel = self.db.row(call)["channel"]
        redirect = self.insert("Redirect", f"Channel: {channel}", "Context: acqs-test",
                               "Exten: 8600014", "Priority: 1")
        self.assertEqual(await self.answered(redirect), "Y")
        self.assertEqual(self.db.status(call), "UPDATED")
        hangup = self.insert("Hangup", f"Channel: {channel}")
        await self.reached(call, "DEAD", timeout=10)
        self.assertEqual(await self.answered(hangup), "Y")


class LongUniqueids(EndToEnd):
    """
    With Asterisk's systemname set, uniqueids are longer than vicidial_manager's 20
    characters, and calls of one second share their first 20: acqs keeps and matches
    the whole ones, so that live calls stay UPDATED over a restart, one hangup ends only
    its own row, and the GUI's Hangup of the other call is sent.
    """

    exten = "8600014"  # answer, and stay up until hung up
    context = "acqs-test"

    def start(self):
        return startAcqs(self, self.db, self.endpoint)

    async def liveCall(self):
        cid = callerid()
        man_id = self.insert("Originate", f"Channel: Local/{self.exten}@{self.context}",
                             f"Context: {self.context}", f"Exten: {self.exten}", "Priority: 1",
                             f"Callerid: {cid}", callerid=cid)
        await self.reached(man_id, "UPDATED", timeout=20)
        return man_id, cid

    async def test_wholeUniqueidsKept(self):
        """Two live calls: UPDATED with their cut uniqueids, acqs holding the whole ones; a
        restart leaves both UPDATED; a hangup ends only its row; the other's Hangup row is
        sent, not dead-checked."""
        acqs = self.start()
        (first, firstCID), (second, secondCID) = [await self.liveCall() for _ in range(2)]
        wholes = [self.db.action(m)["uniqueid"] for m in (first, second)]
        self.assertTrue(all(w.startswith(self.systemname + "-") for w in wholes), wholes)
        self.assertEqual([self.db.row(m)["uniqueid"] for m in (first, second)],
                         [w[:20] for w in wholes])
        self.assertEqual(self.db.row(first)["uniqueid"], self.db.row(second)["uniqueid"])
        await acqs.stopService()
        self.start()  # catches up from the live channels and the tracked calls
        await deferLater(reactor, 1.5, lambda: None)
        self.assertEqual([self.db.status(m) for m in (first, second)], ["UPDATED"] * 2)
        hangup = self.insert("Hangup", f"Channel: {self.db.row(first)['channel']}",
                             callerid=firstCID)
        await self.reached(first, "DEAD", timeout=20)
        await deferLater(reactor, 0.5, lambda: None)
        self.assertEqual(self.db.status(second), "UPDATED")
        self.assertEqual(self.db.action(hangup)["outcome"], "sent")
        again = self.insert("Hangup", f"Channel: {self.db.row(second)['channel']}",
                            callerid=secondCID)
        await self.reached(second, "DEAD", timeout=20)
        self.assertEqual(self.db.action(again)["outcome"], "sent")


class SimulatorLongUniqueidTests(LongUniqueids, TestCase):
    """On the simulator, systemname vicibox-ast01."""

    systemname = "vicibox-ast01"
    exten, context = "200", "e2e"

    def setUp(self):
        super().setUp()
        self.asterisk = SimulatorOnTCP(self)
        self.asterisk.simulator.systemName = self.systemname
        self.endpoint = self.asterisk.endpoint


class SimulatorMyISAMLongUniqueidTests(SimulatorLongUniqueidTests):
    """On the simulator, systemname vicibox-ast01, vicidial_manager MyISAM."""

    engine = "MyISAM"


class RealAsteriskLongUniqueidTests(LongUniqueids, TestCase):
    """On a private real Asterisk 22 with systemname in asterisk.conf."""

    skip = asterisk.SKIP_PRIVATE
    systemname = "vicibox-ast01"

    def setUp(self):
        super().setUp()
        self.asterisk = asterisk.PrivateAsterisk(self, systemname=self.systemname)
        self.endpoint = self.asterisk.endpoint


class Asterisk16CallTests(SimulatorCalls, TestCase):
    """Calls end to end on the simulator speaking Asterisk 1.6."""

    dialect = "asterisk16"
    filters = False


class Asterisk18CallTests(SimulatorCalls, TestCase):
    """Calls end to end on the simulator speaking Asterisk 1.8."""

    dialect = "asterisk18"
    filters = False


class Asterisk11CallTests(SimulatorCalls, TestCase):
    """Calls end to end on the simulator speaking Asterisk 11."""

    dialect = "asterisk11"


class Asterisk13CallTests(SimulatorCalls, TestCase):
    """Calls end to end on the simulator speaking Asterisk 13 (13.38)."""

    dialect = "asterisk13"


class RingingCalls:
    """
    Agents' rows while synchronous Originates ring: Asterisk answers each only when
    its call answers or fails, so its session stays open; a Hangup must not wait.
    Subclasses give C{endpoint()}.
    """

    RINGING = 8  # more than max_sessions, so that the old shared cap would hold the Hangup
    RING = 6000  # ms: the Originates' Timeout; Local/8600013@acqs-test never answers

    async def test_hangupWhileOriginatesRing(self):
        """With more synchronous Originates ringing than --max-sessions, a Hangup inserted
        meanwhile is answered while they all still ring; each Originate, unanswered at its
        Timeout, is then recorded with Asterisk's refusal (response N)."""
        startAcqs(self, self.db, self.endpoint(), max_sessions=2, warm_sessions=0,
                  action_timeout=5.0)
        calls = [self.insert("Originate", "Channel: Local/8600013@acqs-test",
                             "Context: acqs-test", "Exten: 8600100", "Priority: 1",
                             f"Timeout: {self.RING}") for _ in range(self.RINGING)]

        def allSent():
            """every Originate is SENT (on the wire, its call ringing)"""
            return all((self.db.action(m) or {}).get("sending_at") for m in calls)

        await eventually(allSent, timeout=10)
        hangup = self.insert("Hangup", "Channel: SIP/none-0001")
        self.assertEqual(await self.answered(hangup, timeout=3), "N")
        self.assertEqual([self.db.action(m)["answered_at"] for m in calls],
                         [None] * self.RINGING)
        for man_id in calls:
            self.assertEqual(await self.answered(man_id, timeout=self.RING / 1000 + 10), "N")


class SimulatorRingingTests(RingingCalls, EndToEnd, TestCase):
    """Agents' rows while calls ring, on the simulator (Asterisk 22)."""

    def setUp(self):
        super().setUp()
        self.simulator = SimulatorOnTCP(self, "asterisk22")

    def endpoint(self):
        return self.simulator.endpoint


class RealAsteriskRingingTests(RingingCalls, EndToEnd, TestCase):
    """Agents' rows while calls ring, on the real Asterisk 22."""

    skip = asterisk.SKIP

    def endpoint(self):
        return asterisk.endpoint()

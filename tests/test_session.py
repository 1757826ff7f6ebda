"""Tests for acqs.session: one action over its own short-lived AMI session."""

import attr
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from acqs.actions import Action, rowAction
from acqs.ami.protocol import AMIFactory
from acqs.metrics import Observer
from acqs.session import ActionSession, ClaimLost, MarkFailed, NotRun, NotSent
from acqs.simulator import Simulator
from acqs.simulator.memory import MemoryNetwork
from acqs.store.records import ActionRow, SendResult

CID = "DL40130172253cc160"
ORIGINATE = Action(7, "Originate", (
    ("Channel", "Local/8600011@acqs-test"), ("Context", "acqs-test"), ("Exten", "8600100"),
    ("Priority", "1"), ("Callerid", CID), ("Async", "true")), claim="c1")


class SessionTestCase(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.sim = Simulator(self.clock)
        self.network = MemoryNetwork(self.sim)
        self.marks = []

    def mark(self):
        self.marks.append(self.clock.seconds())
        return succeed(True)

    def session(self, action=ORIGINATE, linger=10.0, secret="sendersecret", mark=None,
                timeout=5.0):
        """A session given its action at once."""
        session = self.loggingIn(linger, secret, timeout)
        if action is not None:
            session.send(action, mark or self.mark)
        self.network.flush()
        return session

    def loggingIn(self, linger=10.0, secret="sendersecret", timeout=5.0):
        factory = AMIFactory("sender", secret, self.clock, events="off", timeout=timeout)
        return ActionSession(self.clock, self.network.endpoint(), factory, linger, timeout)

    def advance(self, seconds):
        self.network.advance(self.clock, seconds)

    def unresponsiveOnceMarked(self):
        """A mark after which Asterisk answers nothing more."""
        self.sim.unresponsive = True
        return self.mark()

    def sent(self, name):
        """The actions called C{name} the simulator received, with their users."""
        return [(user, m) for user, m in self.sim.actions if m["Action"] == name]


class SendTests(SessionTestCase):
    def test_wholeSession(self):
        """Log in with events off, send once Asterisk is reached, answer, linger, log off."""
        session = self.session(linger=10)
        result = self.successResultOf(session.answered)
        self.assertEqual(result, SendResult(7, "c1", True, "Originate successfully queued",
                                            actionID=result.actionID))
        self.assertTrue(result.actionID.startswith("acqs-"))
        [(_, login)] = self.sent("Login")
        self.assertEqual(login["Events"], "off")
        [(user, originate)] = self.sent("Originate")
        self.assertEqual((user, originate["Callerid"]), ("sender", CID))
        self.assertEqual(self.marks, [0])
        self.advance(9.9)
        self.assertEqual(self.sent("Logoff"), [])
        self.assertTrue(session.lingering)
        self.advance(0.2)
        self.assertEqual(len(self.sent("Logoff")), 1)
        self.successResultOf(session.closed)
        self.assertEqual(self.sim.sessions, [])

    def test_noLinger(self):
        """With linger 0 the session logs off as soon as Asterisk answered."""
        session = self.session(linger=0)
        self.successResultOf(session.answered)
        self.assertEqual(len(self.sent("Logoff")), 1)
        self.successResultOf(session.closed)

    def test_nothingSentBeforeTheMark(self):
        """The action is written only once the mark is committed."""
        marked = Deferred()
        session = self.session(mark=lambda: marked)
        self.assertEqual(self.sent("Originate"), [])
        self.assertNoResult(session.answered)
        marked.callback(True)
        self.network.flush()
        self.assertEqual(len(self.sent("Originate")), 1)
        self.successResultOf(session.answered)

    def test_logsInBeforeItsAction(self):
        """A session logs in at once and waits, logged in, for its one action."""
        session = self.loggingIn()
        self.network.flush()
        self.assertTrue(self.successResultOf(session.loggedIn))
        self.assertTrue(session.idle)
        self.advance(60)
        self.assertEqual(self.sent("Originate"), [])
        session.send(ORIGINATE, self.mark)
        self.network.flush()
        self.assertEqual(len(self.sent("Originate")), 1)
        self.assertFalse(session.idle)
        with self.assertRaises(RuntimeError):
            session.send(ORIGINATE, self.mark)

    def test_idleSessionStopped(self):
        """Stopping a session that waits for an action logs it off; nothing is sent."""
        session = self.loggingIn()
        self.network.flush()
        session.stop()
        self.network.flush()
        self.successResultOf(session.closed)
        self.assertEqual((len(self.sent("Logoff")), self.sent("Originate")), (1, []))

    def test_idleSessionDropped(self):
        """A waiting session whose connection drops ends; given an action too late, it
        fails it as not sent."""
        session = self.loggingIn()
        self.network.flush()
        self.sim.dropAll()
        self.network.flush()
        self.successResultOf(session.closed)
        self.assertFalse(session.idle)

    def test_rowActionID(self):
        """The row's own ActionID goes out instead of acqs'."""
        action = Action(8, "Ping", (), actionID="SR011122330001234567")
        session = self.session(action, linger=0)
        result = self.successResultOf(session.answered)
        [(_, ping)] = self.sent("Ping")
        self.assertEqual((ping["ActionID"], result.actionID),
                         ("SR011122330001234567", "SR011122330001234567"))

    def test_syncOriginateAnswersTheCall(self):
        """A synchronous Originate's Success says its call was answered; an async one's not."""
        sync = rowAction(ActionRow(10, "10.10.11.12", "Originate", CID, (
            "Channel: Local/8600011@acqs-test", "Context: acqs-test", "Exten: 8600100",
            "Priority: 1", f"Callerid: {CID}", "", "", "", "", "")))
        session = self.session(sync, linger=0)
        self.advance(3)
        self.assertTrue(self.successResultOf(session.answered).callAnswered)
        session = self.session(ORIGINATE, linger=0)
        self.assertFalse(self.successResultOf(session.answered).callAnswered)

    def test_asteriskError(self):
        """An action Asterisk refuses is answered N with Asterisk's reason."""
        session = self.session(Action(8, "NoSuchAction", ()), linger=0)
        result = self.successResultOf(session.answered)
        self.assertEqual(result.answered, False)
        self.assertIn("Invalid/unknown command", result.text)

    def test_loginUnanswered(self):
        """A login Asterisk never answers means not sent, within the timeout."""
        self.sim.unresponsive = True
        session = self.session(linger=0)
        self.assertNoResult(session.answered)
        self.assertEqual(self.marks, [])  # the login itself went unanswered
        self.advance(5)
        self.failureResultOf(session.answered, NotSent)
        self.assertFalse(self.successResultOf(session.loggedIn))
        self.assertIn("Login got no response within 5 s", str(session.loginError))

    def test_answerTimeout(self):
        """A sent action with no answer within its timeout is recorded N, never resent."""
        session = self.session(Action(9, "Hangup", (("Channel", "SIP/x-1"),)), linger=0,
                               mark=self.unresponsiveOnceMarked)
        self.assertNoResult(session.answered)
        self.advance(5)
        result = self.successResultOf(session.answered)
        self.assertEqual((result.answered, result.text[:10]), (False, "no answer:"))

    def test_noAnswerIsNotAnError(self):
        """Asterisk's Error and no answer at all are told apart to the metrics: an Error
        counts as an answer (N), a timeout as none, never timed as an answer."""
        said = []

        class Recording(Observer):
            def answered(self, action, success, seconds):
                said.append(("answered", action, success))

            def unanswered(self, action):
                said.append(("unanswered", action))

        factory = AMIFactory("sender", "sendersecret", self.clock, events="off", timeout=5)
        for action, mark in ((Action(8, "NoSuchAction", ()), self.mark),
                             (Action(9, "Hangup", (("Channel", "SIP/x-1"),)),
                              self.unresponsiveOnceMarked)):
            session = ActionSession(self.clock, self.network.endpoint(), factory, 0, 5,
                                    metrics=Recording())
            session.send(action, mark)
            self.advance(6)
            self.assertFalse(self.successResultOf(session.answered).answered)
        self.assertEqual(said, [("answered", "NoSuchAction", False), ("unanswered", "Hangup")])

    def test_claimToWritten(self):
        """The time from the row's claim to its action written is told to the metrics."""
        written = []

        class Recording(Observer):
            def written(self, seconds):
                written.append(seconds)

        factory = AMIFactory("sender", "sendersecret", self.clock, events="off", timeout=5)
        session = ActionSession(self.clock, self.network.endpoint(), factory, 0, 5,
                                metrics=Recording())
        self.network.flush()
        self.clock.advance(100)  # logged in, waiting for a row
        marked = Deferred()
        session.send(attr.evolve(ORIGINATE, claimedAt=99.5), lambda: marked)
        self.network.flush()
        self.clock.advance(0.25)  # the mark's commit
        marked.callback(True)
        self.network.flush()
        self.successResultOf(session.answered)
        self.assertEqual(written, [0.75])

    def test_syncOriginateWaitsForTheCall(self):
        """A synchronous Originate ringing longer than the timeout still gets its answer."""
        action = rowAction(ActionRow(10, "10.10.11.12", "Originate", CID, (
            "Channel: Local/8600012@acqs-test", "Context: acqs-test", "Exten: 8600100",
            "Priority: 1", f"Callerid: {CID}", "Timeout: 20000", "", "", "", "")))
        session = self.session(action, timeout=2)
        self.advance(2.5)
        self.assertNoResult(session.answered)
        self.advance(1)
        self.assertEqual(self.successResultOf(session.answered).answered, True)


    def test_ringingSessionHeldUntilItsAnswer(self):
        """VICIdial's synchronous Originate (Timeout 60000) to a phone nobody answers: its
        session stays open the whole minute, past --action-timeout, its Logoff (written
        right behind) answered only after the Originate's failure, which is recorded N;
        then the session closes."""
        action = rowAction(ActionRow(10, "10.10.11.12", "Originate", CID, (
            "Channel: Local/8600013@acqs-test", "Context: acqs-test", "Exten: 8600100",
            "Priority: 1", f"Callerid: {CID}", "Timeout: 60000", "", "", "", "")))
        session = self.session(action, timeout=10, linger=0)
        self.advance(59)
        self.assertEqual(len(self.sent("Originate")), 1)
        self.assertEqual(self.sent("Logoff"), [])  # held behind the ringing Originate
        self.assertNoResult(session.answered)
        self.assertNoResult(session.closed)
        self.advance(2)
        result = self.successResultOf(session.answered)
        self.assertEqual((result.answered, result.callAnswered), (False, False))
        self.assertEqual(len(self.sent("Logoff")), 1)
        self.successResultOf(session.closed)


class FailureTests(SessionTestCase):
    def test_loginRefused(self):
        """A refused login means not sent (the row may go again); nothing is marked."""
        session = self.session(secret="wrong")
        self.advance(1)
        failure = self.failureResultOf(session.answered, NotSent)
        self.assertIn("Authentication failed", str(failure.value))
        self.assertNotIn("wrong", str(failure.value))
        self.assertEqual(self.marks, [])
        self.successResultOf(session.closed)

    def test_asteriskDown(self):
        """An unreachable Asterisk means not sent."""
        self.network.refusing = True
        session = self.session()
        self.failureResultOf(session.answered, NotSent)
        self.assertEqual(self.marks, [])

    def test_markFails(self):
        """A mark that cannot be committed means not sent: the action stays off the wire."""
        session = self.session(mark=lambda: fail(ConnectionError("database away")))
        failure = self.failureResultOf(session.answered, MarkFailed)
        self.assertIn("database away", str(failure.value))
        self.assertEqual(self.sent("Originate"), [])
        self.assertEqual(len(self.sent("Logoff")), 1)

    def test_claimLost(self):
        """A mark that finds the claim lost sends nothing: another claimant has the row."""
        session = self.session(mark=lambda: succeed(False))
        self.failureResultOf(session.answered, ClaimLost)
        self.assertEqual(self.sent("Originate"), [])

    def test_shuttingDownNotRun(self):
        """An action Asterisk answers "Asterisk is shutting down" never ran: not sent
        (it may go again), no answer recorded, and the session logs off, lingering not."""
        session = self.loggingIn(linger=10)
        self.network.flush()
        self.sim.shuttingDown = True
        session.send(ORIGINATE, self.mark)
        self.network.flush()
        failure = self.failureResultOf(session.answered, NotRun)
        self.assertEqual(str(failure.value), "Asterisk did not run it: Asterisk is shutting down")
        self.assertEqual((self.marks, len(self.sent("Originate"))), ([0], 1))
        self.assertEqual(len(self.sent("Logoff")), 1)
        self.successResultOf(session.closed)

    def test_greetingTimeout(self):
        """A connection Asterisk accepts but never greets fails within the greeting timeout,
        naming the step."""
        self.network.silent = True
        factory = AMIFactory("sender", "sendersecret", self.clock, timeout=10,
                             greetingTimeout=2)
        session = ActionSession(self.clock, self.network.endpoint(), factory, 0, 10)
        self.network.flush()
        self.advance(2)
        self.assertFalse(self.successResultOf(session.loggedIn))
        self.assertEqual(str(session.loginError), "AMI greeting: nothing within 2 s")

    def test_connectionGoneWhileMarking(self):
        """If AMI drops while the mark commits, the action was not written: not sent."""
        marked = Deferred()
        session = self.session(mark=lambda: marked)
        self.sim.dropAll()
        self.network.flush()
        marked.callback(True)
        failure = self.failureResultOf(session.answered, NotSent)
        self.assertIn("before the action was written", str(failure.value))


class StopTests(SessionTestCase):
    def test_stopWhileConnecting(self):
        """Stopping before the mark gives up: not sent, nothing marked."""
        self.sim.responseDelay = 1
        session = self.session()
        session.stop()
        self.failureResultOf(session.answered, NotSent)
        self.assertEqual(self.marks, [])
        self.advance(2)
        self.successResultOf(session.closed)

    def test_stopWhileMarking(self):
        """Stopping while the mark commits still sends: a committed mark means sent."""
        marked = Deferred()
        session = self.session(mark=lambda: marked)
        session.stop()
        marked.callback(True)
        self.network.flush()
        self.assertEqual(self.successResultOf(session.answered).answered, True)
        self.assertEqual(len(self.sent("Logoff")), 1)

    def test_stopWhileLingering(self):
        """Stopping a lingering session logs off at once."""
        session = self.session(linger=10)
        self.successResultOf(session.answered)
        session.stop()
        self.network.flush()
        self.assertEqual(len(self.sent("Logoff")), 1)
        self.successResultOf(session.closed)

    def test_endLinger(self):
        """endLinger cuts a linger short (the sender frees a slot this way)."""
        session = self.session(linger=10)
        session.endLinger()
        self.network.flush()
        self.successResultOf(session.closed)
        self.assertFalse(session.lingering)

    def test_abandonWhileWaiting(self):
        """Abandoning a session waiting for its answer records it unanswered, and closes."""
        session = self.session(mark=self.unresponsiveOnceMarked)
        self.assertEqual(len(self.sent("Originate")), 1)
        session.abandon()
        self.network.flush()
        result = self.successResultOf(session.answered)
        self.assertEqual((result.answered, result.text),
                         (False, "acqs stopped before Asterisk answered"))
        self.successResultOf(session.closed)


class VolumeControlTests(SessionTestCase):
    def volumeControl(self, conference, channel):
        return rowAction(ActionRow(11, "10.10.11.12", "Originate", "VX", (
            "Channel: Local/XXYYXXYYXXYYXX4@default", "Context: default", "Exten: 8300",
            "Priority: 1", "Callerid: VX", "", "", "", channel, conference)))

    def test_userLookedUp(self):
        """The MeetMe user number of the agent's channel replaces the placeholder."""
        agent = self.session(Action(10, "Originate", (
            ("Channel", "Local/5550001@default"), ("Context", "default"), ("Exten", "8600051"),
            ("Priority", "1"), ("Callerid", "VX"), ("Async", "true")), claim="c2"), linger=0)
        self.advance(3)
        self.successResultOf(agent.answered)
        [leg1] = [n for n in self.sim.channels if n.endswith(";1")]
        self.session(self.volumeControl("8600051", leg1), linger=0)
        channels = [m["Channel"] for _, m in self.sent("Originate")]
        self.assertEqual(channels[-1], "Local/014@default")

    def test_lookupRefusedSendsUnchanged(self):
        """When 'meetme list' is refused (no app_meetme), the action goes unchanged, as
        VICIdial sends it, instead of going back to NEW again and again."""
        self.sim.meetmeLoaded = False
        session = self.session(self.volumeControl("8600051", "SIP/100-0001"), linger=0)
        self.successResultOf(session.answered)
        channels = [m["Channel"] for _, m in self.sent("Originate")]
        self.assertEqual(channels, ["Local/XXYYXXYYXXYYXX4@default"])

"""The listener's link while AMI is down or refuses its login, on a Clock and the simulator."""

from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from acqs.ami.outage import LOGIN_REFUSED, UNREACHABLE
from acqs.ami.protocol import AMIFactory
from acqs.correlate import CallTracker
from acqs.listener import Listener, reconnectPolicy
from acqs.simulator import Simulator
from acqs.simulator.memory import MemoryNetwork
from acqs.store.records import TrackedCalls


class NoCalls:
    """A store that tracks no calls (the link is what these tests look at)."""

    def trackedCalls(self, server_ip, ringWindow):
        return succeed(TrackedCalls((), ()))


class OutageTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.sim = Simulator(self.clock)
        self.network = MemoryNetwork(self.sim)
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.attempts = 0
        endpoint = self.network.endpoint()

        class Counting:
            def connect(inner, factory):
                self.attempts += 1
                return endpoint.connect(factory)

        self.listener = Listener(
            self.clock, Counting(), AMIFactory("listener", "listenersecret", self.clock,
                                               events="call", timeout=5),
            NoCalls(), "10.10.11.12", CallTracker(), retryPolicy=reconnectPolicy(jitter=lambda: 0),
            name="tcp:host=127.0.0.1:port=5038")

    def start(self):
        self.listener.startService()
        self.addCleanup(self.stop)

    def stop(self):
        self.network.refusing = False
        self.sim.refuseLogins = False
        d = self.listener.stopService()
        self.network.advance(self.clock, 15)
        self.successResultOf(d)

    def test_stopBeforeStart(self):
        """A listener stopped before it started (a MultiService stops every child, also
        when an earlier one's start failed) stops at once and connects nowhere."""
        self.successResultOf(self.listener.stopService())
        self.assertEqual(self.attempts, 0)

    def said(self, level=None):
        return [formatEvent(e) for e in self.logged
                if level is None or e["log_level"] == level]

    def logins(self):
        return [m for _, m in self.sim.actions if m["Action"] == "Login"]

    def test_downQuietly(self):
        """While AMI refuses connections the listener tries every second, says so once,
        then once a minute, and no line comes for each retry; the cause is kept."""
        self.network.refusing = True
        self.start()
        self.network.advance(self.clock, 600, step=0.25)
        self.assertGreater(self.attempts, 550)  # quick to come back once Asterisk does
        self.assertEqual(self.listener.cause, UNREACHABLE)
        self.assertIn("the simulator is down", self.listener.error)
        [error] = self.said(LogLevel.error)
        self.assertEqual(error, "AMI listener cannot connect to tcp:host=127.0.0.1:port=5038"
                                " (Connection was refused by other side: the simulator is"
                                " down.); trying again every second")
        reminders = self.said(LogLevel.warn)
        self.assertEqual(len(reminders), 9, reminders)
        self.assertRegex(reminders[0], r"^AMI listener still cannot connect to"
                                       r" tcp:host=127.0.0.1:port=5038 after 6[01] s \(Connection")
        self.assertEqual([line for line in self.said() if "retry" in line.lower()], [])
        self.network.refusing = False
        self.network.advance(self.clock, 2)
        self.assertIsNotNone(self.listener.protocol)
        self.assertIsNone(self.listener.cause)
        [back] = [line for line in self.said() if line.startswith("Listening to AMI")]
        self.assertRegex(back, r"^Listening to AMI .* as listener, after 60\d s$")

    def test_refusedLoginsBackOff(self):
        """A refused login is retried after 1, 2, 4 ... s, then once a minute (Asterisk
        logs each one, and fail2ban may ban the box); said once, then once a minute."""
        self.sim.refuseLogins = True
        self.start()
        self.network.advance(self.clock, 600, step=0.25)
        logins = self.logins()
        self.assertLessEqual(len(logins), 16)
        self.assertGreaterEqual(len(logins), 12)
        self.assertEqual(self.listener.cause, LOGIN_REFUSED)
        [error] = self.said(LogLevel.error)
        self.assertEqual(error, "AMI listener cannot log in to tcp:host=127.0.0.1:port=5038 as"
                                " listener (AMI login as 'listener' refused: Authentication"
                                " failed); trying again in 1 s, then less often, up to once a"
                                " minute")
        self.assertEqual(len(self.said(LogLevel.warn)), 9)
        self.sim.refuseLogins = False
        self.network.advance(self.clock, 62)
        self.assertIsNotNone(self.listener.protocol)
        self.assertIsNone(self.listener.cause)
        before = len(self.logins())
        self.sim.dropAll()  # a link lost after a good login retries at once again
        self.network.advance(self.clock, 0.5)
        self.assertIsNotNone(self.listener.protocol)
        self.assertEqual(len(self.logins()), before + 1)

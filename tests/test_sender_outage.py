"""The sender while AMI refuses its login: the cause kept, probes backing off, few lines."""

from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from acqs.ami.outage import LOGIN_REFUSED
from acqs.ami.protocol import AMIFactory
from acqs.sender import Sender
from acqs.session import ActionSession
from acqs.simulator import Simulator
from acqs.simulator.memory import MemoryNetwork
from acqs.wakeup import POLL, Wakeup


class NoRows:
    """A store with no NEW rows (the sender's sessions are what these tests look at)."""

    serverInfo = None

    def claim(self, server_ip, limit, instance, send=0, refuse=None, originates=None):
        return succeed([])

    def lookForNew(self, server_ip, originates=True, others=True):
        return succeed(False)

    def markSending(self, claims):
        raise AssertionError("nothing is claimed, so nothing is marked")

    recordSent = release = markSending


class RefusedLoginTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.sim = Simulator(self.clock)
        self.network = MemoryNetwork(self.sim)
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        factory = AMIFactory("sender", "wrong", self.clock, timeout=5)
        store = NoRows()
        self.sender = Sender(
            self.clock, store, lambda: ActionSession(self.clock, self.network.endpoint(),
                                                      factory, 0, 5),
            "10.10.11.12", "box1", warm=1,
            wakeup=Wakeup(self.clock, store, "10.10.11.12", POLL))

    def test_probesBackOff(self):
        """Refused logins: the sender stops claiming, keeps the cause, probes after 1, 2,
        4 ... s, then once a minute, and says so in two lines, not one per probe."""
        self.sender.startService()
        self.network.advance(self.clock, 600, step=0.25)
        logins = [m for _, m in self.sim.actions if m["Action"] == "Login"]
        self.assertLessEqual(len(logins), 16)
        self.assertGreaterEqual(len(logins), 12)
        self.assertEqual(self.sender.amiCause, LOGIN_REFUSED)
        self.assertIn("Authentication failed", self.sender.amiError)
        self.assertIsNone(self.sender.amiReachedAt)
        said = [(e["log_level"], formatEvent(e)) for e in self.logged]
        self.assertEqual([level for level, _ in said],
                         [LogLevel.error, LogLevel.warn] + [LogLevel.warn] * 9, said)
        self.assertIn("AMI unreachable (AMI login as 'sender' refused: Authentication failed)",
                      said[0][1])
        self.assertIn("AMI refused the send user's login", said[1][1])
        self.assertTrue(all("still unreachable" in text for _, text in said[2:]), said)
        self.sender.stopService()
        self.network.advance(self.clock, 10)

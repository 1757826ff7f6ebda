"""The listener's link to Asterisk, on the real reactor and a scratch SQLite store."""

from twisted.application.internet import backoffPolicy
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from acqs.ami.outage import LOGIN_REFUSED
from acqs.ami.protocol import AMIFactory
from acqs.correlate import CallTracker
from acqs.listener import Listener, reconnectPolicy
from acqs.simulator.server import AMISession

from . import asterisk
from ..databases import scratchMySQL, scratchSQLite
from .daemon import SERVER, SimulatorOnTCP, eventually, startAcqs


class KeepaliveTests(TestCase):
    def setUp(self):
        self.asterisk = SimulatorOnTCP(self)
        self.listener = Listener(
            reactor, self.asterisk.endpoint,
            AMIFactory("listener", "listenersecret", reactor, events="on", timeout=1),
            scratchSQLite(self).openStore(), SERVER, CallTracker(),
            pingInterval=0.2, pingTimeout=0.2,
            retryPolicy=backoffPolicy(initialDelay=0.1, maxDelay=0.5, jitter=lambda: 0),
            refusedPolicy=lambda refusals: 0.1)
        self.listener.startService()
        self.addCleanup(self.listener.stopService)

    async def test_unansweredPingReconnects(self):
        """When Asterisk stops answering, a Ping goes unanswered and the listener drops
        the link; once Asterisk answers again it is listening on a new one."""
        first = await eventually(lambda: self.listener.protocol)
        self.asterisk.simulator.unresponsive = True
        await eventually(lambda: first.lost)
        self.assertIsNotNone(self.listener.downSince)
        self.asterisk.simulator.unresponsive = False
        second = await eventually(lambda: self.listener.protocol)
        self.assertIsNot(second, first)
        self.assertIsNone(self.listener.downSince)
        logins = [m for user, m in self.asterisk.simulator.actions if m["Action"] == "Login"]
        self.assertGreaterEqual(len(logins), 2)

    async def test_refusedLoginRetried(self):
        """While Asterisk refuses the login the listener says so once and keeps trying,
        with no traceback; once the login is accepted it listens."""
        await eventually(lambda: self.listener.protocol)
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        sim = self.asterisk.simulator
        sim.refuseLogins, sim.loginFailureDelay = True, 0.05
        sim.dropAll()
        await eventually(lambda: sum(m["Action"] == "Login" for _, m in sim.actions) >= 4)
        sim.refuseLogins = False
        await eventually(lambda: self.listener.protocol)
        errors = [formatEvent(e) for e in observer if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("AMI listener cannot log in", errors[0])
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_unansweredFilterLogged(self):
        """An Asterisk that never answers the listener's Filter is logged once, as a
        warning, and the listener stays on its link, skipping the events it does not read."""
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.patch(AMISession, "_action_filter", lambda session, message: None)
        protocol = await eventually(lambda: self.listener.protocol)
        said = await eventually(lambda: [formatEvent(e) for e in observer
                                         if "did not answer the listener's Filter"
                                         in formatEvent(e)])
        self.assertEqual(said, ["Asterisk did not answer the listener's Filter (AMI action"
                                " Filter got no response within 0.2 s); it skips the events it"
                                " does not read itself"])
        self.assertEqual([e["log_level"] for e in observer
                          if "did not answer" in formatEvent(e)], [LogLevel.warn])
        await deferLater(reactor, 0.6, lambda: None)  # three Pings later
        self.assertIs(self.listener.protocol, protocol)
        self.assertIsNone(self.listener.filtered)

    async def test_noReconnectAfterStop(self):
        """Stopping logs the listener off, and it never connects again."""
        await eventually(lambda: self.listener.protocol)
        await self.listener.stopService()
        actions = [m["Action"] for _, m in self.asterisk.simulator.actions]
        self.assertEqual(actions[-1], "Logoff")
        await deferLater(reactor, 1.0, lambda: None)
        self.assertEqual([m["Action"] for _, m in self.asterisk.simulator.actions], actions)
        self.assertEqual(self.asterisk.simulator.sessions, [])


class SlowDatabaseTests(TestCase):
    async def test_readsOnWhileTheTableIsLocked(self):
        """With vicidial_manager locked, the listener still reads every event: a hangup
        behind 20,000 others is seen and its update waits, then lands once unlocked."""
        db = scratchMySQL(self)
        asterisk = SimulatorOnTCP(self)
        acqs = startAcqs(self, db, asterisk.endpoint)
        listener = next(s for s in acqs if isinstance(s, Listener))
        man_id = db.insertAction(SERVER, "Originate", "V1126100312000000001", [
            "Channel: Local/200@e2e", "Context: e2e", "Exten: 200", "Priority: 1",
            "Callerid: V1126100312000000001"])
        await eventually(lambda: db.status(man_id) == "UPDATED")
        uniqueid = db.row(man_id)["uniqueid"]
        channel = db.row(man_id)["channel"]
        locker = db.connect()
        self.addCleanup(locker.close)
        locker.cursor().execute("LOCK TABLES vicidial_manager WRITE")
        self.assertEqual(asterisk.simulator.flood(20_000, ("Newstate", "Hangup")), 20_000)
        asterisk.simulator.hangup(channel)
        await eventually(lambda: uniqueid not in listener.tracker.uniqueids(), timeout=10)
        self.assertGreaterEqual(len(listener.updates), 1)
        cursor = locker.cursor()  # only the lock's holder can read the table now
        cursor.execute("SELECT status FROM vicidial_manager WHERE man_id = %s", (man_id,))
        self.assertEqual(cursor.fetchone()[0], "UPDATED")
        cursor.execute("UNLOCK TABLES")
        await eventually(lambda: db.status(man_id) == "DEAD", timeout=30)
        self.assertEqual(listener.updates.dropped, 0)


class ReconnectPolicyTests(SynchronousTestCase):
    def test_firstAttemptAtOnce(self):
        """The first attempt after a lost connection is immediate; then 0.5 s, then every
        second, each with at most 10% more at random."""
        policy = reconnectPolicy(jitter=lambda: 0)
        self.assertEqual([policy(n) for n in range(1, 6)], [0, 0.5, 1, 1, 1])
        self.assertAlmostEqual(reconnectPolicy(jitter=lambda: 1)(3), 1.1)


class RealAsteriskRefusalTests(TestCase):
    """A wrong listen secret against the real Asterisk 22: named, said once."""

    skip = asterisk.SKIP

    async def test_refusedLoginNamed(self):
        """Asterisk 22's refusal is kept as login_refused, logged once as an error saying
        what to check, and the listener tries again by itself."""
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        listener = Listener(
            reactor, asterisk.endpoint(),
            AMIFactory(asterisk.LISTENER[0], "not-the-secret", reactor, events="call",
                       timeout=5),
            scratchSQLite(self).openStore(), SERVER, CallTracker(), name="the test Asterisk")
        listener.startService()
        self.addCleanup(listener.stopService)
        await eventually(lambda: listener.cause)
        self.assertEqual(listener.cause, LOGIN_REFUSED)
        self.assertIn("Authentication failed", listener.error)
        self.assertNotIn("not-the-secret", listener.error)
        [error] = [formatEvent(e) for e in observer if e["log_level"] == LogLevel.error]
        self.assertTrue(error.startswith("AMI listener cannot log in to the test Asterisk as"
                                         " listener (AMI login as 'listener' refused:"
                                         " Authentication failed)"), error)

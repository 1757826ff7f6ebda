"""
The fault matrix: each fault under a steady GUI-style load of synchronous Originates,
on the real MariaDB and the simulator (the real Asterisk 22 where marked).  After it,
and once everything settled, no row is lost, none was sent twice, none is stranded;
and sending resumes soon after the fault ends.  See L{fault} for what each word means.
"""

import os
import subprocess
import time

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from acqs.ami.errors import AMIError
from acqs.ami.protocol import AMIFactory
from acqs.listener import Listener
from acqs.sender import Sender
from acqs.session import SHUTTING_DOWN

from ..databases import mysqlConnection, scratchMySQL
from . import asterisk
from .daemon import SERVER, SimulatorOnTCP, eventually, startAcqs
from .fault import GUILoad, firstAfter, report, sentCallerids, settled, tally
from .proxy import RecordingProxy
from .test_process import STOPPED, skipUnlessInstalled, twistd

RATE = 20  # Originates a second, as the reference measurement's GUI load


def agentCall(callerid):
    """An agent screen's Originate: a call that rings, is answered and ends within ~1 s."""
    return ["Channel: Local/100@e2e", "Context: e2e", "Exten: 300", "Priority: 1",
            f"Callerid: {callerid}"]


class SimulatorFaults(TestCase):
    """Faults of the network, Asterisk and the database, with the simulator."""

    def setUp(self):
        self.db = scratchMySQL(self)
        self.asterisk = SimulatorOnTCP(self)
        self.sim = self.asterisk.simulator
        self.gui = GUILoad(self, self.db, RATE, agentCall)

    def start(self, **settings):
        self.acqs = startAcqs(self, self.db, self.asterisk.endpoint, **settings)
        return self.acqs

    async def result(self, scenario, recovery=None, timeout=60, **extra):
        await settled(self.db, self.gui.rows, timeout)
        counted = tally(self.db, self.gui.rows, sentCallerids(self.sim.actions))
        report(scenario, counted, recovery, **extra)
        self.assertEqual((counted.lost, counted.doubled, counted.stranded), ([], [], []))
        self.assertEqual(counted.received, counted.rows)
        return counted

    def recovery(self, moment):
        return firstAfter(self.sim.actionTimes, self.sim.actions, moment)

    async def test_listenerDroppedEvery2s(self):
        """The listener's connection dropped every 2 s for 10 s: every call still ends
        DEAD (those that ended unseen by the catch-up), none stays SENT."""
        self.start()
        drops = {t: (lambda: self.sim.dropAll("listener")) for t in range(2, 11, 2)}
        await self.gui.run(11, at=drops)
        counted = await self.result("listener dropped every 2 s")
        self.assertGreater(counted.rows, 150)

    async def test_amiDown10s(self):
        """AMI gone for 10 s mid-load (nothing listens, every session cut): rows wait as
        NEW, none is lost, and sending resumes within a second of AMI answering again."""
        self.start()
        back = []

        def up():
            back.append(time.time())
            self.asterisk.up()

        await self.gui.run(16, at={3: self.asterisk.down, 13: up})
        recovery = self.recovery(back[0])
        await self.result("AMI down 10 s", recovery)
        self.assertLess(recovery, 1.5)

    async def test_connectionsKilledOnce(self):
        """Every database connection of acqs KILLed once mid-load."""
        self.start()
        killed = []
        await self.gui.run(8, at={3: lambda: killed.append(self.killAcqsConnections())})
        await self.result("every DB connection KILLed once", killed=killed[0])
        self.assertGreater(killed[0], 0)

    async def test_connectionsKilled30Times(self):
        """Every database connection of acqs KILLed 30 times in 6 s."""
        self.start()
        killed = []
        kills = {2 + n * 0.2: (lambda: killed.append(self.killAcqsConnections()))
                 for n in range(30)}
        await self.gui.run(10, at=kills)
        await self.result("every DB connection KILLed 30 times", killed=sum(killed))

    def killAcqsConnections(self) -> int:
        """KILL every connection to the scratch database but the test's own; how many."""
        admin = mysqlConnection()
        try:
            cursor = admin.cursor()
            cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s"
                           " AND ID <> %s", (self.db.url.database, self.db.connectionID()))
            ids = [i for (i,) in cursor.fetchall()]
            for i in ids:
                try:
                    cursor.execute(f"KILL {int(i)}")
                except Exception:
                    pass  # gone already
            return len(ids)
        finally:
            admin.close()

    async def test_tableLocked5s(self):
        """vicidial_manager locked for 5 s mid-load (a long report, a backup): rows wait,
        and sending resumes as soon as the lock goes."""
        self.start()
        locker = self.db.connect()
        self.addCleanup(locker.close)
        unlocked = []

        def unlock():
            locker.cursor().execute("UNLOCK TABLES")
            unlocked.append(time.time())

        await self.gui.run(12, at={3: lambda: locker.cursor().execute(
            "LOCK TABLES vicidial_manager WRITE"), 8: unlock})
        recovery = self.recovery(unlocked[0])
        await self.result("vicidial_manager locked 5 s", recovery)
        self.assertLess(recovery, 1.5)

    async def test_eventFlood(self):
        """20,000 events a second of calls acqs did not make on the listener's connection
        throughout (Newstate and Hangup: the events Asterisk's filter lets through)."""
        acqs = self.start()
        written = []
        flood = {t / 10: (lambda: written.append(self.sim.flood(2_000, ("Newstate", "Hangup"))))
                 for t in range(10, 80)}
        await self.gui.run(8, at=flood)
        self.assertEqual(sum(written), 70 * 2_000)  # all of them reached the listener
        listener = next(s for s in acqs if isinstance(s, Listener))
        await self.result("20,000 ignored events/s")
        self.assertEqual(listener.updates.dropped, 0)


class MariaDBRestartTests(TestCase):
    """The database server itself restarted mid-load.  It restarts the MariaDB the tests
    use, so only where ACQS_TEST_RESTART_MARIADB=1 says it may (CI does)."""

    def setUp(self):
        if os.environ.get("ACQS_TEST_RESTART_MARIADB") != "1":
            raise SkipTest("restarts the MariaDB server: set ACQS_TEST_RESTART_MARIADB=1 where"
                           " that is allowed")
        self.addCleanup(self.running)  # whatever happens, the suite goes on with MariaDB
        self.db = scratchMySQL(self)
        self.asterisk = SimulatorOnTCP(self)
        self.sim = self.asterisk.simulator
        self.gui = GUILoad(self, self.db, RATE, agentCall)

    def running(self):
        """Start MariaDB if it is not running."""
        if subprocess.run(["pidof", "mariadbd"], capture_output=True).returncode:
            subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background",
                            "--exec", "/usr/sbin/mariadbd"], timeout=60)
        _whileTrue(lambda: subprocess.run(["mysqladmin", "--protocol=tcp", "-h127.0.0.1",
                                           "-uroot", "ping"], capture_output=True).returncode,
                   "MariaDB did not come back within 60 s")

    async def test_mariadbRestarted(self):
        """MariaDB shut down and started again mid-load: acqs says so once each way, and
        every row is sent once when the database is back."""
        startAcqs(self, self.db, self.asterisk.endpoint)
        back = []

        def restart():
            subprocess.run(["mysqladmin", "--protocol=tcp", "-h127.0.0.1", "-uroot",
                            "shutdown"], check=True, timeout=60)
            _whileTrue(lambda: subprocess.run(["pidof", "mariadbd"],
                                              capture_output=True).returncode == 0,
                       "the MariaDB server did not exit within 60 s")
            subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background",
                            "--exec", "/usr/sbin/mariadbd"], check=True, timeout=60)
            _whileTrue(lambda: subprocess.run(["mysqladmin", "--protocol=tcp", "-h127.0.0.1",
                                               "-uroot", "ping"], capture_output=True
                                              ).returncode != 0,
                       "MariaDB did not come back within 60 s")
            back.append(time.time())

        # While the server is down the GUI's INSERTs fail, as PHP's would.
        await self.gui.run(12, at={3: lambda: deferToThread(restart)})
        self.db.reconnect()
        await settled(self.db, self.gui.rows)
        counted = tally(self.db, self.gui.rows, sentCallerids(self.sim.actions))
        recovery = firstAfter(self.sim.actionTimes, self.sim.actions, back[0])
        report("MariaDB restarted", counted, recovery)
        self.assertEqual((counted.lost, counted.doubled, counted.stranded), ([], [], []))
        self.assertLess(recovery, 5)


def _whileTrue(condition, failure: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while condition():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(0.2)


def originates(proxy):
    """
    (when, Originate) of every Originate written through C{proxy} that Asterisk ran, and
    the callerids of those it answered "Asterisk is shutting down" (which never ran).
    """
    ran, refused = [], []
    for c in proxy.connections:
        unrun = {m.get("ActionID") for m in c.received if m.get("Message") == SHUTTING_DOWN}
        for t, m in c.timed:
            if m["Action"] == "Originate":
                if m.get("ActionID") in unrun:
                    refused.append(m["Callerid"])
                else:
                    ran.append((t, m))
    return ran, refused


class RealAsteriskRestartTests(TestCase):
    """The real Asterisk 22 restarted mid-load, on calls that stay up, or shutting down."""

    skip = asterisk.SKIP_PRIVATE

    async def test_asteriskRestarted(self):
        """Long calls up when Asterisk restarts end with it: every row ends DEAD, those whose
        Originate Asterisk refused unrun as it shut down too (sent again once it was back,
        attempts counted); sending resumes within 2 s of AMI answering again, and nothing is
        run twice."""
        db = scratchMySQL(self)
        ast = asterisk.PrivateAsterisk(self)
        proxy = RecordingProxy(self, "127.0.0.1", ast.port)
        startAcqs(self, db, proxy.endpoint, linger=0.2)

        def longCall(callerid):
            return ["Channel: Local/8600014@acqs-test", "Context: acqs-test",
                    "Exten: 8600014", "Priority: 1", f"Callerid: {callerid}"]

        gui = GUILoad(self, db, 5, longCall)
        back = []

        def restart():
            ast.stop()
            ast.start()
            back.append(time.time())

        await gui.run(12, at={4: lambda: deferToThread(restart)})

        def allUp():
            """every row is UPDATED or DEAD: the calls placed since the restart are up"""
            return all(r["status"] in ("UPDATED", "DEAD")
                       for r in (db.row(m) for m, _ in gui.rows))

        await eventually(allUp, timeout=30)
        await deferToThread(ast.cli, "channel request hangup all")
        await settled(db, gui.rows, timeout=60)
        sent, refused = originates(proxy)
        counted = tally(db, gui.rows, sentCallerids([(None, m) for _, m in sent]))
        later = [t for t, _ in sent if t >= back[0]]
        recovery = min(later) - back[0] if later else None
        report("real Asterisk 22 restarted (long calls)", counted, recovery,
               refused=len(refused))
        self.assertEqual((counted.lost, counted.doubled, counted.stranded), ([], [], []))
        self.assertEqual({db.row(m)["status"] for m, _ in gui.rows}, {"DEAD"})
        ids = dict((callerid, man_id) for man_id, callerid in gui.rows)
        for callerid in refused:  # sent again, and run, once
            self.assertGreaterEqual(db.action(ids[callerid])["attempts"], 1)
            self.assertEqual(sentCallerids([(None, m) for _, m in sent])[callerid], 1)
        self.assertLess(recovery, 2)

    async def test_gracefulShutdownCalledOff(self):
        """While Asterisk shuts down gracefully (a call up holds it) it answers every action
        "Asterisk is shutting down" without running it: those rows go back to NEW, attempts
        counted (as does a row claimed once the first refusal paused sending, unsent), and
        once the shutdown is called off each is sent again and runs, once."""
        db = scratchMySQL(self)
        ast = asterisk.PrivateAsterisk(self)
        proxy = RecordingProxy(self, "127.0.0.1", ast.port)
        acqs = startAcqs(self, db, proxy.endpoint, linger=0)
        sender = next(s for s in acqs if isinstance(s, Sender))
        holder = db.insertAction(SERVER, "Originate", "VHOLD000000000000001", [
            "Channel: Local/8600014@acqs-test", "Context: acqs-test", "Exten: 8600014",
            "Priority: 1", "Callerid: VHOLD000000000000001"])
        await eventually(lambda: db.status(holder) == "UPDATED", timeout=20)
        self.addCleanup(ast.cli, "channel request hangup all")
        await eventually(lambda: sender.idleCount == 2)
        own = await AMIFactory(*asterisk.LISTENER, reactor, events="off").login(ast.endpoint)
        self.addCleanup(own.transport.abortConnection)
        # Right after the listener's keepalive, whose next Ping (5 s on) would be refused.
        pings = len([m for m in proxy.actionsOf("listener") if m["Action"] == "Ping"])
        await eventually(lambda: len([m for m in proxy.actionsOf("listener")
                                      if m["Action"] == "Ping"]) > pings, timeout=10)
        stopping = subprocess.Popen([asterisk.CTL, "cli", ast.prefix, "core stop gracefully"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: stopping.poll() is None and stopping.kill())

        async def shuttingDown():
            try:
                await own.ping(5)
            except AMIError as e:
                return e.reason == SHUTTING_DOWN
            return False

        while not await shuttingDown():
            await deferLater(reactor, 0.01, lambda: None)
        ids = [db.insertAction(SERVER, "Hangup", f"VSHUT{n:015d}", [f"Channel: SIP/none-{n}"])
               for n in range(2)]
        await eventually(lambda: all((db.action(m) or {}).get("attempts") for m in ids))
        await deferToThread(ast.cli, "core abort shutdown")
        for man_id in ids:
            await eventually(lambda man_id=man_id: (db.action(man_id) or {}).get("answered_at"),
                             timeout=30)
            self.assertEqual((db.row(man_id)["response"], db.action(man_id)["response_text"]),
                             ("N", "No such channel"))
        answers = {}  # channel: Asterisk's answers to its Hangups, in order
        for c in proxy.connections:
            for m in c.actions:
                if m["Action"] == "Hangup":
                    answers.setdefault(m["Channel"], []).extend(
                        r.get("Message") for r in c.received
                        if r.get("ActionID") == m["ActionID"])
        self.assertEqual(sorted(answers), [f"SIP/none-{n}" for n in range(2)])
        for channel, said in answers.items():
            *refused, ran = said
            self.assertEqual((set(refused) - {SHUTTING_DOWN}, ran), (set(), "No such channel"),
                             channel)
        self.assertIn(SHUTTING_DOWN, [said[0] for said in answers.values()])


class KillTests(TestCase):
    """acqs killed with SIGKILL mid-load, then started again, as systemd would."""

    def setUp(self):
        self.db = scratchMySQL(self)
        self.asterisk = SimulatorOnTCP(self)
        self.sim = self.asterisk.simulator
        self.gui = GUILoad(self, self.db, RATE, agentCall)

    def twistd(self):
        return twistd(
            self, "--server-ip", SERVER, "--db", str(self.db.url),
            "--ami", f"tcp:host=127.0.0.1:port={self.asterisk.number}",
            "--send-user", "sender", "--listen-user", "listener", "--linger", "0.2",
            "--instance", "killed", "--status-file", "", "--stand-in", "no",
            env={"ACQS_SEND_SECRET": "sendersecret", "ACQS_LISTEN_SECRET": "listenersecret"})

    async def test_sigkillMidLoad(self):
        """SIGKILL mid-load and a restart 1 s later: nothing lost, nothing sent twice,
        nothing stranded; a row in flight at the kill is at worst 'unknown'."""
        processes = [self.twistd()]
        await eventually(lambda: "Listening to AMI" in processes[0].text
                         or processes[0].ended.called)
        skipUnlessInstalled(processes[0])
        killed = []

        def kill():
            processes[0].transport.signalProcess("KILL")
            killed.append(time.time())

        def restart():
            processes.append(self.twistd())

        await self.gui.run(10, at={4: kill, 5: restart})
        await settled(self.db, self.gui.rows)
        processes[1].transport.signalProcess("TERM")
        self.assertIn(await processes[1].ended, STOPPED, processes[1].text)
        counted = tally(self.db, self.gui.rows, sentCallerids(self.sim.actions))
        recovery = firstAfter(self.sim.actionTimes, self.sim.actions, killed[0] + 1)
        report("SIGKILL mid-load, restart after 1 s", counted, recovery)
        self.assertEqual((counted.lost, counted.doubled, counted.stranded), ([], [], []))
        # At worst the rows whose answer was awaited at the kill: about a second's load.
        self.assertLessEqual(len(counted.unknown), RATE)


class RealAsteriskKillTests(TestCase):
    """acqs killed while calls ring on the real Asterisk 22, then started again."""

    skip = asterisk.SKIP_PRIVATE

    async def test_sigkillWhileRinging(self):
        """SIGKILL while calls ring (3 s) and a restart 1 s later: the calls rang on, and
        after the restart their rows are UPDATED, then DEAD; none is lost, sent twice or
        stranded; those whose answer died with the process say 'unknown'."""
        db = scratchMySQL(self)
        ast = asterisk.PrivateAsterisk(self)
        proxy = RecordingProxy(self, "127.0.0.1", ast.port)

        def start():
            return twistd(
                self, "--server-ip", SERVER, "--db", str(db.url),
                "--ami", f"tcp:host=127.0.0.1:port={proxy.port}",
                "--send-user", "sender", "--listen-user", "listener", "--linger", "0.2",
                "--instance", "killed", "--status-file", "", "--stand-in", "no",
                env={"ACQS_SEND_SECRET": "sendersecret",
                     "ACQS_LISTEN_SECRET": "listenersecret"})

        def ringingCall(callerid):
            return ["Channel: Local/8600012@acqs-test", "Context: acqs-test",
                    "Exten: 8600100", "Priority: 1", f"Callerid: {callerid}"]

        processes = [start()]
        await eventually(lambda: "Listening to AMI" in processes[0].text
                         or processes[0].ended.called, timeout=30)
        skipUnlessInstalled(processes[0])
        gui = GUILoad(self, db, 5, ringingCall)
        await gui.run(8, at={4: lambda: processes[0].transport.signalProcess("KILL"),
                             5: lambda: processes.append(start())})
        await settled(db, gui.rows, timeout=60)
        processes[1].transport.signalProcess("TERM")
        self.assertIn(await processes[1].ended, STOPPED, processes[1].text)
        sent = [m for m in proxy.actionsOf("sender") if m["Action"] == "Originate"]
        counted = tally(db, gui.rows, sentCallerids([(None, m) for m in sent]))
        report("SIGKILL while calls ring on the real Asterisk 22, restart after 1 s", counted)
        self.assertEqual((counted.lost, counted.doubled, counted.stranded), ([], [], []))
        self.assertTrue(counted.unknown, "calls rang at the kill")
        self.assertEqual({db.status(m) for m in counted.unknown}, {"DEAD"})

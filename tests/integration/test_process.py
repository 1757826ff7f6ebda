"""
acqs as operators run it: ``twistd acqs`` from the installed package, in its
own process, stopped by SIGTERM or killed by SIGKILL mid-load.
"""

import os
import signal
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.trial.unittest import SkipTest, TestCase

from ..databases import scratchMySQL
from .daemon import SERVER, SimulatorOnTCP, eventually


class Twistd(ProcessProtocol):
    """A twistd process: its output, and a Deferred for its end."""

    def __init__(self):
        self.output = b""
        self.ended = Deferred()

    def outReceived(self, data):
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason):
        self.ended.callback((reason.value.exitCode, reason.value.signal))

    @property
    def text(self):
        return self.output.decode("utf-8", "replace")


def twistd(testCase, *arguments, env=()):
    """C{twistd -n acqs ARGUMENTS} from the installed package, in an empty directory."""
    cwd = testCase.mktemp()
    os.mkdir(cwd)
    process = Twistd()
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ.update(env)
    # The twistd script operators run, installed beside this Python.
    script = os.path.join(os.path.dirname(sys.executable), "twistd")
    transport = reactor.spawnProcess(
        process, sys.executable, [sys.executable, script, "-n", "--pidfile=", "acqs", *arguments],
        env=environ, path=cwd)
    process.transport = transport

    def kill():
        if process.ended.called:
            return None
        transport.signalProcess("KILL")
        return process.ended

    testCase.addCleanup(kill)
    return process


# twistd re-raises the signal that stopped it once shut down, so a clean stop
# on SIGTERM ends with that signal.
STOPPED = {(0, None), (None, signal.SIGTERM)}


def skipUnlessInstalled(process):
    if "Unknown command: acqs" in process.text:
        raise SkipTest("the acqs twistd plugin is not installed in this Python"
                       " (pip install . ; an editable install hides twisted/plugins)")


class DemoTests(TestCase):
    async def test_demo(self):
        """'twistd -n acqs --demo' needs nothing, shows rows from NEW to DEAD, stops on SIGTERM."""
        process = twistd(self, "--demo")

        def died():
            """a row goes all the way to DEAD, or the process ends"""
            return "→ DEAD" in process.text or process.ended.called

        await eventually(died, timeout=30)
        skipUnlessInstalled(process)
        self.assertIn("→ DEAD", process.text)
        process.transport.signalProcess("TERM")
        self.assertIn(await process.ended, STOPPED, process.text)
        self.assertIn("acqs stopped", process.text)
        self.assertNotIn("Traceback", process.text)


class LoadTests(TestCase):
    """Under load, on the real MariaDB and the simulator on loopback TCP."""

    def setUp(self):
        self.db = scratchMySQL(self)
        self.asterisk = SimulatorOnTCP(self)
        self.ids = [self.db.insertAction(SERVER, "Hangup", f"HL{n:018d}",
                                         [f"Channel: SIP/none-{n:04d}"]) for n in range(150)]

    def start(self):
        return twistd(
            self, "--server-ip", SERVER, "--db", str(self.db.url),
            "--ami", f"tcp:host=127.0.0.1:port={self.asterisk.number}",
            "--send-user", "sender", "--listen-user", "listener", "--linger", "0.3",
            "--max-sessions", "4", "--instance", "load", "--stale-after", "3600",
            env={"ACQS_SEND_SECRET": "sendersecret", "ACQS_LISTEN_SECRET": "listenersecret"})

    def answered(self):
        return [i for i in self.ids if (self.db.action(i) or {}).get("answered_at")]

    def received(self):
        """The channels of the Hangup actions the simulator got, in order."""
        return [m["Channel"] for _, m in self.asterisk.simulator.actions
                if m["Action"] == "Hangup"]

    async def test_sigtermMidLoad(self):
        """SIGTERM mid-load: a clean exit with no row in QUEUE; every SENT row was sent
        once and has its answer; the rest are NEW and were never sent."""
        process = self.start()
        await eventually(lambda: len(self.answered()) >= 10 or process.ended.called, timeout=60)
        skipUnlessInstalled(process)
        process.transport.signalProcess("TERM")
        self.assertIn(await process.ended, STOPPED, process.text)
        self.assertIn("acqs stopped", process.text)
        statuses = {i: self.db.status(i) for i in self.ids}
        self.assertEqual(set(statuses.values()) - {"NEW", "SENT"}, set(), process.text)
        sent = [i for i in self.ids if statuses[i] == "SENT"]
        self.assertLess(len(sent), len(self.ids), "stopped before the end of the load")
        self.assertEqual(sorted(self.received()), sorted(f"SIP/none-{i - self.ids[0]:04d}"
                                                         for i in sent))
        self.assertEqual(set(sent), set(self.answered()))
        self.assertNotIn("sendersecret", process.text)

    async def test_sigkillThenRestart(self):
        """SIGKILL mid-load, then a restart: no row is stranded, none is sent twice, and
        every row ends SENT; rows whose fate was unknown say so."""
        process = self.start()
        await eventually(lambda: len(self.answered()) >= 10 or process.ended.called, timeout=60)
        skipUnlessInstalled(process)
        process.transport.signalProcess("KILL")
        await process.ended
        again = self.start()

        def allSent():
            """every row is SENT"""
            return all(self.db.status(i) == "SENT" for i in self.ids)

        await eventually(allSent, timeout=120)
        again.transport.signalProcess("TERM")
        self.assertIn(await again.ended, STOPPED, again.text)
        received = self.received()
        self.assertEqual(len(received), len(set(received)), "an action was sent twice")
        outcomes = {self.db.action(i)["outcome"] for i in self.ids}
        self.assertEqual(outcomes - {"sent", "unknown"}, set(), outcomes)
        unknown = [i for i in self.ids if self.db.action(i)["outcome"] == "unknown"]
        self.assertLessEqual(len(unknown), 4, "at most one per session in flight")
        self.assertEqual(len(received), len(self.ids) - sum(
            f"SIP/none-{i - self.ids[0]:04d}" not in received for i in unknown))


class SecretsInURLTests(TestCase):
    """A database password holding URL delimiters never shows in what acqs prints."""

    PASSWORD = "a/b#c?d@e"

    async def test_twistd(self):
        """twistd with such a password in --db (malformed, then unreachable) never prints it."""
        bad = twistd(self, "--server-ip", SERVER, "--db",
                     f"mysql://cron:{self.PASSWORD}@127.0.0.1:port/asterisk",
                     env={"ACQS_SEND_SECRET": "sendersecret"})
        await bad.ended
        skipUnlessInstalled(bad)
        self.assertIn("mysql://cron:***@127.0.0.1:port/asterisk", bad.text)
        unreachable = twistd(self, "--server-ip", SERVER, "--db",
                             f"mysql://cron:{self.PASSWORD}@127.0.0.1:9/asterisk",
                             "--status-file", "", env={"ACQS_SEND_SECRET": "sendersecret"})
        await eventually(lambda: "unavailable" in unreachable.text, timeout=30)
        unreachable.transport.signalProcess("TERM")
        await unreachable.ended
        for process in (bad, unreachable):
            self.assertNotIn(self.PASSWORD, process.text)
            self.assertNotIn("a/b", process.text)
        self.assertIn("mysql://cron:***@127.0.0.1:9/asterisk", unreachable.text)

    def test_initdb(self):
        """acqs initdb with such a password (unreachable server) never prints it."""
        script = os.path.join(os.path.dirname(sys.executable), "acqs")
        if not os.path.exists(script):
            raise SkipTest(f"no console script at {script}")
        done = subprocess.run(
            [script, "initdb", "--db", f"mysql://cron:{self.PASSWORD}@127.0.0.1:9/asterisk"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 1)
        self.assertIn("mysql://cron:***@127.0.0.1:9/asterisk", done.stderr)
        self.assertNotIn("a/b", done.stdout + done.stderr)


class InstanceNameTests(TestCase):
    """Two processes never run as one instance."""

    def setUp(self):
        self.db = scratchMySQL(self)
        self.asterisk = SimulatorOnTCP(self)

    def start(self, instance="box1"):
        return twistd(
            self, "--server-ip", SERVER, "--db", str(self.db.url),
            "--ami", f"tcp:host=127.0.0.1:port={self.asterisk.number}",
            "--send-user", "sender", "--listen-user", "listener", "--instance", instance,
            "--status-file", "",
            env={"ACQS_SEND_SECRET": "sendersecret", "ACQS_LISTEN_SECRET": "listenersecret"})

    async def test_secondRefused(self):
        """A second twistd acqs with a live instance's name exits 1 saying where the first
        runs; with another name it starts."""
        first = self.start()
        await eventually(lambda: "Listening to AMI" in first.text or first.ended.called)
        skipUnlessInstalled(first)
        second = self.start()
        self.assertEqual(await second.ended, (1, None), second.text)
        self.assertIn("acqs: not starting: acqs instance 'box1' of 10.10.11.12 already runs on",
                      second.text)
        self.assertIn(f"as pid {first.transport.pid}", second.text)
        other = self.start("box2")
        await eventually(lambda: "Listening to AMI" in other.text or other.ended.called)
        self.assertFalse(other.ended.called, other.text)
        for process in (first, other):
            process.transport.signalProcess("TERM")
            self.assertIn(await process.ended, STOPPED, process.text)

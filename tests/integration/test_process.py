"""
acqs as operators run it: ``twistd acqs`` from the installed package, in its
own process, stopped by SIGTERM or killed by SIGKILL mid-load.
"""

import os
import signal
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

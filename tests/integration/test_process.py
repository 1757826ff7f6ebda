"""
acqs as operators run it: ``twistd acqs`` from the installed package, in its
own process, stopped by SIGTERM or killed by SIGKILL mid-load.
"""

import os
import re
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
            "--stand-in", "no",
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
            "--status-file", "", "--stand-in", "no",
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


# VICIdial's listener check, re-stated from AST_VDauto_dial.pl (and AST_VDremote_agents.pl,
# AST_manager_send.pl, ADMIN_keepalive_ALL.pl): this ps command, each line chomped and split
# on the literal "/usr/bin/perl ", and the piece after it searched for AST_manager_li (the
# keepalive: AST_manager_se for the sender); a match's pid is the line's first word.
VICIDIAL_PS = ["/bin/ps", "-o", "%p %a", "--no-headers", "-A"]


def psLines():
    """
    The lines of VICIDIAL_PS, whole.  procps-ng 4.0.0 to 4.0.2 (Debian 12, as on this
    machine) print ``%a`` cut to 27 columns, where no line can hold ``/usr/bin/perl
    AST_manager_li`` (28 characters) and the check fails for the Perl listener too;
    procps 3.3 (ViciBox, CentOS) prints the whole command line.  Where this ps cuts it,
    the lines are made from /proc as procps 3.3 prints them.
    """
    lines = subprocess.run(VICIDIAL_PS, capture_output=True, text=True, check=True,
                           timeout=30).stdout.splitlines()
    with open("/proc/self/cmdline", "rb") as f:
        own = f.read().rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
    shown = [line for line in lines if line.split()[0] == str(os.getpid())]
    if shown and shown[0].split(None, 1)[1].rstrip() == own:
        return lines
    lines = []
    for name in sorted((n for n in os.listdir("/proc") if n.isdigit()), key=int):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                args = f.read().rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if args:
            lines.append(f"{name:>5} {args}")
    return lines


def vicidialCheck():
    """(listener pids, sender pids, {pid: line}) as VICIdial's scripts count them."""
    listeners, senders, shown = [], [], {}
    for line in psLines():
        line = line.rstrip("\n")
        psline = line.split("/usr/bin/perl ")
        pid = int(line.lstrip(" ").split(" ")[0])
        shown[pid] = line
        if len(psline) > 1 and re.search("AST_manager_li", psline[1]):
            listeners.append(pid)
        if len(psline) > 1 and re.search("AST_manager_se", psline[1]):
            senders.append(pid)
    return listeners, senders, shown


class VICIdialCheckTests(TestCase):
    """What VICIdial's dialer and keepalive see of a running twistd acqs."""

    def setUp(self):
        listeners, senders, shown = vicidialCheck()
        if listeners or senders:
            raise SkipTest("another process of this machine already counts as VICIdial's ACQS: "
                           + "; ".join(shown[p] for p in sorted(set(listeners + senders))))
        self.db = scratchMySQL(self)
        self.asterisk = SimulatorOnTCP(self)

    def start(self, instance, *arguments):
        return twistd(
            self, "--server-ip", SERVER, "--db", str(self.db.url),
            "--ami", f"tcp:host=127.0.0.1:port={self.asterisk.number}",
            "--send-user", "sender", "--listen-user", "listener", "--instance", instance,
            "--status-file", "", "--linger", "0", "--stale-after", "3600", *arguments,
            env={"ACQS_SEND_SECRET": "sendersecret", "ACQS_LISTEN_SECRET": "listenersecret"})

    async def stop(self, process):
        process.transport.signalProcess("TERM")
        self.assertIn(await process.ended, STOPPED, process.text)

    async def test_dialerFindsAcqs(self):
        """VICIdial's check finds a running twistd acqs once as its listener and once as its
        sender; a second instance on the box does not make it two, and takes over when the
        first stops; with acqs stopped the check fails, as with the Perl listener stopped."""
        first = self.start("box1")

        def titled(process):
            return lambda: process.transport.pid in vicidialCheck()[0] or process.ended.called

        await eventually(titled(first), timeout=30)
        skipUnlessInstalled(first)
        listeners, senders, shown = vicidialCheck()
        self.assertEqual((listeners, senders), ([first.transport.pid], [first.transport.pid]))
        line = shown[first.transport.pid]
        self.assertIn("acqs", line)
        for hidden in ("bin/asterisk", "sendersecret", "listenersecret"):
            self.assertNotIn(hidden, line)
        second = self.start("box2")
        await eventually(lambda: "Listening to AMI" in second.text or second.ended.called)
        self.assertFalse(second.ended.called, second.text)
        self.assertEqual(vicidialCheck()[:2], ([first.transport.pid], [first.transport.pid]))
        await self.stop(first)
        await eventually(titled(second), timeout=30)
        self.assertEqual(vicidialCheck()[:2], ([second.transport.pid], [second.transport.pid]))
        await self.stop(second)
        self.assertEqual(vicidialCheck()[:2], ([], []))

    async def test_besidePerlACQS(self):
        """Beside a Perl sender acqs takes no title, logs an error naming it, reports it to
        acqs health and claims nothing; once it stops, acqs takes the title and sends the
        rows, the one the Perl sender left in QUEUE at once (not after --stale-after)."""
        folder = self.mktemp()
        os.mkdir(folder)
        script = os.path.join(folder, "AST_manager_send.pl")
        with open(script, "w") as f:
            f.write("sleep 600;\n")
        perl = subprocess.Popen(["/usr/bin/perl", script])
        self.addCleanup(lambda: perl.poll() is None and (perl.kill(), perl.wait()))
        left = self.db.insertAction(SERVER, "Hangup", "HL000000000000000001",
                                    ["Channel: SIP/none-0001"], status="QUEUE")
        new = self.db.insertAction(SERVER, "Hangup", "HL000000000000000002",
                                   ["Channel: SIP/none-0002"])
        status = os.path.abspath(self.mktemp())
        process = self.start("box1", "--status-file", status)
        await eventually(lambda: "Not claiming rows" in process.text or process.ended.called)
        skipUnlessInstalled(process)
        await eventually(lambda: "Listening to AMI" in process.text)
        self.assertIn(f"pid {perl.pid}", process.text)
        self.assertEqual(vicidialCheck()[:2], ([], [perl.pid]))
        health = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "acqs"), "health", "--status-file",
             status], capture_output=True, text=True, timeout=60)
        self.assertEqual(health.returncode, 1, health.stdout + health.stderr)
        self.assertIn(f"DEGRADED: VICIdial's Perl ACQS runs on this box (pid {perl.pid})",
                      health.stdout)
        self.assertEqual((self.db.status(left), self.db.status(new)), ("QUEUE", "NEW"))
        perl.kill()
        perl.wait()
        await eventually(lambda: {self.db.status(left), self.db.status(new)} == {"SENT"},
                         timeout=30)
        self.assertIn("left by VICIdial's Perl sender", self.db.action(left)["reason"])
        self.assertEqual(vicidialCheck()[:2], ([process.transport.pid], [process.transport.pid]))
        await self.stop(process)

    async def test_standInOff(self):
        """With --stand-in no acqs carries no process title, and claims and sends as before."""
        process = self.start("box1", "--stand-in", "no")
        await eventually(lambda: "Listening to AMI" in process.text or process.ended.called)
        skipUnlessInstalled(process)
        man_id = self.db.insertAction(SERVER, "Hangup", "HL000000000000000003",
                                      ["Channel: SIP/none-0003"])
        await eventually(lambda: self.db.status(man_id) == "SENT")
        self.assertEqual(vicidialCheck()[:2], ([], []))
        self.assertNotIn("Process title", process.text)
        await self.stop(process)

"""Tests for acqs.health: the status file and the health command."""

import argparse
import io
import json
import os
import subprocess
import time

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from acqs.health import (
    DEGRADED, NOT_RUNNING, OK, UNHEALTHY, UNKNOWN, StatusFile, check, register)

GONE = 2**31 - 1  # no process has this pid


class StatusFileTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.path = self.mktemp()
        self.state = {"listener_connected": True, "sent": 0}
        self.snapshot = lambda: self.state
        self.service = StatusFile(self.clock, self.path, lambda: self.snapshot(), interval=5)

    def read(self) -> dict:
        with open(self.path) as f:
            return json.load(f)

    def test_writtenAtStart(self):
        """The snapshot, the time and the pid are in the file as soon as acqs starts."""
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.assertEqual(self.read(), {"listener_connected": True, "sent": 0,
                                       "time": 1000, "pid": os.getpid()})

    def test_rewrittenEveryInterval(self):
        """The file is replaced every interval with a fresh snapshot and time."""
        self.service.startService()
        self.addCleanup(self.service.stopService)
        inode = os.stat(self.path).st_ino
        self.state = {"sent": 7}
        self.clock.advance(4.9)
        self.assertEqual(self.read()["sent"], 0)
        self.clock.advance(0.1)
        self.assertEqual((self.read()["sent"], self.read()["time"]), (7, 1005))
        self.assertNotEqual(os.stat(self.path).st_ino, inode)  # renamed in, not rewritten
        self.assertFalse(os.path.exists(self.path + ".tmp"))

    def test_removedOnStop(self):
        """Stopping acqs removes its status file, and the stop completes at once."""
        self.service.startService()
        self.successResultOf(self.service.stopService())
        self.assertFalse(os.path.exists(self.path))
        self.clock.advance(10)
        self.assertFalse(os.path.exists(self.path))

    def test_failingSnapshotNeverStops(self):
        """A failing snapshot is logged once, the old file kept, and writing resumes."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.service.startService()
        self.addCleanup(self.service.stopService)

        def broken():
            raise RuntimeError("bug")

        self.snapshot = broken
        self.clock.advance(5)
        self.clock.advance(5)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.read()["time"], 1000)
        self.state = {"sent": 1}
        self.snapshot = lambda: self.state
        self.clock.advance(5)
        self.assertEqual(self.read()["time"], 1015)
        self.assertIn("written again", logged[-1]["log_format"])


class CheckTests(SynchronousTestCase):
    def setUp(self):
        self.path = self.mktemp()

    def write(self, **status):
        status.setdefault("time", 1000.0)
        status.setdefault("pid", os.getpid())
        with open(self.path, "w") as f:
            json.dump(status, f)

    def check(self, at=1001.0, **kw):
        return check(self.path, 30, now=lambda: at, **kw)

    def test_healthy(self):
        """A fresh file from a live process with nothing wrong is healthy."""
        self.write(listener_connected=True, store_ok=True, updates_pending=3,
                   updates_dropped=0, problems=[], new_rows=0)
        self.assertEqual(self.check(), ("HEALTHY", []))

    def test_noFile(self):
        """No status file: acqs is not running, which is unhealthy."""
        self.assertEqual(self.check(), (
            "UNHEALTHY", [f"acqs is not running: there is no status file {self.path}"]))

    def test_pidGone(self):
        """A status file whose process is gone (killed with -9) means not running."""
        self.write(pid=GONE)
        verdict, [problem] = self.check()
        self.assertEqual(verdict, "UNHEALTHY")
        self.assertIn("is gone", problem)

    def test_stale(self):
        """A status file older than the maximum age means acqs is stuck."""
        self.write()
        self.assertEqual(self.check(at=1031.0), (
            "UNHEALTHY", ["acqs is stuck: its status file is 31 s old (more than 30 s)"]))

    def test_listenerDown(self):
        """A listener down is degraded at once, with its cause, and unhealthy after the
        grace."""
        self.write(listener_connected=False, listener_down_since=950.0,
                   listener_cause="unreachable", listener_error="Connection refused")
        self.assertEqual(self.check(grace=60), ("DEGRADED", [
            "the AMI listener is disconnected for 51 s: cannot connect (Connection refused)"]))
        self.assertEqual(self.check(grace=20), ("UNHEALTHY", [
            "the AMI listener is disconnected for 51 s (more than 20 s): cannot connect"
            " (Connection refused)"]))
        self.write(listener_connected=False, listener_down_since=1001.0)
        self.assertEqual(self.check(), ("DEGRADED", [
            "the AMI listener is disconnected for 0 s"]))

    def test_loginRefusedNamed(self):
        """A refused login is named as such, telling what to check."""
        self.write(listener_connected=False, listener_down_since=990.0,
                   listener_cause="login_refused",
                   listener_error="AMI login as 'listener' refused: Authentication failed")
        self.assertEqual(self.check(), ("DEGRADED", [
            "the AMI listener is disconnected for 11 s: login refused, check the AMI user and"
            " its secret (AMI login as 'listener' refused: Authentication failed)"]))

    def test_outageWithoutStart(self):
        """A listener reported down without the time it went down is unhealthy at once."""
        self.write(listener_connected=False)
        self.assertEqual(self.check(), ("UNHEALTHY", ["the AMI listener is disconnected"]))

    def test_storeDown(self):
        """A database failing is degraded at once, unhealthy after the grace, with why."""
        self.write(store_ok=False, store_down_since=990.0, store_error="queue store failed")
        self.assertEqual(self.check(), ("DEGRADED", [
            "the database is failing for 11 s: queue store failed"]))
        self.write(store_ok=False, store_down_since=900.0)
        self.assertEqual(self.check(), ("UNHEALTHY", [
            "the database is failing for 101 s (more than 60 s)"]))

    def test_claimsFailing(self):
        """Claims failing longer than the grace (an old server refusing the claim's SQL,
        while the rest of the database works) are unhealthy, with the reason."""
        self.write(store_ok=True, claims_ok=False, claims_failing_since=900.0,
                   claim_error="queue store mysql://cron@db1:3306/asterisk failed: (1064, "
                               "\"You have an error in your SQL syntax ... 'SKIP LOCKED'\")")
        verdict, [problem] = self.check()
        self.assertEqual(verdict, "UNHEALTHY")
        self.assertTrue(problem.startswith("claiming rows fails (queue store"), problem)
        self.assertTrue(problem.endswith("for 101 s (more than 60 s)"), problem)

    def test_amiDown(self):
        """A sender that cannot reach AMI is degraded, then unhealthy after the grace."""
        self.write(ami_ok=False, ami_down_since=990.0, ami_cause="unreachable")
        self.assertEqual(self.check(grace=60), ("DEGRADED", [
            "the sender cannot reach AMI for 11 s: cannot connect"]))
        self.assertEqual(self.check(grace=5), ("UNHEALTHY", [
            "the sender cannot reach AMI for 11 s (more than 5 s): cannot connect"]))

    def test_newRowsUnclaimed(self):
        """NEW rows whose oldest stays unclaimed are degraded after --max-new-wait (as
        last seen, not guessed since), unhealthy after the grace; fresh ones are fine."""
        self.write(new_rows=129, new_oldest_age=96.0, new_waiting_since=995.0,
                   new_seen_at=1000.0)
        self.assertEqual(self.check(), ("HEALTHY", []))
        self.assertEqual(self.check(maxNewWait=5), ("DEGRADED", [
            "129 rows wait as NEW (the oldest inserted 96 s ago), the oldest unclaimed"
            " for 5 s"]))
        self.write(new_rows=129, new_oldest_age=96.0, new_waiting_since=910.0,
                   new_seen_at=1000.0)
        self.assertEqual(self.check(at=1004.0), ("UNHEALTHY", [
            "129 rows wait as NEW (the oldest inserted 96 s ago), the oldest unclaimed"
            " for 90 s (more than 60 s)"]))
        self.write(new_rows=0, new_waiting_since=None, new_seen_at=1000.0)
        self.assertEqual(self.check(), ("HEALTHY", []))

    def test_metricsPortTaken(self):
        """A metrics port that could not be had is degraded (a restart would not free it)."""
        self.write(metrics_error="cannot serve metrics and the status page on tcp:9128:"
                                 "interface=127.0.0.1: Address already in use")
        verdict, [problem] = self.check()
        self.assertEqual(verdict, "DEGRADED")
        self.assertIn("Address already in use", problem)

    def test_worstFirst(self):
        """Problems are listed worst first; the verdict is the worst."""
        self.write(listener_connected=False, listener_down_since=999.0, updates_dropped=2)
        verdict, problems = self.check()
        self.assertEqual(verdict, "UNHEALTHY")
        self.assertEqual(problems, ["2 call progress updates were dropped since acqs started",
                                    "the AMI listener is disconnected for 2 s"])

    def test_updatesPilingUpOrDropped(self):
        """Too many updates waiting, or any dropped, are unhealthy."""
        self.write(updates_pending=20001, updates_dropped=4)
        self.assertEqual(self.check(maxPending=20000), ("UNHEALTHY", [
            "20001 call progress updates wait to be written",
            "4 call progress updates were dropped since acqs started"]))

    def test_applicationProblems(self):
        """Problems the application reports are passed on as they are."""
        self.write(problems=["AMI login refused"])
        self.assertEqual(self.check(), ("UNHEALTHY", ["AMI login refused"]))

    def test_applicationWarnings(self):
        """Warnings the application reports (a restart would not mend them) are DEGRADED."""
        self.write(warnings=["VICIdial's Perl ACQS runs on this box (pid 7)"])
        self.assertEqual(self.check(), ("DEGRADED", [
            "VICIdial's Perl ACQS runs on this box (pid 7)"]))

    def test_unreadable(self):
        """A status file that is not JSON is a problem."""
        with open(self.path, "w") as f:
            f.write("{")
        verdict, [problem] = self.check()
        self.assertIn("cannot read the status file", problem)


class CommandTests(SynchronousTestCase):
    def setUp(self):
        self.path = self.mktemp()
        parser = argparse.ArgumentParser(prog="acqs")
        register(parser.add_subparsers())
        self.parser = parser

    def health(self, *args):
        out = io.StringIO()
        parsed = self.parser.parse_args(["health", *args])
        return parsed.run(parsed, out, out), out.getvalue()

    def write(self, **status):
        status.setdefault("time", time.time())
        status.setdefault("pid", os.getpid())
        with open(self.path, "w") as f:
            json.dump(status, f)

    def test_codesAsNagios(self):
        """The exit codes are Nagios': OK 0, WARNING 1 (degraded), CRITICAL 2 (unhealthy,
        not running), UNKNOWN 3."""
        self.assertEqual((OK, DEGRADED, UNHEALTHY, NOT_RUNNING, UNKNOWN), (0, 1, 2, 2, 3))

    def test_ok(self):
        """Healthy: exit 0 and one HEALTHY line; --quiet prints nothing, for cron."""
        self.write(sent=5)
        code, out = self.health("--status-file", self.path)
        self.assertEqual((code, out), (OK, f"HEALTHY pid={os.getpid()} sent=5\n"))
        self.assertEqual(self.health("--status-file", self.path, "-q"), (OK, ""))

    def test_wakeupFallbackHealthy(self):
        """Polling where a wait in the database was wanted is no fault: HEALTHY, and the
        line says which wake-up is in use and why."""
        self.write(wakeup="poll", wakeup_reason="MySQL 8.0.36 cannot wait in the server",
                   wakeup_step=0.25)
        code, out = self.health("--status-file", self.path)
        self.assertEqual((code, out), (OK, f"HEALTHY pid={os.getpid()} wakeup=poll"
                                           ' wakeup_reason="MySQL 8.0.36 cannot wait in the'
                                           ' server" wakeup_step=0.25\n'))

    def test_degraded(self):
        """Degraded: exit 1 and its lines, even with --quiet (cron logs them)."""
        self.write(ami_ok=False, ami_down_since=time.time() - 3, ami_cause="unreachable")
        code, out = self.health("--status-file", self.path, "-q")
        self.assertEqual(code, DEGRADED)
        self.assertRegex(out, r"^DEGRADED: the sender cannot reach AMI for [34] s:"
                              r" cannot connect\n$")

    def test_unhealthy(self):
        """Unhealthy: exit 2 and one line per problem."""
        self.write(problems=["a", "b"])
        self.assertEqual(self.health("--status-file", self.path),
                         (UNHEALTHY, "UNHEALTHY: a\nUNHEALTHY: b\n"))

    def test_stuck(self):
        """A status file older than --max-age: exit 2."""
        self.write(time=time.time() - 100)
        code, out = self.health("--status-file", self.path, "--max-age", "90", "-q")
        self.assertEqual(code, UNHEALTHY)
        self.assertIn("stuck", out)

    def test_notRunning(self):
        """No status file, or a dead pid: exit 2."""
        code, out = self.health("--status-file", self.path, "-q")
        self.assertEqual(code, NOT_RUNNING)
        self.write(pid=GONE)
        self.assertEqual(self.health("--status-file", self.path)[0], NOT_RUNNING)

    def test_statusFileFromConfig(self):
        """--config finds the status file named in acqs' INI file."""
        config = self.mktemp()
        with open(config, "w") as f:
            f.write(f"[acqs]\nstatus-file = {self.path}\n")
        self.write()
        self.assertEqual(self.health("--config", config)[0], OK)

    def test_badConfig(self):
        """An unreadable --config: exit 3, cannot tell."""
        code, out = self.health("--config", self.mktemp())
        self.assertEqual(code, UNKNOWN)
        self.assertIn("UNKNOWN: cannot read the --config file", out)


class CronLineTests(SynchronousTestCase):
    """etc/acqs-health.cron's line, run by sh with acqs health's exit code stood in."""

    def cron(self, code: int) -> tuple:
        """C{(logged, restarted)} when acqs health exits C{code}."""
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(here, "etc", "acqs-health.cron")) as f:
            [line] = [line for line in f if line.startswith("* * * * * root ")]
        bin = os.path.abspath(self.mktemp())
        os.mkdir(bin)
        calls = os.path.join(bin, "calls")
        for name, body in (("acqs", f'echo "DEGRADED: a problem"; exit {code}'),
                           ("logger", f'cat >> {calls}.logged'),
                           ("systemctl", f'echo "$@" >> {calls}.restarted')):
            path = os.path.join(bin, name)
            with open(path, "w") as f:
                f.write(f"#!/bin/sh\n{body}\n")
            os.chmod(path, 0o755)
        command = line[len("* * * * * root "):].replace("/opt/acqs/bin/acqs", f"{bin}/acqs")
        subprocess.run(["sh", "-c", command], env={"PATH": f"{bin}:/usr/bin:/bin"},
                       check=False, timeout=30)

        def read(suffix):
            try:
                with open(calls + suffix) as f:
                    return f.read()
            except FileNotFoundError:
                return ""

        return read(".logged"), read(".restarted")

    def test_readmeAgrees(self):
        """README.rst gives the very line etc/acqs-health.cron holds."""
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(here, "etc", "acqs-health.cron")) as f:
            [line] = [line.strip() for line in f if line.startswith("* * * * * root ")]
        with open(os.path.join(here, "README.rst"), encoding="utf-8") as f:
            self.assertIn(f"\n    {line}\n", f.read())

    def test_restartsOnlyWhenUnhealthy(self):
        """The cron line restarts acqs on exit 2 (unhealthy, not running) only; a degraded
        (1) or undecided (3) acqs is logged, never restarted."""
        self.assertEqual(self.cron(1), ("DEGRADED: a problem\n", ""))
        self.assertEqual(self.cron(3), ("DEGRADED: a problem\n", ""))
        self.assertEqual(self.cron(2), ("DEGRADED: a problem\n", "restart acqs.service\n"))

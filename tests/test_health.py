"""Tests for acqs.health: the status file and the health command."""

import argparse
import io
import json
import os
import time

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from acqs.health import NOT_RUNNING, OK, UNHEALTHY, UNKNOWN, StatusFile, check, register

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
                   updates_dropped=0, problems=[])
        self.assertEqual(self.check(), (True, []))

    def test_noFile(self):
        """No status file: acqs is not running."""
        self.assertEqual(self.check(),
                         (False, [f"acqs is not running: there is no status file {self.path}"]))

    def test_pidGone(self):
        """A status file whose process is gone (killed with -9) means not running."""
        self.write(pid=GONE)
        ok, [problem] = self.check()
        self.assertIn("is gone", problem)

    def test_stale(self):
        """A status file older than the maximum age means acqs is stuck."""
        self.write()
        self.assertEqual(self.check(at=1031.0),
                         (False, ["acqs is stuck: its status file is 31 s old (more than 30 s)"]))

    def test_listenerDown(self):
        """A listener down longer than the grace is a problem; a shorter outage is not."""
        self.write(listener_connected=False, listener_down_since=950.0)
        self.assertEqual(self.check(grace=60), (True, []))
        self.assertEqual(self.check(grace=20), (False, [
            "the AMI listener is disconnected for 51 s (more than 20 s)"]))

    def test_outageWithoutStart(self):
        """A listener reported down without the time it went down is a problem at once."""
        self.write(listener_connected=False)
        self.assertEqual(self.check(), (False, ["the AMI listener is disconnected"]))

    def test_storeDown(self):
        """A database failing longer than the grace is a problem."""
        self.write(store_ok=False, store_down_since=900.0)
        self.assertEqual(self.check(), (False, [
            "the database is failing for 101 s (more than 60 s)"]))

    def test_claimsFailing(self):
        """Claims failing longer than the grace (an old server refusing the claim's SQL,
        while the rest of the database works) are a problem, with the reason."""
        self.write(store_ok=True, claims_ok=False, claims_failing_since=900.0,
                   claim_error="queue store mysql://cron@db1:3306/asterisk failed: (1064, "
                               "\"You have an error in your SQL syntax ... 'SKIP LOCKED'\")")
        ok, [problem] = self.check()
        self.assertFalse(ok)
        self.assertTrue(problem.startswith("claiming rows fails (queue store"), problem)
        self.assertTrue(problem.endswith("for 101 s (more than 60 s)"), problem)

    def test_amiDown(self):
        """A sender that cannot reach AMI for longer than the grace is a problem."""
        self.write(ami_ok=False, ami_down_since=990.0)
        self.assertEqual(self.check(grace=5), (False, [
            "the sender cannot reach AMI for 11 s (more than 5 s)"]))

    def test_updatesPilingUpOrDropped(self):
        """Too many updates waiting, or any dropped, are problems."""
        self.write(updates_pending=20001, updates_dropped=4)
        self.assertEqual(self.check(maxPending=20000), (False, [
            "20001 call progress updates wait to be written",
            "4 call progress updates were dropped since acqs started"]))

    def test_applicationProblems(self):
        """Problems the application reports are passed on as they are."""
        self.write(problems=["AMI login refused"])
        self.assertEqual(self.check(), (False, ["AMI login refused"]))

    def test_unreadable(self):
        """A status file that is not JSON is a problem."""
        with open(self.path, "w") as f:
            f.write("{")
        ok, [problem] = self.check()
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

    def test_ok(self):
        """Healthy: exit 0 and one OK line; --quiet prints nothing, for cron."""
        self.write(sent=5)
        code, out = self.health("--status-file", self.path)
        self.assertEqual((code, out), (OK, f"OK pid={os.getpid()} sent=5\n"))
        self.assertEqual(self.health("--status-file", self.path, "-q"), (OK, ""))

    def test_unhealthy(self):
        """Unhealthy: exit 1 and one line per problem."""
        self.write(problems=["a", "b"])
        self.assertEqual(self.health("--status-file", self.path), (UNHEALTHY, "a\nb\n"))

    def test_stuck(self):
        """A status file older than --max-age: exit 1."""
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

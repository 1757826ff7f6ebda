"""Tests for acqs.tap: the twistd options, start-up log handling, and the installed plugin."""

import json
import os
import signal
import subprocess
import sys
import time
import types

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger
from twisted.python import usage
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from acqs.config import Settings
from acqs.tap import Options, jsonLogObserver, makeService, rollLog, rotateOnSignal

# What operators' scripts pass; every name must keep working.
OPERATOR_OPTIONS = [
    "--config", "--server-ip", "--db", "--ami", "--send-user", "--send-secret",
    "--listen-user", "--listen-secret", "--poll-interval", "--linger", "--max-sessions",
]
OTHER_OPTIONS = [
    "--instance", "--db-password-file", "--send-secret-file", "--listen-secret-file",
    "--action-timeout", "--stale-after", "--status-file", "--json-log",
    "--md5", "--roll-logs", "--demo", "--max-connecting", "--warm-sessions",
    "--warm-idle", "--greeting-timeout", "--allow-actions", "--keep-hours", "--wakeup",
    "--idle-poll-interval",
]


def options(args, parent=None) -> Options:
    """Options parsed as twistd would, without the host's astguiclient.conf or environment."""
    o = Options()
    o.astguiclientPath = "/nonexistent/astguiclient.conf"
    o.environ = {}
    if parent is not None:
        o.parent = parent
    o.parseOptions(args)
    return o


def inUTC(testCase) -> None:
    """Run the rest of C{testCase} with local time = UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()

    def restore():
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()

    testCase.addCleanup(restore)


class OptionsTests(SynchronousTestCase):
    def test_operatorOptions(self):
        """Every option operators' scripts use is accepted and lands in the settings."""
        config = self.mktemp()
        with open(config, "w") as f:
            f.write("[acqs]\naction-timeout = 7\n")
        s = options([
            "--config", config, "--server-ip", "10.0.0.4",
            "--db", "mysql://cron@db1:3306/asterisk", "--ami", "tcp:host=10.0.0.4:port=5038",
            "--send-user", "sendcron", "--send-secret", "s1",
            "--listen-user", "listencron", "--listen-secret", "s2",
            "--poll-interval", "0.2", "--linger", "0", "--max-sessions", "9",
        ]).settings
        self.assertEqual(
            (s.server_ip, s.db, s.ami, s.send_user, s.send_secret, s.listen_user,
             s.listen_secret, s.poll_interval, s.linger, s.max_sessions, s.action_timeout),
            ("10.0.0.4", "mysql://cron@db1:3306/asterisk", "tcp:host=10.0.0.4:port=5038",
             "sendcron", "s1", "listencron", "s2", 0.2, 0.0, 9, 7.0),
        )

    def test_otherOptions(self):
        """The remaining options and the flags set their settings."""
        secret = self.mktemp()
        with open(secret, "w") as f:
            f.write("s\n")
        os.chmod(secret, 0o600)
        s = options([
            "--server-ip", "10.0.0.4", "--send-secret-file", secret, "--instance", "b2",
            "--action-timeout", "3", "--stale-after", "30", "--status-file", "/run/a.json",
            "--json-log", "/var/log/acqs.json", "--md5", "--roll-logs",
        ]).settings
        self.assertEqual(
            (s.send_secret, s.instance, s.action_timeout, s.stale_after, s.status_file,
             s.json_log, s.md5, s.roll_logs, s.demo),
            ("s", "b2", 3.0, 30.0, "/run/a.json", "/var/log/acqs.json", True, True, False),
        )
        self.assertTrue(options(["--demo"]).settings.demo)

    def test_helpListsEveryOption(self):
        """--help lists every option, each with its description on the same single line."""
        lines = Options().getUsage(width=80).splitlines()
        for name in OPERATOR_OPTIONS + OTHER_OPTIONS:
            [i] = [i for i, line in enumerate(lines) if line.split()[:1] in ([name], [name + "="])]
            self.assertGreater(len(lines[i].split()), 1, name)
            self.assertTrue(lines[i + 1].lstrip().startswith("--") or not lines[i + 1].strip(),
                            f"{name}: description wraps")

    def test_badValue(self):
        """A bad value stops twistd with a sentence naming the option."""
        e = self.assertRaises(usage.UsageError, options, ["--demo", "--max-sessions", "0"])
        self.assertEqual(str(e), "--max-sessions must be 1 or more, not 0")

    def test_notANumber(self):
        """A number option given text says what was expected."""
        e = self.assertRaises(usage.UsageError, options, ["--demo", "--linger", "ten"])
        self.assertIn("'ten' is not a number of seconds", str(e))


class RollTests(SynchronousTestCase):
    def setUp(self):
        inUTC(self)
        self.dir = self.mktemp()
        os.mkdir(self.dir)
        self.log = os.path.join(self.dir, "acqs.log")

    def writeLog(self, text="old run\n"):
        with open(self.log, "w") as f:
            f.write(text)

    def test_rollOnRestart(self):
        """The previous log is renamed with VICIdial's YYYY-MM-DD---HHMMSS suffix."""
        self.writeLog()
        rolled = rollLog(self.log, 1700000000.0)
        self.assertEqual(rolled, self.log + ".2023-11-14---221320")
        self.assertFalse(os.path.exists(self.log))
        with open(rolled) as f:
            self.assertEqual(f.read(), "old run\n")

    def test_clashKeepsBoth(self):
        """Two restarts within one second keep both logs."""
        self.writeLog("first\n")
        first = rollLog(self.log, 1700000000.0)
        self.writeLog("second\n")
        second = rollLog(self.log, 1700000000.0)
        self.assertEqual(second, first + ".1")

    def test_nothingToRoll(self):
        """A missing or empty log is left alone."""
        self.assertIsNone(rollLog(self.log, 0))
        self.writeLog("")
        self.assertIsNone(rollLog(self.log, 0))
        self.assertTrue(os.path.exists(self.log))


class FakeBuilders:
    """Stands for acqs.app and acqs.demo while makeService is tested."""

    def __init__(self, testCase):
        self.built = []
        for name, builder in (("acqs.app", "buildService"), ("acqs.demo", "buildDemo")):
            module = types.ModuleType(name)
            setattr(module, builder, lambda settings, reactor, builder=builder:
                    self.built.append((builder, settings, reactor)))
            old = sys.modules.get(name)
            sys.modules[name] = module
            testCase.addCleanup(
                lambda name=name, old=old: sys.modules.pop(name) if old is None
                else sys.modules.__setitem__(name, old)
            )


class MakeServiceTests(SynchronousTestCase):
    def setUp(self):
        inUTC(self)
        self.builders = FakeBuilders(self)
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1700000000.0)
        self.dir = self.mktemp()
        os.mkdir(self.dir)

    def shutDown(self):
        for f, args, kw in self.reactor.triggers.get("after", {}).get("shutdown", []):
            f(*args, **kw)

    def test_buildsTheService(self):
        """makeService hands the settings and the given reactor to acqs.app.buildService."""
        o = options(["--server-ip", "10.0.0.4", "--db", "sqlite:///acqs.sqlite",
                     "--send-secret", "s1", "--listen-secret", "s2"])
        makeService(o, self.reactor)
        self.assertEqual(self.builders.built, [("buildService", o.settings, self.reactor)])

    def test_buildsTheDemo(self):
        """With --demo, makeService hands them to acqs.demo.buildDemo instead."""
        o = options(["--demo"])
        makeService(o, self.reactor)
        self.assertEqual(self.builders.built, [("buildDemo", o.settings, self.reactor)])

    def test_rollsTwistdLogAndJSONLog(self):
        """With --roll-logs, twistd's --logfile and the JSON log are rolled before start."""
        logfile, jsonLog = (os.path.join(self.dir, n) for n in ("acqs.log", "acqs.json"))
        for path in (logfile, jsonLog):
            with open(path, "w") as f:
                f.write("old\n")
        o = options(["--demo", "--roll-logs", "--json-log", jsonLog],
                    parent={"logfile": logfile, "nodaemon": True})
        makeService(o, self.reactor)
        self.addCleanup(self.shutDown)
        self.assertTrue(os.path.exists(logfile + ".2023-11-14---221320"))
        self.assertTrue(os.path.exists(jsonLog + ".2023-11-14---221320"))
        self.assertFalse(os.path.exists(logfile))

    def test_noRollByDefault(self):
        """Without --roll-logs the previous log stays where it is."""
        logfile = os.path.join(self.dir, "acqs.log")
        with open(logfile, "w") as f:
            f.write("old\n")
        makeService(options(["--demo"], parent={"logfile": logfile}), self.reactor)
        self.assertEqual(os.listdir(self.dir), ["acqs.log"])

    def test_jsonLogGetsGlobalEvents(self):
        """With --json-log, events logged anywhere reach the file until shutdown."""
        path = os.path.join(self.dir, "acqs.json")
        makeService(options(["--demo", "--json-log", path]), self.reactor)
        Logger().info("sent {n} actions", n=3)
        self.shutDown()
        Logger().info("after shutdown")
        with open(path) as f:
            texts = [json.loads(line)["log_text"] for line in f]
        self.assertIn("sent 3 actions", texts)
        self.assertNotIn("after shutdown", texts)


class JSONLogTests(SynchronousTestCase):
    def test_jsonLinesWithoutSecrets(self):
        """Each event is one JSON line with its text; secrets never appear in the file."""
        path = self.mktemp()
        settings = Settings(send_secret="sendpw", db_password="dbpw",
                            db="mysql://u:urlpw@h:3306/d")
        with open(path, "w") as f:
            log = Logger(observer=jsonLogObserver(f, ["sendpw", "dbpw"]))
            log.info("starting with {settings}", settings=settings)
            log.info("login as {user}", user="cron", secret="sendpw", headers={"Secret": "x1"})
            log.warn("value {v}", v="dbpw")
        with open(path) as f:
            text = f.read()
        records = [json.loads(line) for line in text.splitlines()]
        self.assertEqual(len(records), 3)
        self.assertEqual(records[1]["log_text"], "login as cron")
        self.assertEqual(records[1]["user"], "cron")
        self.assertEqual(records[2]["log_text"], "value ***")
        for secret in ("sendpw", "dbpw", "urlpw", "x1"):
            self.assertNotIn(secret, text)

    def test_sigusr1RotatesAfterPreviousHandler(self):
        """SIGUSR1 rotates the JSON log and still runs twistd's handler for its text log."""
        original = signal.getsignal(signal.SIGUSR1)
        self.addCleanup(signal.signal, signal.SIGUSR1, original)
        calls = []
        signal.signal(signal.SIGUSR1, lambda sig, frame: calls.append("twistd"))
        reactor = types.SimpleNamespace(callFromThread=lambda f: f())
        rotateOnSignal(reactor, lambda: calls.append("json"))
        signal.getsignal(signal.SIGUSR1)(signal.SIGUSR1, None)
        self.assertEqual(calls, ["json", "twistd"])


class InstalledPluginTests(SynchronousTestCase):
    def test_twistdHelp(self):
        """The installed package's twistd plugin answers --help with the operator options."""
        cwd = self.mktemp()
        os.mkdir(cwd)
        result = subprocess.run(
            [sys.executable, "-m", "twisted", "acqs", "--help"],
            cwd=cwd, capture_output=True, text=True, timeout=120,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        if "Unknown command: acqs" in result.stdout + result.stderr:
            raise SkipTest(
                "the acqs twistd plugin is not installed in this Python "
                "(pip install . ; an editable install hides twisted/plugins)"
            )
        self.assertEqual(result.returncode, 0, result.stderr)
        for name in OPERATOR_OPTIONS:
            self.assertIn(name + "=", result.stdout)

    def daemon(self, *arguments):
        """C{twistd -n acqs ARGUMENTS} from the installed package: (status, stdout, stderr)."""
        cwd = self.mktemp()
        os.mkdir(cwd)
        env = {k: v for k, v in os.environ.items()
               if k != "PYTHONPATH" and not k.startswith("ACQS_")}
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")  # the one operators run
        result = subprocess.run(
            [sys.executable, twistd, "-n", "--pidfile=", "acqs", *arguments],
            cwd=cwd, capture_output=True, text=True, timeout=120, env=env)
        if "Unknown command: acqs" in result.stdout + result.stderr:
            raise SkipTest("the acqs twistd plugin is not installed in this Python")
        return result.returncode, result.stdout, result.stderr

    def test_badSettingOneLine(self):
        """A bad setting stops twistd acqs with its one sentence, not the whole usage."""
        for arguments in (["--server-ip", "10.0.0.4"],  # no AMI secret
                          ["--server-ip", "10.0.0.4", "--send-secret", "x", "--linger", "ten"],
                          ["--demo", "--bogus"]):
            status, out, err = self.daemon(*arguments)
            self.assertEqual((status, out), (1, ""), arguments)
            self.assertEqual(err.count("\n"), 1, err)
            self.assertTrue(err.startswith("twistd acqs: "), err)

    def test_databaseTypoHidesPassword(self):
        """The daemon refuses a mistyped --db (mysql:/user:pw@host/db) without its password."""
        status, out, err = self.daemon("--server-ip", "10.0.0.4", "--send-secret", "x",
                                       "--db", "mysql:/cron:s3cr3t@db1/asterisk")
        self.assertEqual(status, 1)
        self.assertIn("cron:***@db1/asterisk", err)
        self.assertNotIn("s3cr3t", out + err)

"""
C{acqs check} as an operator runs it, the installed console script, on the
real MariaDB, against the simulator with VICIdial's stock AMI users, and
against the real Asterisk 22 where it runs.
"""

import os
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, TestCase

from acqs.check import FAIL, OK, WARN, Finding, exitStatus, granted, processFindings
from acqs.presence import Process, title
from acqs.simulator import User

from ..databases import addServer, createServers, mysqlConnection, scratchMySQL
from .daemon import SERVER, SimulatorOnTCP

# VICIdial's docs/conf_examples/manager.conf.sample-13: every user's secret is 1234.
STOCK_USERS = [
    User("sendcron", "1234", read="command",
         write="system,call,log,verbose,command,agent,user,originate"),
    User("listencron", "1234", read="system,call,log,verbose,command,agent,user,dtmf",
         write="command"),
]
ASTGUICLIENT = """\
PATHhome => /usr/share/astguiclient
VARserver_ip => {server}
VARactive_keepalives => 12345689EC
"""


def script():
    path = os.path.join(os.path.dirname(sys.executable), "acqs")
    if not os.path.exists(path):
        raise SkipTest(f"no console script at {path}")
    return path


class CheckCommandTests(TestCase):
    def setUp(self):
        self.db = scratchMySQL(self)
        self.asterisk = SimulatorOnTCP(self)
        self.asterisk.simulator.users = {u.username: u for u in STOCK_USERS}
        createServers(self.db)
        self.astguiclient = self.mktemp()
        with open(self.astguiclient, "w") as f:
            f.write(ASTGUICLIENT.format(server=SERVER))

    def row(self, **columns):
        addServer(self.db, SERVER, telnet_host="127.0.0.1", telnet_port=self.asterisk.number,
                  **columns)

    async def check(self, *arguments):
        """acqs check's exit status, and its lines by topic."""
        out, err, status = await getProcessOutputAndValue(
            script(), ["check", "--db", str(self.db.url), "--astguiclient", self.astguiclient,
                       *arguments],
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, reactor=reactor)
        self.text = out.decode() + err.decode()
        lines = {}
        for line in out.decode().splitlines():
            level, _, rest = line.partition(" ")
            topic, _, text = rest.strip().partition(": ")
            lines[topic] = (level, text)
        return status, lines

    async def test_stockVICIdial(self):
        """On a VICIdial box with the stock users acqs is ready with warnings: sendcron may
        send every action, listencron (write = command) may not Filter or CoreShowChannels,
        keepalive digit 2 is explained; the secret is never printed."""
        self.row()
        status, lines = await self.check()
        self.assertEqual(status, 1, self.text)
        self.assertEqual(lines["database"][0], OK)
        self.assertEqual(lines["vicidial_manager"][0], OK)
        self.assertEqual(lines["acqs' tables"], (OK, "acqs_action and acqs_instance up to date"))
        self.assertEqual(lines["database privileges"][0], OK)
        self.assertIn("send user sendcron, listen user listencron", lines["servers row"][1])
        level, text = lines["AMI send user sendcron"]
        self.assertEqual(level, OK, text)
        self.assertIn("may Originate, Redirect, Hangup, Command", text)
        level, text = lines["AMI listen user listencron"]
        self.assertEqual(level, WARN)
        self.assertIn("may not Filter, CoreShowChannels", text)
        self.assertIn("VICIdial's sample listencron has write = command", text)
        self.assertEqual(lines["keepalives"][0], OK)
        self.assertIn("12345689EC has 2", lines["keepalives"][1])
        self.assertIn("Python", lines)
        self.assertNotIn("1234 ", self.text.replace("12345689EC", ""))

    async def test_notReady(self):
        """A wrong ASTmgrSECRET and missing acqs tables make the box not ready (exit 2),
        with what to do."""
        self.row(ASTmgrSECRET="wrong")
        self.db.execute("DROP TABLE acqs_action")
        status, lines = await self.check()
        self.assertEqual(status, 2, self.text)
        self.assertEqual(lines["acqs' tables"][0], FAIL)
        self.assertIn("acqs_action missing: run acqs initdb", lines["acqs' tables"][1])
        level, text = lines["AMI send user sendcron"]
        self.assertEqual(level, FAIL)
        self.assertIn("login refused", text)
        self.assertNotIn("wrong", self.text)

    async def test_perlACQSRuns(self):
        """A Perl sender still running is named, with how to stop it."""
        self.row()
        folder = self.mktemp()
        os.mkdir(folder)
        path = os.path.join(folder, "AST_manager_send.pl")
        with open(path, "w") as f:
            f.write("sleep 600;\n")
        perl = subprocess.Popen(["/usr/bin/perl", path])
        self.addCleanup(lambda: (perl.kill(), perl.wait()))
        status, lines = await self.check()
        level, text = lines["Perl ACQS"]
        self.assertEqual(level, WARN)
        self.assertIn(f"pid {perl.pid}", text)
        self.assertIn("screen -S ASTsend -X quit", text)

    async def test_usage(self):
        """A bad setting is a usage error: exit 64, one sentence."""
        status, _ = await self.check("--server-ip", "not-an-ip")
        self.assertEqual(status, 64, self.text)
        self.assertIn("must be this server's IPv4 address", self.text)


class RealAsteriskCheckTests(TestCase):
    """acqs check against the real Asterisk 22 (its users: sender, listener)."""

    async def test_realAsterisk(self):
        """The real Asterisk 22 answers the probes as the simulator does: the test sender may
        send every action, the listener (write = system) may Filter and CoreShowChannels."""
        where = os.environ.get("ACQS_TEST_ASTERISK")
        if not where:
            raise SkipTest("ACQS_TEST_ASTERISK names no disposable Asterisk 22")
        db = scratchMySQL(self)
        config = self.mktemp()
        with open(config, "w") as f:
            f.write(f"[acqs]\nserver-ip = {SERVER}\nami = {where}\nsend-user = sender\n"
                    "send-secret = sendersecret\nlisten-user = listener\n"
                    "listen-secret = listenersecret\n")
        os.chmod(config, 0o600)
        out, err, status = await getProcessOutputAndValue(
            script(), ["check", "--config", config, "--db", str(db.url), "--astguiclient",
                       "/nonexistent"],
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, reactor=reactor)
        text = out.decode()
        self.assertIn("OK   AMI send user sender: logged in (AMI", text, text + err.decode())
        self.assertIn("may Originate, Redirect, Hangup, Command", text)
        self.assertIn("OK   AMI listen user listener: logged in", text)
        self.assertIn("may Ping, Filter, CoreShowChannels; may not Command", text)


class PieceTests(TestCase):
    def test_exitStatus(self):
        """0 when all is OK, 1 with a warning, 2 with a failure."""
        self.assertEqual([exitStatus([Finding(OK, "a", "")]),
                          exitStatus([Finding(OK, "a", ""), Finding(WARN, "b", "")]),
                          exitStatus([Finding(WARN, "b", ""), Finding(FAIL, "c", "")])],
                         [0, 1, 2])

    def test_listenerCheck(self):
        """The listener check names acqs, or the Perl listener; two listeners are the
        keepalive's kill -9; none, with the dialer kept alive, a warning."""
        acqs = Process(10, title(SERVER))
        perl = Process(11, "/usr/bin/perl /usr/share/astguiclient/AST_manager_listen_AMI2.pl")
        [_, one] = processFindings([acqs], "12345", 99)
        self.assertEqual(one.level, OK)
        self.assertTrue(one.text.endswith("one listener: acqs, pid 10"), one.text)
        [_, two] = processFindings([acqs, perl], "12345", 99)
        self.assertIn("kill -9s the second", two.text)
        [_, none] = processFindings([], "12345", 99)
        self.assertEqual(none.level, WARN)
        [_, off] = processFindings([], "1", 99)
        self.assertEqual(off.level, OK)

    def test_grants(self):
        """Privileges are read from every level: a database-wide grant with wildcards, and
        a table grant."""
        db = scratchMySQL(self)
        admin = mysqlConnection()
        user = f"chk{db.url.database[-8:]}"
        cursor = admin.cursor()
        cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
        self.addCleanup(lambda: admin.cursor().execute(f"DROP USER '{user}'@'%'"))
        pattern = db.url.database.replace("_", "\\_")[:-3] + "%"
        cursor.execute(f"GRANT SELECT, UPDATE ON `{pattern}`.* TO '{user}'@'%'")
        cursor.execute(f"GRANT DELETE ON `{db.url.database}`.acqs_action TO '{user}'@'%'")
        have = granted(cursor, f"'{user}'@'%'", db.url.database,
                       ["vicidial_manager", "acqs_action"])
        self.assertEqual(have, {"vicidial_manager": {"SELECT", "UPDATE"},
                                "acqs_action": {"SELECT", "UPDATE", "DELETE"}})

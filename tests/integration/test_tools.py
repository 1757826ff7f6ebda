"""
C{acqs rows}, C{acqs trace} and C{acqs send} against the real MariaDB;
C{acqs send} end to end, in its own process, with acqs running in this one
on the simulator.
"""

import io
import os
import sys

import acqs
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from acqs.cli import main
from acqs.rowscli import FAILED, TIMED_OUT, USAGE

from ..databases import scratchMySQL
from .daemon import SERVER, SimulatorOnTCP, eventually, startAcqs

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(acqs.__file__)))


class Tools:
    def setUp(self):
        self.db = scratchMySQL(self)
        self.database = ["--db", str(self.db.url), "--astguiclient", self.mktemp()]

    def acqs(self, *argv):
        """C{(status, stdout, stderr)} of C{acqs ARGV}, in this process."""
        out, err = io.StringIO(), io.StringIO()
        status = main(list(argv), out, err)
        return status, out.getvalue(), err.getvalue()

    def write(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path


class RowsTests(Tools, TestCase):
    def test_table(self):
        """acqs rows lists this server's rows, oldest first, with outcome and answer."""
        first = self.db.insertAction(SERVER, "Hangup", "HL0001", ["Channel: SIP/x-1"])
        second = self.db.insertAction(SERVER, "Redirect", "RD0001", status="SENT")
        self.db.execute("INSERT INTO acqs_action (man_id, server_ip, outcome, response_text)"
                        " VALUES (%s, %s, 'sent', 'Redirect successful')", (second, SERVER))
        self.db.insertAction("10.9.9.9", "Hangup", "ELSEWHERE1")
        status, out, err = self.acqs("rows", "--server-ip", SERVER, *self.database)
        self.assertEqual((status, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(lines[0].split()[:5], ["man_id", "entry_date", "action", "callerid",
                                                "status"])
        self.assertEqual([line.split()[0] for line in lines[1:]], [str(first), str(second)])
        self.assertIn("Redirect successful", lines[2])
        self.assertIn("sent", lines[2].split())
        self.assertNotIn("ELSEWHERE1", out)

    def test_filters(self):
        """--status, --since and --callerid narrow the table."""
        self.db.insertAction(SERVER, "Hangup", "HLOLD", entry_date="2000-01-01 00:00:00")
        self.db.insertAction(SERVER, "Hangup", "HLNEW")
        self.db.insertAction(SERVER, "Hangup", "HLDEAD", status="DEAD")
        def callerids(*argv):
            status, out, _ = self.acqs("rows", "--server-ip", SERVER, *self.database, *argv)
            self.assertEqual(status, 0)
            return [line.split()[4] for line in out.splitlines()[1:]]
        self.assertEqual(callerids("--since", "10m"), ["HLNEW", "HLDEAD"])
        self.assertEqual(callerids("--status", "dead"), ["HLDEAD"])
        self.assertEqual(callerids("--callerid", "HLOLD"), ["HLOLD"])
        status, out, _ = self.acqs("rows", "--server-ip", SERVER, *self.database,
                                   "--callerid", "NOBODY")
        self.assertEqual((status, out), (0, "no rows\n"))

    def test_settingsAsTheDaemon(self):
        """The tools find the database as the daemon does: the --config file, or
        VICIdial's astguiclient.conf (VARserver_ip, VARDB_*)."""
        self.db.insertAction(SERVER, "Hangup", "HLCONF")
        url = self.db.url
        config = self.write(f"[acqs]\nserver-ip = {SERVER}\ndb = {url}\n")
        status, out, err = self.acqs("rows", "--config", config, "--astguiclient", "/nonexistent")
        self.assertEqual((status, err), (0, ""))
        self.assertIn("HLCONF", out)
        conf = self.write(f"VARserver_ip => {SERVER}\nVARDB_server => {url.host}\n"
                          f"VARDB_port => {url.port}\nVARDB_database => {url.database}\n"
                          f"VARDB_user => {url.user}\nVARDB_pass =>\n")
        status, out, err = self.acqs("rows", "--astguiclient", conf)
        self.assertEqual((status, err), (0, ""))
        self.assertIn("HLCONF", out)

    def test_errorsInOneSentence(self):
        """A database that cannot be reached, or missing settings: one sentence on
        stderr, exit 3, never the password."""
        secret = self.write("s3cr3t-pass\n")
        status, out, err = self.acqs("rows", "--server-ip", SERVER, "--db",
                                     "mysql://cron@127.0.0.1:1/asterisk", "--db-password-file",
                                     secret, "--astguiclient", self.mktemp())
        self.assertEqual((status, out), (3, ""))
        self.assertEqual(err.count("\n"), 1)
        self.assertTrue(err.startswith("acqs rows: cannot reach the database"
                                       " mysql://cron:***@127.0.0.1:1/asterisk: "), err)
        self.assertNotIn("s3cr3t", err)
        status, _, err = self.acqs("rows", *self.database)
        self.assertEqual(status, 3)
        self.assertTrue(err.startswith("acqs rows: no server IP: give --server-ip"), err)
        status, _, err = self.acqs("trace", "1", "--config", "/nonexistent.ini")
        self.assertEqual(status, 3)
        self.assertEqual(err, "acqs trace: cannot read the --config file /nonexistent.ini:"
                              " No such file or directory\n")


class EscapeTests(Tools, TestCase):
    """What GUI clients wrote reaches the operator's terminal escaped."""

    def setUp(self):
        super().setUp()
        self.man_id = self.db.insertAction(
            SERVER, "Hangup", "V1\x1b[2J\x1b]0;x\x07", ["Channel: SIP/a\r\nman_id 1: forged"],
            status="DEAD")
        self.db.execute("INSERT INTO acqs_action (man_id, server_ip, outcome, response_text)"
                        " VALUES (%s, %s, 'sent', %s)", (self.man_id, SERVER, "ok\x1b[31m"))

    def check(self, out: str) -> None:
        self.assertNotIn("\x1b", out)
        self.assertNotIn("\x07", out)
        self.assertNotIn("\r", out)
        self.assertIn("\\x1b[2J", out)

    def test_rows(self):
        """acqs rows escapes control characters: no ESC reaches the terminal."""
        status, out, err = self.acqs("rows", "--server-ip", SERVER, *self.database)
        self.assertEqual((status, err), (0, ""))
        self.check(out)
        self.assertEqual(len(out.splitlines()), 2)  # the header and the one row
        self.assertIn("ok\\x1b[31m", out)

    def test_trace(self):
        """acqs trace escapes control characters: a CR/LF header fakes no line."""
        status, out, err = self.acqs("trace", str(self.man_id), *self.database)
        self.assertEqual((status, err), (0, ""))
        self.check(out)
        self.assertIn("Channel: SIP/a\\r\\nman_id 1: forged", out)
        self.assertEqual([line for line in out.splitlines() if line.startswith("man_id")],
                         [line for line in out.splitlines()[:1]])


class TraceTests(Tools, TestCase):
    async def test_wholeLife(self):
        """acqs trace shows a row's claim, send, answer, UPDATED channel and uniqueid, and
        its DEAD cause; by man_id or by callerid."""
        asterisk = SimulatorOnTCP(self)
        startAcqs(self, self.db, asterisk.endpoint)
        callerid = "V0130172253000000007"
        man_id = self.db.insertAction(SERVER, "Originate", callerid, [
            "Channel: Local/8600011@demo", "Context: default", "Exten: 917274515135",
            "Priority: 1", f"Callerid: {callerid}"])
        await eventually(lambda: self.db.status(man_id) == "DEAD")
        await eventually(lambda: self.db.action(man_id)["hangup_cause"])
        row, record = self.db.row(man_id), self.db.action(man_id)
        for key in (str(man_id), callerid):
            status, out, err = self.acqs("trace", key, *self.database)
            self.assertEqual((status, err), (0, ""))
            self.assertIn(f"man_id {man_id}: Originate for {SERVER}, callerid {callerid}", out)
            self.assertIn("life cycle    NEW → QUEUE → SENT → UPDATED → DEAD", out)
            self.assertIn("header        Channel: Local/8600011@demo", out)
            self.assertRegex(out, r"claimed       \d{4}-\d\d-\d\d \S+ by e2e")
            self.assertIn(f"as ActionID {record['action_id']}", out)
            self.assertIn(record["response_text"], out)
            self.assertIn(f"channel {row['channel']}, uniqueid {record['uniqueid']}", out)
            self.assertIn(f"cause {record['hangup_cause']}", out)
            self.assertIn("outcome       sent", out)

    def test_notFound(self):
        """A man_id or callerid no row has: exit 1, saying so."""
        status, out, err = self.acqs("trace", "999", *self.database)
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(err, "acqs trace: no row has man_id or callerid 999\n")


class SendTests(Tools, TestCase):
    async def send(self, *argv):
        """C{(status, stdout, stderr)} of C{acqs send ARGV}, in a process of its own."""
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": SOURCE,
               # CI's coverage measures this process too (.ci/coverage_startup.py)
               **{k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}}
        out, err, status = await getProcessOutputAndValue(
            sys.executable, ["-m", "acqs.cli", "send", *argv, "--server-ip", SERVER,
                             *self.database], env=env)
        return status, out.decode("utf-8"), err.decode("utf-8")

    def startAcqs(self):
        asterisk = SimulatorOnTCP(self)
        startAcqs(self, self.db, asterisk.endpoint)
        return asterisk.simulator

    async def test_followedToTheEnd(self):
        """acqs send queues an Originate as GUI clients do and follows it live to DEAD."""
        self.startAcqs()
        status, out, err = await self.send("Originate", "Channel: Local/100@e2e",
                                           "Context: e2e", "Exten: 300", "Priority: 1")
        self.assertEqual((status, err), (0, ""), out)
        head, *changes, end = out.splitlines()
        self.assertRegex(head, rf"^man_id \d+: Originate for {SERVER}, callerid V\d{{19}}$")
        said = [line.split()[1] for line in changes]
        self.assertEqual(said[0], "NEW")
        for status in ("SENT", "answer", "UPDATED", "DEAD"):
            self.assertIn(status, said)
        self.assertTrue(end.startswith("ended: DEAD, response Y, outcome sent after "), end)
        man_id = int(head.split()[1].rstrip(":"))
        row = self.db.row(man_id)
        callerid = head.split()[-1]
        self.assertEqual((row["callerid"], row["cmd_line_f"]), (callerid, f"Callerid: {callerid}"))
        self.assertEqual(row["cmd_line_b"], "Channel: Local/100@e2e")

    async def test_refused(self):
        """A refused row ends the follow at once with its reason, exit 1."""
        simulator = self.startAcqs()
        status, out, _ = await self.send("Command", "Command: core stop now")
        self.assertEqual(status, 1, out)
        self.assertIn("DEAD    action Command is not in --allow-actions", out)
        self.assertIn("outcome refused", out.splitlines()[-1])
        self.assertEqual([m for _, m in simulator.actions if m.get("Action") == "Command"], [])

    async def test_answeredOtherwise(self):
        """Asterisk's refusal (response N) ends the follow with its answer, exit 1."""
        self.startAcqs()
        status, out, _ = await self.send("Hangup", "Channel: SIP/nobody-1")
        self.assertEqual(status, 1, out)
        self.assertRegex(out, r"answer  N: .+")

    def heartbeat(self, server_ip=SERVER, ago=0):
        """An acqs instance serving C{server_ip} whose last sign of life was C{ago} s ago."""
        self.db.execute("INSERT INTO acqs_instance (server_ip, instance, heartbeat_at)"
                        " VALUES (%s, 'box9', NOW(6) - INTERVAL %s SECOND)", (server_ip, ago))

    async def test_timeout(self):
        """An acqs that serves the IP but sends nothing: exit 2 at --timeout, the row left
        queued."""
        self.heartbeat()
        status, out, err = await self.send("Hangup", "Channel: SIP/x-1", "--timeout", "1")
        self.assertEqual(status, 2, out + err)
        man_id = int(out.split()[1].rstrip(":"))
        self.assertEqual(err, f"acqs send: man_id {man_id} still NEW after 1 s;"
                              " it goes on without me\n")
        self.assertEqual(self.db.status(man_id), "NEW")

    async def test_badHeaders(self):
        """More header lines than a row holds: one sentence, a usage error, nothing queued."""
        self.heartbeat()
        status, _, err = await self.send("Hangup", *[f"H{n}: v" for n in range(11)])
        self.assertEqual(status, USAGE)
        self.assertEqual(err, "acqs send: a row holds at most 10 header lines, not 11\n")
        self.assertEqual(self.db.rows("SELECT COUNT(*) FROM vicidial_manager"), [(0,)])

    async def test_nothingCut(self):
        """A callerid over 20 characters, or a header line longer than its column, is
        refused (naming the column and its width), never stored cut."""
        self.heartbeat()
        status, _, err = await self.send("Hangup", "Channel: SIP/x-1",
                                         "--callerid", "V" + "1" * 20)
        self.assertEqual(status, USAGE)
        self.assertEqual(err, f"acqs send: --callerid V{'1' * 20} is 21 characters, but"
                              " vicidial_manager.callerid holds 20: it would be cut;"
                              " nothing queued\n")
        status, _, err = await self.send("Originate", "Channel: Local/1@e2e",
                                         "Variable: " + "x" * 91)
        self.assertEqual(status, USAGE)
        self.assertEqual(err, "acqs send: header line 2 (Variable: ...) is 101 characters, but"
                              " vicidial_manager.cmd_line_c holds 100: it would be cut;"
                              " nothing queued\n")
        self.assertEqual(self.db.rows("SELECT COUNT(*) FROM vicidial_manager"), [(0,)])

    async def test_nothingServes(self):
        """With no acqs serving the IP (none, another IP's, or silent for --stale-after)
        acqs send says so at once and queues nothing; --anyway queues it."""
        self.heartbeat(server_ip="10.9.9.9")
        self.heartbeat(ago=61)
        status, out, err = await self.send("Hangup", "Channel: SIP/x-1")
        self.assertEqual((status, out), (FAILED, ""))
        self.assertTrue(err.startswith(f"acqs send: no acqs serves {SERVER} (none has shown a"
                                       " sign of life in the last 60 s)"), err)
        self.assertEqual(err.count("\n"), 1)
        self.assertEqual(self.db.rows("SELECT COUNT(*) FROM vicidial_manager"), [(0,)])
        status, out, err = await self.send("Hangup", "Channel: SIP/x-1", "--anyway",
                                           "--timeout", "0")
        self.assertEqual(status, TIMED_OUT, out + err)
        self.assertEqual(self.db.rows("SELECT status FROM vicidial_manager"), [("NEW",)])

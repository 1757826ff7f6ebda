"""
The queue store's tables: VICIdial's vicidial_manager exactly, acqs' own
tables beside it, and C{acqs initdb --db URL} that creates them.
"""

import io
import os
import subprocess
import sys
from importlib import metadata

import attr
from twisted.internet import reactor
from twisted.trial.unittest import SkipTest, TestCase

from acqs import cli
from acqs.store import openStore
from acqs.store.schema import initdb

from .databases import VICIDIAL_COLUMNS, mysqlConnection, scratchMySQL, scratchSQLite
from .test_store_mariadb import ACQS_INSERT

# VICIdial 2.14 (upgrade_2.14.sql) widened cmd_line_d and narrowed cmd_line_i and j.
WIDTHS = {"d": 200, "i": 50, "j": 50}
# VICIdial's vicidial_manager, as MariaDB describes it: (column, type, nullable).
VICIDIAL_TYPES = [
    ("man_id", "int(9) unsigned", "NO"),
    ("uniqueid", "varchar(20)", "YES"),
    ("entry_date", "datetime", "YES"),
    ("status", "enum('NEW','QUEUE','SENT','UPDATED','DEAD')", "YES"),
    ("response", "enum('Y','N')", "YES"),
    ("server_ip", "varchar(15)", "NO"),
    ("channel", "varchar(100)", "YES"),
    ("action", "varchar(20)", "YES"),
    ("callerid", "varchar(20)", "YES"),
] + [(f"cmd_line_{c}", f"varchar({WIDTHS.get(c, 100)})", "YES") for c in "bcdefghijk"]


def vicidialCreate(widths=WIDTHS):
    """VICIdial's own CREATE (MyISAM), as a VICIdial database has it (2.14's by default)."""
    return (
        "CREATE TABLE vicidial_manager (man_id INT(9) UNSIGNED AUTO_INCREMENT PRIMARY KEY"
        " NOT NULL, uniqueid VARCHAR(20), entry_date DATETIME,"
        " status ENUM('NEW','QUEUE','SENT','UPDATED','DEAD'),"
        " response ENUM('Y','N'), server_ip VARCHAR(15) NOT NULL, channel VARCHAR(100),"
        " action VARCHAR(20), callerid VARCHAR(20), "
        + ", ".join(f"cmd_line_{c} VARCHAR({widths.get(c, 100)})" for c in "bcdefghijk")
        + ", index (callerid), index (uniqueid), index serverstat(server_ip,status))"
        " ENGINE=MyISAM"
    )


# acqs_action and acqs_instance as the first acqs made them.
OLD_ACQS_TABLES = [
    "CREATE TABLE acqs_action (man_id INT(9) UNSIGNED NOT NULL PRIMARY KEY,"
    " claimed_by VARCHAR(64), claimed_at DATETIME(6), sending_at DATETIME(6),"
    " answered_at DATETIME(6), outcome VARCHAR(16) NOT NULL, response_text VARCHAR(255),"
    " reason VARCHAR(255), attempts INT UNSIGNED NOT NULL DEFAULT 0, INDEX outcome (outcome))"
    " ENGINE=InnoDB",
    "CREATE TABLE acqs_instance (server_ip VARCHAR(15) NOT NULL, instance VARCHAR(64) NOT NULL,"
    " heartbeat_at DATETIME(6) NOT NULL, PRIMARY KEY (server_ip, instance)) ENGINE=InnoDB",
]

TABLES = ("vicidial_manager", "acqs_action", "acqs_instance")


class InitdbTests:
    """Mixed into a TestCase whose C{scratch(testCase, tables)} makes a database."""

    scratch = None

    async def test_initdbTwice(self):
        """initdb creates the three tables, then finds them there and changes nothing."""
        db = self.scratch(self, tables=False)
        first = initdb(db.url)
        self.assertEqual((first.created, first.existing, first.warnings), (TABLES, (), ()))
        db.insertAction("10.10.11.12", "Originate", "M1130172253000000001")
        second = initdb(db.url)
        self.assertEqual((second.created, second.existing, second.warnings), ((), TABLES, ()))
        [row] = await db.openStore().claim("10.10.11.12", 10, "box1")
        self.assertEqual(row.callerid, "M1130172253000000001")

    def test_vicidialColumnOrder(self):
        """vicidial_manager has VICIdial's 19 columns, named and ordered as GUI clients expect."""
        db = self.scratch(self)
        cursor = db.connection.cursor()
        cursor.execute("SELECT * FROM vicidial_manager LIMIT 0")
        self.assertEqual([d[0] for d in cursor.description], VICIDIAL_COLUMNS)

    def test_cliInitdb(self):
        """C{acqs initdb --db URL} creates the tables, then reports them there on a second run."""
        db = self.scratch(self, tables=False)
        out, err = io.StringIO(), io.StringIO()
        self.assertEqual(cli.main(["initdb", "--db", str(db.url)], out, err), 0)
        self.assertEqual(out.getvalue().splitlines(), [f"{db.url}: created {t}" for t in TABLES])
        out = io.StringIO()
        self.assertEqual(cli.main(["initdb", "--db", str(db.url)], out, err), 0)
        self.assertIn("vicidial_manager already there, left as it is", out.getvalue())
        self.assertEqual(err.getvalue(), "")


class MariaDBInitdbTests(InitdbTests, TestCase):
    """The schema on the real MariaDB."""

    scratch = staticmethod(scratchMySQL)

    def test_vicidialTypes(self):
        """vicidial_manager's column types and NULL-ability are VICIdial's, on InnoDB."""
        db = scratchMySQL(self)
        where = "TABLE_SCHEMA = %s AND TABLE_NAME = 'vicidial_manager'"
        self.assertEqual(
            db.rows(
                f"SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS"
                f" WHERE {where} ORDER BY ORDINAL_POSITION",
                (db.url.database,),
            ),
            VICIDIAL_TYPES,
        )
        self.assertEqual(
            db.rows(
                f"SELECT ENGINE FROM information_schema.TABLES WHERE {where}", (db.url.database,)
            ),
            [("InnoDB",)],
        )

    def test_vicidialIndexes(self):
        """vicidial_manager's indexes are VICIdial's: man_id, callerid, uniqueid, serverstat."""
        db = scratchMySQL(self)
        self.assertEqual(
            db.rows(
                "SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX)"
                " FROM information_schema.STATISTICS"
                " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'vicidial_manager'"
                " GROUP BY INDEX_NAME ORDER BY INDEX_NAME",
                (db.url.database,),
            ),
            [
                ("callerid", "callerid"),
                ("PRIMARY", "man_id"),
                ("serverstat", "server_ip,status"),
                ("uniqueid", "uniqueid"),
            ],
        )

    async def test_initdbOnVICIdial(self):
        """On VICIdial's database initdb keeps its MyISAM table and rows, adds acqs', warns."""
        db = scratchMySQL(self, tables=False)
        db.execute(vicidialCreate())
        man_id = db.insertAction("10.10.11.12", "Originate", "M1130172253000000001")
        report = initdb(db.url)
        self.assertEqual((report.created, report.existing), (TABLES[1:], TABLES[:1]))
        [warning] = report.warnings
        self.assertIn("MyISAM", warning)
        self.assertEqual(db.status(man_id), "NEW")
        [row] = await db.openStore().claim("10.10.11.12", 10, "box1")
        self.assertEqual(row.man_id, man_id)

    def test_initdbWarnsOfOldVICIdial(self):
        """A vicidial_manager older than 2.14's (cmd_line_d at 100) draws a warning naming the
        upgrade: the database would cut MixMonitor's longer lines."""
        db = scratchMySQL(self, tables=False)
        db.execute(vicidialCreate(widths={}))
        warnings = initdb(db.url).warnings
        [old] = [w for w in warnings if "2.14" in w]
        self.assertIn("cmd_line_d is 100 characters wide, not 200", old)
        self.assertIn("upgrade_2.14.sql", old)

    def test_longLinesKept(self):
        """A 2.14 table keeps the 120-character MixMonitor options line VICIdial writes."""
        db = scratchMySQL(self)
        line = "options: r(../monitorS/20240401-112233_3125551212_user01-in.wav)" + "x" * 56
        man_id = db.insertAction("10.10.11.12", "MixMonitor", "SR011122330001234567",
                                 ["ActionID: SR011122330001234567", "Channel: SIP/a-1", line])
        self.assertEqual(db.row(man_id)["cmd_line_d"], line)

    async def test_initdbUpgradesOldAcqsTables(self):
        """acqs' tables as an earlier acqs made them get the new columns and indexes, keep
        their rows, and the store works on them."""
        db = scratchMySQL(self, tables=False)
        for create in OLD_ACQS_TABLES:
            db.execute(create)
        db.execute("INSERT INTO acqs_action (man_id, outcome) VALUES (1, 'sent')")
        report = initdb(db.url)
        self.assertIn("ALTER TABLE acqs_action ADD COLUMN claim_token CHAR(16)", report.upgraded)
        self.assertIn("ALTER TABLE acqs_action ADD INDEX live (server_ip, live)", report.upgraded)
        self.assertIn("ALTER TABLE acqs_instance ADD COLUMN pid INT UNSIGNED", report.upgraded)
        self.assertEqual(initdb(db.url).upgraded, ())
        self.assertEqual(db.action(1)["outcome"], "sent")
        db.insertAction("10.10.11.12", "Originate", "M1130172253000000001")
        [row] = await db.openStore().claim("10.10.11.12", 10, "box1")
        self.assertEqual(db.action(row.man_id)["claim_token"], row.claim)

    def test_initdbCreatesDatabase(self):
        """initdb creates the MySQL database itself when it does not exist yet."""
        db = scratchMySQL(self, tables=False)
        url = attr.evolve(db.url, database=db.url.database + "_new")
        admin = mysqlConnection()
        self.addCleanup(admin.close)
        self.addCleanup(admin.cursor().execute, f"DROP DATABASE IF EXISTS `{url.database}`")
        self.assertEqual(initdb(url).created, TABLES)

    def test_cliPasswordFile(self):
        """--db-password-file gives the password (a wrong one here: denied), never printed."""
        db = scratchMySQL(self, tables=False)
        secret = self.mktemp()
        with open(secret, "w") as f:
            f.write("not-root's-password\n")
        out, err = io.StringIO(), io.StringIO()
        status = cli.main(["initdb", "--db", str(db.url), "--db-password-file", secret], out, err)
        self.assertEqual(status, 1)
        self.assertIn("Access denied", err.getvalue())
        self.assertIn("(using password: YES)", err.getvalue())
        self.assertNotIn("not-root", err.getvalue())

    def test_cliUnreachable(self):
        """initdb on a database nobody listens for exits 1 with a sentence, no traceback."""
        err = io.StringIO()
        url = "mysql://cron:1234@127.0.0.1:9/asterisk"
        self.assertEqual(cli.main(["initdb", "--db", url], io.StringIO(), err), 1)
        self.assertTrue(
            err.getvalue().startswith(
                "acqs initdb: cannot set up mysql://cron:***@127.0.0.1:9/asterisk: (2003"
            ),
            err.getvalue(),
        )
        self.assertNotIn("1234", err.getvalue())


class SQLiteInitdbTests(InitdbTests, TestCase):
    """The schema on SQLite."""

    scratch = staticmethod(scratchSQLite)

    def test_consoleScript(self):
        """The installed C{acqs} console script runs C{acqs.cli:main}: initdb on SQLite exits 0."""
        try:
            [entry] = metadata.entry_points(group="console_scripts", name="acqs")
        except ValueError:
            raise SkipTest("acqs is not installed (no acqs console script)") from None
        self.assertEqual(entry.value, "acqs.cli:main")
        script = os.path.join(os.path.dirname(sys.executable), "acqs")
        if not os.path.exists(script):
            raise SkipTest(f"no console script at {script}")
        db = scratchSQLite(self, tables=False)
        done = subprocess.run(
            [script, "initdb", "--db", str(db.url)], capture_output=True, text=True, timeout=60
        )
        self.assertEqual((done.returncode, done.stderr), (0, ""))
        self.assertIn("created vicidial_manager", done.stdout)

    def test_cliBadURL(self):
        """A malformed URL is a usage error (exit 64) that says what a URL looks like."""
        err = io.StringIO()
        stderr, sys.stderr = sys.stderr, err
        try:
            with self.assertRaises(SystemExit) as caught:
                cli.main(["initdb", "--db", "postgres://x/y"])
        finally:
            sys.stderr = stderr
        self.assertEqual(caught.exception.code, cli.USAGE)
        self.assertIn("a database URL starts with mysql:// or sqlite:", err.getvalue())

    async def test_sqliteProcesses(self):
        """Two stores on one SQLite file (as two processes would be) never claim the same row."""
        db = scratchSQLite(self)
        ids = db.insertActions("10.10.11.12", 40)
        first, second = db.openStore(), openStore(db.url, reactor)
        self.addCleanup(second.close)
        claimed = []
        for _ in range(20):
            for store in (first, second):
                claimed += [row.man_id for row in await store.claim("10.10.11.12", 1, "box1")]
        self.assertEqual(claimed, ids)


    async def test_initdbUpgradesOldAcqsTables(self):
        """An SQLite file made by an earlier acqs gets the new columns and indexes."""
        db = scratchSQLite(self, tables=False)
        for create in OLD_ACQS_TABLES:
            db.execute(create.replace(" ENGINE=InnoDB", "").replace(" UNSIGNED", "")
                       .replace(", INDEX outcome (outcome)", ""))
        report = initdb(db.url)
        self.assertIn("ALTER TABLE acqs_action ADD COLUMN live INTEGER", report.upgraded)
        indexes = {name for (name,) in db.rows(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'acqs_action'")}
        self.assertIn("acqs_action_live", indexes)
        db.insertAction("10.10.11.12", "Originate", "M1130172253000000001")
        [row] = await db.openStore().claim("10.10.11.12", 10, "box1")
        self.assertEqual(db.action(row.man_id)["claim_token"], row.claim)


class SQLiteVICIdialInsertTests(TestCase):
    """GUI clients' positional INSERT on the embedded SQLite store."""

    async def test_insertVerbatim(self):
        """ACQS.txt's INSERT (man_id '') works unchanged on SQLite, numbering rows in order."""
        db = scratchSQLite(self)
        gui = db.connect()
        self.addCleanup(gui.close)
        for _ in range(2):
            gui.execute(ACQS_INSERT)
        gui.commit()
        rows = await db.openStore().claim("10.10.11.12", 10, "box1")
        self.assertEqual([(r.man_id, r.callerid) for r in rows],
                         [(1, "DL40130172253cc160"), (2, "DL40130172253cc160")])

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
] + [(f"cmd_line_{c}", "varchar(100)", "YES") for c in "bcdefghijk"]

# VICIdial's own CREATE (MyISAM), as a VICIdial database has it.
VICIDIAL_MYISAM = (
    "CREATE TABLE vicidial_manager (man_id INT(9) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,"
    " uniqueid VARCHAR(20), entry_date DATETIME,"
    " status ENUM('NEW','QUEUE','SENT','UPDATED','DEAD'),"
    " response ENUM('Y','N'), server_ip VARCHAR(15) NOT NULL, channel VARCHAR(100),"
    " action VARCHAR(20), callerid VARCHAR(20), "
    + ", ".join(f"cmd_line_{c} VARCHAR(100)" for c in "bcdefghijk")
    + ", index (callerid), index (uniqueid), index serverstat(server_ip,status)) ENGINE=MyISAM"
)

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
        db.execute(VICIDIAL_MYISAM)
        man_id = db.insertAction("10.10.11.12", "Originate", "M1130172253000000001")
        report = initdb(db.url)
        self.assertEqual((report.created, report.existing), (TABLES[1:], TABLES[:1]))
        [warning] = report.warnings
        self.assertIn("MyISAM", warning)
        self.assertEqual(db.status(man_id), "NEW")
        [row] = await db.openStore().claim("10.10.11.12", 10, "box1")
        self.assertEqual(row.man_id, man_id)

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
            raise SkipTest("acqs is not installed (no acqs console script)")
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
        """A malformed URL is a usage error (exit 2) that says what a URL looks like."""
        err = io.StringIO()
        stderr, sys.stderr = sys.stderr, err
        try:
            with self.assertRaises(SystemExit) as caught:
                cli.main(["initdb", "--db", "postgres://x/y"])
        finally:
            sys.stderr = stderr
        self.assertEqual(caught.exception.code, 2)
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

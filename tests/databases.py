"""
Scratch databases for tests: a fresh database on the real MariaDB, or a
fresh SQLite file, each with the queue store's tables, gone after the test.

    from tests.databases import scratchMySQL, scratchSQLite

    db = scratchMySQL(self)          # skips the test when MariaDB is unreachable
    man_id = db.insertAction("10.10.11.12", "Originate", "M1130172253000000001",
                             ["Channel: Local/8600011@default", "Context: default"])
    store = db.openStore()           # closed when the test ends
    db.status(man_id)                # 'NEW'
    db.rows("SELECT channel FROM vicidial_manager WHERE man_id = %s", (man_id,))

SQL given to L{ScratchDatabase} uses C{%s} parameters on both kinds.  Its
own connection autocommits, so it always sees what the store committed.

The MariaDB server is C{mysql://root@127.0.0.1:3306/test} unless the
environment variable C{ACQS_TEST_MYSQL} names another one (a mysql:// URL of
a server where this user may create and drop databases); the database part
of that URL is not used.
"""

import os
import secrets
from datetime import datetime
from typing import Dict, Optional, Sequence

import attr
from twisted.trial.unittest import SkipTest

from acqs.store import openStore
from acqs.store.dialects import dialectFor
from acqs.store.records import CMD_LINE_COLUMNS
from acqs.store.schema import initdb
from acqs.store.url import MYSQL, DatabaseURL, parseURL

MYSQL_ENV = "ACQS_TEST_MYSQL"
DEFAULT_MYSQL = "mysql://root@127.0.0.1:3306/test"

VICIDIAL_COLUMNS = (
    "man_id uniqueid entry_date status response server_ip channel action callerid".split()
    + list(CMD_LINE_COLUMNS)
)
ACTION_COLUMNS = (
    "man_id server_ip claimed_by claim_token claimed_at sending_at answered_at outcome"
    " response_text reason attempts action_id call_answered_at uniqueid updated_at dead_at"
    " hangup_cause live"
).split()

_unreachable: Dict[str, str] = {}


def mysqlServer() -> DatabaseURL:
    """The MariaDB server where scratch databases are made."""
    return parseURL(os.environ.get(MYSQL_ENV, DEFAULT_MYSQL))


def mysqlConnection(url: Optional[DatabaseURL] = None, database: bool = False):
    """
    An autocommitting PyMySQL connection to the test server (to C{url}'s
    database if C{database}); skips the test when the server is
    unreachable.
    """
    url = url or mysqlServer()
    key = str(url)
    if key in _unreachable:
        raise SkipTest(_unreachable[key])
    try:
        connection = dialectFor(url).connect(url, database=database)
    except Exception as e:
        if database:
            raise
        _unreachable[key] = f"MariaDB is not reachable at {url} ({e}); set {MYSQL_ENV}"
        raise SkipTest(_unreachable[key]) from None
    connection.autocommit(True)
    return connection


def scratchMySQL(testCase, tables: bool = True, engine: Optional[str] = None) -> "ScratchDatabase":
    """
    A new, randomly named database on the test MariaDB, dropped when
    C{testCase} ends; with the queue store's tables if C{tables}, and
    vicidial_manager converted to C{engine} (e.g. C{"MyISAM"}) if given.
    """
    server = mysqlServer()
    admin = mysqlConnection(server)
    name = f"acqs_test_{secrets.token_hex(6)}"
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")

    def drop():
        try:
            admin.ping(reconnect=True)  # the server may have restarted since
            admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            admin.close()

    testCase.addCleanup(drop)
    url = attr.evolve(server, database=name)
    if tables:
        initdb(url)
    db = ScratchDatabase(url, mysqlConnection(url, database=True), testCase)
    if engine is not None and tables:
        db.execute(f"ALTER TABLE vicidial_manager ENGINE={engine}")
    return db


def scratchSQLite(testCase, tables: bool = True) -> "ScratchDatabase":
    """A new SQLite file in C{testCase}'s temporary folder."""
    url = parseURL("sqlite://" + os.path.abspath(testCase.mktemp() + ".db"))
    if tables:
        initdb(url)
    return ScratchDatabase(url, dialectFor(url).connect(url), testCase)


@attr.s(auto_attribs=True, eq=False)
class ScratchDatabase:
    """A database of the queue store made for one test; see the module docstring."""

    url: DatabaseURL
    connection: object = attr.ib(repr=False)
    testCase: object = attr.ib(repr=False)

    def __attrs_post_init__(self):
        self.testCase.addCleanup(self.connection.close)

    def openStore(self, reactor=None, **kwargs):
        """An L{IQueueStore} on this database, closed when the test ends."""
        if reactor is None:
            from twisted.internet import reactor
        store = openStore(self.url, reactor, **kwargs)
        self.testCase.addCleanup(store.close)
        return store

    def connect(self):
        """A new DB-API connection of this database's kind (yours to close)."""
        if self.url.kind == MYSQL:
            return mysqlConnection(self.url, database=True)
        return dialectFor(self.url).connect(self.url)

    def connectionID(self) -> int:
        """The server's id of this object's own connection (MySQL)."""
        return self.rows("SELECT CONNECTION_ID()")[0][0]

    def reconnect(self) -> None:
        """Connect again if the server went away (it was restarted) (MySQL)."""
        self.connection.ping(reconnect=True)

    def execute(self, sql: str, params: Sequence = ()) -> int:
        """Run one statement; the number of rows it changed."""
        cursor = self.connection.cursor()
        cursor.execute(dialectFor(self.url).placeholders(sql), tuple(params))
        return cursor.rowcount

    def rows(self, sql: str, params: Sequence = ()) -> list:
        """The rows a query returns, as tuples."""
        cursor = self.connection.cursor()
        cursor.execute(dialectFor(self.url).placeholders(sql), tuple(params))
        return [tuple(row) for row in cursor.fetchall()]

    def insertAction(
        self,
        server_ip: str,
        action: str,
        callerid: str,
        cmdLines: Sequence[Optional[str]] = (),
        status: str = "NEW",
        entry_date: Optional[str] = None,
        uniqueid: Optional[str] = "",
        channel: Optional[str] = "",
        connection=None,
    ) -> int:
        """
        INSERT a row the way GUI clients do (all 19 columns, positionally;
        missing cmd lines are ''), with the current local time by default,
        on C{connection} (a GUI client's own) or this object's; its man_id.
        """
        lines = list(cmdLines) + [""] * (len(CMD_LINE_COLUMNS) - len(cmdLines))
        if entry_date is None:
            entry_date = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        cursor = (connection or self.connection).cursor()
        cursor.execute(
            dialectFor(self.url).placeholders(
                "INSERT INTO vicidial_manager VALUES (NULL, " + ", ".join(["%s"] * 18) + ")"
            ),
            (uniqueid, entry_date, status, "N", server_ip, channel, action, callerid, *lines),
        )
        if self.url.kind == MYSQL:
            return cursor.lastrowid
        # SQLite numbers the row in a trigger, which lastrowid does not see.
        cursor.execute("SELECT MAX(man_id) FROM vicidial_manager")
        return cursor.fetchone()[0]

    def insertActions(
        self, server_ip: str, count: int, action: str = "Originate", **kwargs
    ) -> list:
        """C{count} rows with callerids C{M0000000000000000001} and on; their man_ids."""
        return [
            self.insertAction(server_ip, action, f"M{n:019d}", **kwargs)
            for n in range(1, count + 1)
        ]

    def row(self, man_id: int) -> Optional[dict]:
        """vicidial_manager's row C{man_id}, as a dict, or None."""
        return self._one("vicidial_manager", VICIDIAL_COLUMNS, man_id)

    def action(self, man_id: int) -> Optional[dict]:
        """acqs_action's record of row C{man_id}, as a dict, or None."""
        return self._one("acqs_action", ACTION_COLUMNS, man_id)

    def status(self, man_id: int) -> Optional[str]:
        """The status of row C{man_id}."""
        row = self.row(man_id)
        return row and row["status"]

    def _one(self, table: str, columns: Sequence[str], man_id: int) -> Optional[dict]:
        found = self.rows(f"SELECT {', '.join(columns)} FROM {table} WHERE man_id = %s", (man_id,))
        return dict(zip(columns, found[0])) if found else None


# VICIdial 2.14's servers table (extras/MySQL_AST_CREATE_tables.sql), the
# columns acqs reads and their neighbours, with VICIdial's defaults.
SERVERS_MYSQL = """
CREATE TABLE servers (
server_id VARCHAR(10) NOT NULL,
server_description VARCHAR(255),
server_ip VARCHAR(15) NOT NULL,
active ENUM('Y','N'),
asterisk_version VARCHAR(20) default '1.4.21.2',
max_vicidial_trunks SMALLINT(4) default '23',
telnet_host VARCHAR(20) NOT NULL default 'localhost',
telnet_port INT(5) NOT NULL default '5038',
ASTmgrUSERNAME VARCHAR(20) NOT NULL default 'cron',
ASTmgrSECRET VARCHAR(20) NOT NULL default '1234',
ASTmgrUSERNAMEupdate VARCHAR(20) NOT NULL default 'updatecron',
ASTmgrUSERNAMElisten VARCHAR(20) NOT NULL default 'listencron',
ASTmgrUSERNAMEsend VARCHAR(20) NOT NULL default 'sendcron',
local_gmt VARCHAR(6) default '-5.00',
answer_transfer_agent VARCHAR(20) NOT NULL default '8365',
ext_context VARCHAR(20) NOT NULL default 'default',
vd_server_logs ENUM('Y','N') default 'Y',
unique index server_id (server_id)
) ENGINE=MyISAM
"""
SERVERS_SQLITE = (
    "CREATE TABLE servers (server_id TEXT NOT NULL UNIQUE, server_description TEXT,"
    " server_ip TEXT NOT NULL, active TEXT, asterisk_version TEXT DEFAULT '1.4.21.2',"
    " max_vicidial_trunks INTEGER DEFAULT 23, telnet_host TEXT NOT NULL DEFAULT 'localhost',"
    " telnet_port INTEGER NOT NULL DEFAULT 5038, ASTmgrUSERNAME TEXT NOT NULL DEFAULT 'cron',"
    " ASTmgrSECRET TEXT NOT NULL DEFAULT '1234',"
    " ASTmgrUSERNAMEupdate TEXT NOT NULL DEFAULT 'updatecron',"
    " ASTmgrUSERNAMElisten TEXT NOT NULL DEFAULT 'listencron',"
    " ASTmgrUSERNAMEsend TEXT NOT NULL DEFAULT 'sendcron', local_gmt TEXT DEFAULT '-5.00',"
    " answer_transfer_agent TEXT NOT NULL DEFAULT '8365',"
    " ext_context TEXT NOT NULL DEFAULT 'default', vd_server_logs TEXT DEFAULT 'Y')"
)


def createServers(db: ScratchDatabase) -> None:
    """Create VICIdial's servers table in C{db}."""
    db.execute(SERVERS_MYSQL if db.url.kind == MYSQL else SERVERS_SQLITE)


def addServer(db: ScratchDatabase, server_ip: str, **columns) -> None:
    """A servers row for C{server_ip}, VICIdial's defaults but for C{columns}."""
    columns.setdefault("server_id", f"s{secrets.token_hex(4)}")
    names = ["server_ip", *columns]
    marks = ", ".join(["%s"] * len(names))
    db.execute(f"INSERT INTO servers ({', '.join(names)}) VALUES ({marks})",
               [server_ip, *columns.values()])


def setServer(db: ScratchDatabase, server_ip: str, **columns) -> None:
    """Change C{columns} of C{server_ip}'s servers rows, as Admin -> Servers does."""
    db.execute(f"UPDATE servers SET {', '.join(f'{n} = %s' for n in columns)}"
               " WHERE server_ip = %s", [*columns.values(), server_ip])

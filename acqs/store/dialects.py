"""
What differs between the queue store on MySQL/MariaDB and on SQLite.

The store's transactions (see L{acqs.store.transaction}) write their SQL
once, with C{%s} parameters and a few named fragments (C{{now}}, C{{ago}},
C{{lockRows}}, C{{is}}); a dialect fills those in and knows how to connect,
start a transaction, upsert, find out what the server can do (whether it
can wait for NEW rows: L{acqs.store.waiting}) and serialise claims.
"""

import contextlib
import hashlib
import re
import sqlite3
from typing import Any, Dict, FrozenSet, Optional, Sequence, Tuple, Type

import pymysql
from twisted.enterprise import adbapi

from .records import ServerInfo
from .url import MYSQL, SQLITE, DatabaseURL

# The SQL files that create each kind's tables, in order (package data).
SCHEMA_FILES = {MYSQL: ("vicidial_manager.sql", "acqs.sql"), SQLITE: ("sqlite.sql",)}

# PyMySQL: no network step may hang (seconds).
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
WRITE_TIMEOUT = 30
# MySQL: how long a claim waits for another instance's claim on a table
# without row locks (seconds).
CLAIM_LOCK_TIMEOUT = 10
# SQLite: how long a writer waits for another one (seconds).
SQLITE_BUSY_TIMEOUT = 10

# The session sql_mode of acqs' own statements.  Not strict: acqs cuts
# values to the column widths itself, and one odd character in a channel
# name must not fail a whole batch of updates.  NO_ENGINE_SUBSTITUTION makes
# initdb fail rather than silently create a table without InnoDB.
SESSION_SQL_MODE = "NO_ENGINE_SUBSTITUTION"

# In upsert assignments: "the value the INSERT gave" (see Dialect.upsert).
INSERTED = object()

# Errors that mean "the same transaction may succeed if run again".
_MYSQL_DEADLOCK = 1213
# Errors that mean "acqs initdb has not been run (since acqs was upgraded)".
_MYSQL_NO_SUCH_TABLE = 1146
_MYSQL_NO_SUCH_COLUMN = 1054
_MYSQL_SYNTAX = 1064
# The connection died: server gone away, lost during a query, a killed one.
_MYSQL_GONE = (2006, 2013, 2055, 1927)
# A statement that may succeed later: lock wait timeout, server shutting
# down, too many connections; and every client-side error (2000 and up).
_MYSQL_TRANSIENT = (1205, 1053, 1040)
_MYSQL_CLIENT_ERRORS = 2000


class PooledConnection(adbapi.Connection):
    """
    adbapi's connection wrapper, without its error logging: a failed
    rollback means the connection is gone, so drop it quietly and let the
    next transaction open a new one.  (adbapi's own reconnect logic logs a
    traceback for every failed call, which would flood the log during an
    outage that the store already reports once.)
    """

    _connection: Any  # the DB-API connection, opened by adbapi's __init__

    def rollback(self):
        try:
            self._connection.rollback()
        except Exception:
            self._pool.connections.pop(self._pool.threadID(), None)
            try:
                self._connection.close()
            except Exception:
                pass


class _ConnectionPool(adbapi.ConnectionPool):
    connectionFactory = PooledConnection


class _AutocommitConnection(PooledConnection):
    """A connection in autocommit: there is nothing to commit (no COMMIT sent)."""

    def commit(self):
        pass


class _AutocommitPool(adbapi.ConnectionPool):
    connectionFactory = _AutocommitConnection


# Statements each dialect keeps filled in (L{Dialect.sql}).
STATEMENTS_KEPT = 512


class Dialect:
    """The common part; L{MySQLDialect} and L{SQLiteDialect} fill it in."""

    kind: str
    module: str  # the DB-API module's name
    errors: Tuple[Type[Exception], ...]
    poolSize: int
    fragments: Dict[str, str]

    def __init__(self):
        self._statements: Dict[tuple, str] = {}  # filled in by sql(), at most STATEMENTS_KEPT

    def sql(self, template: str, **fields: str) -> str:
        """
        C{template} with its fragments and C{fields} filled in and its
        C{%s} parameters in this database's style (remembered: the same
        few statements run for every row).
        """
        key = (template, *fields.items())
        statement = self._statements.get(key)
        if statement is None:
            if len(self._statements) >= STATEMENTS_KEPT:
                self._statements.clear()
            statement = self._statements[key] = self.placeholders(
                template.format(**self.fragments, **fields))
        return statement

    def placeholders(self, statement: str) -> str:
        return statement

    def agoParameter(self, seconds: float) -> Any:
        """The parameter of the C{{ago}} fragment for C{seconds} ago."""
        raise NotImplementedError()

    def upsert(self, key: Sequence[str], assignments: Dict[str, Any]) -> str:
        """
        The clause that turns an INSERT into an upsert on the unique
        C{key}: each column of C{assignments} takes its SQL expression, or
        the inserted value where it is L{INSERTED}.
        """
        return self.onConflict(key) + ", ".join(
            f"{column} = {self.inserted(column) if value is INSERTED else value}"
            for column, value in assignments.items()
        )

    def onConflict(self, key: Sequence[str]) -> str:
        raise NotImplementedError()

    def inserted(self, column: str) -> str:
        """In an upsert's assignments: the value that the INSERT gave C{column}."""
        raise NotImplementedError()

    def connectArguments(self, url: DatabaseURL) -> Dict[str, Any]:
        """The DB-API module's C{connect} arguments for C{url}."""
        raise NotImplementedError()

    def connect(self, url: DatabaseURL):
        """A DB-API connection, for initdb and tests."""
        raise NotImplementedError()

    def pool(self, url: DatabaseURL, reactor) -> adbapi.ConnectionPool:
        """A connection pool; acqs' own wrapper reconnects quietly."""
        return _ConnectionPool(
            self.module,
            cp_min=1,
            cp_max=self.poolSize,
            cp_reconnect=True,
            cp_reactor=reactor,
            cp_openfun=self.opened,
            **self.connectArguments(url),
        )

    def waitPool(self, url: DatabaseURL, reactor) -> adbapi.ConnectionPool:
        """
        One connection in autocommit, for the looks for NEW rows
        (L{acqs.store.waiting}): none of its statements is ever inside a
        transaction.
        """
        return _AutocommitPool(
            self.module,
            cp_min=1,
            cp_max=1,
            cp_reconnect=True,
            cp_reactor=reactor,
            cp_openfun=self.opened,
            **self.autocommitArguments(url),
        )

    def autocommitArguments(self, url: DatabaseURL) -> Dict[str, Any]:
        """L{connectArguments} of a connection in autocommit."""
        return self.connectArguments(url)

    def opened(self, connection) -> None:
        """Set up a new connection."""

    def gone(self, error: Exception) -> bool:
        """Whether C{error} says that the connection was dead (a new one may work)."""
        return False

    def begin(self, txn) -> None:
        """Start a transaction that writes."""

    def retryable(self, error: Exception) -> bool:
        """Whether a transaction that failed with C{error} may be run again."""
        return False

    def missingSchema(self, error: Exception) -> bool:
        """Whether C{error} says that a table or column does not exist."""
        return False

    def transient(self, error: Exception) -> bool:
        """Whether the same statement may succeed later (a lost connection, a lock)."""
        return self.gone(error) or self.retryable(error)

    def probe(self, txn) -> ServerInfo:
        """What the server is and can do; C{engine} None if there is no table yet."""
        raise NotImplementedError()

    def claimLock(self, info: ServerInfo) -> str:
        """What a claim's SELECT of NEW rows ends with."""
        return ""

    def serialised(self, info: ServerInfo) -> bool:
        """Whether claims must take L{lockClaims} (no row locks to skip)."""
        return False

    def lockClaims(self, txn, server_ip: str) -> None:
        """Wait until no other claim on C{server_ip}'s rows is running."""

    def unlockClaims(self, txn, server_ip: str, commit: bool) -> None:
        """
        Commit (or roll back) the transaction, then let other claims on
        C{server_ip}'s rows run, so that they see this one.
        """

    def describe(self, cursor, table: str) -> Tuple[set, set]:
        """The lower-case names of C{table}'s columns and of its indexes."""
        raise NotImplementedError()

    def widths(self, cursor, table: str) -> Dict[str, Optional[int]]:
        """C{{column: declared character width}} of C{table} (None where it has none)."""
        raise NotImplementedError()

    def columnsOf(self, cursor, tables: Sequence[str]) -> Dict[str, FrozenSet[str]]:
        """The lower-case column names of those of C{tables} that exist."""
        found = {}
        for table in tables:
            columns, _ = self.describe(cursor, table)
            if columns:
                found[table] = frozenset(columns)
        return found

    def createTables(self, connection, statements: Sequence[str]) -> None:
        cursor = connection.cursor()
        self.begin(cursor)
        for statement in statements:
            cursor.execute(statement)
        connection.commit()


class MySQLDialect(Dialect):
    """
    MySQL and MariaDB through PyMySQL: utf8mb4, autocommit off, READ
    COMMITTED (a claim's locks then cover only the rows it takes, not the
    gaps that GUI clients insert into), timeouts on every network step.
    """

    kind = MYSQL
    module = "pymysql"
    errors = (pymysql.err.Error,)
    poolSize = 5
    fragments = {
        "now": "NOW(6)",
        "ago": "NOW(6) - INTERVAL %s MICROSECOND",
        "lockRows": " FOR UPDATE",
        "is": "<=>",
    }

    def agoParameter(self, seconds: float) -> int:
        return max(0, int(seconds * 1_000_000))

    def onConflict(self, key):
        return " ON DUPLICATE KEY UPDATE "

    def inserted(self, column):
        return f"VALUES({column})"

    def connectArguments(self, url: DatabaseURL, database: bool = True) -> Dict[str, Any]:
        arguments = dict(
            host=url.host,
            port=url.port,
            user=url.user or "",
            password=url.password or "",
            charset="utf8mb4",
            autocommit=False,
            sql_mode=SESSION_SQL_MODE,
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            write_timeout=WRITE_TIMEOUT,
        )
        if database:
            arguments["database"] = url.database
        return arguments

    def autocommitArguments(self, url: DatabaseURL) -> Dict[str, Any]:
        return dict(self.connectArguments(url), autocommit=True)

    def connect(self, url: DatabaseURL, database: bool = True):
        return pymysql.connect(**self.connectArguments(url, database))

    def gone(self, error):
        return isinstance(error, pymysql.err.InterfaceError) or _errno(error) in _MYSQL_GONE

    def retryable(self, error):
        return _errno(error) == _MYSQL_DEADLOCK

    def missingSchema(self, error):
        return _errno(error) in (_MYSQL_NO_SUCH_TABLE, _MYSQL_NO_SUCH_COLUMN)

    def transient(self, error):
        code = _errno(error)
        return (super().transient(error) or code in _MYSQL_TRANSIENT
                or (code is not None and code >= _MYSQL_CLIENT_ERRORS))

    def probe(self, txn) -> ServerInfo:
        txn.execute(
            "SELECT VERSION(), (SELECT ENGINE FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'vicidial_manager')"
        )
        version, engine = txn.fetchone()
        innodb = (engine or "").lower() == "innodb"
        # BEGIN NOT ATOMIC outside stored programs: MariaDB 10.1.1 and later.
        return ServerInfo(version, engine, innodb and self._skipsLocked(txn),
                          waits="mariadb" in version.lower())

    def claimLock(self, info: ServerInfo) -> str:
        return " FOR UPDATE SKIP LOCKED" if info.skipLocked else " FOR UPDATE"

    def serialised(self, info: ServerInfo) -> bool:
        return not info.skipLocked

    def _skipsLocked(self, txn) -> bool:
        """Whether the server knows SKIP LOCKED (MariaDB 10.6+, MySQL 8.0+)."""
        try:
            txn.execute("SELECT man_id FROM vicidial_manager WHERE 1 = 0 FOR UPDATE SKIP LOCKED")
        except pymysql.err.ProgrammingError as e:
            if _errno(e) != _MYSQL_SYNTAX:
                raise
            return False
        txn.fetchall()
        return True

    def describe(self, cursor, table):
        where = " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s"
        cursor.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS" + where, (table,))
        columns = {name.lower() for (name,) in cursor.fetchall()}
        cursor.execute("SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS" + where,
                       (table,))
        return columns, {name.lower() for (name,) in cursor.fetchall()}

    def widths(self, cursor, table):
        cursor.execute(
            "SELECT COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))
        return {name.lower(): width for name, width in cursor.fetchall()}

    def columnsOf(self, cursor, tables):
        names = ", ".join(["%s"] * len(tables))
        cursor.execute(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
            f" WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({names})", tuple(tables))
        found: Dict[str, set] = {}
        for table, column in cursor.fetchall():
            found.setdefault(table.lower(), set()).add(column.lower())
        return {table: frozenset(columns) for table, columns in found.items()}

    def lockClaims(self, txn, server_ip):
        txn.execute(f"SELECT GET_LOCK({_CLAIM_LOCK}, %s)", (server_ip, CLAIM_LOCK_TIMEOUT))
        if txn.fetchone()[0] != 1:
            raise pymysql.err.OperationalError(
                0, f"another claim on {server_ip} held its lock for over {CLAIM_LOCK_TIMEOUT} s"
            )

    def unlockClaims(self, txn, server_ip, commit):
        release = f"SELECT RELEASE_LOCK({_CLAIM_LOCK})", (server_ip,)
        if commit:
            txn.connection.commit()
            txn.execute(*release)
            return
        # On the way out of a failure, which matters more than these: if the
        # connection is gone, so is the lock.
        with contextlib.suppress(pymysql.err.Error):
            txn.connection.rollback()
            txn.execute(*release)


class SQLiteDialect(Dialect):
    """
    The standard library's sqlite3: WAL mode, explicit transactions, and
    C{BEGIN IMMEDIATE} so that one writer runs at a time, across processes
    too; a busy writer is waited for, up to L{SQLITE_BUSY_TIMEOUT}.
    """

    kind = SQLITE
    module = "sqlite3"
    errors = (sqlite3.Error,)
    poolSize = 1
    _clock = "strftime('%Y-%m-%d %H:%M:%f', 'now', 'localtime'"
    fragments = {
        "now": _clock + ")",
        "ago": _clock + ", %s)",
        "lockRows": "",
        "is": "IS",
    }

    def placeholders(self, statement):
        return statement.replace("%s", "?")

    def agoParameter(self, seconds):
        return f"-{max(0.0, seconds):.3f} seconds"

    def onConflict(self, key):
        return f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET "

    def inserted(self, column):
        return f"excluded.{column}"

    def connectArguments(self, url: DatabaseURL) -> Dict[str, Any]:
        # The pool opens and closes connections in different threads.
        return dict(
            database=url.database,
            timeout=SQLITE_BUSY_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,
        )

    def connect(self, url: DatabaseURL):
        connection = sqlite3.connect(**self.connectArguments(url))
        self.opened(connection)
        return connection

    def opened(self, connection):
        connection.execute("PRAGMA journal_mode=WAL")

    def begin(self, txn):
        txn.execute("BEGIN IMMEDIATE")

    def missingSchema(self, error):
        return "no such table" in str(error) or "no such column" in str(error)

    def transient(self, error):
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)

    def describe(self, cursor, table):
        cursor.execute(f"PRAGMA table_info({table})")
        columns = {row[1].lower() for row in cursor.fetchall()}
        cursor.execute(f"PRAGMA index_list({table})")
        return columns, {row[1].lower() for row in cursor.fetchall()}

    def widths(self, cursor, table):
        cursor.execute(f"PRAGMA table_info({table})")
        found = {}
        for row in cursor.fetchall():
            m = re.search(r"\((\d+)\)", row[2])
            found[row[1].lower()] = int(m.group(1)) if m else None
        return found

    def probe(self, txn) -> ServerInfo:
        txn.execute("SELECT sqlite_version()")
        [(version,)] = txn.fetchall()
        # One writer at a time (BEGIN IMMEDIATE): nothing to skip, nothing to serialise.
        return ServerInfo(f"SQLite {version}", None, True)


DIALECTS = {MYSQL: MySQLDialect, SQLITE: SQLiteDialect}


def dialectFor(url: DatabaseURL) -> Dialect:
    return DIALECTS[url.kind]()


def _errno(error: Exception) -> Optional[int]:
    return error.args[0] if error.args and isinstance(error.args[0], int) else None


# GET_LOCK names are the server's, not a database's, and at most 64
# characters: the claim lock of a server IP names its database too (hashed
# when long), so that two VICIdial databases on one MariaDB never wait for
# each other's claims.
_DATABASE_IN_LOCK = 64 - len("acqs-claim-") - 15 - len("@")


def claimLockName(server_ip: str, database: str) -> str:
    """The name of the lock that serialises claims on C{server_ip}'s rows in C{database}."""
    if len(database) > _DATABASE_IN_LOCK:
        database = hashlib.md5(database.encode()).hexdigest()
    return f"acqs-claim-{server_ip}@{database}"


# The same name, made by the server for the connection's database.
_CLAIM_LOCK = (
    "CONCAT('acqs-claim-', %s, '@', IF(CHAR_LENGTH(DATABASE()) <= {0}, DATABASE(),"
    " MD5(DATABASE())))".format(_DATABASE_IN_LOCK)
)

"""
Creating the queue store's tables: C{acqs initdb --db URL}.

L{initdb} runs the SQL files shipped in C{acqs/sql/} (the top-level C{sql/}
folder): on MySQL/MariaDB C{vicidial_manager.sql} then C{acqs.sql}, on
SQLite C{sqlite.sql}.  Every statement is C{CREATE ... IF NOT EXISTS}, so it
can run again, and on a VICIdial database it leaves the existing
vicidial_manager alone and only adds acqs' companion tables.  A missing
MySQL database is created (utf8mb4).

It blocks: it is an administration step, run before the daemon starts.
"""

from importlib import resources
from typing import List, Tuple

import attr

from .dialects import SCHEMA_FILES, Dialect, dialectFor
from .url import MYSQL, DatabaseURL

# vicidial_manager's columns, in VICIdial's order.
VICIDIAL_COLUMNS = (
    "man_id uniqueid entry_date status response server_ip channel action callerid".split()
    + [f"cmd_line_{c}" for c in "bcdefghijk"]
)
TABLES = ("vicidial_manager", "acqs_action", "acqs_instance")
_MYSQL_UNKNOWN_DATABASE = 1049


@attr.s(frozen=True, auto_attribs=True)
class SchemaReport:
    """What L{initdb} found and did; C{warnings} are sentences for the operator."""

    created: Tuple[str, ...]
    existing: Tuple[str, ...]
    warnings: Tuple[str, ...]


def statements(kind: str) -> List[str]:
    """
    The SQL statements that create the tables of a C{kind} of database.  A
    statement ends with a line ending in C{;}; a trigger's, at its C{END;}.
    """
    found = []
    for name in SCHEMA_FILES[kind]:
        text = resources.files("acqs").joinpath("sql", name).read_text(encoding="utf-8")
        current: List[str] = []
        for line in text.splitlines():
            if not current and (not line.strip() or line.lstrip().startswith("--")):
                continue
            current.append(line)
            trigger = current[0].upper().startswith("CREATE TRIGGER")
            if line.rstrip().endswith(";") and (not trigger or line.strip().upper() == "END;"):
                found.append("\n".join(current).strip()[:-1])
                current = []
    return found


def initdb(url: DatabaseURL) -> SchemaReport:
    """
    Create whatever tables of the queue store are missing at C{url}.  Raises
    the database's own error (which never carries the password) when it
    cannot be reached.
    """
    dialect = dialectFor(url)
    connection = _connect(dialect, url)
    try:
        before = _tables(dialect, connection)
        dialect.createTables(connection, statements(url.kind))
        cursor = connection.cursor()
        warnings = _check(dialect, cursor)
    finally:
        connection.close()
    return SchemaReport(
        created=tuple(t for t in TABLES if t not in before),
        existing=tuple(t for t in TABLES if t in before),
        warnings=warnings,
    )


def _connect(dialect: Dialect, url: DatabaseURL):
    if url.kind != MYSQL:
        return dialect.connect(url)
    try:
        return dialect.connect(url)
    except dialect.errors as e:
        if e.args[0] != _MYSQL_UNKNOWN_DATABASE:
            raise
    server = dialect.connect(url, database=False)
    try:
        name = url.database.replace("`", "``")
        server.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
    finally:
        server.close()
    return dialect.connect(url)


def _tables(dialect: Dialect, connection) -> set:
    found = set()
    cursor = connection.cursor()
    for table in TABLES:
        try:
            cursor.execute(f"SELECT 1 FROM {table} LIMIT 0")
        except dialect.errors:
            connection.rollback()
        else:
            cursor.fetchall()
            found.add(table)
    return found


def _check(dialect: Dialect, cursor) -> Tuple[str, ...]:
    """Sentences about an existing vicidial_manager that acqs will not like."""
    warnings = []
    cursor.execute("SELECT * FROM vicidial_manager LIMIT 0")
    columns = [d[0].lower() for d in cursor.description]
    cursor.fetchall()
    if columns != VICIDIAL_COLUMNS:
        warnings.append(
            "vicidial_manager's columns are not VICIdial's "
            f"({', '.join(columns)}); acqs expects {', '.join(VICIDIAL_COLUMNS)}"
        )
    engine = dialect.engine(cursor)
    if engine is not None and engine.lower() != "innodb":
        warnings.append(
            f"vicidial_manager uses {engine}, which has no row locks: acqs serialises claims "
            "with GET_LOCK; ALTER TABLE vicidial_manager ENGINE=InnoDB lets instances claim "
            "in parallel"
        )
    return tuple(warnings)

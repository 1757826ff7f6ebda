"""
Creating the queue store's tables: C{acqs initdb --db URL}.

L{initdb} runs the SQL files shipped in C{acqs/sql/} (the top-level C{sql/}
folder): on MySQL/MariaDB C{vicidial_manager.sql} then C{acqs.sql}, on
SQLite C{sqlite.sql}.  Every statement is C{CREATE ... IF NOT EXISTS}, so it
can run again, and on a VICIdial database it leaves the existing
vicidial_manager alone and only adds acqs' companion tables.  acqs' own
tables made by an older acqs get the columns and indexes they lack.  A
missing MySQL database is created (utf8mb4).

It blocks: it is an administration step, run before the daemon starts.
"""

import re
from importlib import resources
from typing import Dict, List, Tuple

import attr

from .dialects import SCHEMA_FILES, Dialect, MySQLDialect, dialectFor
from .url import DatabaseURL

# vicidial_manager's columns, in VICIdial's order.
VICIDIAL_COLUMNS = (
    "man_id uniqueid entry_date status response server_ip channel action callerid".split()
    + [f"cmd_line_{c}" for c in "bcdefghijk"]
)
TABLES = ("vicidial_manager", "acqs_action", "acqs_instance")
ACQS_TABLES = TABLES[1:]
# VICIdial 2.14's width of the cmd line that its upgrades widened.
VICIDIAL_WIDTHS = {"cmd_line_d": 200}
_MYSQL_UNKNOWN_DATABASE = 1049


@attr.s(frozen=True, auto_attribs=True)
class SchemaReport:
    """What L{initdb} found and did; C{warnings} are sentences for the operator."""

    created: Tuple[str, ...]
    existing: Tuple[str, ...]
    warnings: Tuple[str, ...]
    upgraded: Tuple[str, ...] = ()  # the ALTER TABLE statements run


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
        found = statements(url.kind)
        indexes = [s for s in found if s.upper().startswith("CREATE INDEX")]
        creates = [s for s in found if s not in indexes]
        dialect.createTables(connection, creates)
        upgrades = _upgrades(dialect, connection, creates)
        dialect.createTables(connection, upgrades + indexes)
        cursor = connection.cursor()
        warnings = _check(dialect, cursor)
    finally:
        connection.close()
    return SchemaReport(
        created=tuple(t for t in TABLES if t not in before),
        existing=tuple(t for t in TABLES if t in before),
        warnings=warnings,
        upgraded=tuple(upgrades),
    )


def examine(dialect: Dialect, connection) -> Tuple[Tuple[str, ...], List[str], Tuple[str, ...]]:
    """
    What L{initdb} would do on C{connection}, doing nothing: acqs' tables
    missing, the ALTER TABLE statements those there need, and the warnings
    about vicidial_manager (if there is one).
    """
    present = _tables(dialect, connection)
    creates = [s for s in statements(dialect.kind) if not s.upper().startswith("CREATE INDEX")]
    upgrades = _upgrades(dialect, connection, creates, present)
    warnings = _check(dialect, connection.cursor()) if "vicidial_manager" in present else ()
    return tuple(t for t in ACQS_TABLES if t not in present), upgrades, warnings


_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)", re.S)
_INDEX = re.compile(r"(?:INDEX|KEY) (\w+) \(", re.I)


def tableDefinitions(creates: List[str]) -> Dict[str, Tuple[Dict[str, str], Dict[str, str]]]:
    """
    acqs' tables as its CREATE statements define them: C{{table: (columns,
    indexes)}}, each C{{name: its definition}}.
    """
    tables = {}
    for statement in creates:
        m = _TABLE.match(statement)
        if m is None or m.group(1) not in ACQS_TABLES:
            continue
        columns, indexes = {}, {}
        for line in m.group(2).splitlines():
            line = line.strip().rstrip(",")
            if not line or line.upper().startswith("PRIMARY KEY"):
                continue
            index = _INDEX.match(line)
            if index:
                indexes[index.group(1)] = line
            else:
                columns[line.split()[0]] = line
        tables[m.group(1)] = (columns, indexes)
    return tables


def _upgrades(dialect: Dialect, connection, creates: List[str], present=ACQS_TABLES) -> List[str]:
    """The ALTER TABLE statements that bring older acqs tables (of C{present}) up to date."""
    cursor = connection.cursor()
    found = []
    for table, (columns, indexes) in tableDefinitions(creates).items():
        if table not in present:
            continue
        haveColumns, haveIndexes = dialect.describe(cursor, table)
        found += [f"ALTER TABLE {table} ADD COLUMN {definition}"
                  for name, definition in columns.items() if name.lower() not in haveColumns]
        found += [f"ALTER TABLE {table} ADD {definition}"
                  for name, definition in indexes.items() if name.lower() not in haveIndexes]
    return found


def _connect(dialect: Dialect, url: DatabaseURL):
    if not isinstance(dialect, MySQLDialect):
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
    widths = dialect.widths(cursor, "vicidial_manager")
    narrow = [f"{column} is {found} characters wide, not {width}"
              for column, width in VICIDIAL_WIDTHS.items()
              if (found := widths.get(column)) is not None and found < width]
    if narrow:
        warnings.append(
            f"vicidial_manager is older than VICIdial 2.14's ({'; '.join(narrow)}): the"
            " database cuts longer lines GUI clients write; apply VICIdial's upgrade_2.14.sql"
        )
    info = dialect.probe(cursor)
    if dialect.serialised(info):
        if (info.engine or "").lower() != "innodb":
            why = (f"vicidial_manager uses {info.engine}, which has no row locks; ALTER TABLE"
                   " vicidial_manager ENGINE=InnoDB lets instances claim in parallel")
        else:
            why = f"{info.version} has no SKIP LOCKED (MariaDB 10.6+ and MySQL 8.0+ have)"
        warnings.append(f"{why}: acqs serialises claims with GET_LOCK")
    return tuple(warnings)

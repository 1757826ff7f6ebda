"""
Reads for operators: vicidial_manager rows with acqs' records of them, for
the status page, C{acqs rows} and C{acqs trace}; the rows waiting as NEW;
the instances serving a server; and the send times behind the entry_date→send
histogram.  Nothing here writes or locks.

Each function takes a DB-API cursor and the store's L{Dialect}, so the
daemon runs it in its pool and the command-line tools on a connection of
their own.
"""

from datetime import datetime
from typing import Any, List, Optional, Sequence, Tuple

import attr

from .dialects import Dialect
from .records import CMD_LINE_COLUMNS, DEAD, NEW, QUEUE, SENT, UPDATED

_VICIDIAL = ("man_id", "entry_date", "status", "response", "server_ip", "channel", "action",
             "callerid", "uniqueid") + CMD_LINE_COLUMNS
_ACQS = ("claimed_by", "claimed_at", "sending_at", "answered_at", "outcome", "response_text",
         "reason", "attempts", "action_id", "call_answered_at", "uniqueid", "updated_at",
         "dead_at", "hangup_cause")
# Where send times start when nothing was ever sent.
EPOCH = "1970-01-01 00:00:00"
_COLUMNS = ", ".join([f"v.{c}" for c in _VICIDIAL] + [f"a.{c}" for c in _ACQS])


def _text(value: Any) -> Any:
    """A time as text (milliseconds when it has them), a value as it is."""
    if isinstance(value, datetime):
        shown = value.strftime("%Y-%m-%d %H:%M:%S")
        return shown + (f".{value.microsecond // 1000:03d}" if value.microsecond else "")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def lifeCycle(status: str, uniqueid: Optional[str], claimed: Optional[str],
              sending: Optional[str]) -> List[str]:
    """
    The statuses a row has passed through, as its records prove (QUEUE and
    SENT often last only milliseconds, too short to be seen by polling): a
    claim time, a sending time, a uniqueid (set by UPDATED).
    """
    status = (status or "").upper()
    path = [NEW]
    if claimed or status != NEW:
        path.append(QUEUE)
    if sending or status == SENT:
        path.append(SENT)
    if uniqueid or status == UPDATED:
        path.append(UPDATED)
    if status == DEAD:
        path.append(DEAD)
    return path


@attr.s(frozen=True, auto_attribs=True)
class RowView:
    """A vicidial_manager row and what acqs recorded of it (C{None}: nothing)."""

    man_id: int
    entry_date: Optional[str]
    status: str
    response: Optional[str]
    server_ip: str
    channel: Optional[str]
    action: str
    callerid: Optional[str]
    uniqueid: Optional[str]  # vicidial_manager's, at most 20 characters
    cmd_lines: Tuple[str, ...]
    claimed_by: Optional[str] = None
    claimed_at: Optional[str] = None
    sending_at: Optional[str] = None
    answered_at: Optional[str] = None
    outcome: Optional[str] = None
    answer: Optional[str] = None  # Asterisk's answer text, or why none came
    reason: Optional[str] = None
    attempts: Optional[int] = None
    action_id: Optional[str] = None
    call_answered_at: Optional[str] = None
    whole_uniqueid: Optional[str] = None
    updated_at: Optional[str] = None
    dead_at: Optional[str] = None
    hangup_cause: Optional[str] = None

    @property
    def call(self) -> Optional[str]:
        """The call's uniqueid, whole where acqs has it."""
        return self.whole_uniqueid or self.uniqueid or None

    @property
    def lifeCycle(self) -> List[str]:
        """The statuses the row has passed through (see L{lifeCycle})."""
        return lifeCycle(self.status, self.call, self.claimed_at, self.sending_at)

    @classmethod
    def fromRow(cls, row: Sequence) -> "RowView":
        values = [_text(v) for v in row]
        n = len(_VICIDIAL) - len(CMD_LINE_COLUMNS)
        head, lines, acqs = values[:n], values[n:len(_VICIDIAL)], values[len(_VICIDIAL):]
        return cls(*[*head, tuple(line for line in lines if line and line != "0"), *acqs])


def selectRows(cursor, dialect: Dialect, *, server_ip: Optional[str] = None,
               status: Optional[str] = None, since: Optional[float] = None,
               callerid: Optional[str] = None, man_id: Optional[int] = None,
               limit: int = 50) -> List[RowView]:
    """
    The newest C{limit} rows matching every filter given, newest first:
    C{since} seconds of entry_date, C{status} and C{callerid} as written.
    """
    where, params = [], []
    for column, value in (("v.server_ip", server_ip), ("v.status", status),
                          ("v.callerid", callerid), ("v.man_id", man_id)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if since is not None:
        where.append("v.entry_date >= {ago}")
        params.append(dialect.agoParameter(since))
    cursor.execute(dialect.sql(
        f"SELECT {_COLUMNS} FROM vicidial_manager v"
        " LEFT JOIN acqs_action a ON a.man_id = v.man_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY v.man_id DESC LIMIT %s"), tuple(params) + (limit,))
    return [RowView.fromRow(row) for row in cursor.fetchall()]


@attr.s(frozen=True, auto_attribs=True)
class NewRows:
    """
    The rows of a server waiting as NEW: how many, the oldest's man_id, and
    its age by its entry_date and the database's clock (whole seconds: the
    entry_date has no fraction; None when none wait).
    """

    count: int
    oldest: Optional[int] = None
    age: Optional[float] = None


def selectNewRows(cursor, dialect: Dialect, server_ip: str) -> NewRows:
    """
    The L{NewRows} of C{server_ip}, in one statement: the count and the
    oldest man_id come from the (server_ip, status) index alone, then one
    row by its primary key.
    """
    cursor.execute(dialect.sql(
        "SELECT n.waiting, n.oldest, v.entry_date, {now} FROM"
        " (SELECT COUNT(*) AS waiting, MIN(man_id) AS oldest FROM vicidial_manager"
        "  WHERE server_ip = %s AND status = 'NEW') n"
        " LEFT JOIN vicidial_manager v ON v.man_id = n.oldest"), (server_ip,))
    [(count, oldest, entered, now)] = cursor.fetchall()
    entered, now = _when(entered), _when(now)
    age = (now - entered).total_seconds() if entered and now else None
    return NewRows(int(count or 0), oldest, age)


def selectServing(cursor, dialect: Dialect, server_ip: str, within: float) -> List[str]:
    """The acqs instances whose heartbeat for C{server_ip} is at most C{within} seconds old."""
    cursor.execute(dialect.sql(
        "SELECT instance FROM acqs_instance WHERE server_ip = %s AND heartbeat_at >= {ago}"
        " ORDER BY instance"), (server_ip, dialect.agoParameter(within)))
    return [instance for (instance,) in cursor.fetchall()]


@attr.s(frozen=True, auto_attribs=True)
class SendTimes:
    """Rows marked sending after a point: how long after their entry_date, and the new point."""

    delays: Tuple[float, ...]
    until: object  # the last sending_at seen, as the database gives it


def _when(value) -> Optional[datetime]:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def selectSendTimes(cursor, dialect: Dialect, server_ip: str, instance: str, after,
                    limit: int = 10_000) -> SendTimes:
    """
    The rows C{instance} marked sending after C{after} (a C{until} of an
    earlier call); with C{after} None, none, only where to start from.
    """
    if after is None:
        cursor.execute(dialect.sql(
            "SELECT MAX(sending_at) FROM acqs_action WHERE server_ip = %s"), (server_ip,))
        [(until,)] = cursor.fetchall()
        return SendTimes((), until if until is not None else EPOCH)
    cursor.execute(dialect.sql(
        "SELECT a.sending_at, v.entry_date FROM acqs_action a"
        " JOIN vicidial_manager v ON v.man_id = a.man_id"
        " WHERE a.server_ip = %s AND a.sending_at > %s AND a.claimed_by = %s"
        " ORDER BY a.sending_at LIMIT %s"), (server_ip, after, instance, limit))
    found = cursor.fetchall()
    delays = []
    for sending, entry in found:
        sending, entry = _when(sending), _when(entry)
        if sending is not None and entry is not None:
            delays.append((sending - entry).total_seconds())
    return SendTimes(tuple(delays), found[-1][0] if found else after)

"""
C{acqs rows}, C{acqs trace} and C{acqs send}: the queue as operators look
at it, from the command line.

    acqs rows --since 10m --status DEAD
    acqs trace 1234            (or a callerid: acqs trace V1130172253000000001)
    acqs send Hangup 'Channel: SIP/carrier-0000002a'

They find the database as the daemon does (C{--db}, C{--db-password-file},
C{ACQS_DB_PASSWORD}, the C{--config} INI file, /etc/astguiclient.conf) and
block: each is a short script on a connection of its own.  An error is one
sentence on stderr and exit status 3; a usage error (a value the table would
cut, too) exit status 64.  What they print from rows is escaped (L{plain}).
"""

import argparse
import os
import random
import re
import time
from typing import Callable, List, Optional, Sequence, TextIO

from twisted.python import usage

from .config import ASTGUICLIENT_CONF, loadSettings
from .store.dialects import dialectFor
from .store.reads import RowView, selectRows, selectServing
from .store.records import CMD_LINE_COLUMNS, DEAD, NEW, QUEUE, SENT, UPDATED
from .store.url import SQLITE, DatabaseURL, parseURL

OK, FAILED, TIMED_OUT, ERROR = 0, 1, 2, 3
USAGE = 64  # as acqs.cli's: the command line asks for what cannot be done
# As GUI clients send it (ACQS.txt): '' for man_id and uniqueid, then 17 values.
INSERT = ("INSERT INTO vicidial_manager values('','',%s,'NEW','N',%s,'',%s,%s,"
          + ",".join(["%s"] * len(CMD_LINE_COLUMNS)) + ")")
STATUSES = (NEW, QUEUE, SENT, UPDATED, DEAD)
FOLLOW_INTERVAL = 0.05  # seconds between looks at a followed row
QUIET_NOTICE = 5.0  # a row unchanged this long gets a line saying so


class CommandError(Exception):
    """What went wrong, as one sentence for the operator."""

    status = ERROR


class BadArgument(CommandError):
    """The command line asks for what cannot be done (a value too wide for its column)."""

    status = USAGE


def plain(value) -> str:
    """
    C{value} as text safe for a terminal: control and other invisible
    characters (ESC, CR, LF, bidi overrides...) written as escapes such as
    C{\\x1b}, so that what a GUI client wrote can neither move the cursor,
    colour the screen nor fake a line of output.  (The status page escapes
    rows for HTML the same way.)
    """
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    special = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
    if c in special:
        return special[c]
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def duration(text: str) -> float:
    """Seconds from C{90}, C{90s}, C{10m}, C{2h} or C{1d}."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise ValueError(f"{text!r} is not a duration such as 90s, 10m, 2h or 1d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _positive(text: str) -> int:
    """A whole number of 1 or more."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _addSettings(command) -> None:
    command.add_argument("--config", metavar="FILE", help="acqs' INI file")
    command.add_argument("--db", metavar="URL",
                         help="database URL [db of --config, else VARDB_* of astguiclient.conf]")
    command.add_argument("--db-password-file", metavar="FILE",
                         help="file whose first line is the database password")
    command.add_argument("--server-ip", metavar="IP", help="the server's IP [VARserver_ip]")
    command.add_argument("--astguiclient", metavar="FILE", default=ASTGUICLIENT_CONF,
                         help=f"VICIdial's settings file [{ASTGUICLIENT_CONF}]")


def _settings(arguments, required: Sequence[str]):
    options = {name: getattr(arguments, name.replace("-", "_"))
               for name in ("config", "db", "db-password-file", "server-ip")}
    try:
        return loadSettings(options, astguiclient=arguments.astguiclient, required=required)
    except usage.UsageError as e:
        raise CommandError(str(e)) from None


def _connect(settings):
    url: DatabaseURL = parseURL(settings.db).withPassword(settings.db_password)
    dialect = dialectFor(url)
    if url.kind == SQLITE and not os.path.exists(url.database):
        raise CommandError(f"there is no SQLite database {url.database}")
    try:
        return url, dialect, dialect.connect(url)
    except dialect.errors as e:
        raise CommandError(f"cannot reach the database {url}: {_reason(e)}") from None


def _reason(error: Exception) -> str:
    """A database error's own text, without PyMySQL's error number around it."""
    if len(error.args) == 2 and isinstance(error.args[0], int):
        return str(error.args[1])
    return str(error) or repr(error)


def _run(arguments, out: TextIO, err: TextIO, required: Sequence[str],
         work: Callable[..., int]) -> int:
    """Run C{work(settings, url, dialect, cursor, out)}, turning failures into one sentence."""
    try:
        settings = _settings(arguments, required)
        url, dialect, connection = _connect(settings)
        try:
            return work(settings, url, dialect, connection, out)
        except dialect.errors as e:
            raise CommandError(f"the database {url} failed: {_reason(e)}") from None
        finally:
            connection.close()
    except CommandError as e:
        print(f"acqs {arguments.command}: {e}", file=err)
        return e.status
    except KeyboardInterrupt:
        print(f"acqs {arguments.command}: interrupted", file=err)
        return ERROR


# acqs rows

ROW_COLUMNS = ("man_id", "entry_date", "action", "callerid", "status", "resp", "outcome",
               "channel", "answer / reason")


def _table(rows: List[List[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)


def _short(text: Optional[str], width: int = 60) -> str:
    text = " ".join(plain(text).split(" "))
    return text if len(text) <= width else text[: width - 1] + "…"


def rowsCommand(arguments, out: TextIO, err: TextIO) -> int:
    """Print a table of the newest rows, oldest of them first."""

    def work(settings, url, dialect, connection, out):
        found = selectRows(connection.cursor(), dialect,
                           server_ip=None if arguments.all_servers else settings.server_ip,
                           status=arguments.status, since=arguments.since,
                           callerid=arguments.callerid, limit=arguments.limit)
        if not found:
            print("no rows", file=out)
            return OK
        table = [list(ROW_COLUMNS)]
        for row in reversed(found):
            said = " / ".join(t for t in (row.answer, row.reason) if t)
            table.append([plain(v) for v in (
                row.man_id, row.entry_date, row.action, row.callerid, row.status, row.response,
                row.outcome, row.channel)] + [_short(said)])
        _table(table, out)
        return OK

    return _run(arguments, out, err, () if arguments.all_servers else ("server-ip",), work)


# acqs trace

def _lines(row: RowView) -> List[str]:
    """
    The trace of a row: what it is, then what happened to it in time order
    (a synchronous Originate's call is UPDATED before Asterisk answers it),
    every value escaped (see L{plain}).
    """
    p = plain
    lines = [
        f"man_id {row.man_id}: {p(row.action)} for {p(row.server_ip)},"
        f" callerid {p(row.callerid) or '-'}",
        f"  life cycle    {' → '.join(row.lifeCycle)} (status {p(row.status)},"
        f" response {p(row.response) or '-'})",
        f"  inserted      {p(row.entry_date) or '-'}",
    ]
    lines += [f"  {'header' if i == 0 else '':<13} {p(line)}"
              for i, line in enumerate(row.cmd_lines)]
    if row.outcome is None:
        lines.append("  acqs          no record: never claimed by acqs")
        return lines
    events = [
        (row.claimed_at, "claimed", f"by {p(row.claimed_by) or '-'}"
         + (f" (back to NEW {row.attempts} times before)" if row.attempts else "")),
        (row.sending_at, "sent", f"as ActionID {p(row.action_id)}" if row.action_id else ""),
        (row.answered_at, "answer", p(row.answer)),
    ]
    if row.call_answered_at:
        events.append((row.call_answered_at, "call answered", ""))
    if row.updated_at or row.channel:
        events.append((row.updated_at, "UPDATED",
                       f"channel {p(row.channel) or '-'}, uniqueid {p(row.call) or '-'}"))
    if row.dead_at or row.hangup_cause:
        events.append((row.dead_at, "DEAD", f"cause {p(row.hangup_cause) or '-'}"))
    # Times as the database gives them sort as text; what has none comes last.
    events.sort(key=lambda event: (event[0] is None, event[0] or ""))
    for when, what, detail in events:
        lines.append(f"  {what:<13} {p(when) or '-'} {detail}".rstrip())
    lines.append(f"  outcome       {p(row.outcome)}")
    if row.reason:
        lines.append(f"  reason        {p(row.reason)}")
    return lines


def traceCommand(arguments, out: TextIO, err: TextIO) -> int:
    """Print the whole life of one row, or of every row with a callerid."""

    def work(settings, url, dialect, connection, out):
        cursor = connection.cursor()
        key = arguments.row
        found = selectRows(cursor, dialect, man_id=int(key), limit=1) if key.isdigit() else []
        if not found:
            found = selectRows(cursor, dialect, callerid=key, limit=100)
        if not found:
            print(f"acqs trace: no row has man_id or callerid {key}", file=err)
            return FAILED
        for n, row in enumerate(reversed(found)):
            if n:
                print(file=out)
            print("\n".join(_lines(row)), file=out)
        return OK

    return _run(arguments, out, err, (), work)


# acqs send

def freshCallerid(now: Optional[float] = None) -> str:
    """A VICIdial-style callerid: C{V}, MMDDhhmmss, nine digits; 20 characters."""
    stamp = time.strftime("%m%d%H%M%S", time.localtime(now))
    return f"V{stamp}{random.randrange(10 ** 9):09d}"


def _headers(lines: Sequence[str], action: str, callerid: str) -> List[str]:
    lines = list(lines)
    for line in lines:
        if "\r" in line or "\n" in line:
            raise BadArgument(f"the header {plain(line)} holds a line break")
    if action.lower() == "originate" and not any(
            line.lower().startswith("callerid:") for line in lines):
        lines.append(f"Callerid: {callerid}")  # as VICIdial: the listener knows the call by it
    if len(lines) > len(CMD_LINE_COLUMNS):
        raise BadArgument(f"a row holds at most {len(CMD_LINE_COLUMNS)} header lines,"
                          f" not {len(lines)}")
    return lines + [""] * (len(CMD_LINE_COLUMNS) - len(lines))


def _fits(dialect, cursor, action: str, callerid: str, lines: Sequence[str]) -> None:
    """
    Refuse what vicidial_manager would cut (outside strict mode MySQL cuts
    silently): an action, a callerid or a header line longer than its column.
    """
    widths = dialect.widths(cursor, "vicidial_manager")
    values = [("action", action, f"the action {plain(action)}"),
              ("callerid", callerid, f"--callerid {plain(callerid)}")]
    values += [(column, line, f"header line {n} ({plain(line.partition(':')[0])}: ...)")
               for n, (column, line) in enumerate(zip(CMD_LINE_COLUMNS, lines), 1)]
    for column, value, what in values:
        width = widths.get(column)
        if width is not None and len(value) > width:
            raise BadArgument(f"{what} is {len(value)} characters, but vicidial_manager.{column}"
                              f" holds {width}: it would be cut; nothing queued")


def _serving(dialect, cursor, server_ip: str, within: float) -> List[str]:
    """The acqs instances with a heartbeat for C{server_ip} in the last C{within} seconds."""
    try:
        return selectServing(cursor, dialect, server_ip, within)
    except dialect.errors as e:
        if dialect.missingSchema(e):  # acqs never ran on this database
            return []
        raise


def _insert(url, dialect, connection, server_ip, action, callerid, lines) -> int:
    cursor = connection.cursor()
    if url.kind != SQLITE:
        cursor.execute("SET SESSION sql_mode=''")  # as VICIdial runs: '' is the next man_id
    cursor.execute(dialect.placeholders(INSERT), (
        time.strftime("%Y-%m-%d %H:%M:%S"), server_ip, action, callerid, *lines))
    man_id = cursor.lastrowid
    if url.kind == SQLITE:  # numbered by a trigger, which lastrowid does not see
        cursor.execute("SELECT MAX(man_id) FROM vicidial_manager WHERE callerid = ?",
                       (callerid,))
        [(man_id,)] = cursor.fetchall()
    connection.commit()
    return man_id


def _ended(row: RowView) -> Optional[int]:
    """The exit status once the row is done, else None (an Originate: once its call ended)."""
    if row.outcome in ("refused", "dead_check", "unknown"):
        return FAILED
    if row.answered_at is None:
        return None
    if row.response != "Y":
        return FAILED
    if (row.action or "").lower() == "originate" and row.status != DEAD:
        return None
    return OK


def _step(row: RowView, status: str) -> str:
    if status == "QUEUE":
        return f"QUEUE   claimed by {row.claimed_by or 'a sender acqs does not know'}"
    if status == "SENT":
        return "SENT    marked for Asterisk" + (f" at {row.sending_at}" if row.sending_at else "")
    if status == "UPDATED":
        return f"UPDATED {row.channel or '-'} uniqueid {row.call or '-'}"
    if status == DEAD:
        return "DEAD    " + (row.reason or (f"cause {row.hangup_cause}" if row.hangup_cause
                                            else "the call ended"))
    return status


def _changes(before: Optional[RowView], row: RowView) -> List[str]:
    """
    What moved since C{before}, one line each: every status the row passed
    (QUEUE and SENT may last less than a look), a better channel, the answer.
    """
    said = []
    if before is not None and row.attempts != before.attempts and row.status == NEW:
        said.append(f"NEW again ({row.reason or 'released'}; {row.attempts} times)")
        return said
    passed = before.lifeCycle if before is not None else []
    for status in row.lifeCycle[len(passed):]:
        said.append(_step(row, status))
    if (before is not None and "UPDATED" in passed and row.status == "UPDATED"
            and (row.channel, row.call) != (before.channel, before.call)):
        said.append(_step(row, "UPDATED"))
    if row.answered_at and (before is None or not before.answered_at):
        said.append(f"answer  {row.response or '-'}: {row.answer or ''}".rstrip())
    return said


def sendCommand(arguments, out: TextIO, err: TextIO) -> int:
    """Queue a row as a GUI client does, then follow it until it ends or the timeout."""

    def work(settings, url, dialect, connection, out):
        callerid = arguments.callerid or freshCallerid()
        lines = _headers(arguments.headers, arguments.action, callerid)
        _fits(dialect, connection.cursor(), arguments.action, callerid, lines)
        if not arguments.anyway and not _serving(dialect, connection.cursor(),
                                                 settings.server_ip, settings.stale_after):
            print(f"acqs send: no acqs serves {settings.server_ip} (none has shown a sign of"
                  f" life in the last {settings.stale_after:g} s), so the row would wait and"
                  f" go out whenever one starts: nothing queued (--anyway queues it all the"
                  f" same, e.g. for VICIdial's own ACQS)", file=err)
            return FAILED
        man_id = _insert(url, dialect, connection, settings.server_ip, arguments.action,
                         callerid, lines)
        print(f"man_id {man_id}: {arguments.action} for {settings.server_ip},"
              f" callerid {callerid}", file=out, flush=True)
        started = quietSince = time.monotonic()
        before = None
        while True:
            [row] = selectRows(connection.cursor(), dialect, man_id=man_id, limit=1)
            connection.commit()  # the next look sees what was committed since
            now = time.monotonic()
            for line in _changes(before, row):
                print(f"  {now - started:6.2f}s  {plain(line)}", file=out, flush=True)
                quietSince = now
            before = row
            status = _ended(row)
            if status is not None:
                print(plain(f"ended: {row.status}, response {row.response or '-'},"
                            f" outcome {row.outcome or '-'}") + f" after {now - started:.2f} s",
                      file=out, flush=True)
                return status
            if now - started >= arguments.timeout:
                print(f"acqs send: man_id {man_id} still {row.status} after"
                      f" {arguments.timeout:g} s; it goes on without me", file=err)
                return TIMED_OUT
            if now - quietSince >= QUIET_NOTICE:
                hint = " (is acqs running for this server?)" if row.status == NEW else ""
                print(f"  {now - started:6.2f}s  still {row.status}{hint}",
                      file=out, flush=True)
                quietSince = now
            time.sleep(FOLLOW_INTERVAL)

    return _run(arguments, out, err, ("server-ip",), work)


def register(subcommands) -> None:
    """Add C{rows}, C{trace} and C{send} to an argparse C{subcommands}."""
    command = subcommands.add_parser(
        "rows", help="a table of this server's newest rows with acqs' outcome and answer",
        description="The newest rows of vicidial_manager (of this server unless "
        "--all-servers), oldest first, with acqs' outcome and Asterisk's answer.")
    command.add_argument("--status", type=str.upper, metavar="S", choices=STATUSES,
                         help="only rows in status S (NEW, QUEUE, SENT, UPDATED, DEAD)")
    command.add_argument("--since", type=duration, metavar="T",
                         help="only rows inserted in the last T (90s, 10m, 2h, 1d)")
    command.add_argument("--callerid", metavar="X", help="only rows of callerid X")
    command.add_argument("--limit", type=_positive, default=50, metavar="N",
                         help="at most N rows [50]")
    command.add_argument("--all-servers", action="store_true", help="rows of every server")
    _addSettings(command)
    command.set_defaults(run=rowsCommand)

    command = subcommands.add_parser(
        "trace", help="one row's whole life: claim, send, answer, UPDATED, DEAD, reason",
        description="Everything acqs recorded of a row (a man_id), or of every row "
        "of a callerid, in time order.  Exit 0 when found, 1 when not, 3 on errors.")
    command.add_argument("row", metavar="MAN_ID|CALLERID")
    _addSettings(command)
    command.set_defaults(run=traceCommand)

    command = subcommands.add_parser(
        "send", help="queue an action as a GUI client does, then follow its row",
        description="INSERT a row as VICIdial's GUI clients do (the positional INSERT, a "
        "fresh callerid; an Originate gets a Callerid header with it unless it has one), "
        "then print each change of the row until it ends: the answer of an action, the "
        "hangup of an Originate's call.  Exit 0: done (answered Success; an "
        "Originate's call ended); 1: refused, failed or answered otherwise, or no acqs "
        "serves the server IP (nothing queued); 2: still going at --timeout; 3: error; "
        "64: a value that would be cut, or another usage error (nothing queued).",
        epilog="example: acqs send Originate 'Channel: Local/8600051@default' "
        "'Context: default' 'Exten: 8600051' 'Priority: 1'")
    command.add_argument("action", metavar="ACTION", help="the AMI action, e.g. Hangup")
    command.add_argument("headers", metavar="'Header: value'", nargs="*",
                         help="the row's cmd lines, in order (at most 10)")
    command.add_argument("--callerid", metavar="X", help="the row's callerid [a fresh one]")
    command.add_argument("--timeout", type=duration, default=60.0, metavar="T",
                         help="stop following after T [60s]")
    command.add_argument("--anyway", action="store_true",
                         help="queue the row even when no acqs serves the server IP")
    _addSettings(command)
    command.set_defaults(run=sendCommand)


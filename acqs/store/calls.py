"""
The listener's side of the store: call updates written back to rows
(UPDATED, a dialing leg's channel, a masqueraded call's new uniqueid, DEAD,
and the catch-up's DEAD of calls that ended unseen),
together with the sender's answers when the writer batches them; and the
calls the listener tracks.

The listener's updates match rows by callerid (UPDATED) and by the whole
uniqueid kept in acqs_action (DEAD): vicidial_manager.uniqueid holds only
20 characters, and with Asterisk's C{systemname} set uniqueids are longer
(C{vicibox-ast01-1796107644.1}), so the cut value names no call.  A row
with no whole uniqueid of acqs' (UPDATED by another listener) is matched by
vicidial_manager.uniqueid, only by a uniqueid short enough not to have been
cut.  acqs_action.live marks the rows whose call acqs holds for up.

One transaction reads the rows the updates may move, applies the rules in
order in memory, then writes each changed row once, the C{response} of an
answer that comes with its call's updates in the same statement.  UPDATED applies to
QUEUE, SENT and UPDATED rows, DEAD to any row not DEAD (a recording's row
stays as it is); DEAD is final.  A dialing leg gives SENT rows its channel
and uniqueid (they stay SENT), and UPDATED rows still on a Local channel
its uniqueid only (what VICIdial's readers see stays unresolved until it
rings); never QUEUE rows, nor rows on a non-Local channel.
"""

from typing import Dict, Iterable, List, Optional, Sequence, Union

import attr

from .records import (
    DEAD,
    QUEUE,
    SENT,
    UPDATED,
    CallDead,
    CallDialing,
    CallEnded,
    CallMoved,
    CallUpdated,
    SendResult,
    TrackedCalls,
)
from .sending import recordAnswers, writeResponses
from .transaction import (
    CALLERID,
    CAUSE,
    CHANNEL,
    RECORDING_EXTENS,
    TEXT,
    UNIQUEID,
    WHOLE_UNIQUEID,
    Transaction,
    caseOf,
    chunks,
    cut,
    marks,
)

Update = Union[CallUpdated, CallDialing, CallMoved, CallDead, CallEnded]
# Updates that name their rows by uniqueid (the others by callerid).
_BY_UNIQUEID = (CallDead, CallMoved)

# In a row's changes: the database's current time.
_NOW = object()


@attr.s(auto_attribs=True, eq=False)
class _Row:
    """A row the listener's updates may move, as one transaction sees it."""

    man_id: int
    status: str
    channel: str
    callerid: str
    uniqueid: str  # the whole one if acqs has it, else vicidial_manager's
    whole: bool  # uniqueid is acqs' whole one
    recording: bool
    answered: bool  # a live call was answered, and no event of it was seen
    moved: bool = False  # status, channel or uniqueid changed
    changed: Dict[str, object] = attr.Factory(dict)  # acqs_action columns to write


def record(t: Transaction, server_ip: str, results: Sequence[SendResult],
           updates: Sequence[Update]) -> int:
    """Asterisk's answers, then the call updates: how many rows the updates moved."""
    responses = recordAnswers(t, results) if results else {}
    if not updates:
        writeResponses(t, responses)
        return 0
    return applyUpdates(t, server_ip, updates, responses)


def applyUpdates(t: Transaction, server_ip: str, updates: Sequence[Update],
                 responses: Optional[Dict[int, str]] = None) -> int:
    """
    The call updates of C{server_ip}'s rows, in order: how many rows they
    moved.  C{responses} (L{recordAnswers}) go with the rows' writes.
    """
    responses = responses or {}
    rows = _callRows(t, server_ip, updates)
    for man_id in responses:
        row = rows.get(man_id)
        if row is not None and row.status == QUEUE:  # as writeResponses would make it
            row.status, row.moved = SENT, True
    byCallerid: Dict[str, List[_Row]] = {}
    for row in rows.values():
        byCallerid.setdefault(row.callerid.lower(), []).append(row)
    changes = 0
    for update in updates:
        if isinstance(update, CallUpdated):
            changes += _updated(byCallerid, update)
        elif isinstance(update, CallDialing):
            changes += _dialing(byCallerid, update)
        elif isinstance(update, CallMoved):
            changes += _moved(rows.values(), update)
        elif isinstance(update, CallDead):
            changes += _dead(rows.values(), update)
        else:
            changes += _ended(byCallerid, update)
    _writeCalls(t, server_ip, [row for row in rows.values() if row.changed or row.moved],
                responses)
    writeResponses(t, {m: r for m, r in responses.items()
                       if m not in rows or not rows[m].moved})
    return changes


def _callRows(t: Transaction, server_ip: str, updates: Sequence[Update]) -> Dict[int, _Row]:
    """The rows of C{server_ip} that C{updates} may move, by man_id (one query, or two)."""
    callerids = sorted({cut(u.callerid, CALLERID) for u in updates
                        if not isinstance(u, _BY_UNIQUEID) and u.callerid})
    uniqueids = sorted({cut(u.uniqueid, WHOLE_UNIQUEID) for u in updates
                        if isinstance(u, _BY_UNIQUEID) and u.uniqueid})
    columns = (
        "v.man_id, v.status, v.channel, v.callerid, v.uniqueid, v.cmd_line_d,"
        " a.uniqueid, a.live, a.updated_at"
    )
    live = " AND v.status IN ('QUEUE', 'SENT', 'UPDATED')"
    parts, params = [], []
    for chunk in chunks(callerids):
        parts.append(f"SELECT {columns} FROM vicidial_manager v LEFT JOIN acqs_action a"
                     f" ON a.man_id = v.man_id WHERE v.server_ip = %s{live}"
                     f" AND v.callerid IN ({marks(len(chunk))})")
        params += [server_ip, *chunk]
    for chunk in chunks(uniqueids):
        parts.append(f"SELECT {columns} FROM acqs_action a JOIN vicidial_manager v"
                     f" ON v.man_id = a.man_id WHERE a.uniqueid IN ({marks(len(chunk))})"
                     f" AND v.server_ip = %s{live}")
        params += [*chunk, server_ip]
    found = t.select(" UNION ALL ".join(parts), params) if parts else []
    # A row UPDATED by another listener has no whole uniqueid of acqs':
    # matched by its own, only when that is short enough not to be cut.
    known = {row[6] for row in found}
    short = [u for u in uniqueids if len(u) <= UNIQUEID and u not in known]
    for chunk in chunks(short):
        found += t.select(
            f"SELECT {columns} FROM vicidial_manager v LEFT JOIN acqs_action a"
            f" ON a.man_id = v.man_id WHERE v.server_ip = %s{live}"
            " AND v.uniqueid IN ({keys}) AND a.uniqueid IS NULL",
            [server_ip, *chunk], keys=marks(len(chunk)))
    rows = {}
    for (man_id, status, channel, callerid, cutUniqueid, lineD, whole, isLive,
         updated) in found:
        rows[man_id] = _Row(
            man_id=man_id, status=status.upper(), channel=channel or "",
            callerid=callerid or "", uniqueid=whole or cutUniqueid or "", whole=bool(whole),
            recording=(lineD or "") in RECORDING_EXTENS,
            answered=bool(isLive) and updated is None,
        )
    return rows


def _updated(byCallerid: Dict[str, List[_Row]], update: CallUpdated) -> int:
    callerid = cut(update.callerid, CALLERID).lower()
    uniqueid = cut(update.uniqueid, WHOLE_UNIQUEID)
    changes = 0
    for row in byCallerid.get(callerid, ()) if callerid else ():
        if row.status == DEAD or (row.status == UPDATED and row.channel == update.channel
                                  and row.uniqueid == uniqueid):
            continue
        row.status, row.channel, row.uniqueid, row.whole = (
            UPDATED, cut(update.channel, CHANNEL), uniqueid, True)
        row.answered, row.moved = False, True
        row.changed.update(uniqueid=uniqueid, updated_at=_NOW, live=1)
        changes += 1
    return changes


def _dialing(byCallerid: Dict[str, List[_Row]], update: CallDialing) -> int:
    callerid = cut(update.callerid, CALLERID).lower()
    uniqueid = cut(update.uniqueid, WHOLE_UNIQUEID)
    changes = 0
    for row in byCallerid.get(callerid, ()) if callerid else ():
        if row.status == SENT:
            if row.channel == cut(update.channel, CHANNEL) and row.uniqueid == uniqueid:
                continue
            row.channel, row.moved = cut(update.channel, CHANNEL), True
            changes += 1
        elif row.status != UPDATED or not _isLocal(row.channel) or row.uniqueid == uniqueid:
            continue
        row.uniqueid, row.whole, row.answered = uniqueid, True, False
        row.changed.update(uniqueid=uniqueid, live=1)
    return changes


def _isLocal(channel: str) -> bool:
    return channel[:6].lower() == "local/"


def _named(row: _Row, uniqueid: str) -> bool:
    """Whether C{row} is of the channel with C{uniqueid} (cut only if it was short)."""
    return (bool(uniqueid) and row.status != DEAD and row.uniqueid == uniqueid
            and (row.whole or len(uniqueid) <= UNIQUEID))


def _moved(rows: Iterable[_Row], update: CallMoved) -> int:
    uniqueid = cut(update.uniqueid, WHOLE_UNIQUEID)
    newUniqueid = cut(update.newUniqueid, WHOLE_UNIQUEID)
    changes = 0
    for row in rows:
        if not _named(row, uniqueid):
            continue
        row.uniqueid, row.whole, row.moved = newUniqueid, True, True
        row.changed.update(uniqueid=newUniqueid)
        changes += 1
    return changes


def _dead(rows: Iterable[_Row], update: CallDead) -> int:
    uniqueid = cut(update.uniqueid, WHOLE_UNIQUEID)
    changes = 0
    for row in rows:
        if not _named(row, uniqueid):
            continue
        # The call ended either way; a recording's row stays as it is (VICIdial's rule).
        row.changed.update(dead_at=_NOW, live=None,
                           hangup_cause=cut(update.cause, CAUSE) or None)
        if row.recording:
            continue
        row.status, row.moved = DEAD, True
        if update.channel:
            row.channel = cut(update.channel, CHANNEL)
        changes += 1
    return changes


def _ended(byCallerid: Dict[str, List[_Row]], update: CallEnded) -> int:
    changes = 0
    for row in byCallerid.get(cut(update.callerid, CALLERID).lower(), ()):
        if row.status != SENT or not row.answered:
            continue
        row.status, row.answered, row.moved = DEAD, False, True
        row.changed.update(dead_at=_NOW, live=None,
                           outcome="ended_unseen", reason=cut(update.reason, TEXT))
        changes += 1
    return changes


def _writeCalls(t: Transaction, server_ip: str, rows: List[_Row],
                responses: Dict[int, str]) -> None:
    """
    acqs_action first, then every moved vicidial_manager row, with the
    C{responses} of those: one statement each.
    """
    new = t.dialect.inserted

    def keep(column: str) -> str:
        return f"COALESCE({new(column)}, {column})"

    t.upsertActions(
        "man_id, server_ip, outcome, uniqueid, updated_at, dead_at, hangup_cause, live,"
        " reason",
        "%s, %s, %s, %s, CASE WHEN %s = 1 THEN {now} END, CASE WHEN %s = 1 THEN {now} END,"
        " %s, %s, %s",
        [(row.man_id, server_ip, row.changed.get("outcome", "external"),
          row.changed.get("uniqueid"), int("updated_at" in row.changed),
          int("dead_at" in row.changed), row.changed.get("hangup_cause"),
          # 1: live now; 0: not live any more; NULL: as it was.
          None if "live" not in row.changed else int(bool(row.changed["live"])),
          row.changed.get("reason"))
         for row in rows if row.changed],
        server_ip=keep("server_ip"),
        # An existing record keeps its outcome, unless the catch-up ended it.
        outcome=f"CASE WHEN {new('outcome')} = 'ended_unseen' THEN {new('outcome')}"
                " ELSE outcome END",
        uniqueid=keep("uniqueid"),
        updated_at=keep("updated_at"),
        dead_at=keep("dead_at"),
        hangup_cause=keep("hangup_cause"),
        live=f"COALESCE({new('live')}, live)",
        reason=keep("reason"),
    )
    moved = [row for row in rows if row.moved]
    for chunk in chunks(moved):
        ids = [row.man_id for row in chunk]
        cases = {}
        params: List[object] = []
        for column, value in (("status", lambda r: r.status),
                              ("channel", lambda r: r.channel),
                              ("uniqueid", lambda r: cut(r.uniqueid, UNIQUEID))):
            cases[column] = caseOf(len(chunk))
            for row in chunk:
                params += [row.man_id, value(row)]
        answered = [row.man_id for row in chunk if row.man_id in responses]
        if not answered:
            t.write(
                "UPDATE vicidial_manager SET status = {status}, channel = {channel},"
                " uniqueid = {uniqueid} WHERE man_id IN ({ids}) AND status <> 'DEAD'",
                params + ids,
                ids=marks(len(ids)),
                **cases,
            )
            continue
        # The answer's response is written even where the row turned DEAD
        # meanwhile, which keeps its status, channel and uniqueid; status is
        # set last (MySQL's later assignments see the earlier ones).
        t.write(
            "UPDATE vicidial_manager SET response = {response},"
            " channel = CASE WHEN status = 'DEAD' THEN channel ELSE {channel} END,"
            " uniqueid = CASE WHEN status = 'DEAD' THEN uniqueid ELSE {uniqueid} END,"
            " status = CASE WHEN status = 'DEAD' THEN status ELSE {status} END"
            " WHERE man_id IN ({ids}) AND (status <> 'DEAD' OR man_id IN ({answered}))",
            [v for m in answered for v in (m, responses[m])] + params[2 * len(chunk):]
            + params[:2 * len(chunk)] + ids + answered,
            response="CASE man_id" + " WHEN %s THEN %s" * len(answered) + " ELSE response END",
            ids=marks(len(ids)),
            answered=marks(len(answered)),
            **cases,
        )


def trackedCalls(t: Transaction, server_ip: str, ringWindow: float) -> TrackedCalls:
    """The calls of C{server_ip} the listener must follow (claimed, ringing, up)."""
    # Each query reads one index range: claimed rows (serverstat), rows
    # sent within the ring window (acqs_action.sent), live calls
    # (acqs_action.live); none is sorted.
    callerids: Dict[str, None] = {}
    for (callerid,) in t.select(
        "SELECT callerid FROM vicidial_manager WHERE server_ip = %s AND status = 'QUEUE'"
        " AND action = 'Originate'",
        (server_ip,),
    ) + t.select(
        "SELECT v.callerid FROM acqs_action a JOIN vicidial_manager v ON v.man_id = a.man_id"
        " WHERE a.server_ip = %s AND a.sending_at >= {ago} AND v.status = 'SENT'"
        " AND v.action = 'Originate'",
        (server_ip, t.dialect.agoParameter(ringWindow)),
    ):
        if callerid:
            callerids[callerid] = None
    uniqueids: Dict[str, str] = {}  # and their channels
    answered: Dict[str, None] = {}
    for callerid, status, uniqueid, channel in t.select(
        "SELECT v.callerid, v.status, a.uniqueid, v.channel FROM acqs_action a"
        " JOIN vicidial_manager v ON v.man_id = a.man_id"
        " WHERE a.server_ip = %s AND a.live = 1 AND v.status IN ('SENT', 'UPDATED')",
        (server_ip,),
    ):
        if callerid:
            callerids[callerid] = None
        if uniqueid:
            uniqueids[uniqueid] = channel or ""
        elif status.upper() == SENT and callerid:
            answered[callerid] = None
    return TrackedCalls(tuple(callerids), tuple(uniqueids), tuple(answered),
                        tuple(uniqueids.values()))

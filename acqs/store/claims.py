"""
Claims: NEW rows of a server_ip to QUEUE (or straight to SENT), for one
claimant; the dead check; and the claim lock that serialises claims where
rows cannot be skipped.

On MySQL/MariaDB, one transaction selects the oldest NEW rows of a
server_ip with C{FOR UPDATE SKIP LOCKED}, so instances serving the same
server_ip (a hot standby) never claim the same row and never wait for each
other.  That needs InnoDB and MariaDB 10.6+ or MySQL 8.0+, which the store
finds out once (L{ServerInfo}).  Elsewhere (VICIdial's MyISAM table,
MariaDB 10.3-10.5, MySQL 5.7) claims are serialised with
C{GET_LOCK('acqs-claim-<server_ip>@<database>')} around a plain C{FOR UPDATE}, and a
warning says so.  On SQLite, C{BEGIN IMMEDIATE} lets one writer in at a
time.  A claim never waits for rows: what wakes the sender up
(L{acqs.wakeup}) looks for them apart, outside any transaction, so that it
holds no lock a claim or an ALTER could wait for.

Each claim has a token of its own (see L{acqs.store.sending}).  Rows the
claimant will not send (its C{refuse} rule) and rows the dead check stops
become DEAD in the claim itself, with response N.  A claim may mark its
first rows sending itself, for sessions ready to send them.

Originates may have a room of their own (C{originates}): a synchronous
Originate holds its session until its call answers, so Originates beyond
that room stay NEW, and rows of other actions behind them are still
claimed, oldest first.

The dead check (VICIdial's): a claimed Hangup or Redirect whose callerid
already belongs to a DEAD row of the same server_ip is not sent, unless one
of its cmd lines is C{Exten: 8309} or C{Exten: 8310} (a recording); it
becomes DEAD with response N, outcome C{dead_check} and the reason.  An
empty callerid identifies no call and is never dead-checked.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import attr

from .dialects import INSERTED
from .records import CMD_LINE_COLUMNS, DEAD, NEW, QUEUE, ActionRow, ServerInfo
from .transaction import RECORDING_EXTENS, TEXT, Transaction, chunks, cut, marks

DEAD_CHECKED_ACTIONS = ("hangup", "redirect")

_ROW_COLUMNS = "man_id, server_ip, action, callerid, " + ", ".join(CMD_LINE_COLUMNS)
# A new claim starts a fresh record: nothing of an earlier send of the row
# (or of a flushed row whose man_id came round again) survives but the
# reason and the attempt count.
_CLAIM_RESETS = {c: "NULL" for c in (
    "sending_at", "answered_at", "response_text", "action_id", "call_answered_at",
    "uniqueid", "updated_at", "dead_at", "hangup_cause", "live")}

Refuse = Optional[Callable[[ActionRow], Optional[str]]]
# What a claim did: the rows claimed, and (man_id, reason) of those it
# dead-checked and of those it refused.
Claimed = Tuple[List[ActionRow], List[Tuple[int, str]], List[Tuple[int, str]]]


def underClaimLock(t: Transaction, server_ip: str, info: ServerInfo,
                   work: Callable[..., Any], *args: Any) -> Any:
    """Run C{work(t, server_ip, *args)}, serialised with other claims if need be."""
    if not t.dialect.serialised(info):
        return work(t, server_ip, *args)
    t.dialect.lockClaims(t, server_ip)
    try:
        result = work(t, server_ip, *args)
    except BaseException:
        t.dialect.unlockClaims(t, server_ip, commit=False)
        raise
    t.dialect.unlockClaims(t, server_ip, commit=True)
    return result


def isOriginate(action: Optional[str]) -> bool:
    """Whether a row's C{action} is an Originate (as L{acqs.actions} reads it)."""
    return (action or "").strip().lower() == "originate"


# The rows that are no Originate, in SQL (VICIdial writes "Originate"; a
# row this misses is sorted out by isOriginate).
NO_ORIGINATE = " AND COALESCE(action, '') <> 'Originate'"
ONLY_ORIGINATES = " AND action = 'Originate'"


def _oldestNew(t: Transaction, server_ip: str, info: ServerInfo, limit: int,
               after: int = 0, originates: bool = True) -> List[tuple]:
    return t.select(
        "SELECT {columns} FROM vicidial_manager WHERE server_ip = %s AND status = 'NEW'"
        " AND man_id > %s{which} ORDER BY man_id LIMIT %s{claimLock}",
        (server_ip, after, limit),
        columns=_ROW_COLUMNS,
        which="" if originates else NO_ORIGINATE,
        claimLock=t.dialect.claimLock(info),
    )


def _found(t: Transaction, server_ip: str, info: ServerInfo, limit: int,
           originates: Optional[int]) -> List[tuple]:
    """
    The oldest NEW rows: up to C{limit}, or, with C{originates}, up to
    C{limit} that are no Originate and up to C{originates} Originates.
    """
    if originates is None:
        return _oldestNew(t, server_ip, info, limit)
    found = _oldestNew(t, server_ip, info, limit + originates, originates=originates > 0)
    rows, others, left = [], 0, originates
    for row in found:
        if isOriginate(row[2]):
            if left > 0:
                left -= 1
                rows.append(row)
        elif others < limit:
            others += 1
            rows.append(row)
    if others < limit and len(found) == limit + originates and found:
        # Originates beyond their room filled the look: others may lie behind.
        for row in _oldestNew(t, server_ip, info, limit - others, found[-1][0],
                              originates=False):
            if not isOriginate(row[2]):
                rows.append(row)
    return rows


def claim(t: Transaction, server_ip: str, limit: int, instance: str, token: str,
          info: ServerInfo, send: int, refuse: Refuse,
          originates: Optional[int] = None) -> Claimed:
    """
    Claim up to C{limit} NEW rows of C{server_ip} for C{instance} under
    C{token} (with C{originates}: up to C{limit} rows that are no
    Originate, and up to C{originates} Originates), marking the first
    C{send} of them sending where the table is transactional; dead-checked
    and refused rows become DEAD.
    """
    rows = [_actionRow(row, token) for row in _found(t, server_ip, info, limit, originates)]
    checked = _deadChecked(t, server_ip, rows)
    refused = {}
    for row in rows:
        reason = refuse(row) if refuse is not None and row.man_id not in checked else None
        if reason:
            refused[row.man_id] = cut(reason, TEXT)
    claimed = [row for row in rows if row.man_id not in checked and row.man_id not in refused]
    # The first ones go to AMI at once, on sessions already logged in; not
    # on MyISAM, whose SENT would outlive a failed transaction and its
    # record, leaving a row nobody sends or recovers.
    marked = [attr.evolve(row, marked=True)
              for row in claimed[:send if info.transactional else 0]]
    claimed = marked + claimed[len(marked):]
    t.upsertActions(
        "man_id, server_ip, claimed_by, claim_token, claimed_at, sending_at, outcome, reason",
        "%s, %s, %s, %s, {now}, CASE WHEN %s = 'sending' THEN {now} END, %s, %s",
        [(row.man_id, server_ip, instance, token, outcome, outcome, None)
         for row, outcome in ((r, "sending" if r.marked else "queued") for r in claimed)]
        + [(man_id, server_ip, instance, token, outcome, outcome, reason)
           for outcome, fates in (("dead_check", checked), ("refused", refused))
           for man_id, reason in fates.items()],
        server_ip=INSERTED,
        claimed_by=INSERTED,
        claim_token=INSERTED,
        claimed_at=INSERTED,
        outcome=INSERTED,
        reason=f"COALESCE({t.dialect.inserted('reason')}, reason)",
        **dict(_CLAIM_RESETS, sending_at=INSERTED),
    )
    _claimStatus(t, claimed)
    t.setStatus(list(checked) + list(refused), DEAD, (NEW,), response="N")
    return claimed, sorted(checked.items()), sorted(refused.items())


def _claimStatus(t: Transaction, claimed: Sequence[ActionRow]) -> None:
    """Claimed rows NEW to QUEUE, or to SENT where the claim marked them: one UPDATE."""
    for chunk in chunks(claimed):
        marked = [row.man_id for row in chunk if row.marked]
        if not marked:
            t.setStatus([row.man_id for row in chunk], QUEUE, (NEW,))
            continue
        ids = [row.man_id for row in chunk]
        t.write(
            "UPDATE vicidial_manager SET status = CASE WHEN man_id IN ({marked})"
            " THEN 'SENT' ELSE 'QUEUE' END WHERE status = 'NEW' AND man_id IN ({ids})",
            marked + ids,
            marked=marks(len(marked)),
            ids=marks(len(ids)),
        )


def _deadChecked(t: Transaction, server_ip: str, rows: List[ActionRow]) -> Dict[int, str]:
    """The rows that the dead check stops, with the reason (one query)."""
    candidates = [
        row
        for row in rows
        if row.action.lower() in DEAD_CHECKED_ACTIONS
        and row.callerid
        and not any(line.strip() in RECORDING_EXTENS for line in row.cmd_lines)
    ]
    if not candidates:
        return {}
    callerids = sorted({row.callerid for row in candidates})
    found = t.select(
        "SELECT callerid, MIN(man_id) FROM vicidial_manager"
        " WHERE server_ip = %s AND status = 'DEAD' AND callerid IN ({callerids})"
        " GROUP BY callerid",
        [server_ip] + callerids,
        callerids=marks(len(callerids)),
    )
    dead = {callerid.lower(): man_id for callerid, man_id in found}
    return {
        row.man_id: (
            f"{row.action} not sent: callerid {row.callerid} already belongs to a "
            f"DEAD call (man_id {dead[row.callerid.lower()]})"
        )
        for row in candidates
        if row.callerid.lower() in dead
    }


def _actionRow(row: tuple, token: str) -> ActionRow:
    man_id, server_ip, action, callerid, *lines = row
    return ActionRow(
        man_id=man_id,
        server_ip=server_ip,
        action=action or "",
        callerid=callerid or "",
        cmd_lines=tuple(line or "" for line in lines),
        claim=token,
    )

"""
Instances and their stranded rows: an instance takes its name at start-up
(L{register}), shows it is alive (L{heartbeat}), and takes back the rows of
claimants that are gone (L{recoverStranded}).

The recovery rule: a row is stranded when its claimant is gone, that is
when it was claimed by

  - the instance that asks, but not through this very store object: a
    previous run of that instance (so the call is safe both at start-up and
    periodically);
  - another instance, which has shown no sign of life (a heartbeat or a
    claim) for C{staleAfter} seconds;
  - nobody acqs knows (no claim record: the Perl sender, or a claim cut
    short on a MyISAM table), and its entry_date is more than
    C{staleAfter} seconds old.

A stranded row that was never marked sending (QUEUE, or SENT with its
record still C{queued}) certainly never reached Asterisk: it goes back to
NEW to be sent later (outcome C{requeued}, attempts + 1, the reason kept).
A row that was marked sending but has no answer recorded may have reached
Asterisk: it keeps its status, with response N (outcome C{unknown}, the
reason kept), and is never sent again.  So nothing is silently lost and
nothing is silently sent twice; recovered rows are logged, and each one's
reason is kept in acqs_action.  A store's claims and recoveries take turns,
so a recovery always knows which rows its own store has in hand.

This holds as long as the sender marks a row sending (and the mark is
committed) before it writes the action to AMI, and sends only what the mark
returned.
"""

from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

from .dialects import INSERTED
from .records import SENT, InstanceConflict
from .transaction import HOST, INSTANCE, Transaction, cut

# A stranded row as read: (man_id, claim token, outcome); no record, no outcome.
Read = Tuple[int, Optional[str], Optional[str]]
# (man_id, claimant) of the rows requeued, and of those whose fate is unknown.
Recovered = Tuple[List[Tuple[int, Optional[str]]], List[Tuple[int, Optional[str]]]]


def recoverStranded(t: Transaction, server_ip: str, instance: str, staleAfter: float,
                    inFlight: FrozenSet[int], unclaimedAfter: Optional[float] = None
                    ) -> Recovered:
    """
    Take back the stranded rows of C{server_ip}, but those in C{inFlight}
    (the asking store's own claims); rows no acqs claimed count after
    C{unclaimedAfter} seconds (C{staleAfter} if None).
    """
    ago = t.dialect.agoParameter(staleAfter)
    unclaimedAfter = staleAfter if unclaimedAfter is None else unclaimedAfter
    # A claimant is gone: a previous run of this instance, or an instance
    # silent for staleAfter; rows no acqs claimed count after unclaimedAfter
    # (at once when 0, whatever the entry_date of the GUI client's clock).
    params: Tuple = (server_ip, instance, ago, ago)
    unclaimed = "a.claimed_by IS NULL"
    if unclaimedAfter > 0:
        unclaimed += " AND (v.entry_date IS NULL OR v.entry_date < {ago})"
        params += (t.dialect.agoParameter(unclaimedAfter),)
    gone = (
        " AND (a.claimed_by = %s"
        " OR (a.claimed_by IS NOT NULL AND a.claimed_at < {ago}"
        " AND (i.heartbeat_at IS NULL OR i.heartbeat_at < {ago}))"
        f" OR ({unclaimed}))"
    )
    joins = (
        " LEFT JOIN acqs_instance i"
        " ON i.server_ip = v.server_ip AND i.instance = a.claimed_by"
    )
    columns = "v.man_id, a.claimed_by, a.claim_token, a.outcome, a.sending_at IS NOT NULL"
    stranded = t.select(
        f"SELECT {columns} FROM vicidial_manager v"
        " LEFT JOIN acqs_action a ON a.man_id = v.man_id" + joins
        + " WHERE v.server_ip = %s AND v.status = 'QUEUE'" + gone,
        params,
    )
    # Marked sending (SENT, or moved on), or half-marked (SENT, still queued).
    stranded += t.select(
        f"SELECT {columns} FROM acqs_action a"
        " JOIN vicidial_manager v ON v.man_id = a.man_id" + joins
        + " WHERE a.outcome IN ('queued', 'sending') AND v.server_ip = %s"
        " AND (v.status = 'SENT' OR (a.outcome = 'sending' AND v.status <> 'QUEUE'))"
        + gone,
        params,
    )
    requeue: List[Read] = []
    unknown: List[Read] = []
    claimants: Dict[int, Optional[str]] = {}
    for man_id, claimant, token, outcome, marked in sorted(stranded):
        if man_id in inFlight or man_id in claimants:
            continue
        claimants[man_id] = claimant
        (unknown if marked else requeue).append((man_id, token, outcome))
    # Only what nobody took in the meantime (a claimant coming back marks
    # under the same token, a new claim has its own).
    requeued = _stillAsRead(t, requeue)
    unknowns = _stillAsRead(t, unknown)
    t.requeue([(m, _requeuedReason(claimants[m], unclaimedAfter)) for m in requeued],
              "requeued")
    t.finish([(m, _unknownReason(claimants[m])) for m in unknowns], SENT, "unknown")
    return ([(m, claimants[m]) for m in requeued], [(m, claimants[m]) for m in unknowns])


def _stillAsRead(t: Transaction, rows: Sequence[Read]) -> List[int]:
    """Those of C{rows} whose record is unchanged, locked."""
    kept = [man_id for man_id, _, outcome in rows if outcome is None]  # no record at all
    byOutcome: Dict[str, List[Tuple[int, Optional[str]]]] = {}
    for man_id, token, outcome in rows:
        if outcome is not None:
            byOutcome.setdefault(outcome, []).append((man_id, token))
    for outcome, claims in byOutcome.items():
        kept += t.ownRecords(claims, (outcome,))
    return sorted(kept)


def _requeuedReason(claimant: Optional[str], unclaimedAfter: float) -> str:
    if claimant is None and unclaimedAfter <= 0:
        return ("found in QUEUE with no acqs claim while no other sender runs on this box"
                " (left by VICIdial's Perl sender); never marked sending; requeued")
    if claimant is None:
        return (
            f"found claimed for over {unclaimedAfter:g} s with no acqs claim "
            "(another sender stopped?); never marked sending; requeued"
        )
    return f"claimed by {claimant}, which stopped before sending it; requeued"


def _unknownReason(claimant: Optional[str]) -> str:
    return (
        f"claimed by {claimant}, which stopped after it may have been sent to Asterisk"
        " and before Asterisk's answer was recorded; response N, not resent"
    )


def register(t: Transaction, server_ip: str, instance: str, host: str, pid: int,
             staleAfter: float, isAlive: Callable[[int], bool]) -> None:
    """
    Take the name C{instance} for this process (C{host}, C{pid}), unless a
    live one holds it: raise L{InstanceConflict} if its heartbeat is under
    C{staleAfter} seconds old and it is not a dead process of this host.
    """
    dialect = t.dialect
    instance, host = cut(instance, INSTANCE), cut(host, HOST)
    t.execute(dialect.sql(
        "SELECT host, pid, heartbeat_at >= {ago} FROM acqs_instance"
        " WHERE server_ip = %s AND instance = %s{lockRows}"),
        (dialect.agoParameter(staleAfter), server_ip, instance))
    found = t.fetchall()
    if found:
        [(otherHost, otherPid, fresh)] = found
        same = (otherHost, otherPid) == (host, pid)
        deadHere = otherHost == host and otherPid is not None and not isAlive(otherPid)
        if fresh and otherHost is not None and not same and not deadHere:
            raise InstanceConflict(
                f"acqs instance {instance!r} of {server_ip} already runs on {otherHost} as"
                f" pid {otherPid} (it gave a sign of life less than {staleAfter:g} s ago):"
                " give this one another --instance, or stop that one"
            )
    t.execute(dialect.sql(
        "INSERT INTO acqs_instance (server_ip, instance, heartbeat_at, host, pid, started_at)"
        " VALUES (%s, %s, {now}, %s, %s, {now})") + dialect.upsert(
        ("server_ip", "instance"),
        {c: INSERTED for c in ("heartbeat_at", "host", "pid", "started_at")}),
        (server_ip, instance, host, pid))


def heartbeat(t: Transaction, server_ip: str, instance: str, host: Optional[str],
              pid: Optional[int]) -> None:
    """A sign of life of C{instance} (and its C{host} and C{pid}, where given)."""
    dialect = t.dialect
    sql = dialect.sql(
        "INSERT INTO acqs_instance (server_ip, instance, heartbeat_at, host, pid)"
        " VALUES (%s, %s, {now}, %s, %s)"
    ) + dialect.upsert(("server_ip", "instance"), {
        "heartbeat_at": INSERTED,
        "host": f"COALESCE({dialect.inserted('host')}, host)",
        "pid": f"COALESCE({dialect.inserted('pid')}, pid)",
    })
    t.execute(sql, (server_ip, instance, host, pid))

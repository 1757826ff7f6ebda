"""
The queue store on SQL: VICIdial's vicidial_manager table, plus acqs'
companion tables acqs_action and acqs_instance (see C{sql/acqs.sql}).

Life cycle of a row, and what acqs records of it (acqs_action.outcome)::

    NEW ──claim──▶ QUEUE (queued) ──markSending──▶ SENT (sending) ──recordSent──▶ (sent)
     ▲               │  │                              │
     │   release ◀───┘  └─▶ DEAD (refused, dead_check)  └─▶ listener: UPDATED, then DEAD
     │   (released)

markSending comes right before the action is written to AMI, as VICIdial's
sender marks SENT when it dispatches a row; recordSent then adds Asterisk's
answer (C{response}, the text) without touching the status.

Every transition is guarded in SQL, so that no update is lost or reversed:
claims take only NEW rows; SENT is written only over QUEUE (a fast
listener's UPDATED stays, though Asterisk's response is still recorded);
refuse and release act only on QUEUE rows; the listener's UPDATED applies
to QUEUE, SENT and UPDATED rows, its DEAD to any row not DEAD; DEAD is
final.  C{response} is Y when Asterisk answered Success, N otherwise.

Claims: on MySQL/MariaDB, one transaction selects the oldest NEW rows of a
server_ip with C{FOR UPDATE SKIP LOCKED}, so instances serving the same
server_ip (a hot standby) never claim the same row and never wait for each
other.  VICIdial ships vicidial_manager as MyISAM, where that locks
nothing: there the store takes C{GET_LOCK('acqs-claim-<server_ip>')} around
each claim (and each recovery) instead, and says so in a warning.  On
SQLite, C{BEGIN IMMEDIATE} lets one writer in at a time.

The dead check (VICIdial's): a claimed Hangup or Redirect whose callerid
already belongs to a DEAD row of the same server_ip is not sent, unless one
of its cmd lines is C{Exten: 8309} or C{Exten: 8310} (a recording); it
becomes DEAD with response N, outcome C{dead_check} and the reason.  An
empty callerid identifies no call and is never dead-checked.

The recovery rule (L{SQLQueueStore.recoverStranded}): a QUEUE row is
stranded when its claimant is gone, that is when it was claimed by

  - the instance that asks, but not through this very store object: a
    previous run of that instance (so the call is safe both at start-up and
    periodically);
  - another instance, which has shown no sign of life (a heartbeat or a
    claim) for C{staleAfter} seconds;
  - nobody acqs knows (no claim record: the Perl sender, or a claim cut
    short on a MyISAM table), and its entry_date is more than
    C{staleAfter} seconds old.

A stranded row that was never marked sending (still QUEUE) certainly never
reached Asterisk: it goes back to NEW to be sent later (outcome
C{requeued}, attempts + 1, the reason kept).  A row that was marked sending
(already SENT, or moved on by the listener) but has no answer recorded may
have reached Asterisk: it keeps its status, with response N (outcome
C{unknown}, the reason kept), and is never sent again.  So nothing is silently lost and
nothing is silently sent twice; recovered rows are logged, and each one's
reason is kept in acqs_action.  A store's claims and recoveries take turns,
so a recovery always knows which rows its own store has in hand.

This holds as long as the sender marks a row sending (and the mark is
committed) before it writes the action to AMI, and as long as
C{staleAfter} is well above the time a live instance may go without a
heartbeat; a hot standby that decides too early that its peer is gone
requeues rows the peer is about to send.

Outages: any database error fails the call with L{StoreUnavailable} (its
text names the database, never the password); the outage is logged once
when it starts and once when the database answers again.  Each transaction
first checks its connection and opens a new one if the old one died, so the
store recovers by itself.  A MySQL deadlock victim is run again (twice at
most).  A claim whose COMMIT was lost with its connection may have taken
effect: its rows stay QUEUE under this instance's name until its next
start-up recovers them.
"""

import functools
from typing import Dict, FrozenSet, Iterator, List, Sequence, Tuple

from twisted.internet.defer import Deferred, DeferredLock
from twisted.logger import Logger
from zope.interface import implementer

from .dialects import INSERTED, Dialect
from .interfaces import IQueueStore, StoreUnavailable
from .records import (
    CMD_LINE_COLUMNS,
    DEAD,
    NEW,
    QUEUE,
    SENT,
    UPDATED,
    ActionRow,
    CallDead,
    CallUpdated,
    Recovery,
    TrackedCalls,
)
from .url import DatabaseURL

# Column widths of vicidial_manager and acqs_action: values are cut to them
# here, so that strict and non-strict sql_modes behave the same.
CHANNEL, UNIQUEID, CALLERID, INSTANCE, TEXT = 100, 20, 20, 64, 255
# Rows per statement in batch operations (SQLite allows 32766 parameters).
CHUNK = 500
# How many times a transaction chosen as a deadlock victim is run.
ATTEMPTS = 3
# cmd lines that make a row a recording, exempt from the dead check and
# from the listener's DEAD (VICIdial's rule).
RECORDING_EXTENS = ("Exten: 8309", "Exten: 8310")
DEAD_CHECKED_ACTIONS = ("hangup", "redirect")

_ROW_COLUMNS = "man_id, server_ip, action, callerid, " + ", ".join(CMD_LINE_COLUMNS)
_ACTION_KEY = ("man_id",)


def _deferred(method):
    """Run the coroutine method C{method} as a Deferred (the public API)."""

    @functools.wraps(method)
    def run(*args, **kwargs):
        return Deferred.fromCoroutine(method(*args, **kwargs))

    return run


def _cut(text, width: int) -> str:
    return (text or "")[:width]


def _chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(count: int, mark: str = "%s") -> str:
    return ", ".join([mark] * count)


@implementer(IQueueStore)
class SQLQueueStore:
    """
    L{IQueueStore} on a DB-API database through C{twisted.enterprise.adbapi};
    C{dialect} says what differs between MySQL/MariaDB and SQLite.
    """

    log = Logger()

    def __init__(self, url: DatabaseURL, dialect: Dialect, pool, reactor):
        self._url = url
        self._dialect = dialect
        self._pool = pool
        self._reactor = reactor
        self._inFlight = set()  # man_ids this store claimed and nobody settled
        # Claims and recoveries of this store take turns, so that a recovery
        # knows every row that this store has claimed.
        self._claiming = DeferredLock()
        self._running = 0
        self._idle: List[Deferred] = []
        self._closed = False
        self._downSince = None
        # Whether claims take a lock of their own: known at the first claim.
        self._serialiseClaims = None if dialect.enginesVary else False

    def __repr__(self) -> str:
        return f"<SQLQueueStore {self._url}>"

    # -- IQueueStore ------------------------------------------------------

    @_deferred
    async def claim(self, server_ip: str, limit: int, instance: str):
        if limit < 1:
            return []
        async with self._claiming:
            rows, refused = await self._runClaimLocked(
                server_ip, self._claimTxn, limit, _cut(instance, INSTANCE)
            )
            self._inFlight.update(row.man_id for row in rows)
        for man_id, reason in refused:
            self.log.info(
                "Row {man_id} of {server_ip} not sent: {reason}",
                man_id=man_id,
                server_ip=server_ip,
                reason=reason,
            )
        return rows

    @_deferred
    async def markSending(self, man_ids: Sequence[int]):
        return await self._run(self._markSendingTxn, list(man_ids))

    @_deferred
    async def release(self, man_ids: Sequence[int], reason: str):
        ids = list(man_ids)
        await self._run(self._releaseTxn, ids, _cut(reason, TEXT))
        self._inFlight.difference_update(ids)

    @_deferred
    async def recordSent(self, results: Sequence):
        results = list(results)
        await self._run(self._recordSentTxn, results)
        self._inFlight.difference_update(r.man_id for r in results)

    @_deferred
    async def refuse(self, refusals: Sequence):
        refusals = list(refusals)
        await self._run(self._refuseTxn, refusals)
        self._inFlight.difference_update(r.man_id for r in refusals)

    @_deferred
    async def applyUpdates(self, server_ip: str, updates: Sequence):
        updates = list(updates)
        for update in updates:
            if not isinstance(update, (CallUpdated, CallDead)):
                raise TypeError(f"not a call update: {update!r}")
        return await self._run(self._applyUpdatesTxn, server_ip, updates)

    @_deferred
    async def recoverStranded(self, server_ip: str, instance: str, staleAfter: float):
        async with self._claiming:
            requeued, unknown = await self._runClaimLocked(
                server_ip,
                self._recoverTxn,
                _cut(instance, INSTANCE),
                staleAfter,
                frozenset(self._inFlight),
            )
        recovery = Recovery(
            requeued=tuple(man_id for man_id, _ in requeued),
            unknown=tuple(man_id for man_id, _ in unknown),
        )
        for man_ids, fate in (
            (recovery.requeued, "were never sent: back to NEW"),
            (recovery.unknown, "may have been sent, with no answer recorded: response N,"
                               " not resent"),
        ):
            if man_ids:
                self.log.warn(
                    "{count} stranded rows of {server_ip} {fate} (man_id {man_ids})",
                    count=len(man_ids),
                    server_ip=server_ip,
                    fate=fate,
                    man_ids=" ".join(map(str, man_ids)),
                )
        return recovery

    @_deferred
    async def heartbeat(self, server_ip: str, instance: str):
        await self._run(self._heartbeatTxn, server_ip, _cut(instance, INSTANCE))

    @_deferred
    async def trackedCalls(self, server_ip: str, maxAge: float):
        return await self._run(self._trackedCallsTxn, server_ip, maxAge)

    @_deferred
    async def close(self):
        if self._closed:
            return
        self._closed = True
        if self._running:
            waiting = Deferred()
            self._idle.append(waiting)
            await waiting
        self._pool.close()

    # -- running transactions ---------------------------------------------

    async def _run(self, interaction, *args):
        """
        Run C{interaction(txn, *args)} as one transaction in the pool's
        threads; database errors become L{StoreUnavailable}.
        """
        if self._closed:
            raise StoreUnavailable(f"the queue store for {self._url} is closed")
        self._running += 1
        try:
            result = await self._pool.runInteraction(self._transaction, interaction, *args)
        except self._dialect.errors as e:
            raise self._unavailable(e) from e
        finally:
            self._running -= 1
            if not self._running:
                idle, self._idle = self._idle, []
                for waiting in idle:
                    waiting.callback(None)
        self._available()
        return result

    async def _runClaimLocked(self, server_ip: str, interaction, *args):
        """
        Run C{interaction(txn, server_ip, *args)} as one transaction, under
        the claim lock of C{server_ip} where vicidial_manager needs one.
        """
        serialise = await self._claimsSerialised()
        return await self._run(self._underClaimLock, server_ip, serialise, interaction, *args)

    def _transaction(self, txn, interaction, *args):
        """In a pool thread: check the connection, begin, run, retry deadlocks."""
        self._dialect.ready(txn)
        for attempt in range(1, ATTEMPTS + 1):
            self._dialect.begin(txn)
            try:
                return interaction(txn, *args)
            except self._dialect.errors as e:
                if attempt == ATTEMPTS or not self._dialect.retryable(e):
                    raise
                txn.connection.rollback()

    def _unavailable(self, error: Exception) -> StoreUnavailable:
        text = f"queue store {self._url} failed: {error}"
        if self._dialect.missingTable(error):
            text += f" (create the tables with: acqs initdb --db {self._url})"
        if self._downSince is None:
            self._downSince = self._reactor.seconds()
            self.log.error(
                "Queue store {database} unavailable: {error}; trying again on each call",
                database=str(self._url),
                error=str(error),
            )
        return StoreUnavailable(text)

    def _available(self) -> None:
        if self._downSince is not None:
            self.log.info(
                "Queue store {database} is back after {outage:.1f} s",
                database=str(self._url),
                outage=self._reactor.seconds() - self._downSince,
            )
            self._downSince = None

    async def _claimsSerialised(self) -> bool:
        """Whether claims need a lock of their own (vicidial_manager has no row locks)."""
        if self._serialiseClaims is not None:
            return self._serialiseClaims
        engine = await self._run(self._dialect.engine)
        if engine is None:  # no table yet: the claim will say so
            return False
        serialise = engine.lower() != "innodb"
        if self._serialiseClaims is None:  # the first of concurrent calls says it
            self._serialiseClaims = serialise
            if serialise:
                self.log.warn(
                    "vicidial_manager in {database} uses {engine}, which has no row locks: "
                    "claims are serialised with GET_LOCK; ALTER TABLE vicidial_manager "
                    "ENGINE=InnoDB lets instances claim in parallel",
                    database=str(self._url),
                    engine=engine,
                )
        return serialise

    # -- transactions (in pool threads) -----------------------------------

    def _execute(self, txn, template: str, params: Sequence = (), **fields: str) -> int:
        txn.execute(self._dialect.sql(template, **fields), tuple(params))
        return txn.rowcount

    def _underClaimLock(self, txn, server_ip, serialise, work, *args):
        """Run C{work(txn, server_ip, *args)}, serialised with other claims if need be."""
        if not serialise:
            return work(txn, server_ip, *args)
        self._dialect.lockClaims(txn, server_ip)
        try:
            result = work(txn, server_ip, *args)
        except BaseException:
            self._dialect.unlockClaims(txn, server_ip, commit=False)
            raise
        self._dialect.unlockClaims(txn, server_ip, commit=True)
        return result

    def _claimTxn(self, txn, server_ip, limit, instance):
        self._execute(
            txn,
            "SELECT {columns} FROM vicidial_manager WHERE server_ip = %s AND status = 'NEW'"
            " ORDER BY man_id LIMIT %s{skipLocked}",
            (server_ip, limit),
            columns=_ROW_COLUMNS,
        )
        rows = [_actionRow(row) for row in txn.fetchall()]
        refused = self._deadChecked(txn, server_ip, rows)
        claimed = [row for row in rows if row.man_id not in refused]
        self._setStatus(txn, [row.man_id for row in claimed], QUEUE, fromStatus=NEW)
        self._setStatus(txn, list(refused), DEAD, fromStatus=NEW, response="N")
        self._upsertActions(
            txn,
            "man_id, claimed_by, claimed_at, sending_at, answered_at, outcome, reason",
            "%s, %s, {now}, NULL, NULL, %s, %s",
            [(row.man_id, instance, "queued", None) for row in claimed]
            + [(man_id, instance, "dead_check", reason) for man_id, reason in refused.items()],
            claimed_by=INSERTED,
            claimed_at=INSERTED,
            sending_at="NULL",
            answered_at="NULL",
            response_text="NULL",
            outcome=INSERTED,
            reason=f"COALESCE({self._dialect.inserted('reason')}, reason)",
        )
        return claimed, sorted(refused.items())

    def _deadChecked(self, txn, server_ip, rows: List[ActionRow]) -> Dict[int, str]:
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
        self._execute(
            txn,
            "SELECT callerid, MIN(man_id) FROM vicidial_manager"
            " WHERE server_ip = %s AND status = 'DEAD' AND callerid IN ({callerids})"
            " GROUP BY callerid",
            [server_ip] + callerids,
            callerids=_marks(len(callerids)),
        )
        dead = {callerid.lower(): man_id for callerid, man_id in txn.fetchall()}
        return {
            row.man_id: (
                f"{row.action} not sent: callerid {row.callerid} already belongs to a "
                f"DEAD call (man_id {dead[row.callerid.lower()]})"
            )
            for row in candidates
            if row.callerid.lower() in dead
        }

    def _markSendingTxn(self, txn, man_ids):
        marked = 0
        for ids in _chunks(man_ids):
            self._execute(
                txn,
                "UPDATE vicidial_manager SET status = 'SENT'"
                " WHERE status = 'QUEUE' AND man_id IN ({ids})",
                ids,
                ids=_marks(len(ids)),
            )
            marked += self._execute(
                txn,
                "UPDATE acqs_action SET sending_at = {now}, outcome = 'sending'"
                " WHERE outcome = 'queued' AND man_id IN ({ids})",
                ids,
                ids=_marks(len(ids)),
            )
        return marked

    def _releaseTxn(self, txn, man_ids, reason):
        queued = self._queuedAmong(txn, man_ids)
        # Marked SENT, but the sender knows the action was never written.
        marked = []
        for ids in _chunks(man_ids):
            self._execute(
                txn,
                "SELECT v.man_id FROM vicidial_manager v JOIN acqs_action a ON a.man_id = v.man_id"
                " WHERE v.status = 'SENT' AND a.outcome = 'sending' AND v.man_id IN ({ids})"
                " ORDER BY v.man_id{lockRows}",
                ids,
                ids=_marks(len(ids)),
            )
            marked.extend(man_id for (man_id,) in txn.fetchall())
        self._setStatus(txn, marked, QUEUE, fromStatus=SENT)
        self._requeue(txn, [(man_id, reason) for man_id in queued + marked], "released")

    def _recordSentTxn(self, txn, results):
        for answered, response in ((True, "Y"), (False, "N")):
            ids = [r.man_id for r in results if bool(r.answered) is answered]
            for chunk in _chunks(ids):
                self._execute(
                    txn,
                    "UPDATE vicidial_manager SET response = %s,"
                    " status = CASE WHEN status = 'QUEUE' THEN 'SENT' ELSE status END"
                    " WHERE man_id IN ({ids})",
                    [response] + list(chunk),
                    ids=_marks(len(chunk)),
                )
        self._upsertActions(
            txn,
            "man_id, answered_at, outcome, response_text",
            "%s, {now}, 'sent', %s",
            [(r.man_id, _cut(r.text, TEXT)) for r in results],
            answered_at=INSERTED,
            outcome=INSERTED,
            response_text=INSERTED,
        )

    def _refuseTxn(self, txn, refusals):
        queued = set(self._queuedAmong(txn, [r.man_id for r in refusals]))
        self._finish(
            txn,
            [(r.man_id, _cut(r.reason, TEXT)) for r in refusals if r.man_id in queued],
            DEAD,
            "refused",
        )

    def _applyUpdatesTxn(self, txn, server_ip, updates):
        changed = 0
        for update in updates:
            if isinstance(update, CallUpdated):
                changed += self._callUpdated(txn, server_ip, update)
            else:
                changed += self._callDead(txn, server_ip, update)
        return changed

    def _callUpdated(self, txn, server_ip, update: CallUpdated) -> int:
        callerid = _cut(update.callerid, CALLERID)
        if not callerid:
            return 0
        channel, uniqueid = _cut(update.channel, CHANNEL), _cut(update.uniqueid, UNIQUEID)
        return self._execute(
            txn,
            "UPDATE vicidial_manager SET status = 'UPDATED', channel = %s, uniqueid = %s"
            " WHERE server_ip = %s AND callerid = %s AND status IN ('QUEUE', 'SENT', 'UPDATED')"
            " AND NOT (status = 'UPDATED' AND COALESCE(channel, '') = %s"
            " AND COALESCE(uniqueid, '') = %s)",
            (channel, uniqueid, server_ip, callerid, channel, uniqueid),
        )

    def _callDead(self, txn, server_ip, update: CallDead) -> int:
        uniqueid = _cut(update.uniqueid, UNIQUEID)
        if not uniqueid:
            return 0
        return self._execute(
            txn,
            "UPDATE vicidial_manager SET status = 'DEAD', channel = COALESCE(NULLIF(%s, ''), channel)"
            " WHERE server_ip = %s AND uniqueid = %s AND status <> 'DEAD'"
            " AND COALESCE(cmd_line_d, '') NOT IN (%s, %s)",
            (_cut(update.channel, CHANNEL), server_ip, uniqueid) + RECORDING_EXTENS,
        )

    def _recoverTxn(self, txn, server_ip, instance, staleAfter, inFlight: FrozenSet):
        ago = self._dialect.agoParameter(staleAfter)
        # A claimant is gone: a previous run of this instance, or an instance
        # silent for staleAfter; rows no acqs claimed count after staleAfter.
        gone = (
            " AND (a.claimed_by = %s"
            " OR (a.claimed_by IS NOT NULL AND a.claimed_at < {ago}"
            " AND (i.heartbeat_at IS NULL OR i.heartbeat_at < {ago}))"
            " OR (a.claimed_by IS NULL AND (v.entry_date IS NULL OR v.entry_date < {ago})))"
        )
        joins = (
            " LEFT JOIN acqs_instance i"
            " ON i.server_ip = v.server_ip AND i.instance = a.claimed_by"
        )
        self._execute(
            txn,
            "SELECT v.man_id, a.claimed_by, a.sending_at IS NOT NULL"
            " FROM vicidial_manager v LEFT JOIN acqs_action a ON a.man_id = v.man_id"
            + joins + " WHERE v.server_ip = %s AND v.status = 'QUEUE'" + gone
            + " ORDER BY v.man_id{lockRows}",
            (server_ip, instance, ago, ago, ago),
        )
        stranded = list(txn.fetchall())
        # Rows marked sending are SENT (or moved on) already: only what
        # became of them is unknown.
        self._execute(
            txn,
            "SELECT a.man_id, a.claimed_by, 1 FROM acqs_action a"
            " JOIN vicidial_manager v ON v.man_id = a.man_id" + joins
            + " WHERE a.outcome = 'sending' AND v.server_ip = %s AND v.status <> 'QUEUE'"
            + gone + " ORDER BY a.man_id{lockRows}",
            (server_ip, instance, ago, ago, ago),
        )
        stranded.extend(txn.fetchall())
        requeued, unknown = [], []
        for man_id, claimant, marked in stranded:
            if man_id in inFlight:
                continue
            if marked:
                unknown.append((man_id, _unknownReason(claimant)))
            else:
                requeued.append((man_id, _requeuedReason(claimant, staleAfter)))
        self._requeue(txn, requeued, "requeued")
        self._finish(txn, unknown, SENT, "unknown")
        return requeued, unknown

    def _heartbeatTxn(self, txn, server_ip, instance):
        sql = self._dialect.sql(
            "INSERT INTO acqs_instance (server_ip, instance, heartbeat_at) VALUES (%s, %s, {now})"
        ) + self._dialect.upsert(("server_ip", "instance"), {"heartbeat_at": INSERTED})
        txn.execute(sql, (server_ip, instance))

    def _trackedCallsTxn(self, txn, server_ip, maxAge):
        self._execute(
            txn,
            "SELECT status, callerid, uniqueid FROM vicidial_manager"
            " WHERE server_ip = %s AND status IN ('QUEUE', 'SENT', 'UPDATED')"
            " AND action = 'Originate' AND entry_date >= {ago} ORDER BY man_id",
            (server_ip, self._dialect.agoParameter(maxAge)),
        )
        callerids, uniqueids = {}, {}
        for status, callerid, uniqueid in txn.fetchall():
            if callerid:
                callerids[callerid] = None
            if status.upper() == UPDATED and uniqueid:
                uniqueids[uniqueid] = None
        return TrackedCalls(callerids=tuple(callerids), uniqueids=tuple(uniqueids))

    # -- statements shared by the transactions ----------------------------

    def _queuedAmong(self, txn, man_ids: Sequence[int]) -> List[int]:
        """Those of C{man_ids} in QUEUE, locked until the end of the transaction."""
        queued = []
        for ids in _chunks(man_ids):
            self._execute(
                txn,
                "SELECT man_id FROM vicidial_manager WHERE status = 'QUEUE'"
                " AND man_id IN ({ids}) ORDER BY man_id{lockRows}",
                ids,
                ids=_marks(len(ids)),
            )
            queued.extend(man_id for (man_id,) in txn.fetchall())
        return queued

    def _setStatus(self, txn, man_ids, status, fromStatus, response=None) -> None:
        """Move those of C{man_ids} in C{fromStatus} to C{status}, and set C{response} if given."""
        assignments, params = "status = %s", [status]
        if response is not None:
            assignments += ", response = %s"
            params.append(response)
        for ids in _chunks(man_ids):
            self._execute(
                txn,
                "UPDATE vicidial_manager SET {assignments}"
                " WHERE status = %s AND man_id IN ({ids})",
                params + [fromStatus] + list(ids),
                assignments=assignments,
                ids=_marks(len(ids)),
            )

    def _requeue(self, txn, rows: Sequence[Tuple[int, str]], outcome: str) -> None:
        """QUEUE rows back to NEW, to be claimed again: (man_id, reason) pairs."""
        self._setStatus(txn, [man_id for man_id, _ in rows], NEW, fromStatus=QUEUE)
        self._upsertActions(
            txn,
            "man_id, claimed_by, claimed_at, sending_at, outcome, reason, attempts",
            "%s, NULL, NULL, NULL, %s, %s, 1",
            [(man_id, outcome, reason) for man_id, reason in rows],
            claimed_by="NULL",
            claimed_at="NULL",
            sending_at="NULL",
            outcome=INSERTED,
            reason=INSERTED,
            attempts="attempts + 1",
        )

    def _finish(self, txn, rows: Sequence[Tuple[int, str]], status: str, outcome: str) -> None:
        """QUEUE rows that will not be sent (again): (man_id, reason) pairs."""
        self._setStatus(
            txn, [man_id for man_id, _ in rows], status, fromStatus=QUEUE, response="N"
        )
        self._upsertActions(
            txn,
            "man_id, outcome, reason",
            "%s, %s, %s",
            [(man_id, outcome, reason) for man_id, reason in rows],
            outcome=INSERTED,
            reason=INSERTED,
        )

    def _upsertActions(self, txn, columns: str, values: str, rows: Sequence[tuple], **assignments):
        """
        Insert or update acqs_action rows: C{values} is the SQL of one row's
        C{columns} with C{%s} for each item of a row of C{rows}; an existing
        row gets C{assignments} (SQL, or L{INSERTED} for the inserted value).
        """
        oneRow = self._dialect.sql(f"({values})")
        conflict = self._dialect.upsert(_ACTION_KEY, assignments)
        for chunk in _chunks(rows):
            txn.execute(
                self._dialect.sql(
                    "INSERT INTO acqs_action ({columns}) VALUES {rows}",
                    columns=columns,
                    rows=_marks(len(chunk), oneRow),
                )
                + conflict,
                [item for row in chunk for item in row],
            )


def _actionRow(row: tuple) -> ActionRow:
    man_id, server_ip, action, callerid, *lines = row
    return ActionRow(
        man_id=man_id,
        server_ip=server_ip,
        action=action or "",
        callerid=callerid or "",
        cmd_lines=tuple(line or "" for line in lines),
    )


def _requeuedReason(claimant, staleAfter: float) -> str:
    if claimant is None:
        return (
            f"found in QUEUE for over {staleAfter:g} s with no acqs claim "
            "(another sender stopped?); never marked sending; requeued"
        )
    return f"claimed by {claimant}, which stopped before sending it; requeued"


def _unknownReason(claimant) -> str:
    return (
        f"claimed by {claimant}, which stopped after it may have been sent to Asterisk"
        " and before Asterisk's answer was recorded; response N, not resent"
    )

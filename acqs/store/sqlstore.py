"""
The queue store on SQL: VICIdial's vicidial_manager table, plus acqs'
companion tables acqs_action and acqs_instance (see C{sql/acqs.sql}).

Life cycle of a row, and what acqs records of it (acqs_action.outcome)::

    NEW ──claim──▶ QUEUE (queued) ──markSending──▶ SENT (sending) ──recordSent──▶ (sent)
     ▲  │            │                                 │
     │  └─▶ DEAD (refused, dead_check)                 └─▶ listener: UPDATED, then DEAD
     │   release ◀───┘                                     (ended_unseen: DEAD by catch-up)
     │   (released)

markSending comes right before the action is written to AMI, as VICIdial's
sender marks SENT when it dispatches a row (a claim may mark its first rows
itself, for sessions ready to send them); recordSent then adds Asterisk's
answer (C{response}, the text) without touching the status.  Rows the
claimant will not send (its C{refuse} rule) and rows the dead check stops
become DEAD in the claim itself.

Every transition is guarded in SQL, so that no update is lost or reversed:
claims take only NEW rows; SENT is written only over QUEUE (a fast
listener's UPDATED stays, though Asterisk's response is still recorded);
release acts only on rows still claimed; the listener's UPDATED
applies to QUEUE, SENT and UPDATED rows, its DEAD to any row not DEAD; DEAD
is final.  C{response} is Y when Asterisk answered Success, N otherwise.

Claims belong to their claimant.  Every claim has a token of its own, kept
in acqs_action.claim_token; markSending, recordSent and release act on
a row only while its record still holds the caller's token (a
compare-and-set), and markSending returns the rows it really marked.  A
claim taken back by recovery (claimant silent for too long) or claimed
again by someone else is lost to its first claimant, which must not send
it: no row is ever sent by two instances.

Claims: on MySQL/MariaDB, one transaction selects the oldest NEW rows of a
server_ip with C{FOR UPDATE SKIP LOCKED}, so instances serving the same
server_ip (a hot standby) never claim the same row and never wait for each
other.  That needs InnoDB and MariaDB 10.6+ or MySQL 8.0+, which the store
finds out once (L{ServerInfo}).  Elsewhere (VICIdial's MyISAM table,
MariaDB 10.3-10.5, MySQL 5.7) claims are serialised with
C{GET_LOCK('acqs-claim-<server_ip>')} around a plain C{FOR UPDATE}, and a
warning says so.  On SQLite, C{BEGIN IMMEDIATE} lets one writer in at a
time.

MyISAM commits each statement at once, while acqs' own tables are InnoDB:
a transaction that fails half-way keeps its vicidial_manager changes and
loses its acqs_action ones.  So every transaction writes acqs_action first
and vicidial_manager last, and every half-done state is one that release
and recovery resolve: a SENT row whose record still says C{queued} was
never marked (its mark failed before it committed), and goes back to NEW.

The dead check (VICIdial's): a claimed Hangup or Redirect whose callerid
already belongs to a DEAD row of the same server_ip is not sent, unless one
of its cmd lines is C{Exten: 8309} or C{Exten: 8310} (a recording); it
becomes DEAD with response N, outcome C{dead_check} and the reason.  An
empty callerid identifies no call and is never dead-checked.

The listener's updates match rows by callerid (UPDATED) and by the whole
uniqueid kept in acqs_action (DEAD): vicidial_manager.uniqueid holds only
20 characters, and with Asterisk's C{systemname} set uniqueids are longer
(C{vicibox-ast01-1796107644.1}), so the cut value names no call.  A row
with no whole uniqueid of acqs' (UPDATED by another listener) is matched by
vicidial_manager.uniqueid, only by a uniqueid short enough not to have been
cut.  acqs_action.live marks the rows whose call acqs holds for up.

The recovery rule (L{SQLQueueStore.recoverStranded}): a row is stranded
when its claimant is gone, that is when it was claimed by

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

Outages: any database error fails the call with L{StoreUnavailable} (its
text names the database, never the password); the outage is logged once
when it starts and once when the database answers again.  Each transaction
first checks its connection and opens a new one if the old one died, so the
store recovers by itself.  A MySQL deadlock victim is run again (twice at
most).  A claim whose COMMIT was lost with its connection may have taken
effect: its rows stay QUEUE under this instance's name until the next
recovery, which finds them outside this store's hands.
"""

import functools
import secrets
from itertools import groupby
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import attr
from twisted.internet.defer import Deferred, DeferredLock
from twisted.logger import Logger
from zope.interface import implementer

from . import reads
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
    CallEnded,
    CallUpdated,
    Claim,
    SendResult,
    InstanceConflict,
    Pruned,
    Recovery,
    ServerInfo,
    TrackedCalls,
)
from .url import DatabaseURL

# Column widths of vicidial_manager and acqs_action: values are cut to them
# here, so that strict and non-strict sql_modes behave the same.
CHANNEL, UNIQUEID, CALLERID, INSTANCE, TEXT = 100, 20, 20, 64, 255
WHOLE_UNIQUEID, CAUSE, HOST, ACTION_ID = 150, 64, 255, 40
# Rows per statement in batch operations (SQLite allows 32766 parameters).
CHUNK = 500
# How often a wait in the database looks for a NEW row (seconds), by default.
WAIT_STEP = 0.002
# How many pages of rows one round of the keep-hours flush reads at most.
PRUNE_PAGES = 20
# How many times a transaction chosen as a deadlock victim is run.
ATTEMPTS = 3
# cmd lines that make a row a recording, exempt from the dead check and
# from the listener's DEAD (VICIdial's rule).
RECORDING_EXTENS = ("Exten: 8309", "Exten: 8310")
DEAD_CHECKED_ACTIONS = ("hangup", "redirect")

# In a row's changes: the database's current time.
_NOW = object()

_ROW_COLUMNS = "man_id, server_ip, action, callerid, " + ", ".join(CMD_LINE_COLUMNS)
_ACTION_KEY = ("man_id",)
# A new claim starts a fresh record: nothing of an earlier send of the row
# (or of a flushed row whose man_id came round again) survives but the
# reason and the attempt count.
_CLAIM_RESETS = {c: "NULL" for c in (
    "sending_at", "answered_at", "response_text", "action_id", "call_answered_at",
    "uniqueid", "updated_at", "dead_at", "hangup_cause", "live")}


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


def _caseOf(count: int) -> str:
    """C{CASE man_id WHEN %s THEN %s ... END} for C{count} rows: a value each."""
    return "CASE man_id" + " WHEN %s THEN %s" * count + " END"


def _byToken(claims: Iterable[Claim]) -> Iterator[Tuple[Optional[str], List[int]]]:
    """C{(token, man_ids)} groups of C{claims}."""
    ordered = sorted(set(claims), key=lambda c: (c[1] or "", c[0]))
    for token, group in groupby(ordered, key=lambda c: c[1]):
        yield token, [man_id for man_id, _ in group]


class _Counting:
    """A transaction's cursor that counts the statements run through it."""

    def __init__(self, txn):
        self._txn, self.executed = txn, 0

    def execute(self, *args):
        self.executed += 1
        return self._txn.execute(*args)

    def __getattr__(self, name):
        return getattr(self._txn, name)


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


@implementer(IQueueStore)
class SQLQueueStore:
    """
    L{IQueueStore} on a DB-API database through C{twisted.enterprise.adbapi};
    C{dialect} says what differs between MySQL/MariaDB and SQLite.  With
    C{skipLocked=False} claims are serialised even where the server could
    skip locked rows, and with C{waits=False} nobody waits in the server
    for NEW rows (the paths older servers and MySQL take).
    """

    log = Logger()

    def __init__(self, url: DatabaseURL, dialect: Dialect, pool, reactor,
                 skipLocked: Optional[bool] = None, waits: Optional[bool] = None,
                 waitStep: float = WAIT_STEP):
        self._url = url
        self._waitStep = waitStep
        self._dialect = dialect
        self._pool = pool
        self._reactor = reactor
        self._inFlight: Set[int] = set()  # man_ids this store claimed and nobody settled
        # Claims and recoveries of this store take turns, so that a recovery
        # knows every row that this store has claimed.
        self._claiming = DeferredLock()
        self._running = 0
        self._idle: List[Deferred] = []
        self._closed = False
        self._downSince = None
        self._skipLocked = skipLocked
        self._waitless = waits is False  # poll even where the server could wait
        self.serverInfo: Optional[ServerInfo] = None  # known at the first claim
        # Counted for acqs.metrics: failed calls, rows refused or dead-checked by claims.
        self.errors = self.refused = self.deadChecked = 0

    def __repr__(self) -> str:
        return f"<SQLQueueStore {self._url}>"

    # -- IQueueStore ------------------------------------------------------

    @_deferred
    async def claim(self, server_ip: str, limit: int, instance: str, send: int = 0,
                    refuse: Optional[Callable[[ActionRow], Optional[str]]] = None,
                    wait: float = 0.0):
        if limit < 1:
            return []
        async with self._claiming:
            info = await self._probe()
            rows, checked, refused = await self._run(
                self._waitThenClaimTxn, server_ip, info, wait if info.waits else 0, limit,
                _cut(instance, INSTANCE), secrets.token_hex(8), send, refuse,
            )
            self._inFlight.update(row.man_id for row in rows)
        self.deadChecked += len(checked)
        self.refused += len(refused)
        for man_id, reason in checked:
            self.log.info("Row {man_id} of {server_ip} not sent: {reason}",
                          man_id=man_id, server_ip=server_ip, reason=reason)
        for man_id, reason in refused:
            self.log.warn("Row {man_id} of {server_ip} refused: {reason}",
                          man_id=man_id, server_ip=server_ip, reason=reason)
        return rows

    @_deferred
    async def markSending(self, claims: Sequence[Claim]):
        return await self._run(self._markSendingTxn, list(claims))

    @_deferred
    async def release(self, claims: Sequence[Claim], reason: str):
        claims = list(claims)
        released = await self._run(self._releaseTxn, claims, _cut(reason, TEXT))
        self._settled(man_id for man_id, _ in claims)
        return released

    @_deferred
    async def recordSent(self, results: Sequence):
        results = list(results)
        recorded = await self._run(self._recordSentTxn, results)
        self._settled(r.man_id for r in results)
        return recorded

    @_deferred
    async def applyUpdates(self, server_ip: str, updates: Sequence):
        return await self.record(server_ip, updates)

    @_deferred
    async def record(self, server_ip: str, items: Sequence):
        results = [i for i in items if isinstance(i, SendResult)]
        updates = [i for i in items if not isinstance(i, SendResult)]
        for update in updates:
            if not isinstance(update, (CallUpdated, CallDead, CallEnded)):
                raise TypeError(f"not a send result or call update: {update!r}")
        changes = await self._run(self._recordTxn, server_ip, results, updates)
        self._settled(r.man_id for r in results)
        return changes

    def _recordTxn(self, txn, server_ip, results, updates) -> int:
        if results:
            self._recordSentTxn(txn, results)
        return self._applyUpdatesTxn(txn, server_ip, updates) if updates else 0

    @_deferred
    async def recoverStranded(self, server_ip: str, instance: str, staleAfter: float):
        async with self._claiming:
            info = await self._probe()
            requeued, unknown = await self._run(
                self._underClaimLock, server_ip, info, self._recoverTxn,
                _cut(instance, INSTANCE), staleAfter, frozenset(self._inFlight),
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
    async def register(self, server_ip: str, instance: str, host: str, pid: int,
                       staleAfter: float, isAlive: Callable[[int], bool]):
        await self._run(registerTxn, self._dialect, server_ip, instance, host, pid,
                        staleAfter, isAlive)

    @_deferred
    async def heartbeat(self, server_ip: str, instance: str, host: str = None,
                        pid: int = None):
        await self._run(self._heartbeatTxn, server_ip, _cut(instance, INSTANCE),
                        _cut(host, HOST) or None, pid)

    @_deferred
    async def trackedCalls(self, server_ip: str, ringWindow: float):
        return await self._run(self._trackedCallsTxn, server_ip, ringWindow)

    @_deferred
    async def prune(self, server_ip: str, keepHours: Optional[float] = None,
                    batch: int = 1000):
        return await self._run(self._pruneTxn, server_ip, keepHours, batch)

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

    def _settled(self, man_ids: Iterable[int]) -> None:
        self._inFlight.difference_update(man_ids)

    # -- reads for operators (acqs.web, acqs.metrics; see acqs.store.reads) --

    @_deferred
    async def recentRows(self, server_ip: str, limit: int = 50):
        """The newest C{limit} rows of C{server_ip} as L{RowView}s, newest first."""
        return await self._run(lambda txn: reads.selectRows(
            txn, self._dialect, server_ip=server_ip, limit=limit))

    @_deferred
    async def sendTimes(self, server_ip: str, instance: str, after):
        """The L{SendTimes} of the rows C{instance} marked sending after C{after}."""
        return await self._run(lambda txn: reads.selectSendTimes(
            txn, self._dialect, server_ip, _cut(instance, INSTANCE), after))

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

    def _transaction(self, txn, interaction, *args):
        """
        In a pool thread: begin, run, retry deadlocks.  A connection killed
        while idle (server restart, wait_timeout, KILL) only shows on its
        next use: when the first statement finds it dead, nothing was done
        (every transaction starts with a read, or a write to acqs' own InnoDB
        tables), so it runs again on a new connection instead of failing.
        """
        for attempt in range(1, ATTEMPTS + 1):
            self._dialect.begin(txn)
            counted = _Counting(txn)
            try:
                return interaction(counted, *args)
            except self._dialect.errors as e:
                if self._dialect.gone(e) and counted.executed <= 1 and attempt == 1:
                    txn.reconnect()
                    txn.reopen()
                    continue
                if attempt == ATTEMPTS or not self._dialect.retryable(e):
                    raise
                txn.connection.rollback()

    def _unavailable(self, error: Exception) -> StoreUnavailable:
        self.errors += 1
        text = f"queue store {self._url} failed: {error}"
        if self._dialect.missingSchema(error):
            text += f" (create or upgrade the tables with: acqs initdb --db {self._url})"
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

    async def _probe(self) -> ServerInfo:
        """What the server can do, found out once (not while there is no table)."""
        if self.serverInfo is not None:
            return self.serverInfo
        info = await self._run(self._dialect.probe)
        if self._skipLocked is False:
            info = attr.evolve(info, skipLocked=False)
        if self._waitless:
            info = attr.evolve(info, waits=False)
        if info.engine is None and self._dialect.serialised(info):
            return info  # no table yet: the claim will say so
        if self.serverInfo is None:  # the first of concurrent calls says it
            self.serverInfo = info
            self._describe(info)
        return info

    def _describe(self, info: ServerInfo) -> None:
        if info.engine is None:
            self.log.info("Queue store {database}: {version}; one writer at a time",
                          database=str(self._url), version=info.version)
            return
        if not self._dialect.serialised(info):
            self.log.info("Queue store {database}: {version}; claims skip locked rows",
                          database=str(self._url), version=info.version)
            return
        if (info.engine or "").lower() != "innodb":
            why = (f"vicidial_manager uses {info.engine}, which has no row locks"
                   " (ALTER TABLE vicidial_manager ENGINE=InnoDB lets instances claim in"
                   " parallel)")
        elif self._skipLocked is False:
            why = "claims were told not to skip locked rows"
        else:
            why = "the server has no SKIP LOCKED (MariaDB 10.6+ and MySQL 8.0+ have)"
        self.log.warn(
            "Queue store {database} ({version}): {why}; claims are serialised with GET_LOCK",
            database=str(self._url), version=info.version, why=why,
        )

    # -- transactions (in pool threads) -----------------------------------

    def _execute(self, txn, template: str, params: Sequence = (), **fields: str) -> int:
        txn.execute(self._dialect.sql(template, **fields), tuple(params))
        return txn.rowcount

    def _select(self, txn, template: str, params: Sequence = (), **fields: str) -> list:
        self._execute(txn, template, params, **fields)
        return list(txn.fetchall())

    def _underClaimLock(self, txn, server_ip, info: ServerInfo, work, *args):
        """Run C{work(txn, server_ip, *args)}, serialised with other claims if need be."""
        if not self._dialect.serialised(info):
            return work(txn, server_ip, *args)
        self._dialect.lockClaims(txn, server_ip)
        try:
            result = work(txn, server_ip, *args)
        except BaseException:
            self._dialect.unlockClaims(txn, server_ip, commit=False)
            raise
        self._dialect.unlockClaims(txn, server_ip, commit=True)
        return result

    def _waitThenClaimTxn(self, txn, server_ip, info, wait, limit, instance, token, send,
                          refuse):
        """Wait (C{wait} > 0) in the database for a NEW row, then claim: one thread hop."""
        if wait > 0 and not self._dialect.waitForNew(txn, server_ip, wait, self._waitStep):
            return [], [], []
        return self._underClaimLock(txn, server_ip, info, self._claimTxn, limit, instance,
                                    token, info, send, refuse)

    def _claimTxn(self, txn, server_ip, limit, instance, token, info, send, refuse):
        found = self._select(
            txn,
            "SELECT {columns} FROM vicidial_manager WHERE server_ip = %s AND status = 'NEW'"
            " ORDER BY man_id LIMIT %s{claimLock}",
            (server_ip, limit),
            columns=_ROW_COLUMNS,
            claimLock=self._dialect.claimLock(info),
        )
        rows = [_actionRow(row, token) for row in found]
        checked = self._deadChecked(txn, server_ip, rows)
        refused = {}
        for row in rows:
            reason = refuse(row) if refuse is not None and row.man_id not in checked else None
            if reason:
                refused[row.man_id] = _cut(reason, TEXT)
        claimed = [row for row in rows if row.man_id not in checked and row.man_id not in refused]
        # The first ones go to AMI at once, on sessions already logged in; not
        # on MyISAM, whose SENT would outlive a failed transaction and its
        # record, leaving a row nobody sends or recovers.
        marked = [attr.evolve(row, marked=True)
                  for row in claimed[:send if info.transactional else 0]]
        claimed = marked + claimed[len(marked):]
        self._upsertActions(
            txn,
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
            reason=f"COALESCE({self._dialect.inserted('reason')}, reason)",
            **dict(_CLAIM_RESETS, sending_at=INSERTED),
        )
        self._claimStatus(txn, claimed)
        self._setStatus(txn, list(checked) + list(refused), DEAD, (NEW,), response="N")
        return claimed, sorted(checked.items()), sorted(refused.items())

    def _claimStatus(self, txn, claimed: Sequence[ActionRow]) -> None:
        """Claimed rows NEW to QUEUE, or to SENT where the claim marked them: one UPDATE."""
        for chunk in _chunks(claimed):
            marked = [row.man_id for row in chunk if row.marked]
            if not marked:
                self._setStatus(txn, [row.man_id for row in chunk], QUEUE, (NEW,))
                continue
            ids = [row.man_id for row in chunk]
            self._execute(
                txn,
                "UPDATE vicidial_manager SET status = CASE WHEN man_id IN ({marked})"
                " THEN 'SENT' ELSE 'QUEUE' END WHERE status = 'NEW' AND man_id IN ({ids})",
                marked + ids,
                marked=_marks(len(marked)),
                ids=_marks(len(ids)),
            )

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
        found = self._select(
            txn,
            "SELECT callerid, MIN(man_id) FROM vicidial_manager"
            " WHERE server_ip = %s AND status = 'DEAD' AND callerid IN ({callerids})"
            " GROUP BY callerid",
            [server_ip] + callerids,
            callerids=_marks(len(callerids)),
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

    def _markSendingTxn(self, txn, claims) -> List[int]:
        marked = self._ownRecords(txn, claims, ("queued",))
        for ids in _chunks(marked):
            self._execute(
                txn,
                "UPDATE acqs_action SET sending_at = {now}, outcome = 'sending'"
                " WHERE man_id IN ({ids})",
                ids,
                ids=_marks(len(ids)),
            )
        self._setStatus(txn, marked, SENT, (QUEUE,))
        return marked

    def _releaseTxn(self, txn, claims, reason) -> List[int]:
        # Still QUEUE, or marked SENT (or half-marked) but never written.
        released = self._ownRecords(txn, claims, ("queued", "sending"), (QUEUE, SENT))
        self._requeue(txn, [(man_id, reason) for man_id in released], "released")
        return released

    def _recordSentTxn(self, txn, results) -> List[int]:
        # Each claim's answers in one guarded UPDATE; only where it changed
        # fewer rows than it named is it asked which (the others' claims lost).
        accepted: List[int] = []
        byClaim: Dict[str, List] = {}
        for r in results:
            byClaim.setdefault(r.claim, []).append(r)
        for token, group in byClaim.items():
            for chunk in _chunks(group):
                ids = [r.man_id for r in chunk]
                answered = [r.man_id for r in chunk if r.callAnswered]
                params = ([v for r in chunk for v in (r.man_id, _cut(r.text, TEXT))]
                          + [v for r in chunk
                             for v in (r.man_id, _cut(r.actionID, ACTION_ID) or None)]
                          + answered + answered + ids + [token])
                changed = self._execute(
                    txn,
                    "UPDATE acqs_action SET answered_at = {now}, outcome = 'sent',"
                    " response_text = {texts}, action_id = {actionIDs},"
                    " call_answered_at = CASE WHEN man_id IN ({answered}) THEN {now} END,"
                    # Answered: the call is up, unless the listener saw it end first.
                    " live = CASE WHEN dead_at IS NOT NULL THEN NULL"
                    " WHEN man_id IN ({answered}) THEN COALESCE(live, 1) ELSE live END"
                    " WHERE man_id IN ({ids}) AND claim_token {is} %s"
                    " AND outcome IN ('sending', 'unknown', 'sent')",
                    params,
                    texts=_caseOf(len(chunk)),
                    actionIDs=_caseOf(len(chunk)),
                    answered=_marks(len(answered)) if answered else "NULL",
                    ids=_marks(len(ids)),
                )
                if changed == len(ids):
                    accepted += ids
                else:
                    accepted += [m for (m,) in self._select(
                        txn,
                        "SELECT man_id FROM acqs_action WHERE man_id IN ({ids})"
                        " AND claim_token {is} %s AND outcome = 'sent'",
                        ids + [token], ids=_marks(len(ids)))]
        mine = set(accepted)
        for answered, response in ((True, "Y"), (False, "N")):
            ids = [r.man_id for r in results if bool(r.answered) is answered and r.man_id in mine]
            for chunk in _chunks(ids):
                self._execute(
                    txn,
                    "UPDATE vicidial_manager SET response = %s,"
                    " status = CASE WHEN status = 'QUEUE' THEN 'SENT' ELSE status END"
                    " WHERE man_id IN ({ids})",
                    [response] + list(chunk),
                    ids=_marks(len(chunk)),
                )
        return sorted(mine)

    # The listener's updates: read the rows they may move, apply the rules
    # in order in memory, then write each changed row once.

    def _applyUpdatesTxn(self, txn, server_ip, updates) -> int:
        rows = self._callRows(txn, server_ip, updates)
        byCallerid: Dict[str, List[_Row]] = {}
        for row in rows.values():
            byCallerid.setdefault(row.callerid.lower(), []).append(row)
        changes = 0
        for update in updates:
            if isinstance(update, CallUpdated):
                changes += self._updated(byCallerid, update)
            elif isinstance(update, CallDead):
                changes += self._dead(rows.values(), update)
            else:
                changes += self._ended(byCallerid, update)
        self._writeCalls(txn, server_ip, [row for row in rows.values() if row.changed])
        return changes

    def _callRows(self, txn, server_ip, updates) -> Dict[int, _Row]:
        """The rows of C{server_ip} that C{updates} may move, by man_id (one query, or two)."""
        callerids = sorted({_cut(u.callerid, CALLERID) for u in updates
                            if not isinstance(u, CallDead) and u.callerid})
        uniqueids = sorted({_cut(u.uniqueid, WHOLE_UNIQUEID) for u in updates
                            if isinstance(u, CallDead) and u.uniqueid})
        columns = (
            "v.man_id, v.status, v.channel, v.callerid, v.uniqueid, v.cmd_line_d,"
            " a.uniqueid, a.live, a.updated_at"
        )
        live = " AND v.status IN ('QUEUE', 'SENT', 'UPDATED')"
        parts, params = [], []
        for chunk in _chunks(callerids):
            parts.append(f"SELECT {columns} FROM vicidial_manager v LEFT JOIN acqs_action a"
                         f" ON a.man_id = v.man_id WHERE v.server_ip = %s{live}"
                         f" AND v.callerid IN ({_marks(len(chunk))})")
            params += [server_ip, *chunk]
        for chunk in _chunks(uniqueids):
            parts.append(f"SELECT {columns} FROM acqs_action a JOIN vicidial_manager v"
                         f" ON v.man_id = a.man_id WHERE a.uniqueid IN ({_marks(len(chunk))})"
                         f" AND v.server_ip = %s{live}")
            params += [*chunk, server_ip]
        found = self._select(txn, " UNION ALL ".join(parts), params) if parts else []
        # A row UPDATED by another listener has no whole uniqueid of acqs':
        # matched by its own, only when that is short enough not to be cut.
        known = {row[6] for row in found}
        short = [u for u in uniqueids if len(u) <= UNIQUEID and u not in known]
        for chunk in _chunks(short):
            found += self._select(
                txn,
                f"SELECT {columns} FROM vicidial_manager v LEFT JOIN acqs_action a"
                f" ON a.man_id = v.man_id WHERE v.server_ip = %s{live}"
                " AND v.uniqueid IN ({keys}) AND a.uniqueid IS NULL",
                [server_ip, *chunk], keys=_marks(len(chunk)))
        rows = {}
        for (man_id, status, channel, callerid, cut, lineD, whole, live, updated) in found:
            rows[man_id] = _Row(
                man_id=man_id, status=status.upper(), channel=channel or "",
                callerid=callerid or "", uniqueid=whole or cut or "", whole=bool(whole),
                recording=(lineD or "") in RECORDING_EXTENS,
                answered=bool(live) and updated is None,
            )
        return rows

    def _updated(self, byCallerid, update: CallUpdated) -> int:
        callerid = _cut(update.callerid, CALLERID).lower()
        uniqueid = _cut(update.uniqueid, WHOLE_UNIQUEID)
        changes = 0
        for row in byCallerid.get(callerid, ()) if callerid else ():
            if row.status == DEAD or (row.status == UPDATED and row.channel == update.channel
                                      and row.uniqueid == uniqueid):
                continue
            row.status, row.channel, row.uniqueid, row.whole = (
                UPDATED, _cut(update.channel, CHANNEL), uniqueid, True)
            row.answered, row.moved = False, True
            row.changed.update(uniqueid=uniqueid, updated_at=_NOW, live=1)
            changes += 1
        return changes

    def _dead(self, rows: Iterable[_Row], update: CallDead) -> int:
        uniqueid = _cut(update.uniqueid, WHOLE_UNIQUEID)
        changes = 0
        for row in rows:
            if (not uniqueid or row.status == DEAD or row.uniqueid != uniqueid
                    or (not row.whole and len(uniqueid) > UNIQUEID)):
                continue
            # The call ended either way; a recording's row stays as it is (VICIdial's rule).
            row.changed.update(dead_at=_NOW, live=None,
                               hangup_cause=_cut(update.cause, CAUSE) or None)
            if row.recording:
                continue
            row.status, row.moved = DEAD, True
            if update.channel:
                row.channel = _cut(update.channel, CHANNEL)
            changes += 1
        return changes

    def _ended(self, byCallerid, update: CallEnded) -> int:
        changes = 0
        for row in byCallerid.get(_cut(update.callerid, CALLERID).lower(), ()):
            if row.status != SENT or not row.answered:
                continue
            row.status, row.answered, row.moved = DEAD, False, True
            row.changed.update(dead_at=_NOW, live=None,
                               outcome="ended_unseen", reason=_cut(update.reason, TEXT))
            changes += 1
        return changes

    def _writeCalls(self, txn, server_ip, rows: List[_Row]) -> None:
        """acqs_action first, then every moved vicidial_manager row: one statement each."""
        new = self._dialect.inserted

        def keep(column):
            return f"COALESCE({new(column)}, {column})"

        self._upsertActions(
            txn,
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
             for row in rows],
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
        for chunk in _chunks(moved):
            ids = [row.man_id for row in chunk]
            cases = {}
            params: List[object] = []
            for column, value in (("status", lambda r: r.status),
                                  ("channel", lambda r: r.channel),
                                  ("uniqueid", lambda r: _cut(r.uniqueid, UNIQUEID))):
                cases[column] = _caseOf(len(chunk))
                for row in chunk:
                    params += [row.man_id, value(row)]
            self._execute(
                txn,
                "UPDATE vicidial_manager SET status = {status}, channel = {channel},"
                " uniqueid = {uniqueid} WHERE man_id IN ({ids}) AND status <> 'DEAD'",
                params + ids,
                ids=_marks(len(ids)),
                **cases,
            )

    def _recoverTxn(self, txn, server_ip, instance, staleAfter, inFlight):
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
        columns = "v.man_id, a.claimed_by, a.claim_token, a.outcome, a.sending_at IS NOT NULL"
        stranded = self._select(
            txn,
            f"SELECT {columns} FROM vicidial_manager v"
            " LEFT JOIN acqs_action a ON a.man_id = v.man_id" + joins
            + " WHERE v.server_ip = %s AND v.status = 'QUEUE'" + gone,
            (server_ip, instance, ago, ago, ago),
        )
        # Marked sending (SENT, or moved on), or half-marked (SENT, still queued).
        stranded += self._select(
            txn,
            f"SELECT {columns} FROM acqs_action a"
            " JOIN vicidial_manager v ON v.man_id = a.man_id" + joins
            + " WHERE a.outcome IN ('queued', 'sending') AND v.server_ip = %s"
            " AND (v.status = 'SENT' OR (a.outcome = 'sending' AND v.status <> 'QUEUE'))"
            + gone,
            (server_ip, instance, ago, ago, ago),
        )
        requeue, unknown, claimants = [], [], {}
        for man_id, claimant, token, outcome, marked in sorted(stranded):
            if man_id in inFlight or man_id in claimants:
                continue
            claimants[man_id] = claimant
            (unknown if marked else requeue).append((man_id, token, outcome))
        # Only what nobody took in the meantime (a claimant coming back marks
        # under the same token, a new claim has its own).
        requeued = self._stillAsRead(txn, requeue)
        unknowns = self._stillAsRead(txn, unknown)
        self._requeue(txn, [(m, _requeuedReason(claimants[m], staleAfter)) for m in requeued],
                      "requeued")
        self._finish(txn, [(m, _unknownReason(claimants[m])) for m in unknowns], SENT,
                     "unknown")
        return ([(m, claimants[m]) for m in requeued], [(m, claimants[m]) for m in unknowns])

    def _stillAsRead(self, txn, rows: Sequence[Tuple[int, Optional[str], Optional[str]]]):
        """Those of C{(man_id, token, outcome)} whose record is unchanged, locked."""
        kept = [man_id for man_id, _, outcome in rows if outcome is None]  # no record at all
        byOutcome: Dict[str, List[Claim]] = {}
        for man_id, token, outcome in rows:
            if outcome is not None:
                byOutcome.setdefault(outcome, []).append((man_id, token))
        for outcome, claims in byOutcome.items():
            kept += self._ownRecords(txn, claims, (outcome,))
        return sorted(kept)

    def _heartbeatTxn(self, txn, server_ip, instance, host, pid):
        sql = self._dialect.sql(
            "INSERT INTO acqs_instance (server_ip, instance, heartbeat_at, host, pid)"
            " VALUES (%s, %s, {now}, %s, %s)"
        ) + self._dialect.upsert(("server_ip", "instance"), {
            "heartbeat_at": INSERTED,
            "host": f"COALESCE({self._dialect.inserted('host')}, host)",
            "pid": f"COALESCE({self._dialect.inserted('pid')}, pid)",
        })
        txn.execute(sql, (server_ip, instance, host, pid))

    def _trackedCallsTxn(self, txn, server_ip, ringWindow) -> TrackedCalls:
        # Each query reads one index range: claimed rows (serverstat), rows
        # sent within the ring window (acqs_action.sent), live calls
        # (acqs_action.live); none is sorted.
        callerids: Dict[str, None] = {}
        for (callerid,) in self._select(
            txn,
            "SELECT callerid FROM vicidial_manager WHERE server_ip = %s AND status = 'QUEUE'"
            " AND action = 'Originate'",
            (server_ip,),
        ) + self._select(
            txn,
            "SELECT v.callerid FROM acqs_action a JOIN vicidial_manager v ON v.man_id = a.man_id"
            " WHERE a.server_ip = %s AND a.sending_at >= {ago} AND v.status = 'SENT'"
            " AND v.action = 'Originate'",
            (server_ip, self._dialect.agoParameter(ringWindow)),
        ):
            if callerid:
                callerids[callerid] = None
        uniqueids: Dict[str, None] = {}
        answered: Dict[str, None] = {}
        for callerid, status, uniqueid in self._select(
            txn,
            "SELECT v.callerid, v.status, a.uniqueid FROM acqs_action a"
            " JOIN vicidial_manager v ON v.man_id = a.man_id"
            " WHERE a.server_ip = %s AND a.live = 1 AND v.status IN ('SENT', 'UPDATED')",
            (server_ip,),
        ):
            if callerid:
                callerids[callerid] = None
            if uniqueid:
                uniqueids[uniqueid] = None
            elif status.upper() == SENT and callerid:
                answered[callerid] = None
        return TrackedCalls(tuple(callerids), tuple(uniqueids), tuple(answered))

    def _pruneTxn(self, txn, server_ip, keepHours, batch) -> Pruned:
        rows = 0
        if keepHours is not None:
            # VICIdial's own flush: the oldest rows first, walked in man_id
            # order (entry_date has no index), up to the first young one.
            doomed, after, young, pages = [], 0, False, 0
            while not young and len(doomed) < batch and pages < PRUNE_PAGES:
                pages += 1
                page = self._select(
                    txn,
                    "SELECT man_id, server_ip, entry_date < {ago} FROM vicidial_manager"
                    " WHERE man_id > %s ORDER BY man_id LIMIT %s",
                    (self._dialect.agoParameter(keepHours * 3600), after, batch),
                )
                for man_id, server, isOld in page:
                    if not isOld:
                        young = True
                        break
                    if server == server_ip:
                        doomed.append(man_id)
                young = young or len(page) < batch
                after = page[-1][0] if page else after
            for ids in _chunks(doomed[:batch]):
                self._execute(txn, "DELETE FROM acqs_action WHERE man_id IN ({ids})", ids,
                              ids=_marks(len(ids)))
                rows += self._execute(
                    txn, "DELETE FROM vicidial_manager WHERE man_id IN ({ids})", ids,
                    ids=_marks(len(ids)))
        # Records whose row is gone (VICIdial's AST_flush_DBqueue.pl, or the
        # flush above): all of them lie below the oldest row's man_id.
        [(oldest,)] = self._select(txn, "SELECT MIN(man_id) FROM vicidial_manager")
        orphans = [man_id for (man_id,) in self._select(
            txn,
            "SELECT man_id FROM acqs_action WHERE man_id < %s ORDER BY man_id LIMIT %s",
            (oldest if oldest is not None else 2 ** 32, batch),
        )]
        for ids in _chunks(orphans):
            self._execute(txn, "DELETE FROM acqs_action WHERE man_id IN ({ids})", ids,
                          ids=_marks(len(ids)))
        return Pruned(records=len(orphans), rows=rows)

    # -- statements shared by the transactions ----------------------------

    def _ownRecords(self, txn, claims: Sequence[Claim], outcomes: Sequence[str],
                    statuses: Sequence[str] = ()) -> List[int]:
        """
        Those man_ids of C{claims} whose record still holds the claim's token
        and one of C{outcomes} (and whose row one of C{statuses}, if given),
        locked until the end of the transaction.
        """
        owned = []
        statusCheck = (f" AND v.status IN ({_marks(len(statuses))})" if statuses else "")
        join = " JOIN vicidial_manager v ON v.man_id = a.man_id" if statuses else ""
        for token, man_ids in _byToken(claims):
            for ids in _chunks(man_ids):
                owned += [man_id for (man_id,) in self._select(
                    txn,
                    "SELECT a.man_id FROM acqs_action a" + join
                    + " WHERE a.man_id IN ({ids}) AND a.claim_token {is} %s"
                    " AND a.outcome IN ({outcomes})" + statusCheck
                    + " ORDER BY a.man_id{lockRows}",
                    list(ids) + [token] + list(outcomes) + list(statuses),
                    ids=_marks(len(ids)),
                    outcomes=_marks(len(outcomes)),
                )]
        return sorted(owned)

    def _setStatus(self, txn, man_ids, status, fromStatuses, response=None) -> None:
        """Move those of C{man_ids} in one of C{fromStatuses} to C{status} (and C{response})."""
        assignments, params = "status = %s", [status]
        if response is not None:
            assignments += ", response = %s"
            params.append(response)
        for ids in _chunks(man_ids):
            self._execute(
                txn,
                "UPDATE vicidial_manager SET {assignments}"
                " WHERE status IN ({from}) AND man_id IN ({ids})",
                params + list(fromStatuses) + list(ids),
                assignments=assignments,
                ids=_marks(len(ids)),
                **{"from": _marks(len(fromStatuses))},
            )

    def _requeue(self, txn, rows: Sequence[Tuple[int, str]], outcome: str) -> None:
        """Claimed rows back to NEW, to be claimed again: (man_id, reason) pairs."""
        self._upsertActions(
            txn,
            "man_id, claimed_by, claim_token, claimed_at, sending_at, outcome, reason, attempts",
            "%s, NULL, NULL, NULL, NULL, %s, %s, 1",
            [(man_id, outcome, reason) for man_id, reason in rows],
            claimed_by="NULL",
            claim_token="NULL",
            claimed_at="NULL",
            sending_at="NULL",
            outcome=INSERTED,
            reason=INSERTED,
            attempts="attempts + 1",
        )
        self._setStatus(txn, [man_id for man_id, _ in rows], NEW, (QUEUE, SENT))

    def _finish(self, txn, rows: Sequence[Tuple[int, str]], status: str, outcome: str) -> None:
        """Claimed rows that will not be sent (again): (man_id, reason) pairs."""
        self._upsertActions(
            txn,
            "man_id, outcome, reason",
            "%s, %s, %s",
            [(man_id, outcome, reason) for man_id, reason in rows],
            outcome=INSERTED,
            reason=INSERTED,
        )
        self._setStatus(txn, [man_id for man_id, _ in rows], status, (QUEUE,), response="N")

    def _upsertActions(self, txn, columns: str, values: str, rows: Sequence[tuple],
                       **assignments):
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


def registerTxn(txn, dialect: Dialect, server_ip: str, instance: str, host: str, pid: int,
                staleAfter: float, isAlive: Callable[[int], bool]) -> None:
    """
    Take the name C{instance} for this process (C{host}, C{pid}), unless a
    live one holds it: raise L{InstanceConflict} if its heartbeat is under
    C{staleAfter} seconds old and it is not a dead process of this host.
    """
    instance, host = _cut(instance, INSTANCE), _cut(host, HOST)
    txn.execute(dialect.sql(
        "SELECT host, pid, heartbeat_at >= {ago} FROM acqs_instance"
        " WHERE server_ip = %s AND instance = %s{lockRows}"),
        (dialect.agoParameter(staleAfter), server_ip, instance))
    found = txn.fetchall()
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
    txn.execute(dialect.sql(
        "INSERT INTO acqs_instance (server_ip, instance, heartbeat_at, host, pid, started_at)"
        " VALUES (%s, %s, {now}, %s, %s, {now})") + dialect.upsert(
        ("server_ip", "instance"),
        {c: INSERTED for c in ("heartbeat_at", "host", "pid", "started_at")}),
        (server_ip, instance, host, pid))


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


def _requeuedReason(claimant, staleAfter: float) -> str:
    if claimant is None:
        return (
            f"found claimed for over {staleAfter:g} s with no acqs claim "
            "(another sender stopped?); never marked sending; requeued"
        )
    return f"claimed by {claimant}, which stopped before sending it; requeued"


def _unknownReason(claimant) -> str:
    return (
        f"claimed by {claimant}, which stopped after it may have been sent to Asterisk"
        " and before Asterisk's answer was recorded; response N, not resent"
    )

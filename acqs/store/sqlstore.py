"""
The queue store on SQL: VICIdial's vicidial_manager table, plus acqs'
companion tables acqs_action and acqs_instance (see C{sql/acqs.sql}).

L{SQLQueueStore} is the L{IQueueStore} API: it runs each call as one
transaction in the pool's threads, retrying and reconnecting, and reports
outages.  The transactions themselves live in modules named for what they
do: L{acqs.store.claims} (claims, the dead check, the claim lock),
L{acqs.store.waiting} (the looks for NEW rows, on a connection of their
own in autocommit), L{acqs.store.sending} (markSending, release,
recordSent), L{acqs.store.calls} (the listener's updates, tracked calls),
L{acqs.store.recovery} (stranded rows, instance names, heartbeats),
L{acqs.store.pruning}; L{acqs.store.transaction} holds what they share.

Life cycle of a row, and what acqs records of it (acqs_action.outcome)::

    NEW ──claim──▶ QUEUE (queued) ──markSending──▶ SENT (sending) ──recordSent──▶ (sent)
     ▲  │            │                                 │
     │  └─▶ DEAD (refused, dead_check)                 └─▶ listener: UPDATED, then DEAD
     │   release ◀───┘                                     (ended_unseen: DEAD by catch-up)
     │   (released)

Every transition is guarded in SQL, so that no update is lost or reversed:
claims take only NEW rows; SENT is written only over QUEUE (a fast
listener's UPDATED stays, though Asterisk's response is still recorded);
release acts only on rows still claimed; the listener's UPDATED
applies to QUEUE, SENT and UPDATED rows, its DEAD to any row not DEAD; DEAD
is final.  C{response} is Y when Asterisk answered Success, N otherwise.

MyISAM commits each statement at once, while acqs' own tables are InnoDB:
a transaction that fails half-way keeps its vicidial_manager changes and
loses its acqs_action ones.  So every transaction writes acqs_action first
and vicidial_manager last, and every half-done state is one that release
and recovery resolve: a SENT row whose record still says C{queued} was
never marked (its mark failed before it committed), and goes back to NEW.

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
from typing import Callable, Iterable, List, Optional, Sequence, Set

import attr
from twisted.internet.defer import Deferred, DeferredLock
from twisted.logger import Logger
from zope.interface import implementer

from . import calls, duties, pruning, reads, recovery, sending, servers, waiting
from .claims import claim, underClaimLock
from .dialects import Dialect
from .interfaces import CannotWait, IQueueStore, StoreUnavailable
from .records import (
    ActionRow,
    CallDead,
    CallDialing,
    CallEnded,
    CallMoved,
    CallUpdated,
    Claim,
    Recovery,
    SendResult,
    ServerInfo,
)
from .transaction import HOST, INSTANCE, TEXT, Transaction, cut
from .url import DatabaseURL

# How many times a transaction chosen as a deadlock victim is run.
ATTEMPTS = 3


def _deferred(method):
    """Run the coroutine method C{method} as a Deferred (the public API)."""

    @functools.wraps(method)
    def run(*args, **kwargs):
        return Deferred.fromCoroutine(method(*args, **kwargs))

    return run


@implementer(IQueueStore)
class SQLQueueStore:
    """
    L{IQueueStore} on a DB-API database through C{twisted.enterprise.adbapi};
    C{dialect} says what differs between MySQL/MariaDB and SQLite.  With
    C{skipLocked=False} claims are serialised even where the server could
    skip locked rows, and with C{waits=False} nobody waits in the server
    for NEW rows (the paths older servers and MySQL take).  C{waitPool}
    holds the connection of the looks for NEW rows.
    """

    log = Logger()

    def __init__(self, url: DatabaseURL, dialect: Dialect, pool, reactor,
                 skipLocked: Optional[bool] = None, waits: Optional[bool] = None,
                 waitPool=None):
        self._url = url
        self._dialect = dialect
        self._pool = pool
        self._waitPool = waitPool if waitPool is not None else pool
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
                    originates: Optional[int] = None):
        if limit < 1 and not originates:
            return []
        async with self._claiming:
            info = await self._probe()
            rows, checked, refused = await self._run(
                underClaimLock, server_ip, info, claim, limit, cut(instance, INSTANCE),
                secrets.token_hex(8), info, send, refuse, originates,
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
    async def lookForNew(self, server_ip: str, originates: bool = True, others: bool = True):
        return await self._autocommit(waiting.lookForNew, server_ip, originates, others)

    @_deferred
    async def waitForNew(self, server_ip: str, timeout: float, step: float,
                         originates: bool = True, others: bool = True):
        info = await self._probe()
        if not info.waits:
            raise CannotWait(self._whyNoWait(info))
        return await self._autocommit(waiting.waitForNew, server_ip,
                                      1 + max(0, round(timeout / step)), step, originates,
                                      others)

    def _whyNoWait(self, info: ServerInfo) -> str:
        if self._waitless:
            return "it was told it cannot wait in the server"
        if self._dialect.kind == "sqlite":
            return "SQLite cannot wait in the server"
        return f"{info.version} cannot wait in the server (MariaDB 10.1.1+ can)"

    @_deferred
    async def markSending(self, claims: Sequence[Claim]):
        return await self._run(sending.markSending, list(claims))

    @_deferred
    async def release(self, claims: Sequence[Claim], reason: str):
        claims = list(claims)
        released = await self._run(sending.release, claims, cut(reason, TEXT))
        self._settled(man_id for man_id, _ in claims)
        return released

    @_deferred
    async def recordSent(self, results: Sequence):
        results = list(results)
        recorded = await self._run(sending.recordSent, results)
        self._settled(r.man_id for r in results)
        return recorded

    @_deferred
    async def applyUpdates(self, server_ip: str, updates: Sequence):
        return await self.record(server_ip, updates)

    @_deferred
    async def record(self, server_ip: str, items: Sequence):
        results = [i for i in items if isinstance(i, SendResult)]
        updates = [i for i in items if not isinstance(i, SendResult)]
        kinds = (CallUpdated, CallDialing, CallMoved, CallDead, CallEnded)
        for update in updates:
            if not isinstance(update, kinds):
                raise TypeError(f"not a send result or call update: {update!r}")
        changes = await self._run(calls.record, server_ip, results, updates)
        self._settled(r.man_id for r in results)
        return changes

    @_deferred
    async def recoverStranded(self, server_ip: str, instance: str, staleAfter: float,
                              unclaimedAfter: Optional[float] = None):
        async with self._claiming:
            info = await self._probe()
            requeued, unknown = await self._run(
                underClaimLock, server_ip, info, recovery.recoverStranded,
                cut(instance, INSTANCE), staleAfter, frozenset(self._inFlight), unclaimedAfter,
            )
        recovered = Recovery(
            requeued=tuple(man_id for man_id, _ in requeued),
            unknown=tuple(man_id for man_id, _ in unknown),
        )
        for man_ids, fate in (
            (recovered.requeued, "were never sent: back to NEW"),
            (recovered.unknown, "may have been sent, with no answer recorded: response N,"
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
        return recovered

    @_deferred
    async def register(self, server_ip: str, instance: str, host: str, pid: int,
                       staleAfter: float, isAlive: Callable[[int], bool]):
        await self._run(recovery.register, server_ip, instance, host, pid, staleAfter,
                        isAlive)

    @_deferred
    async def heartbeat(self, server_ip: str, instance: str, host: Optional[str] = None,
                        pid: Optional[int] = None, readServer: bool = False):
        return await self._run(servers.heartbeatReading if readServer else recovery.heartbeat,
                               server_ip, cut(instance, INSTANCE), cut(host, HOST) or None, pid)

    @_deferred
    async def trackedCalls(self, server_ip: str, ringWindow: float):
        return await self._run(calls.trackedCalls, server_ip, ringWindow)

    @_deferred
    async def dutyColumns(self):
        return await self._run(duties.findColumns)

    @_deferred
    async def writeDuties(self, server_ip: str, rows: Sequence, now: float):
        return await self._run(duties.writeDuties, server_ip, list(rows), now)

    @_deferred
    async def prune(self, server_ip: str, keepHours: Optional[float] = None,
                    batch: int = 1000):
        return await self._run(pruning.prune, server_ip, keepHours, batch)

    @_deferred
    async def close(self):
        if self._closed:
            return
        self._closed = True
        if self._running:
            waiting: Deferred[None] = Deferred()
            self._idle.append(waiting)
            await waiting
        self._pool.close()
        if self._waitPool is not self._pool:
            self._waitPool.close()

    def _settled(self, man_ids: Iterable[int]) -> None:
        self._inFlight.difference_update(man_ids)

    # -- reads for operators (acqs.web, acqs.metrics; see acqs.store.reads) --

    @_deferred
    async def recentRows(self, server_ip: str, limit: int = 50):
        """The newest C{limit} rows of C{server_ip} as L{RowView}s, newest first."""
        return await self._run(lambda t: reads.selectRows(
            t, t.dialect, server_ip=server_ip, limit=limit))

    @_deferred
    async def newRows(self, server_ip: str):
        """The L{NewRows} of C{server_ip}: how many wait as NEW, and the oldest."""
        return await self._run(lambda txn: reads.selectNewRows(txn, self._dialect, server_ip))

    @_deferred
    async def sendTimes(self, server_ip: str, instance: str, after):
        """The L{SendTimes} of the rows C{instance} marked sending after C{after}."""
        return await self._run(lambda t: reads.selectSendTimes(
            t, t.dialect, server_ip, cut(instance, INSTANCE), after))

    # -- running transactions ---------------------------------------------

    async def _run(self, interaction, *args):
        """
        Run C{interaction(t, *args)} as one transaction in the pool's
        threads, C{t} its L{Transaction}; database errors become
        L{StoreUnavailable}.
        """
        return await self._using(self._pool.runInteraction, self._transaction, interaction,
                                 *args)

    async def _autocommit(self, look, *args):
        """
        Run C{look(t, *args)} on the wait connection, in autocommit (no
        transaction); database errors become L{StoreUnavailable}.
        """
        return await self._using(self._waitPool.runWithConnection, self._looking, look, *args)

    async def _using(self, run, *args):
        if self._closed:
            raise StoreUnavailable(f"the queue store for {self._url} is closed")
        self._running += 1
        try:
            result = await run(*args)
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

    def _looking(self, connection, look, *args):
        """In the wait connection's thread: a connection found dead is replaced once."""
        for attempt in (1, 2):
            t = Transaction(connection.cursor(), self._dialect)
            try:
                return look(t, *args)
            except self._dialect.errors as e:
                if attempt == 2 or not self._dialect.gone(e) or t.executed > 1:
                    raise
                connection.reconnect()

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
            t = Transaction(txn, self._dialect)
            try:
                return interaction(t, *args)
            except self._dialect.errors as e:
                if self._dialect.gone(e) and t.executed <= 1 and attempt == 1:
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

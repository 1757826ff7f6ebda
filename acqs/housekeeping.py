"""
Housekeeping: this instance's heartbeat, the recovery of rows left claimed
by an instance that died (a previous run of this one, or a hot standby gone
silent; see L{acqs.store.recovery} for the rule), and pruning: acqs_action
records whose vicidial_manager row VICIdial's AST_flush_DBqueue.pl deleted,
and, with C{keepHours}, this server's rows older than that, for a server
that runs acqs without VICIdial's cron.

With C{onServer}, the heartbeat's transaction also reads VICIdial's
C{servers} row (while C{readServer()}), handed to C{onServer}: one more
statement, no extra transaction.
While C{standsIn()} (no Perl sender can be running: acqs holds VICIdial's
process title), rows a Perl sender left in QUEUE go back to NEW at once,
not after C{staleAfter}.
"""

import os
import socket
from typing import Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .store.interfaces import IQueueStore
from .store.servers import ServerRead

# Rows and records one pruning statement deletes at most, and how many
# batches one round may take.
PRUNE_BATCH = 1000
PRUNE_BATCHES = 20


class Housekeeper(Service):
    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        store: IQueueStore,
        serverIP: str,
        instance: str,
        staleAfter: float,
        interval: float = 5.0,
        keepHours: Optional[float] = None,
        pruneInterval: float = 60.0,
        onServer: Optional[Callable[[ServerRead], object]] = None,
        readServer: Callable[[], bool] = lambda: True,
        standsIn: Callable[[], bool] = lambda: False,
    ):
        self._clock = clock
        self._store = store
        self.serverIP = serverIP
        self.instance = instance
        self._staleAfter = staleAfter
        self._keepHours = keepHours
        self._pruneInterval = pruneInterval
        self._onServer = onServer
        self._readServer = readServer
        self._standsIn = standsIn
        self._host, self._pid = socket.gethostname(), os.getpid()
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock
        self._interval = interval
        self._looping: Optional[Deferred] = None
        self._prunedAt: Optional[float] = None
        self.healthy: Optional[bool] = None  # unknown until the first round
        self.downSince: Optional[float] = None  # when the database began failing
        self.error: Optional[str] = None  # why, while it fails
        self.recovered = 0
        self.pruned = 0

    def startService(self) -> None:
        super().startService()
        self._looping = self._loop.start(self._interval, now=True)

    def _tick(self) -> Deferred:
        return Deferred.fromCoroutine(self._housekeep())

    async def _housekeep(self) -> None:
        try:
            reading = self._onServer is not None and self._readServer()
            server = await self._store.heartbeat(self.serverIP, self.instance, self._host,
                                                 self._pid, readServer=reading)
            if reading:
                self._tell(server)
            recovery = await self._store.recoverStranded(
                self.serverIP, self.instance, self._staleAfter,
                unclaimedAfter=0 if self._standsIn() else None)
            now = self._clock.seconds()
            if self._prunedAt is None or now - self._prunedAt >= self._pruneInterval:
                self._prunedAt = now
                await self._prune()
        except Exception as e:
            if self.healthy is not False:
                self.log.error("Housekeeping failed: {reason}", reason=str(e))
                self.downSince = self._clock.seconds()
            self.healthy, self.error = False, str(e) or repr(e)
            return
        self.healthy = True
        self.downSince = self.error = None
        self.recovered += len(recovery.requeued) + len(recovery.unknown)  # the store logs them

    def _tell(self, server: ServerRead) -> None:
        try:
            if self._onServer is not None:  # it is: reading the row asks for one
                self._onServer(server)
        except Exception:
            self.log.failure("Following VICIdial's servers row failed")

    async def _prune(self) -> None:
        records = rows = 0
        for _ in range(PRUNE_BATCHES):
            pruned = await self._store.prune(self.serverIP, self._keepHours, PRUNE_BATCH)
            records, rows = records + pruned.records, rows + pruned.rows
            if pruned.records < PRUNE_BATCH and pruned.rows < PRUNE_BATCH:
                break
        self.pruned += records + rows
        if records:
            self.log.info("Pruned {records} acqs_action records whose rows were flushed",
                          records=records)
        if rows:
            self.log.info("Flushed {rows} rows of {server_ip} older than {hours:g} hours",
                          rows=rows, server_ip=self.serverIP, hours=self._keepHours)

    def stopService(self) -> Deferred:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        return succeed(None) if self._looping is None else self._looping  # None: never started

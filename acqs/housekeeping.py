"""
Housekeeping: this instance's heartbeat, and the recovery of rows left in
QUEUE by an instance that died (a previous run of this one, or a hot
standby gone silent); see L{acqs.store.sqlstore} for the rule.
"""

from typing import Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .store.interfaces import IQueueStore


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
    ):
        self._clock = clock
        self._store = store
        self.serverIP = serverIP
        self.instance = instance
        self._staleAfter = staleAfter
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock
        self._interval = interval
        self._looping: Optional[Deferred] = None
        self.healthy: Optional[bool] = None  # unknown until the first round
        self.downSince: Optional[float] = None  # when the database began failing
        self.recovered = 0

    def startService(self) -> None:
        super().startService()
        self._looping = self._loop.start(self._interval, now=True)

    def _tick(self) -> Deferred:
        return Deferred.fromCoroutine(self._housekeep())

    async def _housekeep(self) -> None:
        try:
            await self._store.heartbeat(self.serverIP, self.instance)
            recovery = await self._store.recoverStranded(
                self.serverIP, self.instance, self._staleAfter)
        except Exception as e:
            if self.healthy is not False:
                self.log.error("Housekeeping failed: {reason}", reason=str(e))
                self.downSince = self._clock.seconds()
            self.healthy = False
            return
        self.healthy = True
        self.downSince = None
        self.recovered += len(recovery.requeued) + len(recovery.unknown)  # the store logs them

    def stopService(self) -> Deferred:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        return self._looping

"""
The rows waiting as NEW for this server: how many, how old the oldest is,
and since when the oldest has been seen waiting unclaimed.

acqs claims rows oldest first, within milliseconds while it works, so a
NEW row that stays the oldest from one look to the next means nothing is
being claimed (AMI down, the listener away, the database failing, acqs
stuck).  One indexed read every C{interval} seconds; nothing per claim.
"""

from typing import Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .store.interfaces import IQueueStore, StoreUnavailable


class NewRowsWatch(Service):
    """
    @ivar rows: how many rows of C{serverIP} wait as NEW (None: not known,
        the database did not answer the last look).
    @ivar oldestAge: the oldest one's age by its entry_date (whole seconds).
    @ivar waitingSince: when (clock seconds) the oldest was first seen
        waiting, at a look; None when none waits.
    @ivar lookedAt: when the last look was answered.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, store: IQueueStore, serverIP: str,
                 interval: float = 5.0):
        self._clock = clock
        self._store = store
        self._serverIP = serverIP
        self._interval = interval
        self._loop = LoopingCall(self._look)
        self._loop.clock = clock
        self._looping: Optional[Deferred] = None
        self._oldest: Optional[int] = None
        self.rows: Optional[int] = None
        self.oldestAge: Optional[float] = None
        self.waitingSince: Optional[float] = None
        self.lookedAt: Optional[float] = None

    def startService(self) -> None:
        super().startService()
        self._looping = self._loop.start(self._interval, now=True)

    def _look(self) -> Deferred:
        async def look() -> None:
            try:
                found = await self._store.newRows(self._serverIP)
            except StoreUnavailable:
                self.rows = self.oldestAge = None  # the store says so; health reports it
                return
            except Exception:
                self.log.failure("Counting the NEW rows failed")
                self.rows = self.oldestAge = None
                return
            self.lookedAt = self._clock.seconds()
            if found.oldest != self._oldest:
                self._oldest = found.oldest
                self.waitingSince = None if found.oldest is None else self.lookedAt
            self.rows, self.oldestAge = found.count, found.age

        return Deferred.fromCoroutine(look())

    def stopService(self) -> Optional[Deferred]:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        return self._looping

"""
Ordered, batched writes to the store.

Items added in the same reactor turn (or within C{delay} seconds of the
first), or while a batch is being written, are written together by the next
batch: one statement round for many rows, one batch in flight at a time,
items applied in the order they came.
"""

from collections import deque
from typing import Any, Awaitable, Callable, Deque, List, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure


class BatchWriter:
    """
    Write items through C{write(batch)} (returning a Deferred or a coroutine).

    With C{retry}, a failed batch is kept and tried again after a growing
    delay, so nothing is lost while the database is away; the outage is
    logged when it starts and when it ends.  Without it, a failed batch
    fails its items' Deferreds.  Beyond C{maxPending} waiting items the
    oldest are dropped, each drop logged and counted in C{dropped}.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        write: Callable[[Sequence[Any]], Awaitable[Any]],
        name: str,
        *,
        retry: bool = True,
        maxBatch: int = 500,
        maxPending: int = 100_000,
        retryDelay: float = 0.25,
        maxRetryDelay: float = 10.0,
        delay: float = 0.0,
    ):
        self._clock = clock
        self._write = write
        self.name = name
        self._retry = retry
        self._maxBatch = maxBatch
        self._maxPending = maxPending
        self._retryDelay = retryDelay
        self._maxRetryDelay = maxRetryDelay
        self._delay = delay
        self._queue: Deque[Tuple[object, Optional[Deferred]]] = deque()
        self._scheduled: Optional[IDelayedCall] = None  # the delayed call that starts a batch
        self._inFlight = 0  # items of the batch being written
        self._failures = 0
        self._idleWaiters: List[Deferred] = []
        self._stopped = False
        self.dropped = 0

    def __len__(self) -> int:
        """Items not yet written."""
        return len(self._queue) + self._inFlight

    def add(self, item: object) -> None:
        """Queue C{item} for writing."""
        self._enqueue(item, None)

    def write(self, item: object) -> Deferred:
        """Queue C{item}; the Deferred fires with what C{write(batch)} returned for its batch."""
        d: Deferred[Any] = Deferred()
        self._enqueue(item, d)
        return d

    def _enqueue(self, item: object, d: Optional[Deferred]) -> None:
        if len(self._queue) >= self._maxPending:
            lost, waiter = self._queue.popleft()
            self.dropped += 1
            self.log.error(
                "{writer}: {pending} writes waiting; dropped the oldest ({item!r}),"
                " {dropped} dropped so far",
                writer=self.name, pending=len(self._queue), item=lost, dropped=self.dropped,
            )
            if waiter is not None:
                waiter.errback(OverflowError(f"{self.name}: queue full, write dropped"))
        self._queue.append((item, d))
        self._schedule(self._delay)

    def _schedule(self, delay: float) -> None:
        if self._scheduled is None and not self._inFlight and self._queue and not self._stopped:
            self._scheduled = self._clock.callLater(delay, self._flush)

    def _flush(self) -> Deferred:
        self._scheduled = None
        batch = [self._queue.popleft() for _ in range(min(self._maxBatch, len(self._queue)))]
        self._inFlight = len(batch)
        d = Deferred.fromCoroutine(self._writeBatch(batch))
        d.addErrback(lambda f: self.log.failure("{writer}: batch writer bug", f, writer=self.name))
        return d

    async def _writeBatch(self, batch: List[Tuple[object, Optional[Deferred]]]) -> None:
        delay = 0.0
        try:
            result = await self._write([item for item, _ in batch])
        except Exception:
            failure = Failure()
            self._failures += 1
            if self._failures == 1:
                self.log.error(
                    "{writer}: cannot write {count} items ({reason}); {plan}",
                    writer=self.name, count=len(batch), reason=failure.getErrorMessage(),
                    plan="retrying until the database answers" if self._retry else "given up",
                )
            if self._retry:
                self._queue.extendleft(reversed(batch))
                delay = min(self._maxRetryDelay, self._retryDelay * 2 ** (self._failures - 1))
            else:
                for _, waiter in batch:
                    if waiter is not None:
                        waiter.errback(failure)
        else:
            if self._failures:
                self.log.info("{writer}: writing again after {failures} failed attempts",
                              writer=self.name, failures=self._failures)
                self._failures = 0
            for _, waiter in batch:
                if waiter is not None:
                    waiter.callback(result)
        finally:
            self._inFlight = 0
        self._schedule(max(delay, self._delay))
        if not self._queue:
            waiters, self._idleWaiters = self._idleWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    def stop(self) -> None:
        """Write no more: a waiting retry is cancelled; what is left stays unwritten."""
        self._stopped = True
        if self._scheduled is not None and self._scheduled.active():
            self._scheduled.cancel()
        self._scheduled = None

    def whenIdle(self) -> Deferred:
        """Fires once every item added so far has been written (or dropped)."""
        if not self._queue and not self._inFlight:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idleWaiters.append(d)
        return d

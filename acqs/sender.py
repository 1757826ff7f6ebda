"""
The sender: claims NEW rows of this server and sends each action over its
own short-lived AMI session.

Claims are sized to free capacity, so rows wait as NEW in the table (in
man_id order) rather than as QUEUE in memory.  At most C{maxSessions}
sessions are open at once, lingering ones included; rows claimed beyond
that wait in a FIFO backlog, and while they wait, lingering sessions are
logged off oldest first to make room.  Rows whose action never reached AMI
(Asterisk unreachable, login refused, acqs stopping) go back to NEW, and
claiming pauses with a growing delay until AMI answers again.
"""

from collections import OrderedDict, deque
from typing import Callable, Deque, Optional, Sequence

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from .actions import Action, rowAction
from .batching import BatchWriter
from .session import ActionSession, NotSent
from .store.interfaces import IQueueStore, StoreUnavailable
from .store.records import Refusal, SendResult

SessionOpener = Callable[[Action, Callable[[], Deferred]], ActionSession]

MAX_PAUSE = 30.0


class Sender(Service):
    """
    @param openSession: C{openSession(action, beforeSend)} starts an
        L{ActionSession} for the action.
    @param onOriginate: called with the callerid of every Originate claimed,
        before it is sent, so the listener can follow the call.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        store: IQueueStore,
        openSession: SessionOpener,
        serverIP: str,
        instance: str,
        *,
        maxSessions: int = 50,
        pollInterval: float = 0.05,
        onOriginate: Callable[[str], None] = lambda callerid: None,
        stopTimeout: float = 30.0,
    ):
        self._clock = clock
        self._store = store
        self._openSession = openSession
        self.serverIP = serverIP
        self.instance = instance
        self._maxSessions = maxSessions
        self._pollInterval = pollInterval
        self._onOriginate = onOriginate
        self._stopTimeout = stopTimeout
        self._backlog: Deque[Action] = deque()
        self._sessions: "OrderedDict[ActionSession, None]" = OrderedDict()
        self._loop = LoopingCall(self._poll)
        self._loop.clock = clock
        self._looping: Optional[Deferred] = None
        self._stopping = False
        self._failures = 0  # sessions in a row that could not send
        self._pausedUntil = 0.0
        self._storeDown = False
        self.sent = 0
        self.marks = BatchWriter(clock, store.markSending, "sending marks", retry=False)
        self.results = BatchWriter(clock, store.recordSent, "send results")
        self.releases = BatchWriter(clock, self._release, "released rows")
        self.refusals = BatchWriter(clock, store.refuse, "refused rows")

    @property
    def sessionCount(self) -> int:
        return len(self._sessions)

    @property
    def backlogCount(self) -> int:
        return len(self._backlog)

    # Claiming

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self._looping = self._loop.start(self._pollInterval, now=True)

    def _room(self) -> int:
        busy = sum(1 for s in self._sessions if not s.lingering)
        room = self._maxSessions - busy - len(self._backlog)
        return min(room, 1) if self._failures else room

    def _poll(self) -> Optional[Deferred]:
        if self._stopping or self._clock.seconds() < self._pausedUntil:
            return None
        room = self._room()
        return Deferred.fromCoroutine(self._claim(room)) if room > 0 else None

    async def _claim(self, room: int) -> None:
        try:
            rows = await self._store.claim(self.serverIP, room, self.instance)
        except StoreUnavailable as e:
            if not self._storeDown:
                self._storeDown = True
                self.log.error("Cannot claim rows: {reason}", reason=str(e))
            return
        except Exception:
            self.log.failure("Claiming rows failed")
            return
        if self._storeDown:
            self._storeDown = False
            self.log.info("Claiming rows again")
        for row in rows:
            try:
                self._take(row)
            except Exception:
                self.log.failure("man_id {man_id}: could not queue the row", man_id=row.man_id)
                self.releases.add((row.man_id, "acqs failed to queue the row"))
        self._pump()

    def _take(self, row) -> None:
        action = rowAction(row)
        if isinstance(action, Refusal):
            self.log.warn("man_id {man_id} refused: {reason}", man_id=action.man_id,
                          reason=action.reason)
            self.refusals.add(action)
            return
        if action.ignored:
            self.log.warn("man_id {man_id}: ignored {columns} (acqs sets the ActionID)",
                          man_id=action.man_id, columns=", ".join(action.ignored))
        if action.originates:
            self._onOriginate(row.callerid)
        self.log.info("man_id {man_id} {action} claimed (QUEUE), callerid {callerid}",
                      man_id=row.man_id, action=action.name, callerid=row.callerid)
        self._backlog.append(action)

    # Sessions

    def _pump(self) -> None:
        if self._stopping:
            for action in self._backlog:
                self.releases.add((action.man_id, "acqs stopped before sending it"))
            self._backlog.clear()
            return
        while self._backlog and len(self._sessions) < self._maxSessions:
            self._start(self._backlog.popleft())
        if self._backlog:
            lingering = [s for s in self._sessions if s.lingering]
            for session in lingering[: len(self._backlog)]:
                session.endLinger()

    def _start(self, action: Action) -> None:
        session = self._openSession(action, lambda: self.marks.write(action.man_id))
        self._sessions[session] = None
        session.answered.addCallbacks(self._answered, self._notSent,
                                      callbackArgs=(action,), errbackArgs=(action,))
        session.closed.addErrback(
            lambda f: self.log.failure("man_id {man_id}: session failed", f,
                                       man_id=action.man_id))
        session.closed.addBoth(self._closed, session)

    def _answered(self, result: SendResult, action: Action) -> None:
        self.sent += 1
        self.log.info("man_id {man_id} {action} sent: {text} (response {response})",
                      man_id=result.man_id, action=action.name, text=result.text,
                      response="Y" if result.answered else "N")
        if self._failures:
            self.log.info("AMI answers again after {failures} failed sessions",
                          failures=self._failures)
            self._failures = 0
            self._pausedUntil = 0.0
        self.results.add(result)

    def _notSent(self, failure: Failure, action: Action) -> None:
        reason = failure.getErrorMessage() if failure.check(NotSent) else repr(failure.value)
        self.releases.add((action.man_id, f"not sent: {reason}"))
        if self._stopping:
            return
        self._failures += 1
        pause = min(MAX_PAUSE, 2.0 ** (self._failures - 1))
        self._pausedUntil = self._clock.seconds() + pause
        if self._failures == 1 or pause < MAX_PAUSE:
            self.log.error(
                "man_id {man_id} {action} not sent, back to NEW: {reason};"
                " claiming paused for {pause:g} s",
                man_id=action.man_id, action=action.name, reason=reason, pause=pause,
            )

    def _closed(self, _: object, session: ActionSession) -> None:
        self._sessions.pop(session, None)
        self._pump()

    def _release(self, items: Sequence) -> Deferred:
        byReason = {}
        for man_id, reason in items:
            byReason.setdefault(reason, []).append(man_id)
        return DeferredList(
            [self._store.release(ids, reason) for reason, ids in byReason.items()],
            fireOnOneErrback=True, consumeErrors=True,
        ).addErrback(lambda f: f.value.subFailure)

    # Stopping

    def stopService(self) -> Deferred:
        super().stopService()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self._stopping = True
        if self._loop.running:
            self._loop.stop()
        await self._looping
        self._pump()
        sessions = list(self._sessions)
        for session in sessions:
            session.stop()
        closed = DeferredList([s.closed for s in sessions], consumeErrors=True)
        if not await _within(self._clock, closed, self._stopTimeout):
            self.log.warn("{count} sessions still waiting for Asterisk after {timeout:g} s;"
                          " abandoning them", count=len(self._sessions),
                          timeout=self._stopTimeout)
            for session in list(self._sessions):
                session.abandon()
            await closed
        writers = [self.marks, self.results, self.releases, self.refusals]
        if not await _within(self._clock, DeferredList([w.whenIdle() for w in writers]),
                             self._stopTimeout):
            self.log.error("Stopped with {writes} writes not done (database away?);"
                           " their rows are resolved at the next start",
                           writes=sum(len(w) for w in writers))
        for writer in writers:
            writer.stop()


def _within(clock: IReactorTime, d: Deferred, timeout: float) -> Deferred:
    """Fires True once C{d} fires, or False after C{timeout}; C{d} is not cancelled."""
    result = Deferred()
    call = clock.callLater(timeout, lambda: result.called or result.callback(False))

    def done(value):
        if not result.called:
            call.cancel()
            result.callback(True)
        return value

    d.addBoth(done)
    return result

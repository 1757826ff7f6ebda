"""
The sender: claims NEW rows of this server and sends each action over its
own short-lived AMI session.

Claims are sized to free capacity, so rows wait as NEW in the table (in
man_id order) rather than as QUEUE in memory.  Claiming runs in rounds, one
after another: unless the last claim filled its room, a round first waits
for a NEW row (L{acqs.wakeup}: a wait in MariaDB, or looks, backing off
while none comes), then checks again that it may claim (AMI or the listener
may have gone meanwhile: rows then stay NEW, where a standby can take
them), and claims in a transaction of its own.  Sessions connect and log in
first, then take the oldest claimed row: at most C{maxConnecting} are
connecting at once (Asterisk's AMI listen backlog is short), at most
C{maxSessions} are open, lingering ones included, and C{warm} of them may
wait logged in for rows to come (each still carries one action only).
While claimed rows wait for a session, lingering sessions are logged off
oldest first to make room.  An idle session that ends by itself within
C{SHORT_LIFE} of its login is a failure: warm sessions are then replaced
only after a pause, longer each time, as probes back off.

Originates are a class of their own.  Asterisk answers a synchronous
Originate (VICIdial sends no C{Async}) only once its call answers, and
holds that session's Logoff behind it, so its session stays open while the
call rings.  Sessions carrying Originates, lingering ones included, count
against C{maxOriginates} (read at every claim: it may follow VICIdial's
C{servers} row) and not against C{maxSessions}, so agents' Hangups and
Redirects never wait behind ringing calls.  Claims take no more Originates
than that room holds (the others stay NEW, and rows behind them are still
claimed); while it is full, the wake-up looks only for rows of other
actions, and briefly (room coming back cannot end a wait in the database).

A claim marks its first rows SENT itself (a transaction less), as many as
sessions wait logged in as it starts; the sessions are kept for them, and a
row marked so goes out at once on one, or back to NEW at once if none is
left.  Claims never wait, so only a claim's own milliseconds lie between
counting the sessions and sending.

When AMI cannot be reached, refuses the login, or answers that it did not
run an action (Asterisk shutting down), claiming pauses, the rows waiting
for a session go back to NEW (so do rows a claim brings meanwhile), and one
session at a time probes AMI (every C{probeInterval} seconds; backing off
to a minute while the login is refused for a bad secret) until one logs in:
claiming then resumes at once.  A failed database mark, or a claim found
lost to another claimant, is not an AMI failure: the row is released, or
left to its claimant.

As VICIdial's sender, which exits when no listener runs, acqs claims
nothing while its listener is not connected (C{ready()} false): a call
placed then would ring and be answered unseen, and its row would never show
UPDATED with the call's channel.
"""

from collections import OrderedDict, deque
from typing import (Callable, Collection, Deque, Dict, List, Optional, Sequence, Set, Tuple,
                    Union, cast)

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, FirstError, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from .actions import Action, refusal, rowAction
from .ami.outage import LOGIN_REFUSED, SHUTTING_DOWN, cause, refusedLoginDelay
from .batching import BatchWriter
from .metrics import NO_OBSERVER, Observer
from .pause import Pause
from .session import ActionSession, ClaimLost, MarkFailed, NotRun, NotSent
from .store.claims import isOriginate
from .store.interfaces import IQueueStore, StoreUnavailable
from .store.records import Claim, Refusal, SendResult
from .wakeup import LONGEST, Wakeup

SessionOpener = Callable[[], ActionSession]

# The longest pause in replacing warm sessions that end right after login (seconds).
MAX_PAUSE = 30.0
# An idle session that ends by itself within this many seconds of its login
# counts as a failure: warm sessions are then replaced after a pause.
SHORT_LIFE = 1.0
# While AMI stays unreachable, how often it is said again (seconds).
DOWN_REMINDER = 60.0
# While no row may be claimed (no room; AMI or the listener away), how often
# to look again (seconds); room freeing up ends the pause at once.
NAP = 0.05


class Sender(Service):
    """
    @param openSession: C{openSession()} starts an L{ActionSession}.
    @param onOriginate: called with the callerid of every Originate claimed,
        before it is sent, so the listener can follow the call.
    @param onAnswer: called with each Originate's L{Action}, its
        L{SendResult} and when (clock seconds) it was given to its session,
        once Asterisk answered it.
    @param allowed: the lower-case action names that may be sent; all when
        None.
    @param ready: whether rows may be claimed now (the listener listens).
    @param hold: another reason not to claim now (a Perl sender runs beside
        acqs), or None.
    @param writes: where Asterisk's answers are written (shared with the
        listener, so that an answer and its call's ringing go in one
        transaction); a writer of its own if None.
    @param metrics: told of the rows claimed and released (L{acqs.metrics}).
    @param wakeup: what tells it that NEW rows came; a L{Wakeup} of the
        store's with its defaults if None.
    @param maxOriginates: the most sessions carrying Originates (ringing
        or lingering), or what gives it at each claim.
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
        maxOriginates: Union[int, Callable[[], int]] = 200,
        maxConnecting: int = 4,
        warm: int = 0,
        warmIdle: float = 10.0,
        probeInterval: float = 0.5,
        onOriginate: Callable[[str], None] = lambda callerid: None,
        onAnswer: Callable[[Action, SendResult, float], None] = lambda action, result, at: None,
        allowed: Optional[Collection[str]] = None,
        ready: Callable[[], bool] = lambda: True,
        hold: Callable[[], Optional[str]] = lambda: None,
        writes: Optional[BatchWriter] = None,
        stopTimeout: float = 30.0,
        metrics: Observer = NO_OBSERVER,
        wakeup: Optional[Wakeup] = None,
    ):
        self._clock = clock
        self.wakeup = wakeup if wakeup is not None else Wakeup(clock, store, serverIP)
        self._store = store
        self._metrics = metrics
        self._openSession = openSession
        self.serverIP = serverIP
        self.instance = instance
        self._maxSessions = maxSessions
        self._maxOriginates = (maxOriginates if callable(maxOriginates)
                               else lambda: maxOriginates)
        self._maxConnecting = maxConnecting
        self._warm = warm
        self._warmIdle = warmIdle
        # Naps between claims, ended early when room frees up or acqs stops.
        self._nap = Pause(clock)
        # The classes (others, Originates) whose room the last claim filled:
        # while they still have room, claim again at once.
        self._more = (True, True)
        self._probeInterval = probeInterval
        self._onOriginate = onOriginate
        self._onAnswer = onAnswer
        self._allowed = allowed
        self._ready = ready
        self._hold = hold
        self._held: Optional[str] = None
        self._waiting = False  # for the listener
        self._stopTimeout = stopTimeout
        self._backlog: Deque[Action] = deque()  # rows of other actions than Originate
        self._originateBacklog: Deque[Action] = deque()
        # Every open session, and those in each state, oldest first: kept as
        # sessions move on, so that no step scans them all.
        self._sessions: "OrderedDict[ActionSession, None]" = OrderedDict()
        self._connecting: "OrderedDict[ActionSession, None]" = OrderedDict()
        # Logged in, waiting for a row: when each logged in.
        self._idleSessions: "OrderedDict[ActionSession, float]" = OrderedDict()
        self._sending: "OrderedDict[ActionSession, None]" = OrderedDict()  # awaiting answers
        self._done: "OrderedDict[ActionSession, None]" = OrderedDict()  # answered: lingering
        # Carrying an Originate, until closed; and those whose Originate awaits
        # its answer (a synchronous one: while its call rings).
        self._originating: "OrderedDict[ActionSession, None]" = OrderedDict()
        self._ringing: "OrderedDict[ActionSession, None]" = OrderedDict()
        # Idle session -> the call that retires it.
        self._retirements: Dict[ActionSession, IDelayedCall] = {}
        # Idle sessions a claim in progress may mark rows for.
        self._reserved: Set[ActionSession] = set()
        # Reserved sessions whose idle time ran out meanwhile.
        self._overdue: Set[ActionSession] = set()
        self._loop = LoopingCall(self._round)
        self._loop.clock = clock
        self._looping: Optional[Deferred] = None
        self._stopping = False
        self._probe: Optional[IDelayedCall] = None  # the delayed call of the next probe
        self._probeFailures = 0
        # The delayed call that ends a pause in replacing warm sessions.
        self._warmHold: Optional[IDelayedCall] = None
        self._warmFailures = 0
        self._reminded = 0.0
        self.amiDownSince: Optional[float] = None
        self.amiCause: Optional[str] = None  # why (acqs.ami.outage), while down
        self.amiError: Optional[str] = None
        self.amiReachedAt: Optional[float] = None  # the last login of a send session
        self.claimError: Optional[str] = None
        self.claimFailingSince: Optional[float] = None
        self.sent = 0
        self.claimFailures = 0
        self.marks = BatchWriter(clock, store.markSending, "sending marks", retry=False)
        self.results = (writes if writes is not None
                        else BatchWriter(clock, store.recordSent, "send results"))
        self.releases = BatchWriter(clock, self._release, "released rows")
        ownResults = [] if writes is not None else [self.results]
        self._writers = [self.marks, self.releases] + ownResults

    @property
    def sessionCount(self) -> int:
        return len(self._sessions)

    @property
    def backlogCount(self) -> int:
        return len(self._backlog) + len(self._originateBacklog)

    @property
    def maxOriginates(self) -> int:
        return max(1, self._maxOriginates())

    @property
    def originateCount(self) -> int:
        """Sessions carrying an Originate, lingering ones included."""
        return len(self._originating)

    @property
    def ringingCount(self) -> int:
        """Originates awaiting Asterisk's answer (synchronous ones: their calls ring)."""
        return len(self._ringing)

    @property
    def idleCount(self) -> int:
        """Sessions logged in, waiting for a row."""
        return len(self._idleSessions)

    @property
    def lingeringCount(self) -> int:
        return sum(1 for s in self._done if s.lingering)

    # Claiming: one round at a time, back to back; a round with nothing to do
    # waits (for room, or for a NEW row: the wake-up).

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self._looping = self._loop.start(0, now=True)

    def _rooms(self) -> Tuple[int, int]:
        """Room for rows of other actions, and for Originates."""
        others = (self._maxSessions - (len(self._sending) - len(self._ringing))
                  - len(self._backlog))
        originates = self.maxOriginates - len(self._ringing) - len(self._originateBacklog)
        return max(0, others), max(0, originates)

    def _mayClaim(self) -> bool:
        if self._stopping or self.amiDownSince is not None:
            return False
        held = self._hold()
        if held != self._held:
            if held is not None:
                self.log.error("Not claiming rows: {reason}", reason=held)
            else:
                self.log.info("Claiming rows again (held while {reason})", reason=self._held)
            self._held = held
        if held is not None:
            return False
        if not self._ready():
            if not self._waiting:
                self._waiting = True
                self.log.warn("Not claiming rows while the AMI listener is not connected")
            return False
        if self._waiting:
            self._waiting = False
            self.log.info("Claiming rows again: the AMI listener is connected")
        return True

    def _round(self) -> Deferred:
        return Deferred.fromCoroutine(self._claimRound())

    async def _claimRound(self) -> None:
        try:
            if not self._claimable():
                await self._nap(NAP)
                return
            room, originates = self._rooms()
            waited = not ((self._more[0] and room > 0) or (self._more[1] and originates > 0))
            if waited:
                try:
                    # While a class has no room, the wait for the other's rows
                    # stays short: room coming back cannot end it.
                    if not await self.wakeup.wait(originates=originates > 0, others=room > 0,
                                                  longest=LONGEST if room and originates
                                                  else NAP):
                        return
                except StoreUnavailable:
                    pass  # the claim tries, and reports the failure as claims do
                # AMI or the listener may have gone during the wait: then the
                # rows stay NEW, where a standby (or a later round) takes them.
                if not self._claimable():
                    await self._nap(NAP)
                    return
            room, originates = self._rooms()
            claimed = await self._claim(room, originates)
            if claimed is None:
                await self._nap(NAP)
                return
            others, ringing = claimed
            self._more = (room > 0 and others == room, originates > 0 and ringing == originates)
            if others or ringing:
                self.wakeup.claimed()
            elif waited:
                # NEW rows there, none claimable (another claim holds them): no spin.
                await self._nap(self.wakeup.step)
        except Exception:
            self.log.failure("A claim round failed")
            await self._nap(NAP)

    def _claimable(self) -> bool:
        """Whether a claim may run now: there is room, and AMI and the listener are there."""
        return self._mayClaim() and any(self._rooms())

    async def _claim(self, room: int, originates: int) -> Optional[Tuple[int, int]]:
        """
        Claim up to C{room} rows of other actions and C{originates}
        Originates, and queue them; how many of each, or None if claiming
        failed.  The first are marked for the sessions idle as the claim
        starts.
        """
        ready = [s for s in self._idleSessions if s not in self._reserved][:room + originates]
        self._reserved.update(ready)
        try:
            rows = await self._store.claim(self.serverIP, room, self.instance, send=len(ready),
                                           refuse=lambda row: refusal(row, self._allowed),
                                           originates=originates)
        except Exception as e:
            self._unreserve(ready)
            self.claimFailures += 1
            if self.claimFailingSince is None:
                self.claimFailingSince = self._clock.seconds()
                if isinstance(e, StoreUnavailable):
                    self.log.error("Cannot claim rows: {reason}", reason=str(e))
                else:
                    self.log.failure("Claiming rows failed")
            self.claimError = str(e) or repr(e)
            return None
        if self.claimFailingSince is not None:
            self.log.info("Claiming rows again after {outage:.1f} s",
                          outage=self._clock.seconds() - self.claimFailingSince)
            self.claimError = self.claimFailingSince = None
        claimedAt = self._clock.seconds()
        for row in rows:
            try:
                self._take(row, claimedAt)
            except Exception:
                self.log.failure("man_id {man_id}: could not queue the row", man_id=row.man_id)
                self._releaseNow(row.man_id, row.claim, row.action, "acqs failed to queue the row")
        # Only now: a session that was given a row is no longer idle, and stays.
        self._unreserve(ready)
        self._pump()
        ringing = sum(1 for row in rows if isOriginate(row.action))
        return len(rows) - ringing, ringing

    def _unreserve(self, sessions: Sequence[ActionSession]) -> None:
        """A claim is done with C{sessions}: those whose idle time ran out meanwhile retire."""
        self._reserved.difference_update(sessions)
        for session in sessions:
            if session in self._overdue:
                self._retire(session)

    def _take(self, row, claimedAt: float) -> None:
        """
        Queue a claimed row; one the claim marked goes out at once on an idle
        session, or back to NEW if none is left.  While AMI is down or acqs
        stops, every row goes back.
        """
        action = rowAction(row, self._allowed, claimedAt)
        if isinstance(action, Refusal):  # not reached: the claim refused these rows itself
            self._releaseNow(action.man_id, action.claim, row.action, action.reason)
            return
        if action.ignored:
            self.log.warn("man_id {man_id} {action}: left out {columns}, which are not"
                          " 'Name: value' header lines", man_id=action.man_id,
                          action=action.name, columns=", ".join(action.ignored))
        if action.originates:
            self._onOriginate(row.callerid)
        self._metrics.claimed(action.name)
        if self._stopping:
            self._releaseNow(action.man_id, action.claim, action.name,
                             "acqs stopped before sending it")
        elif self.amiDownSince is not None:
            self._releaseNow(action.man_id, action.claim, action.name,
                             "not sent: AMI unreachable when it was claimed")
        elif not action.marked:
            (self._originateBacklog if action.originates else self._backlog).append(action)
        elif self._idleSessions:
            self._give(next(iter(self._idleSessions)), action)
        else:
            self._releaseNow(action.man_id, action.claim, action.name,
                             "not sent: its AMI session ended before it went out")

    def _releaseNow(self, man_id: int, claim: str, name: str, reason: str) -> None:
        self.releases.add(((man_id, claim), reason))
        self._metrics.released(name)

    # Sessions

    def _pump(self) -> None:
        if self._stopping:
            self._releaseBacklog("acqs stopped before sending it")
            return
        # Agents' actions first: they never wait behind Originates.
        while self._idleSessions and (self._backlog or self._originateBacklog):
            backlog = self._backlog or self._originateBacklog
            self._give(next(iter(self._idleSessions)), backlog.popleft())
        waiting = len(self._backlog) + len(self._originateBacklog)
        if self.amiDownSince is None:
            warm = self._warm if self._warmHold is None else 0
            wanted = waiting + warm - len(self._idleSessions) - len(self._connecting)
            while (wanted > 0 and len(self._connecting) < self._maxConnecting
                   and self._generalCount() < self._maxSessions):
                self._open()
                wanted -= 1
        if waiting and self._generalCount() >= self._maxSessions:
            lingering = [s for s in self._done if s.lingering and s not in self._originating]
            for session in lingering[:waiting]:
                session.endLinger()
        excess = len(self._originating) + len(self._originateBacklog) - self.maxOriginates
        if excess > 0:
            lingering = [s for s in self._originating if s.lingering]
            for session in lingering[:excess]:
                session.endLinger()

    def _generalCount(self) -> int:
        """Sessions open but for those carrying Originates: at most C{maxSessions}."""
        return len(self._sessions) - len(self._originating)

    def _open(self) -> ActionSession:
        session = self._openSession()
        self._sessions[session] = self._connecting[session] = None
        session.loggedIn.addCallback(self._loggedIn, session)
        session.closed.addErrback(
            lambda f: self.log.failure("AMI session failed", f))
        session.closed.addBoth(self._closed, session)
        return session

    def _loggedIn(self, ok: bool, session: ActionSession) -> None:
        self._connecting.pop(session, None)
        if ok and session.idle:
            self._idleSessions[session] = self._clock.seconds()
        if not ok:
            if session.loginError is not None:  # set before loggedIn fires False
                self._amiFailed(session.loginError)
            return
        self.amiReachedAt = self._clock.seconds()
        if self.amiDownSince is not None:
            self.log.info("AMI answers again after {outage:.1f} s; claiming again",
                          outage=self._clock.seconds() - self.amiDownSince)
            self.amiDownSince = self.amiCause = self.amiError = None
            self._probeFailures = 0
        self._pump()
        self._scheduleRetirement(session)

    def _scheduleRetirement(self, session: ActionSession) -> None:
        """An idle session beyond the warm ones logs off at once, a warm one in a while."""
        if session.idle:
            keep = self._warmIdle if len(self._idleSessions) <= self._warm else 0
            self._retirements[session] = self._clock.callLater(keep, self._retire, session)

    def _retire(self, session: ActionSession) -> None:
        self._retirements.pop(session, None)
        self._overdue.discard(session)
        if session in self._reserved:
            self._overdue.add(session)  # retired once that claim is done
        elif session.idle:
            self._idleSessions.pop(session, None)
            session.stop()

    def _give(self, session: ActionSession, action: Action) -> None:
        del self._idleSessions[session]
        self._sending[session] = None
        if action.originates:
            self._originating[session] = self._ringing[session] = None
        call = self._retirements.pop(session, None)
        if call is not None and call.active():
            call.cancel()
        claim = (action.man_id, action.claim)
        if action.marked:
            session.send(action, lambda: succeed(True))
        else:
            session.send(action, lambda: self.marks.write(claim).addCallback(
                lambda marked: action.man_id in marked))
        session.answered.addCallbacks(self._answered, self._notSent,
                                      callbackArgs=(action, self._clock.seconds(), session),
                                      errbackArgs=(action, session))

    def _answered(self, result: SendResult, action: Action, givenAt: float,
                  session: ActionSession) -> None:
        self._sending.pop(session, None)
        self._ringing.pop(session, None)
        if session in self._sessions:
            self._done[session] = None
        self._nap.end()  # its session lingers now: room for another row
        self.sent += 1
        self.log.info("man_id {man_id} {action} sent: {text} (response {response})",
                      man_id=result.man_id, action=action.name, text=result.text,
                      response="Y" if result.answered else "N")
        self.results.add(result)
        if action.originates:
            self._onAnswer(action, result, givenAt)

    def _notSent(self, failure: Failure, action: Action, session: ActionSession) -> None:
        self._sending.pop(session, None)
        self._ringing.pop(session, None)
        self._nap.end()
        reason = failure.getErrorMessage() if failure.check(NotSent) else repr(failure.value)
        if failure.check(ClaimLost):
            self.log.warn("man_id {man_id} {action} not sent: {reason}; left to it",
                          man_id=action.man_id, action=action.name, reason=reason)
            return
        self._releaseNow(action.man_id, action.claim, action.name, f"not sent: {reason}")
        if failure.check(MarkFailed):
            self.log.error("man_id {man_id} {action} not sent, back to NEW: {reason}",
                           man_id=action.man_id, action=action.name, reason=reason)
        elif not self._stopping:
            # Twisted types Failure.value as Optional; a Failure always holds its exception.
            self._amiFailed(cast(BaseException, failure.value))

    def _closed(self, _: object, session: ActionSession) -> None:
        self._nap.end()
        idleSince = self._idleSessions.get(session)
        for sessions in (self._sessions, self._connecting, self._idleSessions, self._sending,
                         self._done, self._originating, self._ringing):
            sessions.pop(session, None)
        call = self._retirements.pop(session, None)
        if call is not None and call.active():
            call.cancel()
        if idleSince is not None and not self._stopping:  # it ended by itself, while idle
            self._idleEnded(self._clock.seconds() - idleSince)
        self._pump()

    # Warm sessions that do not last

    def _idleEnded(self, life: float) -> None:
        """
        An idle session ended by itself C{life} seconds after its login.  Soon
        after it is a failure (AMI, or a proxy, that closes logged-in sessions
        at once): warm sessions are replaced only after a pause, longer each
        time (as probes), so that such a peer is not sent logins in a loop.
        """
        if life >= SHORT_LIFE:
            self._warmFailures = 0
            return
        if self._warmHold is not None:
            return  # one failure per pause
        self._warmFailures += 1
        delay = min(MAX_PAUSE, self._probeInterval * 2.0 ** (self._warmFailures - 1))
        self.log.warn("An idle AMI session ended {life:.3f} s after its login; replacing warm"
                      " sessions in {delay:g} s", life=life, delay=delay)
        self._warmHold = self._clock.callLater(delay, self._warmHoldEnds)

    def _warmHoldEnds(self) -> None:
        self._warmHold = None
        self._pump()

    def _releaseBacklog(self, reason: str) -> None:
        for backlog in (self._backlog, self._originateBacklog):
            for action in backlog:
                self._releaseNow(action.man_id, action.claim, action.name, reason)
            backlog.clear()

    def _release(self, items: Sequence) -> Deferred:
        byReason: Dict[str, List[Claim]] = {}
        for claim, reason in items:
            byReason.setdefault(reason, []).append(claim)
        return DeferredList(
            [self._store.release(claims, reason) for reason, claims in byReason.items()],
            fireOnOneErrback=True, consumeErrors=True,
        ).addErrback(_firstFailure)

    # AMI outages

    def _amiFailed(self, error: BaseException) -> None:
        """A session could not reach AMI: pause claiming (once) and probe."""
        if self._stopping:
            return
        now = self._clock.seconds()
        reason = str(error) or repr(error)
        self.amiCause = SHUTTING_DOWN if isinstance(error, NotRun) else cause(error)
        self.amiError = reason
        if self.amiDownSince is None:
            self.amiDownSince = self._reminded = now
            self.log.error("AMI unreachable ({reason}); claiming paused until it answers",
                           reason=reason)
            self._releaseBacklog(f"not sent: AMI unreachable ({reason})")
        elif self._probe is not None or self._connecting:
            return  # one failure per pause: the probe in flight will tell
        elif now - self._reminded >= DOWN_REMINDER:
            self._reminded = now
            self.log.warn("AMI still unreachable after {outage:.0f} s ({reason})",
                          outage=now - self.amiDownSince, reason=reason)
        self._probeFailures += 1
        delay = self._probeInterval
        if self.amiCause == LOGIN_REFUSED:
            delay = refusedLoginDelay(self._probeFailures)
            if self._probeFailures == 1:
                self.log.warn("AMI refused the send user's login (its secret?); trying again"
                              " in {delay:g} s, then less often, up to once a minute",
                              delay=delay)
        self._probe = self._clock.callLater(delay, self._probeNow)

    def _probeNow(self) -> None:
        self._probe = None
        if not self._stopping and self.amiDownSince is not None:
            self._open()

    # Stopping

    def stopService(self) -> Deferred:
        super().stopService()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self._stopping = True
        if self._loop.running:
            self._loop.stop()
        self._nap.end()
        self.wakeup.interrupt()
        if self._looping is not None:  # None: never started
            await self._looping
        for call in (self._probe, self._warmHold):
            if call is not None and call.active():
                call.cancel()
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
        writers = self._writers + [self.results]
        if not await _within(self._clock, DeferredList([w.whenIdle() for w in writers]),
                             self._stopTimeout):
            self.log.error("Stopped with {writes} writes not done (database away?);"
                           " their rows are resolved at the next start",
                           writes=sum(len(w) for w in writers))
        for writer in self._writers:
            writer.stop()


def _within(clock: IReactorTime, d: Deferred, timeout: float) -> Deferred:
    """Fires True once C{d} fires, or False after C{timeout}; C{d} is not cancelled."""
    result: Deferred[bool] = Deferred()

    def expire() -> None:
        if not result.called:
            result.callback(False)

    call = clock.callLater(timeout, expire)

    def done(value):
        if not result.called:
            call.cancel()
            result.callback(True)
        return value

    d.addBoth(done)
    return result


def _firstFailure(failure: Failure) -> Failure:
    """The failure of the first release that failed, out of DeferredList's FirstError."""
    error = failure.value
    return error.subFailure if isinstance(error, FirstError) else failure

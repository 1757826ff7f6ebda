"""
The listener: one persistent AMI session that turns call progress into row
updates.

Events are read and correlated in memory (L{CallTracker}); only events of
calls acqs is waiting for produce updates, and those queue in an ordered
L{BatchWriter}, so a slow or absent database never stalls the AMI reader.
The Perl listener's other duties (DTMF, peer and phone status, CPD and SIP
hangup causes) go to VICIdial's tables through a L{DutyWriter} of their
own.  It logs in for call, DTMF and system events and asks Asterisk to
filter them down to the ones it reads (L{CALL_EVENTS} and those of the
duties that are on); where Asterisk cannot (before 10, or a user without
the system write class, as VICIdial's C{listencron}), it skips the others
itself, unparsed.
The link is a C{ClientService} with a Ping keepalive; after a lost
connection the first attempt is immediate, the next after 0.5 s, later ones
every second; after a refused login (a wrong secret) 1, 2, 4 ... s, then
once a minute.  The listener logs the first failure and then once a minute
while it lasts (not ClientService's line for every retry), and keeps its
cause (L{acqs.ami.outage}) for the status page, health and metrics.
After every (re)connection, and after every refresh of the tracked calls
from the database, the channels live on Asterisk are listed and reconciled:
calls that rang or hung up while nobody was listening are caught up, and
answered calls of which nothing was seen and no channel is left ended.  A
synchronous Originate answered while its call was never seen, by a listener
that may have missed it, brings that catch-up forward.  The list is
CoreShowChannels (Status on Asterisk 1.4); where that is refused, as to
VICIdial's C{listencron} (C{write = command}), C{core show channels
concise}, which catches up hangups but, having no caller ID names, never
ends a call unseen.
"""

import random
from typing import Callable, Optional, Tuple, cast

from twisted.application.internet import ClientService
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import ILogObserver, Logger, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer, provider

from .ami.errors import ActionTimeout, AMIConnectionLost, AMIError
from .ami.outage import LOGIN_REFUSED, cause, refusedLoginDelay
from .ami.protocol import AMIFactory, AMIProtocol, ListResult
from .batching import BatchWriter
from .correlate import CallTracker, readConcise, readEvent
from .duties import EVENTS as DUTY_EVENTS
from .dutywriter import DutyWriter
from .store.interfaces import IQueueStore
from .store.records import CallDialing, CallEnded, CallMoved, CallUpdated

# The events whose rules move vicidial_manager rows; those of the duties are
# DUTY_EVENTS; all others are skipped unparsed.
CALL_EVENTS = ("Newstate", "Hangup", "OriginateResponse", "Rename")
# The classes the listener logs in for (Asterisk 1.4 knows no dtmf, and
# ignores it): call progress, DTMF, and peer status (system).
EVENT_MASK = "call,dtmf,system"
# The CLI command that lists live channels where CoreShowChannels is refused.
CONCISE = "core show channels concise"
# While the listener cannot connect or log in, how often it says so (seconds).
LOGIN_REMINDER = 60.0
# How long after an unseen call's answer the catch-up runs (seconds): time
# for the call's events, which may follow the answer, to arrive.
UNSEEN_CATCH_UP = 1.0


def eventFilter(names) -> str:
    """
    The Filter asked of Asterisk (10 and later) after login: send this
    session only the events C{names} (a regex searched in each event's
    text; lists an action asks for are not filtered).  Of the ~75 events of
    a VICIdial call, 8 come through.
    """
    return f"^Event: ({'|'.join(names)})[[:space:]]"


def reconnectPolicy(initialDelay: float = 0.5, maxDelay: float = 1.0, jitter=random.random):
    """
    Delays between connection attempts: none before the first attempt
    after a lost connection, then 0.5, then 1 s, each plus up to 10% at
    random.  The sender waits for the listener, so it comes back soon after
    Asterisk does; an attempt a second costs Asterisk next to nothing.
    """

    def delay(attempt: int) -> float:
        if attempt <= 1:
            return 0.0
        base = min(maxDelay, initialDelay * 2 ** (attempt - 2))
        return base * (1 + jitter() / 10)

    return delay


@provider(ILogObserver)
def _withoutRetries(event: dict) -> None:
    if not str(event.get("log_format", "")).startswith("Scheduling retry"):
        globalLogPublisher(event)


class QuietClientService(ClientService):
    """
    A C{ClientService} that does not log each retry: while AMI is down that
    line came every second (about 760 KB of log an hour); the listener says
    itself what fails, and reminds once a minute.
    """

    _log = Logger(observer=_withoutRetries)


@implementer(IStreamClientEndpoint)
class _Watched:
    """An endpoint that tells C{failed} why each connection attempt failed."""

    def __init__(self, endpoint: IStreamClientEndpoint, failed: Callable[[Failure], None]):
        self._endpoint = endpoint
        self._failed = failed

    def connect(self, factory) -> Deferred:
        def failed(failure: Failure) -> Failure:
            self._failed(failure)
            return failure

        return self._endpoint.connect(factory).addErrback(failed)


class Listener(Service):
    """
    @ivar cause: why the link is down (one of L{acqs.ami.outage.CAUSES}), or
        None while it is up or not tried yet; C{error} says it in a sentence.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        endpoint: IStreamClientEndpoint,
        factory: AMIFactory,
        store: IQueueStore,
        serverIP: str,
        tracker: CallTracker,
        *,
        pingInterval: float = 5.0,
        pingTimeout: float = 5.0,
        refreshInterval: float = 30.0,
        ringWindow: float = 180.0,
        maxPending: int = 100_000,
        stopTimeout: float = 10.0,
        retryPolicy=None,
        refusedPolicy: Callable[[int], float] = refusedLoginDelay,
        writes: Optional[BatchWriter] = None,
        name: str = "AMI",
    ):
        self._clock = clock
        self._endpoint = endpoint
        self._factory = factory
        self._store = store
        self.serverIP = serverIP
        self.tracker = tracker
        self._pingInterval = pingInterval
        self._pingTimeout = pingTimeout
        self._ringWindow = ringWindow
        self._stopTimeout = stopTimeout
        self._retryPolicy = retryPolicy or reconnectPolicy()
        self._refusedPolicy = refusedPolicy
        self._name = name  # of the endpoint, in log lines
        # Shared with the sender (see Sender's writes), or its own.
        self.updates = writes if writes is not None else BatchWriter(
            clock, lambda batch: store.applyUpdates(serverIP, batch), "call updates",
            maxPending=maxPending,
        )
        self._ownsUpdates = writes is None
        self.duties = DutyWriter(clock, store, serverIP, maxPending=maxPending)
        self.protocol: Optional[AMIProtocol] = None
        self._client: Optional[ClientService] = None
        self._refresher = LoopingCall(self._refresh)
        self._refresher.clock = clock
        self._refreshInterval = refreshInterval
        self._refreshing: Optional[Deferred] = None
        self._refreshed = False
        # A catch-up brought forward for unseen answered calls.
        self._catchUp: Optional[IDelayedCall] = None
        self._loginFailures = 0  # in a row
        self._refusals = 0  # logins refused in a row (a wrong secret)
        self._failedAt: Optional[float] = None  # when the failures began to be said
        self._saidAt = -LOGIN_REMINDER
        self.cause: Optional[str] = None
        self.error: Optional[str] = None
        self.connectedAt: Optional[float] = None  # when the link last came up
        self.downSince: Optional[float] = None  # when the link went, or started
        # Counted for acqs.metrics: links after the first, events handed to
        # the listener, events read in full, catch-ups done.
        self.reconnects = self.events = self.parsed = self.caughtUp = 0
        self.filtered: Optional[bool] = None  # whether Asterisk filters the events
        # How the listener catches up (CoreShowChannels, Status, CONCISE;
        # None: it cannot), and what it said of it last.
        self.catchUp: Optional[str] = None
        self._catchUpSaid: Optional[tuple] = None
        # The link that refused the native list, and how.
        self._refused: Optional[Tuple[AMIProtocol, str]] = None
        self._listFailing = False

    def startService(self) -> None:
        super().startService()
        self.downSince = self._clock.seconds()
        # No prepareConnection: ClientService (Twisted 26.10) raises
        # NoTransition when a connection it is preparing, or has rejected,
        # closes.  It connects; the login follows, and login failures count
        # in the retry delay as failed connections would.
        self._client = QuietClientService(
            _Watched(self._endpoint, self._connectFailed), self._factory, clock=self._clock,
            retryPolicy=self._delay,
        )
        self._client.startService()
        self._awaitConnection()
        self._refreshing = self._refresher.start(self._refreshInterval, now=True)

    # The connection

    def _delay(self, attempt: int) -> float:
        if self._refusals:
            return self._refusedPolicy(self._refusals)
        return self._retryPolicy(attempt + self._loginFailures)

    def _failed(self, error: BaseException, what: str) -> None:
        """Keep why the link is down; say it the first time, then once a minute."""
        self.cause, self.error = cause(error), str(error) or repr(error)
        now = self._clock.seconds()
        if not self.running or now - self._saidAt < LOGIN_REMINDER:
            return
        self._saidAt = now
        if self._failedAt is None:
            self._failedAt = now
            if self.cause == LOGIN_REFUSED:
                self.log.error("AMI listener cannot log in to {where} as {user} ({reason});"
                               " trying again in 1 s, then less often, up to once a minute",
                               where=self._name, user=self._factory.username,
                               reason=self.error)
            else:
                self.log.error("AMI listener cannot {what} {where} ({reason}); trying again"
                               " every second", what=what, where=self._name,
                               reason=self.error)
        else:
            self.log.warn("AMI listener still cannot {what} {where} after {outage:.0f} s"
                          " ({reason})", what=what, where=self._name,
                          outage=now - self._failedAt, reason=self.error)

    def _connectFailed(self, failure: Failure) -> None:
        if not failure.check(CancelledError):
            # Twisted types Failure.value as Optional; a Failure always holds its exception.
            self._failed(cast(BaseException, failure.value), "connect to")

    def _awaitConnection(self) -> None:
        if self._client is None:  # only while running, after startService made it
            return
        self._client.whenConnected().addCallbacks(
            self._connection, lambda failure: failure.trap(CancelledError))

    def _connection(self, protocol: AMIProtocol) -> None:
        # Asked for again only once ClientService knows the connection is lost.
        protocol.whenLost().addCallback(
            lambda _: self.running and self._clock.callLater(0, self._awaitConnection))
        Deferred.fromCoroutine(self._logIn(protocol)).addErrback(
            lambda f: self.log.failure("AMI listener: logging in failed", f))

    async def _logIn(self, protocol: AMIProtocol) -> None:
        try:
            await self._factory.prepare(protocol)  # closes the connection if it fails
        except Exception as e:
            self._loginFailures += 1
            self._refusals = self._refusals + 1 if cause(e) == LOGIN_REFUSED else 0
            self._failed(e, "log in to")
            return
        outage = None if self._failedAt is None else self._clock.seconds() - self._failedAt
        self._loginFailures = self._refusals = 0
        self._failedAt, self._saidAt = None, -LOGIN_REMINDER
        self.cause = self.error = None
        Deferred.fromCoroutine(self._filter(protocol))
        Deferred.fromCoroutine(self._findDuties())
        self.subscribe(protocol)
        keepalive = LoopingCall(self._ping, protocol)
        keepalive.clock = self._clock
        keepalive.start(self._pingInterval, now=False)
        protocol.whenLost().addCallback(self._lost, protocol, keepalive)
        self.protocol = protocol
        self.downSince = None
        if self.connectedAt is not None:
            self.reconnects += 1
        self.connectedAt = self._clock.seconds()
        if outage is None:
            self.log.info("Listening to AMI {version} as {user}",
                          version=protocol.amiVersion, user=self._factory.username)
        else:
            self.log.info("Listening to AMI {version} as {user}, after {outage:.0f} s",
                          version=protocol.amiVersion, user=self._factory.username,
                          outage=outage)
        if self._refreshed:
            self._reconcile(protocol)

    def subscribe(self, protocol: AMIProtocol) -> None:
        """Hand the events the listener reads on C{protocol} to its rules."""
        for name in CALL_EVENTS:
            protocol.registerEvent(name, self._event)
        for name in DUTY_EVENTS:
            protocol.registerEvent(name, self.duties.event)

    async def _findDuties(self) -> None:
        """Find out again which duties are on (a table may have come or gone)."""
        try:
            await self.duties.find()
        except Exception as e:
            self.log.warn("Cannot find out which VICIdial duties are on: {reason}",
                          reason=str(e))

    async def _filter(self, protocol: AMIProtocol) -> None:
        # At once, never after the database: the events of the duties known
        # to be off need not come (those of every duty, while none is known).
        names = CALL_EVENTS + tuple(self.duties.eventNames())
        try:
            await protocol.sendAction("Filter", [("Operation", "Add"),
                                                 ("Filter", eventFilter(names))],
                                      self._pingTimeout)
        except AMIError as e:  # Asterisk before 10, or no write permission for system
            if self.filtered is not False:
                self.log.info("Asterisk does not filter events for the listener ({reason});"
                              " it skips the events it does not read itself", reason=e.reason)
            self.filtered = False
        except ActionTimeout as e:
            self.log.warn("Asterisk did not answer the listener's Filter ({reason});"
                          " it skips the events it does not read itself", reason=str(e))
        except AMIConnectionLost:
            pass  # the link went: its loss is logged, and the next login asks again
        else:
            self.filtered = True

    def _lost(self, reason: Exception, protocol: AMIProtocol, keepalive: LoopingCall) -> None:
        if keepalive.running:
            keepalive.stop()
        if self.protocol is protocol:
            self.protocol = None
            self.downSince = self._clock.seconds()
            if self.running:
                self.log.warn("AMI listener connection lost ({reason}); reconnecting",
                              reason=str(reason))

    def _ping(self, protocol: AMIProtocol) -> Deferred:
        def unanswered(failure):
            self.log.warn("AMI listener: Ping unanswered ({reason}); reconnecting",
                          reason=failure.getErrorMessage())
            protocol.transport.abortConnection()

        return protocol.ping(self._pingTimeout).addErrback(unanswered)

    def _event(self, message) -> None:
        # Most of these events move no row: told apart without parsing them.
        self.events += 1
        name = message.peek("Event")
        if name == "Hangup":
            uniqueid = message.peek("Uniqueid")
            if uniqueid is not None and not self.tracker.tracks(uniqueid):
                return
        elif name == "Newstate":
            state = message.peek("ChannelStateDesc")
            if state is not None and state not in ("Ringing", "Up") and state[:7] != "Dialing":
                return
        elif name == "Rename":
            newName = message.peek("Newname")
            if newName is not None and not self.tracker.tracksChannel(newName):
                return
        self.parsed += 1
        event = readEvent(message)
        if event is not None:
            for update in self.tracker.observe(event):
                self._apply(update)

    def _apply(self, update) -> None:
        if isinstance(update, CallUpdated):
            self.log.info("callerid {callerid} UPDATED: channel {channel}, uniqueid {uniqueid}",
                          callerid=update.callerid, channel=update.channel,
                          uniqueid=update.uniqueid)
        elif isinstance(update, CallDialing):
            self.log.info("callerid {callerid} dialing: channel {channel}, uniqueid {uniqueid}",
                          callerid=update.callerid, channel=update.channel,
                          uniqueid=update.uniqueid)
        elif isinstance(update, CallMoved):
            self.log.info("uniqueid {uniqueid}: the call on {channel} goes on as {newUniqueid}",
                          uniqueid=update.uniqueid, channel=update.channel,
                          newUniqueid=update.newUniqueid)
        elif isinstance(update, CallEnded):
            self.log.warn("callerid {callerid} DEAD: {reason}", callerid=update.callerid,
                          reason=update.reason)
        else:
            self.log.info("uniqueid {uniqueid} DEAD: {channel} hung up (cause {cause})",
                          uniqueid=update.uniqueid, channel=update.channel or "channel",
                          cause=update.cause or "unknown")
        self.updates.add(update)

    def answered(self, callerid: str, sentAt: float) -> None:
        """
        The synchronous Originate sent at C{sentAt} (clock seconds) for
        C{callerid} was answered: if nothing of its call was seen, and the
        listener was away at some time since, catch up soon.
        """
        unseen = self.tracker.answered(callerid)
        missed = self.connectedAt is None or self.connectedAt > sentAt
        if unseen and missed and self.protocol is not None and self._catchUp is None:
            self._catchUp = self._clock.callLater(UNSEEN_CATCH_UP, self._caughtUpSoon)

    def _caughtUpSoon(self) -> None:
        self._catchUp = None
        if self.protocol is not None:
            self._reconcile(self.protocol)

    # Catching up

    def _refresh(self) -> Deferred:
        async def refresh():
            try:
                tracked = await self._store.trackedCalls(self.serverIP, self._ringWindow)
            except Exception as e:
                self.log.warn("Cannot refresh tracked calls: {reason}", reason=str(e))
                return
            self.tracker.refresh(tracked)
            self._refreshed = True
            if self.duties.plan is None and self.protocol is not None:
                await self._findDuties()
            if self.protocol is not None:
                self._reconcile(self.protocol)

        return Deferred.fromCoroutine(refresh())

    def _reconcile(self, protocol: AMIProtocol) -> Deferred:
        async def reconcile():
            before = self.tracker.uniqueids()
            unseen = self.tracker.unseenAnswered()
            listed = await self._liveChannels(protocol)
            if listed is None:
                return
            live, named = listed
            updates = self.tracker.reconcile(before, live, unseen if named else frozenset())
            if updates:
                self.log.info("Caught up with {count} calls that moved while nobody listened",
                              count=len(updates))
            for update in updates:
                self._apply(update)
            self.caughtUp += 1

        return Deferred.fromCoroutine(reconcile())

    async def _liveChannels(self, protocol: AMIProtocol):
        """
        The live channels as L{ChannelEvent}s, and whether their list has
        caller ID names (an empty one needs none); None if there is no list.
        """
        old = (protocol.amiVersion or "").startswith("1.0")
        native = "Status" if old else "CoreShowChannels"
        if self._refused is None or self._refused[0] is not protocol:
            try:
                result = await protocol.sendAction(native, listEnd="StatusComplete" if old
                                                   else None)
            except AMIError as e:  # refused, e.g. to a user with write = command only
                self._refused = (protocol, f"{native} is refused to {self._factory.username}"
                                           f" ({e.reason})")
            except Exception as e:
                self._listFailed(str(e))
                return None
            else:
                if not isinstance(result, ListResult):
                    self._listFailed(f"{native} came back without a list")
                    return None
                self._catchingUpWith(native, "")
                live = [e for e in map(readEvent, result.events) if e is not None]
                return live, not result.events or any("CallerIDName" in e for e in result.events)
        refused = self._refused[1]
        if old:
            self._catchingUpWith(None, f"{refused}, and Asterisk 1.4's channel list has no"
                                       " uniqueids")
            return None
        try:
            lines = await protocol.command(CONCISE)
        except AMIError as e:
            self._catchingUpWith(None, f"{refused}, and so is Command ({e.reason})")
            return None
        except Exception as e:
            self._listFailed(str(e))
            return None
        concise = readConcise(lines)
        if concise is None:
            self._listFailed(f"{CONCISE!r} printed something else: {lines[:1]}")
            return None
        self._catchingUpWith(CONCISE, refused)
        return concise, not concise

    def _catchingUpWith(self, way: Optional[str], why: str) -> None:
        """Say how the listener catches up, once (and again when that changes)."""
        if self._listFailing:
            self._listFailing = False
            self.log.info("Listing live channels works again")
        self.catchUp = way
        if (way, why) == self._catchUpSaid:
            return
        self._catchUpSaid = (way, why)
        if way is None:
            self.log.warn("The listener cannot catch up with calls that move while nobody"
                          " listens: {why}", why=why)
        elif way == CONCISE:
            self.log.info("The listener catches up with {way!r}: {why}; it catches up hangups,"
                          " but that list has no caller ID names, so it never ends a call it"
                          " did not see", way=way, why=why)
        else:
            self.log.info("The listener catches up with {way}", way=way)

    def _listFailed(self, reason: str) -> None:
        if not self._listFailing:
            self._listFailing = True
            self.log.warn("Cannot list live channels to catch up: {reason}", reason=reason)

    # Stopping

    def stopService(self) -> Deferred:
        super().stopService()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._catchUp is not None and self._catchUp.active():
            self._catchUp.cancel()
        if self._refresher.running:
            self._refresher.stop()
        if self._refreshing is not None:  # None: never started
            await self._refreshing
        if self.protocol is not None:
            await self.protocol.logoff(self._pingTimeout)
        if self._client is not None:
            await self._client.stopService()
        try:
            await self.updates.whenIdle().addTimeout(self._stopTimeout, self._clock)
        except Exception:
            self.log.error("Stopped with {count} call updates not written",
                           count=len(self.updates))
        if self._ownsUpdates:
            self.updates.stop()
        try:
            await self.duties.whenIdle().addTimeout(self._stopTimeout, self._clock)
        except Exception:
            self.log.error("Stopped with {count} VICIdial duty rows not written",
                           count=len(self.duties.writes))
        self.duties.stop()

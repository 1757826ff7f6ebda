"""
The listener: one persistent AMI session that turns call progress into row
updates.

Events are read and correlated in memory (L{CallTracker}); only events of
calls acqs is waiting for produce updates, and those queue in an ordered
L{BatchWriter}, so a slow or absent database never stalls the AMI reader.
The link is a C{ClientService} with backoff and a Ping keepalive.  After
every (re)connection, and after every refresh of the tracked calls from the
database, the channels live on Asterisk are listed and reconciled: calls
that rang or hung up while nobody was listening are caught up.
"""

from typing import Optional

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .ami.protocol import AMIFactory, AMIProtocol, ListResult
from .batching import BatchWriter
from .correlate import CallTracker, readEvent
from .store.interfaces import IQueueStore
from .store.records import CallUpdated

# The events whose rules update rows; all others are skipped unparsed.
EVENTS = ("Newstate", "Hangup")


class Listener(Service):
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
        trackMaxAge: float = 86400.0,
        maxPending: int = 100_000,
        stopTimeout: float = 10.0,
        retryPolicy=None,
    ):
        self._clock = clock
        self._endpoint = endpoint
        self._factory = factory
        self._store = store
        self.serverIP = serverIP
        self.tracker = tracker
        self._pingInterval = pingInterval
        self._pingTimeout = pingTimeout
        self._trackMaxAge = trackMaxAge
        self._stopTimeout = stopTimeout
        self._retryPolicy = retryPolicy or backoffPolicy(initialDelay=0.5, maxDelay=30.0)
        self.updates = BatchWriter(
            clock, lambda batch: store.applyUpdates(serverIP, batch), "call updates",
            maxPending=maxPending,
        )
        self.protocol: Optional[AMIProtocol] = None
        self._client: Optional[ClientService] = None
        self._refresher = LoopingCall(self._refresh)
        self._refresher.clock = clock
        self._refreshInterval = refreshInterval
        self._refreshing: Optional[Deferred] = None
        self._refreshed = False
        self.downSince: Optional[float] = None  # when the link went, or started

    def startService(self) -> None:
        super().startService()
        self.downSince = self._clock.seconds()
        self._client = ClientService(
            self._endpoint, self._factory, retryPolicy=self._retryPolicy,
            clock=self._clock, prepareConnection=self._prepare,
        )
        self._client.startService()
        self._refreshing = self._refresher.start(self._refreshInterval, now=True)

    # The connection

    def _prepare(self, protocol: AMIProtocol) -> Deferred:
        return Deferred.fromCoroutine(self._connected(protocol))

    async def _connected(self, protocol: AMIProtocol) -> None:
        await self._factory.prepare(protocol)
        for name in EVENTS:
            protocol.registerEvent(name, self._event)
        keepalive = LoopingCall(self._ping, protocol)
        keepalive.clock = self._clock
        keepalive.start(self._pingInterval, now=False)
        protocol.whenLost().addCallback(self._lost, protocol, keepalive)
        self.protocol = protocol
        self.downSince = None
        self.log.info("Listening to AMI {version} as {user}",
                      version=protocol.amiVersion, user=self._factory.username)
        if self._refreshed:
            self._reconcile(protocol)

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
        event = readEvent(message)
        if event is not None:
            for update in self.tracker.observe(event):
                self._apply(update)

    def _apply(self, update) -> None:
        if isinstance(update, CallUpdated):
            self.log.info("callerid {callerid} UPDATED: channel {channel}, uniqueid {uniqueid}",
                          callerid=update.callerid, channel=update.channel,
                          uniqueid=update.uniqueid)
        else:
            self.log.info("uniqueid {uniqueid} DEAD: {channel} hung up (cause {cause})",
                          uniqueid=update.uniqueid, channel=update.channel or "channel",
                          cause=update.cause or "unknown")
        self.updates.add(update)

    # Catching up

    def _refresh(self) -> Deferred:
        async def refresh():
            try:
                tracked = await self._store.trackedCalls(self.serverIP, self._trackMaxAge)
            except Exception as e:
                self.log.warn("Cannot refresh tracked calls: {reason}", reason=str(e))
                return
            self.tracker.refresh(tracked)
            self._refreshed = True
            if self.protocol is not None:
                self._reconcile(self.protocol)

        return Deferred.fromCoroutine(refresh())

    def _reconcile(self, protocol: AMIProtocol) -> Deferred:
        async def reconcile():
            before = self.tracker.uniqueids()
            try:
                if (protocol.amiVersion or "").startswith("1.0"):
                    result = await protocol.sendAction("Status", listEnd="StatusComplete")
                else:
                    result = await protocol.sendAction("CoreShowChannels")
            except Exception as e:
                self.log.warn("Cannot list live channels to catch up: {reason}", reason=str(e))
                return
            if not isinstance(result, ListResult):
                self.log.warn("Live channel list came back without a list; not catching up")
                return
            live = [e for e in map(readEvent, result.events) if e is not None]
            updates = self.tracker.reconcile(before, live)
            if updates:
                self.log.info("Caught up with {count} calls that moved while nobody listened",
                              count=len(updates))
            for update in updates:
                self._apply(update)

        return Deferred.fromCoroutine(reconcile())

    # Stopping

    def stopService(self) -> Deferred:
        super().stopService()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._refresher.running:
            self._refresher.stop()
        await self._refreshing
        if self.protocol is not None:
            await self.protocol.logoff(self._pingTimeout)
        await self._client.stopService()
        try:
            await self.updates.whenIdle().addTimeout(self._stopTimeout, self._clock)
        except Exception:
            self.log.error("Stopped with {count} call updates not written",
                           count=len(self.updates))
        self.updates.stop()

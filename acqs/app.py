"""
Wiring: the acqs service tree for a L{Settings}.

    Acqs (stops its children one by one, in reverse order, then closes the store)
    ├── Presence      (the daemon) the process title VICIdial's scripts look for
    ├── Writer        Asterisk's answers and call updates, written together
    ├── Listener      persistent AMI session → call updates
    ├── Sender        claims rows → one short-lived AMI session per action
    ├── Housekeeper   heartbeat (and VICIdial's servers row), recovery of stranded rows
    ├── NewRowsWatch  how many rows wait as NEW, and since when the oldest
    ├── StatusFile    the JSON status read by ``acqs health``
    ├── InsertToSend  (--metrics) the entry_date→send times, read from the database
    └── WebService    (--metrics) /metrics, /health, / the status page

The listener starts first so that it is listening before the first action
goes out; the sender stops first so that its results are written while the
store is still open.  The AMI settings in force are a L{LiveSettings}, which
follows VICIdial's servers row.
"""

import os
import socket
from typing import Callable, Dict, FrozenSet, List, Optional

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from ._version import __version__
from .ami.protocol import AMIFactory
from .backlog import NewRowsWatch
from .batching import BatchWriter
from .config import Settings
from .correlate import CallTracker
from .health import StatusFile
from .housekeeping import Housekeeper
from .listener import EVENT_MASK, Listener
from .health import pidAlive
from .limits import DescriptorWatch
from .live import LISTENER, LiveEndpoint, LiveSettings, logThrough, rowLogGate
from .metrics import NO_OBSERVER, Metrics
from .presence import Presence, ProcessTitle, TitleLock, listProcesses
from .sender import Sender
from .session import ActionSession
from .store import (InstanceConflict, StoreUnavailable, lookUpServer, openStore,
                    registerInstance)
from .store.interfaces import IQueueStore
from .store.servers import ServerRead
from .store.url import parseURL
from .wakeup import Wakeup
from .web import WebService, webServices


# How long the first of the answers and call updates waits for others, to be
# written with them (an answer and its call's ringing come within it).
WRITE_WINDOW = 0.003


class Writer(Service):
    """Owns the writer that sender and listener share; stops once they have."""

    log = Logger()

    def __init__(self, clock, writer: BatchWriter, stopTimeout: float):
        self._clock = clock
        self.writer = writer
        self._stopTimeout = stopTimeout

    def stopService(self) -> Deferred:
        super().stopService()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        try:
            await self.writer.whenIdle().addTimeout(self._stopTimeout, self._clock)
        except Exception:
            self.log.error("Stopped with {count} answers and call updates not written;"
                           " their rows are resolved at the next start", count=len(self.writer))
        self.writer.stop()


class Acqs(MultiService):
    """Stops its children one at a time, last started first, then the store."""

    log = Logger()

    def __init__(self, store: IQueueStore):
        super().__init__()
        self.store = store

    def stopService(self) -> Deferred:
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self.running = 0
        for service in reversed(list(self)):
            try:
                await service.stopService()
            except Exception:
                self.log.failure("Stopping {service!r} failed", service=service)
        await self.store.close()
        self.log.info("acqs stopped")


def buildService(settings: Settings, reactor) -> IService:
    """The service tree for C{settings} (L{acqs.demo.buildDemo} builds the demo's)."""
    takeInstanceName(settings)
    live = LiveSettings(settings)
    readServerSettings(settings, live)
    presence = standIn(settings, reactor) if settings.stand_in else None
    store = openStore(settings.db, reactor, password=settings.db_password)
    acqs = Acqs(store)
    if presence is not None:
        presence.setServiceParent(acqs)
    for service in acqsServices(settings, reactor, store,
                                LiveEndpoint(reactor, lambda: live.ami), live, presence):
        service.setServiceParent(acqs)
    return acqs


def standIn(settings: Settings, reactor) -> Presence:
    """The L{Presence} that stands in for VICIdial's Perl ACQS in ps, the box's processes read."""
    try:
        processes = listProcesses()
    except OSError:
        processes = None  # said by Presence at its first look
    return Presence(reactor, settings.server_ip,
                    lambda: deferToThreadPool(reactor, reactor.getThreadPool(), listProcesses),
                    TitleLock(), ProcessTitle(), initial=processes)


def readServerSettings(settings: Settings, live: LiveSettings) -> None:
    """
    Read VICIdial's servers row into C{live} at start-up.  Without an AMI
    secret of acqs' own, the row must give one: refuse to start
    (C{SystemExit}, one line) when it cannot be read or has none.
    """
    url = parseURL(settings.db).withPassword(settings.db_password)
    where = f"VICIdial's servers row of {settings.server_ip} (ASTmgrSECRET)"
    try:
        live.follow(lookUpServer(url, settings.server_ip))
    except StoreUnavailable as e:
        if not settings.send_secret:
            raise SystemExit(f"twistd acqs: not starting: no AMI secret: none given, and {where}"
                             f" could not be read: {e}") from None
        Logger().warn("Could not read VICIdial's servers row of {server_ip} ({reason});"
                      " it is read again every 5 s", server_ip=settings.server_ip,
                      reason=str(e))
        return
    if not live.send_secret:
        raise SystemExit(
            "twistd acqs: not starting: no AMI secret: give --send-secret-file FILE, set"
            " ACQS_SEND_SECRET, or set send-secret in the --config file; there is no"
            f" {where} in {url}")


def takeInstanceName(settings: Settings) -> None:
    """
    Refuse to start (C{SystemExit} with the reason) beside a live process
    of the same instance name; when the database cannot be asked, start
    anyway and say so.
    """
    url = parseURL(settings.db).withPassword(settings.db_password)
    try:
        registerInstance(url, settings.server_ip, settings.instance, socket.gethostname(),
                         os.getpid(), settings.stale_after, pidAlive)
    except InstanceConflict as e:
        raise SystemExit(f"acqs: not starting: {e}") from None
    except StoreUnavailable as e:
        Logger().warn("Could not check that no other process runs as instance {instance}"
                      " ({reason}); starting", instance=settings.instance, reason=str(e))


def acqsServices(
    settings: Settings, reactor, store: IQueueStore, endpoint: IStreamClientEndpoint,
    live: Optional[LiveSettings] = None, presence: Optional[Presence] = None,
) -> List[IService]:
    """
    acqs' services, in start order, on an open store and an AMI endpoint;
    with C{live}, following VICIdial's servers row; with C{presence},
    standing in for VICIdial's ACQS in ps.
    """
    tracker = CallTracker()
    following = live is not None
    live = live or LiveSettings(settings)

    def factory(credentials, events: str) -> AMIFactory:
        return AMIFactory("", "", reactor, events=events, md5=settings.md5,
                          timeout=settings.action_timeout,
                          greetingTimeout=settings.greeting_timeout, credentials=credentials)

    sendFactory = factory(live.sendCredentials, "off")
    exported = Metrics(settings.allow_actions) if settings.metrics else None
    metrics = NO_OBSERVER if exported is None else exported

    def openSession() -> ActionSession:
        return ActionSession(reactor, endpoint, sendFactory, settings.linger,
                             settings.action_timeout, metrics=metrics)

    writes = BatchWriter(reactor, lambda batch: store.record(settings.server_ip, batch),
                         "answers and call updates", delay=WRITE_WINDOW)
    listener = Listener(reactor, endpoint, factory(live.listenCredentials, EVENT_MASK),
                        store, settings.server_ip, tracker, writes=writes, name=live.ami)

    def answered(action, result, sentAt) -> None:
        if result.callAnswered:
            listener.answered(action.callerid, sentAt)

    allowed = (None if "*" in settings.allow_actions
               else {name.lower() for name in settings.allow_actions})
    sender = Sender(reactor, store, openSession, settings.server_ip, settings.instance,
                    maxSessions=settings.max_sessions, maxOriginates=live.maxOriginates,
                    maxConnecting=settings.max_connecting,
                    warm=settings.warm_sessions, warmIdle=settings.warm_idle,
                    wakeup=Wakeup(reactor, store, settings.server_ip, settings.wakeup,
                                  settings.poll_interval, settings.idle_poll_interval),
                    onOriginate=tracker.expect, onAnswer=answered, allowed=allowed,
                    ready=lambda: listener.protocol is not None, writes=writes,
                    stopTimeout=settings.action_timeout, metrics=metrics,
                    hold=presence.hold if presence else lambda: None)
    descriptors = DescriptorWatch(settings.max_sessions, live.maxOriginates)
    if following:
        descriptors.check()

    def follow(read: ServerRead) -> None:
        live.follow(read)
        descriptors.check()

    housekeeper = Housekeeper(reactor, store, settings.server_ip, settings.instance,
                              settings.stale_after, keepHours=settings.keep_hours,
                              onServer=follow if following else None,
                              readServer=live.wantsRows,
                              standsIn=presence.standsIn if presence else lambda: False)
    logThrough(rowLogGate(lambda: live.row_logs), listener, sender, store)

    def relogin(changed: FrozenSet[str]) -> None:
        if changed & LISTENER:
            logInAgain(listener, settings)

    live.whenChanged(relogin)
    newRows = NewRowsWatch(reactor, store, settings.server_ip)
    services: List[IService] = [Writer(reactor, writes, settings.action_timeout), listener,
                                sender, housekeeper, newRows]
    web: List[WebService] = []
    snapshot = snapshotOf(listener, sender, housekeeper, store, newRows,
                          started=reactor.seconds(), ami=lambda: live.ami,
                          metricsError=lambda: web[0].error if web else None, presence=presence)
    if settings.status_file:
        services.append(StatusFile(reactor, settings.status_file, snapshot))
    if exported is not None and settings.metrics:
        services.extend(webServices(reactor, settings.metrics, exported, listener, sender,
                                    housekeeper, store, snapshot, _describe, newRows))
        web.extend(s for s in services if isinstance(s, WebService))
    return services


def logInAgain(listener: Listener, settings: Settings) -> None:
    """The listener logs off, to log in again with the settings in force."""
    protocol = listener.protocol
    if protocol is not None:
        protocol.logoff(settings.action_timeout).addBoth(
            lambda _: protocol.transport.loseConnection())


def snapshotOf(
    listener: Listener, sender: Sender, housekeeper: Housekeeper, store: IQueueStore,
    newRows: NewRowsWatch, started: float, ami: Callable[[], str],
    metricsError: Callable[[], Optional[str]] = lambda: None,
    presence: Optional[Presence] = None,
) -> Callable[[], Dict[str, object]]:
    """What the status file reports, for ``acqs health`` and operators."""

    def snapshot() -> Dict[str, object]:
        return {
            **(presence.snapshot() if presence else {}),
            "warnings": presence.problems() if presence else [],
            "server_ip": sender.serverIP,
            "instance": sender.instance,
            "version": __version__,
            "started_at": started,
            "ami": ami(),
            "listener_connected": listener.protocol is not None,
            "listener_down_since": listener.downSince,
            "listener_cause": listener.cause,
            "listener_error": listener.error,
            "store_ok": housekeeper.healthy is not False,
            "store_down_since": housekeeper.downSince,
            "store_error": housekeeper.error,
            "claims_ok": sender.claimFailingSince is None,
            "claims_failing_since": sender.claimFailingSince,
            "claim_error": sender.claimError,
            "ami_ok": sender.amiDownSince is None,
            "ami_down_since": sender.amiDownSince,
            "ami_cause": sender.amiCause,
            "ami_error": sender.amiError,
            "ami_reached": sender.amiReachedAt is not None,
            "new_rows": newRows.rows,
            "new_oldest_age": newRows.oldestAge,
            "new_waiting_since": newRows.waitingSince,
            "new_seen_at": newRows.lookedAt,
            "sessions": sender.sessionCount,
            "ringing": sender.ringingCount,
            "max_originates": sender.maxOriginates,
            "backlog": sender.backlogCount,
            "sent": sender.sent,
            "tracked_calls": len(listener.tracker),
            "updates_pending": len(listener.updates),
            "updates_dropped": listener.updates.dropped,
            "duties": listener.duties.snapshot(),
            "catch_up": listener.catchUp,
            "duty_rows_written": listener.duties.written,
            "duty_rows_dropped": listener.duties.dropped,
            "recovered_rows": housekeeper.recovered,
            "pruned": housekeeper.pruned,
            "database": _describe(store.serverInfo),
            "metrics_error": metricsError(),
            **sender.wakeup.snapshot(),
        }

    return snapshot


def _describe(info) -> Optional[str]:
    """The database as the status file shows it, once the store knows it."""
    if info is None or info.engine is None:
        return info and info.version
    claims = "claims skip locked rows" if info.skipLocked else "claims serialised"
    return f"{info.version}, vicidial_manager {info.engine}, {claims}"

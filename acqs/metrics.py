"""
Prometheus metrics of one acqs, in a registry of its own.

Most numbers are read from the services when Prometheus scrapes
(L{AcqsCollector}): sessions, the backlog, the rows waiting as NEW, the AMI
links and why one is down, pending and dropped updates, recovered rows, the
store's errors.  What must be seen as it happens goes through an
L{Observer}: the sender tells it the rows it claims and releases, its
sessions how long connecting, logging in and answering took, and how long
after its claim each action was written.  The sender and sessions get
L{NO_OBSERVER}, which ignores it all, when metrics are off.

Labels stay few: an action is named as the allowlist (or VICIdial) spells
it, any other name is C{other}; a response is Y (Success), N (another
answer) or C{none} (no answer came: a timeout, a lost connection); a cause
is one of L{acqs.ami.outage.CAUSES}.  Never a callerid or a man_id.
"""

from typing import Iterable, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.process_collector import ProcessCollector

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .actions import VICIDIAL_ACTIONS
from .ami.outage import CAUSES
from .store.interfaces import StoreUnavailable

OTHER = "other"
# Seconds: AMI steps on a healthy box take milliseconds; a synchronous
# Originate is answered once its call is, after its ring time.
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# entry_date has whole seconds only.
ENTRY_DATE_BUCKETS = (0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300)
# A response label for an action that got no answer at all.
NO_ANSWER = "none"


class Observer:
    """What the sender and its sessions report as it happens; this one ignores it."""

    def claimed(self, action: str) -> None:
        """A row asking for C{action} was claimed, to be sent."""

    def released(self, action: str) -> None:
        """A claimed row was given back to NEW, not sent."""

    def connected(self, seconds: float) -> None:
        """A send session's TCP connection took C{seconds}."""

    def loggedIn(self, seconds: float) -> None:
        """A send session's greeting and login took C{seconds}."""

    def answered(self, action: str, success: bool, seconds: float) -> None:
        """Asterisk answered C{action} (Success or not) after C{seconds}."""

    def unanswered(self, action: str) -> None:
        """C{action} was written but no answer came (a timeout, a lost connection)."""

    def written(self, seconds: float) -> None:
        """An action was written to AMI C{seconds} after the claim of its row came back."""

    def sent(self, seconds: float) -> None:
        """A row was marked sending C{seconds} after its entry_date (whole seconds)."""


NO_OBSERVER = Observer()


class Metrics(Observer):
    """
    The counters and histograms acqs observes, in C{registry}; actions
    named in C{actions} (or VICIdial's) keep their name as a label.
    """

    def __init__(self, actions: Iterable[str] = ()):
        self.registry = CollectorRegistry(auto_describe=True)
        known = [a for a in (*VICIDIAL_ACTIONS, *actions) if a != "*"]
        self._names = {a.lower(): a for a in known}
        r = self.registry
        self._claimed = Counter("acqs_actions_claimed", "Rows claimed to be sent",
                                ["action"], registry=r)
        self._sent = Counter("acqs_actions_sent",
                             "Actions written to AMI, by Asterisk's answer (Y: Success,"
                             " N: another answer, none: no answer came)",
                             ["action", "response"], registry=r)
        self._released = Counter("acqs_actions_released",
                                 "Claimed rows given back to NEW, not sent", ["action"],
                                 registry=r)
        self._connect = Histogram("acqs_ami_connect_seconds",
                                  "Send sessions' TCP connection time", buckets=STEP_BUCKETS,
                                  registry=r)
        self._login = Histogram("acqs_ami_login_seconds",
                                "Send sessions' greeting and login time", buckets=STEP_BUCKETS,
                                registry=r)
        self._answer = Histogram("acqs_ami_answer_seconds",
                                 "Time from writing an action to Asterisk's answer",
                                 ["action"], buckets=STEP_BUCKETS, registry=r)
        self._claimToSend = Histogram(
            "acqs_claim_to_send_seconds",
            "Time from the claim that took a row (as it came back) to its action written"
            " to AMI, on acqs' clock", buckets=STEP_BUCKETS, registry=r)
        self._entryDateToSend = Histogram(
            "acqs_entry_date_to_send_whole_seconds",
            "Time from a row's entry_date, which has whole seconds only (so up to 1 s"
            " over), to its mark of sending, on the database's clock",
            buckets=ENTRY_DATE_BUCKETS, registry=r)
        ProcessCollector(registry=r)

    def action(self, name: str) -> str:
        """The label of action C{name}."""
        return self._names.get((name or "").lower(), OTHER)

    def claimed(self, action: str) -> None:
        self._claimed.labels(self.action(action)).inc()

    def released(self, action: str) -> None:
        self._released.labels(self.action(action)).inc()

    def connected(self, seconds: float) -> None:
        self._connect.observe(seconds)

    def loggedIn(self, seconds: float) -> None:
        self._login.observe(seconds)

    def answered(self, action: str, success: bool, seconds: float) -> None:
        name = self.action(action)
        self._sent.labels(name, "Y" if success else "N").inc()
        self._answer.labels(name).observe(seconds)

    def unanswered(self, action: str) -> None:
        self._sent.labels(self.action(action), NO_ANSWER).inc()

    def written(self, seconds: float) -> None:
        self._claimToSend.observe(max(0.0, seconds))

    def sent(self, seconds: float) -> None:
        self._entryDateToSend.observe(max(0.0, seconds))


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


class AcqsCollector:
    """The numbers the services keep, read at each scrape."""

    def __init__(self, listener, sender, housekeeper, store, describe, newRows):
        self._listener = listener
        self._sender = sender
        self._housekeeper = housekeeper
        self._store = store
        self._describe = describe  # ServerInfo -> text, or None
        self._newRows = newRows  # acqs.backlog.NewRowsWatch

    def describe(self):
        return []  # read at scrape time only: nothing to check at registration

    def collect(self):
        listener, sender, housekeeper, store = (
            self._listener, self._sender, self._housekeeper, self._store)
        info = InfoMetricFamily("acqs", "This acqs instance")
        info.add_metric([], {"acqs_instance": sender.instance, "server_ip": sender.serverIP,
                             "database": self._describe(store.serverInfo) or "unknown"})
        yield info
        yield _gauge("acqs_listener_connected", "1 while the AMI listener is logged in",
                     listener.protocol is not None)
        yield _counter("acqs_listener_reconnects", "Times the AMI listener connected again",
                       listener.reconnects)
        yield _counter("acqs_listener_events",
                       "Newstate, Hangup and OriginateResponse events received",
                       listener.events)
        yield _counter("acqs_listener_events_parsed",
                       "Events read in full (of calls acqs may wait for)", listener.parsed)
        yield _gauge("acqs_tracked_calls", "Calls the listener waits for", len(listener.tracker))
        yield _gauge("acqs_updates_pending", "Answers and call updates waiting to be written",
                     len(listener.updates))
        yield _counter("acqs_updates_dropped", "Call updates dropped (too many waited)",
                       listener.updates.dropped)
        yield _counter("acqs_duty_rows_written",
                       "Rows of the Perl listener's other duties written to VICIdial's tables",
                       listener.duties.written)
        yield _counter("acqs_duty_rows_dropped",
                       "Duty rows not written (a duty's writes failed, or too many waited)",
                       listener.duties.dropped)
        yield _gauge("acqs_ami_sessions", "Send sessions open, lingering ones included",
                     sender.sessionCount)
        yield _gauge("acqs_ami_sessions_lingering", "Send sessions lingering after their action",
                     sender.lingeringCount)
        yield _gauge("acqs_ami_sessions_originating",
                     "Send sessions carrying Originates, lingering ones included",
                     sender.originateCount)
        yield _gauge("acqs_originates_ringing",
                     "Originates awaiting their answer (synchronous ones: calls ringing)",
                     sender.ringingCount)
        yield _gauge("acqs_originates_max", "The most send sessions carrying Originates",
                     sender.maxOriginates)
        yield _gauge("acqs_backlog_rows", "Claimed rows waiting for a send session",
                     sender.backlogCount)
        yield _gauge("acqs_ami_up", "1 while the sender reaches AMI (or has not tried yet)",
                     sender.amiDownSince is None)
        causes = GaugeMetricFamily(
            "acqs_ami_down_cause",
            "1 for why an AMI link is down (unreachable, no_answer, not_asterisk,"
            " login_refused: check the user and secret, login_failed, shutting_down);"
            " 0 otherwise",
            labels=["link", "cause"])
        down = {"listener": listener.cause if listener.protocol is None else None,
                "sender": sender.amiCause if sender.amiDownSince is not None else None}
        for link, now in down.items():
            for cause in CAUSES:
                causes.add_metric([link, cause], float(now == cause))
        yield causes
        if self._newRows.rows is not None:
            yield _gauge("acqs_new_rows", "Rows of this server waiting as NEW in the database",
                         self._newRows.rows)
            yield _gauge("acqs_new_oldest_age_seconds",
                         "Age of the oldest row waiting as NEW, by its entry_date (whole"
                         " seconds, database clock); 0 when none waits",
                         self._newRows.oldestAge or 0)
        wakeup = sender.wakeup
        mode = InfoMetricFamily(
            "acqs_wakeup", "How the sender finds NEW rows: wait (in MariaDB) or poll, and why"
            " it polls where a wait was wanted (no fault)")
        mode.add_metric([], {"mode": wakeup.mode, "reason": wakeup.reason or ""})
        yield mode
        yield _gauge("acqs_wakeup_step_seconds",
                     "Seconds between looks for NEW rows now (backing off while none come)",
                     wakeup.step)
        yield _counter("acqs_wakeup_looks", "Looks for NEW rows: each costs the database a"
                       " thread wake-up", wakeup.looks)
        yield _gauge("acqs_claims_ok", "1 while claiming rows succeeds",
                     sender.claimFailingSince is None)
        yield _counter("acqs_claim_failures", "Claim rounds that failed", sender.claimFailures)
        yield _gauge("acqs_database_up", "1 while housekeeping reaches the database",
                     housekeeper.healthy is not False)
        yield _counter("acqs_database_errors", "Database calls that failed", store.errors)
        refused = CounterMetricFamily("acqs_actions_refused",
                                      "Rows not sent: refused, or stopped by the dead check",
                                      labels=["outcome"])
        refused.add_metric(["refused"], store.refused)
        refused.add_metric(["dead_check"], store.deadChecked)
        yield refused
        yield _counter("acqs_rows_recovered", "Stranded rows requeued or resolved",
                       housekeeper.recovered)


class InsertToSend(Service):
    """
    Observes, every C{interval} seconds, how long after its entry_date each
    row this instance sent was marked sending, both as the database has
    them (so no clock but the database's and the GUI client's counts): in
    whole seconds, as entry_date has no fraction.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, store, serverIP: str, instance: str,
                 observer: Observer, interval: float = 5.0):
        self._store = store
        self._serverIP = serverIP
        self._instance = instance
        self._observer = observer
        self._after = None  # where the next read starts; None: find out
        self._loop = LoopingCall(self._read)
        self._loop.clock = clock
        self._interval = interval
        self._looping: Optional[Deferred] = None

    def startService(self) -> None:
        super().startService()
        self._looping = self._loop.start(self._interval, now=True)

    def _read(self) -> Deferred:
        async def read():
            try:
                times = await self._store.sendTimes(self._serverIP, self._instance, self._after)
            except StoreUnavailable:
                return  # the store says so once; housekeeping reports the outage
            except Exception:
                self.log.failure("Reading send times failed")
                return
            for delay in times.delays:
                self._observer.sent(delay)
            self._after = times.until

        return Deferred.fromCoroutine(read())

    def stopService(self) -> Deferred:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        return succeed(None) if self._looping is None else self._looping  # None: never started

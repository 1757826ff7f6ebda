"""
What acqs serves with C{--metrics}: C{/metrics} for Prometheus; C{/health},
whose status code is the health judgement (200 HEALTHY or DEGRADED, 503
UNHEALTHY) for load balancers and probes; and C{/}, a status page for
people: the judgement of C{acqs health} with its causes, the services'
state and counters, and this server's last rows with their life cycle and
Asterisk's answer.

The page needs no JavaScript and refreshes itself every few seconds.  Its
rows come through the store's pool, within a timeout; when the database is
away the page says so (still 200).  Everything shown from a row is escaped:
rows hold what GUI clients wrote.
"""

import html
import time
from typing import Callable, Dict, List, Optional

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.application.service import IService, Service
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from .health import UNHEALTHY_, Problem, judge, verdict
from .metrics import AcqsCollector, InsertToSend, Metrics
from .store.interfaces import StoreUnavailable
from .store.reads import RowView

ROWS = 50
READ_TIMEOUT = 5.0
REFRESH = 5  # seconds between the page's own reloads
# No script may run, whatever a row holds; only the page's own style.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


class MetricsPage(Resource):
    """Prometheus' text format of C{registry}."""

    isLeaf = True

    def __init__(self, registry):
        super().__init__()
        self._registry = registry

    def render_GET(self, request) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._registry)


class HealthPage(Resource):
    """
    C{/health}: the verdict as the status code (200 HEALTHY or DEGRADED: a
    degraded acqs still works, or will again by itself, and a probe that
    restarted it would only lose its calls; 503 UNHEALTHY), and the verdict
    and its problems as text.
    """

    isLeaf = True

    def __init__(self, clock: IReactorTime, snapshot: Callable[[], Dict[str, object]]):
        super().__init__()
        self._clock = clock
        self._snapshot = snapshot

    def render_GET(self, request) -> bytes:
        problems = judge(self._snapshot(), self._clock.seconds())
        said = verdict(problems)
        request.setResponseCode(503 if said == UNHEALTHY_ else 200)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        return "".join(f"{line}\n" for line in [said, *map(str, problems)]).encode("utf-8")


class StatusPage(Resource):
    """
    The page at C{/}: C{snapshot()} is what the status file holds; the rows
    come from C{store.recentRows}.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, store, snapshot: Callable[[], Dict[str, object]],
                 timeout: float = READ_TIMEOUT):
        super().__init__()
        self._clock = clock
        self._store = store
        self._snapshot = snapshot
        self._timeout = timeout

    def getChild(self, name: bytes, request):
        return self if name == b"" else super().getChild(name, request)

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Content-Security-Policy", POLICY.encode("ascii"))
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Cache-Control", b"no-store")
        gone: List[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def send(page: str) -> None:
            if not gone:
                request.write(page.encode("utf-8"))
                request.finish()

        def failed(failure) -> None:
            self.log.failure("The status page failed", failure)
            send(_document("acqs", "<p>The page could not be made; see acqs' log.</p>"))

        Deferred.fromCoroutine(self._page()).addCallbacks(send, failed)
        return NOT_DONE_YET

    async def _page(self) -> str:
        status = self._snapshot()
        rows, problem = [], None
        try:
            rows = await self._store.recentRows(status["server_ip"], ROWS).addTimeout(
                self._timeout, self._clock)
        except TimeoutError:
            problem = f"the database did not answer within {self._timeout:g} s"
        except StoreUnavailable as e:
            problem = str(e)
        now = self._clock.seconds()
        return render(status, judge(status, now), rows, problem, now)


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _yes(value) -> str:
    return "yes" if value else "no"


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _localTime(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(seconds))


# Compact: one line a row (what does not fit is cut, whole in its title), the
# table as wide as the window and never wider, facts in columns.
STYLE = """
body { font: 13px sans-serif; margin: 8px 14px; color: #222; }
h1 { font-size: 18px; margin: 0 0 4px; display: inline; }
h2 { font-size: 14px; margin: 10px 0 4px; }
.verdict { display: inline-block; margin-left: 12px; padding: 0 8px; border: 2px solid;
           border-radius: 3px; font-size: 16px; font-weight: bold; }
.HEALTHY { color: #0a6b1f; background: #dcf3e1; }
.DEGRADED { color: #8a4700; background: #ffe9c7; }
.UNHEALTHY { color: #b00020; background: #fde0e4; } .asof { color: #555; margin-left: 8px; }
ul.problems { margin: 4px 0; padding: 0; list-style: none; }
li.DEGRADED { color: #8a4700; } li.UNHEALTHY { color: #b00020; }
dl { display: grid; grid-template-columns: repeat(3, max-content minmax(0, 1fr));
     gap: 1px 10px; margin: 0; }
dt { font-weight: bold; white-space: nowrap; }
dd { margin: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
dd.no, .bad { color: #b00020; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 1px 4px; text-align: left; white-space: nowrap;
         overflow: hidden; text-overflow: ellipsis; }
th { background: #eee; }
"""


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{REFRESH}">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>\n")


def _facts(pairs) -> str:
    """Facts as a grid; a value starting "no" is shown as bad."""
    def fact(key, value) -> str:
        bad = ' class="no"' if str(value).split(":")[0].split(" (")[0] == "no" else ""
        return f'<dt>{_e(key)}</dt><dd{bad} title="{_e(value)}">{_e(value)}</dd>'

    return "<dl>" + "".join(fact(k, v) for k, v in pairs) + "</dl>"


# Each column and its share of the width, in percent.
# (The life cycle ends with the row's status, so it needs no column of its own.)
COLUMNS = (("man_id", 5), ("entry date", 11), ("action", 7), ("callerid", 13),
           ("life cycle, status", 22), ("resp", 3), ("channel", 12), ("uniqueid", 9),
           ("outcome", 6), ("answer / reason", 12))


def _cells(row: RowView) -> List[object]:
    said = " / ".join(t for t in (row.answer, row.reason) if t)
    life = row.lifeCycle
    if life[-1] != row.status:  # back to NEW, say
        life = life + [row.status]
    return [row.man_id, row.entry_date, row.action, row.callerid, "→".join(life),
            row.response, row.channel, row.call, row.outcome, said]


def _link(status: Dict[str, object], prefix: str, up: bool) -> str:
    """How one AMI link stands: yes, or no and why."""
    if up:
        return "yes"
    cause, error = status.get(f"{prefix}_cause"), status.get(f"{prefix}_error")
    return "no" + (f": {error}" if error else f" ({cause})" if cause else "")


def _sender(status: Dict[str, object]) -> str:
    if status.get("ami_ok") is False:
        return _link(status, "ami", False)
    if status.get("ami_reached") is False:
        return "not tried yet: no send session since start" + (
            " (claims wait for the listener)" if status.get("listener_connected") is False
            else "")
    return "yes"


def _wakeup(status: Dict[str, object]) -> str:
    """How the sender finds NEW rows (acqs.wakeup), and why it polls where it does."""
    step = status.get("wakeup_step")
    every = f", every {step:g} s now" if isinstance(step, (int, float)) else ""
    if status.get("wakeup") == "wait":
        return f"waits for NEW rows in the server{every}"
    reason = status.get("wakeup_reason")
    return f"polls for NEW rows{every}" + (f" ({reason})" if reason else "")


def _backlog(status: Dict[str, object]) -> str:
    rows = status.get("new_rows")
    if rows is None:
        return "not known (the database has not answered)"
    if not rows:
        return "none"
    age = status.get("new_oldest_age")
    return f"{rows}" + (f", the oldest inserted {age:.0f} s ago" if age is not None else "")


def render(status: Dict[str, object], problems: List[Problem], rows: List[RowView],
           rowsProblem: Optional[str], now: Optional[float] = None) -> str:
    """The status page's HTML, as of C{now} (Unix seconds)."""
    now = time.time() if now is None else now
    title = f"acqs {status.get('instance')} for {status.get('server_ip')}"
    said = verdict(problems)
    health = (f'<span class="verdict {said}">{said}</span>'
              f'<span class="asof">as of {_e(_localTime(now))}</span>')
    if problems:
        health += ('<ul class="problems">' + "".join(
            f'<li class="{p.level}">{_e(p.level)}: {_e(p.text)}</li>' for p in problems)
            + "</ul>")
    started = status.get("started_at")
    claims = _yes(status.get("claims_ok"))
    if not status.get("claims_ok"):
        claims += f" ({status.get('claim_error')})"
    facts = _facts([
        ("version", status.get("version")),
        ("up", f"{_duration(now - started)} (since {_localTime(started)})"
         if isinstance(started, (int, float)) else "not known"),
        ("AMI", status.get("ami")),
        ("listener connected", _link(status, "listener",
                                     bool(status.get("listener_connected")))),
        ("sender reaches AMI", _sender(status)),
        ("claims succeed", claims),
        ("database", str(status.get("database") or "not known yet")
         + (f"; {_wakeup(status)}" if status.get("wakeup") else "")),
        ("database reachable", _yes(status.get("store_ok"))
         + (f": {status.get('store_error')}" if status.get("store_ok") is False
            and status.get("store_error") else "")),
        ("rows waiting as NEW", _backlog(status)),
        ("actions sent", status.get("sent")),
        ("send sessions open", status.get("sessions") if status.get("ringing") is None
         else f"{status['sessions']}, {status['ringing']} of them ringing"),
        ("claimed, waiting for a session", status.get("backlog")),
        ("calls followed", status.get("tracked_calls")),
        ("updates waiting to be written", status.get("updates_pending")),
        ("updates dropped", status.get("updates_dropped")),
        ("rows recovered", status.get("recovered_rows")),
    ])
    if rowsProblem is not None:
        table = f'<p class="bad">The rows cannot be read now: {_e(rowsProblem)}</p>'
    elif not rows:
        table = f"<p>No rows of {_e(status.get('server_ip'))} yet.</p>"
    else:
        widths = "".join(f'<col style="width:{w}%">' for _, w in COLUMNS)
        head = "".join(f"<th>{_e(c)}</th>" for c, _ in COLUMNS)
        body = "".join("<tr>" + "".join(f'<td title="{_e(c)}">{_e(c)}</td>'
                                        for c in _cells(r)) + "</tr>" for r in rows)
        table = (f"<table><colgroup>{widths}</colgroup><thead><tr>{head}</tr></thead>"
                 f"<tbody>{body}</tbody></table>")
    return _document(f"{said} {title}", (
        f"<h1>{_e(title)}</h1>{health}<h2>State</h2>{facts}"
        f"<h2>Last {ROWS} rows, newest first</h2>{table}"
        f'<p><a href="/metrics">Prometheus metrics</a> · <a href="/health">health</a></p>'))


class QuietSite(Site):
    """A site that logs no requests: Prometheus scrapes every few seconds."""

    noisy = False

    def log(self, request) -> None:
        pass


class WebService(Service):
    """Serves C{site} on C{endpoint}; a port that cannot be had is logged, not fatal."""

    log = Logger()

    def __init__(self, endpoint, description: str, site: Site):
        self._endpoint = endpoint
        self._description = description
        self._site = site
        self._port = None
        self._listening: Optional[Deferred] = None
        self.error: Optional[str] = None  # why it could not listen, for health

    def startService(self) -> None:
        super().startService()
        self._listening = self._endpoint.listen(self._site).addCallbacks(
            self._listened, self._failed)

    @property
    def address(self):
        """Where it listens (C{getHost()} of its port), or None."""
        return self._port.getHost() if self._port is not None else None

    def _listened(self, port) -> None:
        self._port = port
        self.log.info("Serving metrics and the status page on {where}",
                      where=self._description)

    def _failed(self, failure) -> None:
        if failure.check(CancelledError):
            return  # stopped while it was starting
        self.error = (f"cannot serve metrics and the status page on {self._description}:"
                      f" {failure.getErrorMessage()}")
        self.log.error("Cannot serve metrics on {where}: {reason}", where=self._description,
                       reason=failure.getErrorMessage())

    def stopService(self) -> Deferred:
        super().stopService()
        listening = self._listening
        if listening is None:  # never started: a MultiService stops every child
            return succeed(None)
        listening.cancel()
        port, self._port = self._port, None
        return port.stopListening() if port is not None else listening


def webServices(reactor, description: str, metrics: Metrics, listener, sender, housekeeper,
                store, snapshot, describe, newRows) -> List[IService]:
    """The services of C{--metrics description}: the entry_date→send watch and the web site."""
    metrics.registry.register(AcqsCollector(listener, sender, housekeeper, store, describe,
                                            newRows))
    root = StatusPage(reactor, store, snapshot)
    root.putChild(b"metrics", MetricsPage(metrics.registry))
    root.putChild(b"health", HealthPage(reactor, snapshot))
    return [InsertToSend(reactor, store, sender.serverIP, sender.instance, metrics),
            WebService(serverFromString(reactor, description), description, QuietSite(root))]

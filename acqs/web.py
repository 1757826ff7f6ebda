"""
What acqs serves with C{--metrics}: C{/metrics} for Prometheus, and C{/}, a
status page for people: the health judgement of C{acqs health}, the
services' state and counters, and this server's last rows with their life
cycle and Asterisk's answer.

The page needs no JavaScript and refreshes itself every few seconds.  Its
rows come through the store's pool, within a timeout; when the database is
away the page says so (still 200).  Everything shown from a row is escaped:
rows hold what GUI clients wrote.
"""

import html
from typing import Callable, Dict, List, Optional

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.application.service import IService, Service
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from .health import judge
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
        return render(status, judge(status, self._clock.seconds()), rows, problem)


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _yes(value) -> str:
    return "yes" if value else "no"


STYLE = """
body { font: 14px sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 22px; margin-bottom: 0.2em; }
.ok { color: #0a6b1f; } .bad { color: #b00020; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #eee; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; }
dt { font-weight: bold; } dd { margin: 0; }
"""


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{REFRESH}">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>\n")


def _facts(pairs) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs) + "</dl>"


COLUMNS = ("man_id", "entry date", "action", "callerid", "life cycle", "status", "response",
           "channel", "uniqueid", "outcome", "Asterisk's answer", "reason")


def _cells(row: RowView) -> List[str]:
    return [row.man_id, row.entry_date, row.action, row.callerid, " → ".join(row.lifeCycle),
            row.status, row.response, row.channel, row.call, row.outcome, row.answer,
            row.reason]


def render(status: Dict[str, object], problems: List[str], rows: List[RowView],
           rowsProblem: Optional[str]) -> str:
    """The status page's HTML."""
    title = f"acqs {status.get('instance')} for {status.get('server_ip')}"
    if problems:
        health = ('<p class="bad"><strong>UNHEALTHY</strong></p><ul>'
                  + "".join(f'<li class="bad">{_e(p)}</li>' for p in problems) + "</ul>")
    else:
        health = '<p class="ok"><strong>HEALTHY</strong></p>'
    state = _facts([
        ("instance", status.get("instance")),
        ("server IP", status.get("server_ip")),
        ("database", status.get("database") or "not known yet"),
        ("database reachable", _yes(status.get("store_ok"))),
        ("AMI listener connected", _yes(status.get("listener_connected"))),
        ("sender reaches AMI", _yes(status.get("ami_ok"))),
        ("claims succeed", _yes(status.get("claims_ok"))
         + ("" if status.get("claims_ok") else f" ({status.get('claim_error')})")),
    ])
    counters = _facts([
        ("actions sent", status.get("sent")),
        ("send sessions open", status.get("sessions")),
        ("rows waiting for a session", status.get("backlog")),
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
        head = "".join(f"<th>{_e(c)}</th>" for c in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in _cells(r)) + "</tr>"
                       for r in rows)
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return _document(title, (
        f"<h1>{_e(title)}</h1>{health}<h2>State</h2>{state}<h2>Counters</h2>{counters}"
        f"<h2>Last {ROWS} rows, newest first</h2>{table}"
        f'<p><a href="/metrics">Prometheus metrics</a></p>'))


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
        self.log.error("Cannot serve metrics on {where}: {reason}", where=self._description,
                       reason=failure.getErrorMessage())

    def stopService(self) -> Deferred:
        super().stopService()
        self._listening.cancel()
        port, self._port = self._port, None
        return port.stopListening() if port is not None else self._listening


def webServices(reactor, description: str, metrics: Metrics, listener, sender, housekeeper,
                store, snapshot, describe) -> List[IService]:
    """The services of C{--metrics description}: the INSERT→send watch and the web site."""
    metrics.registry.register(AcqsCollector(listener, sender, housekeeper, store, describe))
    root = StatusPage(reactor, store, snapshot)
    root.putChild(b"metrics", MetricsPage(metrics.registry))
    return [InsertToSend(reactor, store, sender.serverIP, sender.instance, metrics),
            WebService(serverFromString(reactor, description), description, QuietSite(root))]

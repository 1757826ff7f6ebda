"""
Tests for what operators watch, where the logic is pure: metric labels, the
--metrics setting, the status page's HTML, and the command-line tools'
parsing and endings.
"""

from prometheus_client.exposition import generate_latest
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from acqs.config import loadSettings
from acqs.metrics import Metrics
from acqs.rowscli import FAILED, OK, _ended, _headers, _lines, duration, freshCallerid, plain
from acqs.store.reads import RowView
from acqs.health import Problem
from acqs.web import HealthPage, WebService, render


def row(**values) -> RowView:
    fields = dict(man_id=7, entry_date="2024-01-30 17:22:53", status="NEW", response="N",
                  server_ip="10.10.11.12", channel="", action="Originate",
                  callerid="V0130172253000000001", uniqueid="", cmd_lines=())
    fields.update(values)
    return RowView(**fields)


class MetricsTests(SynchronousTestCase):
    def scrape(self, metrics: Metrics) -> str:
        return generate_latest(metrics.registry).decode("utf-8")

    def test_actionLabelsStayFew(self):
        """Actions are labelled as the allowlist spells them; any other name is 'other'."""
        metrics = Metrics(("Originate", "QueueStatus"))
        for name in ("originate", "ORIGINATE", "queuestatus", "Orig inate", "V1234", ""):
            metrics.claimed(name)
        text = self.scrape(metrics)
        self.assertIn('acqs_actions_claimed_total{action="Originate"} 2.0', text)
        self.assertIn('acqs_actions_claimed_total{action="QueueStatus"} 1.0', text)
        self.assertIn('acqs_actions_claimed_total{action="other"} 3.0', text)

    def test_answersByResponse(self):
        """An answer counts under its action and Y or N, and times the answer; an action
        no answer came for counts as none, and is not timed as an answer."""
        metrics = Metrics()
        metrics.answered("Hangup", True, 0.004)
        metrics.answered("Hangup", False, 0.2)
        metrics.unanswered("Hangup")
        text = self.scrape(metrics)
        self.assertIn('acqs_actions_sent_total{action="Hangup",response="Y"} 1.0', text)
        self.assertIn('acqs_actions_sent_total{action="Hangup",response="N"} 1.0', text)
        self.assertIn('acqs_actions_sent_total{action="Hangup",response="none"} 1.0', text)
        self.assertIn('acqs_ami_answer_seconds_bucket{action="Hangup",le="0.005"} 1.0', text)
        self.assertIn('acqs_ami_answer_seconds_count{action="Hangup"} 2.0', text)

    def test_claimToSend(self):
        """Claim → written is timed in milliseconds; entry_date's figure says whole seconds."""
        metrics = Metrics()
        metrics.written(0.0031)
        metrics.sent(1.0)
        text = self.scrape(metrics)
        self.assertIn('acqs_claim_to_send_seconds_bucket{le="0.0025"} 0.0', text)
        self.assertIn('acqs_claim_to_send_seconds_bucket{le="0.005"} 1.0', text)
        self.assertIn("acqs_entry_date_to_send_whole_seconds_count 1.0", text)
        self.assertNotIn("acqs_insert_to_send_seconds", text)

    def test_registriesApart(self):
        """Two acqs in one process count apart."""
        first, second = Metrics(), Metrics()
        first.released("Redirect")
        self.assertIn('acqs_actions_released_total{action="Redirect"} 1.0', self.scrape(first))
        self.assertNotIn('acqs_actions_released_total{action="Redirect"}', self.scrape(second))


class MetricsSettingTests(SynchronousTestCase):
    def load(self, **options):
        options = {"server-ip": "10.0.0.4", "send-secret": "s", **options}
        return loadSettings(options, {}, self.mktemp())

    def test_offByDefault(self):
        """Without --metrics nothing is served."""
        self.assertIsNone(self.load().metrics)

    def test_barePortOnLoopback(self):
        """A bare port listens on loopback only."""
        self.assertEqual(self.load(metrics="9128").metrics, "tcp:9128:interface=127.0.0.1")

    def test_endpointAsGiven(self):
        """An endpoint string is Twisted's, unchanged."""
        self.assertEqual(self.load(metrics="tcp:9128:interface=10.0.0.4").metrics,
                         "tcp:9128:interface=10.0.0.4")

    def test_badEndpointRefused(self):
        """A bad endpoint is refused with a sentence naming the option."""
        error = str(self.assertRaises(usage.UsageError, self.load, metrics="tcp:nine"))
        self.assertIn("--metrics is not a port or a Twisted server endpoint string", error)

    def test_toolsNeedNoSecret(self):
        """The command-line tools load the database settings without an AMI secret."""
        settings = loadSettings({"server-ip": "10.0.0.4", "db": "sqlite:///x.db"}, {},
                                self.mktemp(), required=("server-ip",))
        self.assertEqual((settings.db, settings.send_secret), ("sqlite:///x.db", ""))


class PageTests(SynchronousTestCase):
    status = {"instance": "box1", "server_ip": "10.10.11.12", "listener_connected": True,
              "store_ok": True, "claims_ok": True, "ami_ok": True, "sent": 3,
              "version": "9.9", "started_at": 1_000.0, "ami": "tcp:host=10.0.0.5:port=5038"}

    def render(self, problems=(), rows=(), rowsProblem=None, **status):
        return render({**self.status, **status}, list(problems), list(rows), rowsProblem,
                      now=1_000.0 + 3 * 3600 + 65)

    def test_healthy(self):
        """A healthy acqs says HEALTHY, its instance and its rows with their life cycle."""
        page = self.render(rows=[row(status="DEAD", claimed_at="x", sending_at="y",
                                     uniqueid="1700000000.1")])
        self.assertIn('<span class="verdict HEALTHY">HEALTHY</span>', page)
        self.assertIn("<title>HEALTHY acqs box1 for 10.10.11.12</title>", page)
        self.assertIn("acqs box1 for 10.10.11.12", page)
        self.assertIn('<td title="NEW→QUEUE→SENT→UPDATED→DEAD">NEW→QUEUE→SENT→UPDATED→DEAD</td>',
                      page)

    def test_aboutThisAcqs(self):
        """The page says as of when, how long acqs is up, its version and its AMI."""
        page = self.render()
        self.assertRegex(page, r'<span class="asof">as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d')
        self.assertIn("<dt>up</dt><dd", page)
        self.assertIn(">3 h 01 min (since ", page)
        self.assertIn("<dt>version</dt><dd title=\"9.9\">9.9</dd>", page)
        self.assertIn(">tcp:host=10.0.0.5:port=5038</dd>", page)

    def test_problemsShown(self):
        """Each problem is listed with its level; the headline is the worst."""
        page = self.render([Problem("UNHEALTHY", "the AMI listener is disconnected for 90 s"),
                            Problem("DEGRADED", "the sender cannot reach AMI for 9 s")])
        self.assertIn('<span class="verdict UNHEALTHY">UNHEALTHY</span>', page)
        self.assertIn('<li class="UNHEALTHY">UNHEALTHY: the AMI listener is disconnected for'
                      ' 90 s</li>', page)
        self.assertIn('<li class="DEGRADED">DEGRADED: the sender cannot reach AMI', page)
        page = self.render([Problem("DEGRADED", "the sender cannot reach AMI for 9 s")])
        self.assertIn('<span class="verdict DEGRADED">DEGRADED</span>', page)

    def test_causesShown(self):
        """A link that is down says why: a refused login, a sender not tried yet."""
        page = self.render(listener_connected=False, listener_cause="login_refused",
                           listener_error="AMI login as 'listener' refused: Authentication"
                                          " failed", ami_reached=False)
        self.assertIn('<dt>listener connected</dt><dd class="no" title="no: AMI login as'
                      ' &#x27;listener&#x27; refused: Authentication failed">', page)
        self.assertIn("<dt>sender reaches AMI</dt><dd title=\"not tried yet: no send session"
                      " since start (claims wait for the listener)\"", page)

    def test_newRows(self):
        """The rows waiting as NEW are shown, with the oldest one's age."""
        page = self.render(new_rows=129, new_oldest_age=96.4)
        self.assertIn(">129, the oldest inserted 96 s ago</dd>", page)
        self.assertIn(">none</dd>", self.render(new_rows=0))

    def test_ringingShown(self):
        """The send sessions open say how many of them carry ringing Originates."""
        page = self.render(sessions=57, ringing=40)
        self.assertIn("<dt>send sessions open</dt><dd", page)
        self.assertIn(">57, 40 of them ringing</dd>", page)

    def test_rowsEscaped(self):
        """What GUI clients wrote is shown as text, never as markup."""
        page = self.render(rows=[row(callerid='<script>alert("x")</script>',
                                     action="<b>Hangup</b>")])
        self.assertNotIn("<script>", page)
        self.assertNotIn("<b>", page)
        self.assertIn("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;", page)

    def test_databaseAway(self):
        """Rows that cannot be read leave the rest of the page, with the reason."""
        page = self.render(rowsProblem="queue store mysql://cron@db:3306/asterisk failed")
        self.assertIn("The rows cannot be read now: queue store mysql://cron@db", page)
        self.assertIn('listener connected</dt><dd title="yes">yes', page)


class ToolTests(SynchronousTestCase):
    def test_durations(self):
        """--since and --timeout take seconds, or s, m, h, d."""
        self.assertEqual([duration(t) for t in ("90", "90s", "10m", "2h", "1d", "0.5")],
                         [90, 90, 600, 7200, 86400, 0.5])
        self.assertRaises(ValueError, duration, "ten minutes")

    def test_freshCallerid(self):
        """A fresh callerid is VICIdial's shape: V, MMDDhhmmss, 9 digits."""
        callerid = freshCallerid()
        self.assertRegex(callerid, r"^V\d{19}$")
        self.assertNotEqual(callerid, freshCallerid())

    def test_originateGetsItsCallerid(self):
        """An Originate without a Callerid header gets the row's, as VICIdial writes it."""
        lines = _headers(["Channel: Local/100@e2e"], "Originate", "V1")
        self.assertEqual(lines[:2], ["Channel: Local/100@e2e", "Callerid: V1"])
        self.assertEqual(len(lines), 10)
        self.assertEqual(_headers(["Channel: SIP/x-1"], "Hangup", "V1")[1], "")

    def test_endings(self):
        """A send ends: answered Success (an Originate once its call is DEAD), or failed."""
        answered = dict(answered_at="t", response="Y", outcome="sent")
        self.assertEqual(_ended(row(action="Hangup", status="SENT", **answered)), OK)
        self.assertIsNone(_ended(row(status="UPDATED", **answered)))
        self.assertEqual(_ended(row(status="DEAD", **answered)), OK)
        self.assertEqual(_ended(row(status="SENT", answered_at="t", response="N")), FAILED)
        self.assertEqual(_ended(row(status="DEAD", outcome="refused")), FAILED)
        self.assertIsNone(_ended(row(status="QUEUE", outcome="queued")))

    def test_plain(self):
        """Control and invisible characters print as escapes; printable text is kept."""
        self.assertEqual(plain("V1\x1b[2J\r\nman_id 9: fake\u202e\x7f"),
                         "V1\\x1b[2J\\r\\nman_id 9: fake\\u202e\\x7f")
        self.assertEqual(plain("Local/8600051@default → é"), "Local/8600051@default → é")
        self.assertEqual((plain(None), plain(12)), ("", "12"))

    def test_traceEscaped(self):
        """A trace prints a row's control characters escaped: one line stays one line."""
        lines = _lines(row(callerid="V1\x1b[31m", cmd_lines=("Channel: x\r\nman_id 1: fake",),
                           outcome="sent", claimed_at="2024-01-30 17:22:53.100",
                           answer="ok\x1b]0;title\x07"))
        text = "\n".join(lines)
        self.assertNotIn("\x1b", text)
        self.assertNotIn("\r", text)
        self.assertEqual(len(text.splitlines()), len(lines))
        self.assertIn("callerid V1\\x1b[31m", text)
        self.assertIn("Channel: x\\r\\nman_id 1: fake", text)

    def test_traceInTimeOrder(self):
        """A trace lists what happened in time order: a synchronous Originate's call is
        UPDATED while it rings, before Asterisk answers the action."""
        lines = _lines(row(status="DEAD", outcome="sent", claimed_at="2024-01-30 17:22:53.100",
                           sending_at="2024-01-30 17:22:53.102",
                           updated_at="2024-01-30 17:22:54.010", channel="SIP/c-1",
                           answered_at="2024-01-30 17:23:01.500", answer="Originate successfully"
                           " queued", call_answered_at="2024-01-30 17:23:01.500",
                           dead_at="2024-01-30 17:23:30.000", hangup_cause="16"))
        said = [line.split()[0] for line in lines[3:]]
        self.assertEqual(said, ["claimed", "sent", "UPDATED", "answer", "call", "DEAD",
                                "outcome"])


class HealthPageTests(SynchronousTestCase):
    def get(self, **status):
        from twisted.internet.task import Clock
        from twisted.web.test.requesthelper import DummyRequest

        clock = Clock()
        clock.advance(1_000)
        request = DummyRequest([b"health"])
        body = HealthPage(clock, lambda: status).render_GET(request)
        return request.responseCode or 200, body.decode("utf-8")

    def test_healthy(self):
        """/health answers 200 and HEALTHY when all is well."""
        self.assertEqual(self.get(listener_connected=True), (200, "HEALTHY\n"))

    def test_degraded(self):
        """A degraded acqs answers 200 (it still works, or will by itself), saying why."""
        self.assertEqual(self.get(ami_ok=False, ami_down_since=990.0, ami_cause="unreachable"),
                         (200, "DEGRADED\nDEGRADED: the sender cannot reach AMI for 10 s:"
                               " cannot connect\n"))

    def test_unhealthy(self):
        """An unhealthy acqs answers 503, so that probes and load balancers act on it."""
        code, body = self.get(listener_connected=False, listener_down_since=900.0)
        self.assertEqual(code, 503)
        self.assertEqual(body.splitlines()[0], "UNHEALTHY")


class WebServiceTests(SynchronousTestCase):
    def test_stopBeforeStart(self):
        """A web service stopped before it started (a MultiService stops every child, also
        when an earlier one's start failed) is stopped at once instead of raising."""
        service = WebService(None, "tcp:0", Site(Resource()))
        self.assertIsNone(self.successResultOf(service.stopService()))

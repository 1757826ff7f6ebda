"""
What operators watch, against the real MariaDB and the simulator on
loopback: /metrics scraped from a running acqs, the status page (also in a
real headless Chromium, when the machine has one), and the INSERT→send
times read from the database.
"""

import html
import json
import os
import re
import shutil
import struct
import zlib

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.client import Agent, readBody
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from acqs.health import check
from acqs.listener import Listener
from acqs.metrics import InsertToSend, Metrics
from acqs.simulator.server import AMISession
from acqs.store import openStore
from acqs.web import QuietSite, StatusPage, WebService

from ..databases import mysqlConnection, scratchMySQL
from .daemon import SERVER, SimulatorOnTCP, eventually, startAcqs

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TESSERACT = shutil.which("tesseract")
PROMTOOL = shutil.which("promtool")
# Headless as root on a machine whose network is closed: no sandbox, and none
# of Chromium's own connections (they would be refused).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


async def get(url: str):
    """C{(code, headers, body text)} of a GET."""
    response = await Agent(reactor).request(b"GET", url.encode("ascii"))
    body = await readBody(response)
    return response.code, response.headers, body.decode("utf-8")


def samples(text: str) -> dict:
    """Prometheus text as C{{(name, sorted label items): value}}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class Watched:
    """acqs with --metrics on a free loopback port, the simulator and a scratch database."""

    def setUp(self):
        self.db = scratchMySQL(self)
        self.asterisk = SimulatorOnTCP(self)

    def start(self, store=None, **settings):
        acqs = startAcqs(self, self.db, self.asterisk.endpoint, store=store,
                         metrics="tcp:0:interface=127.0.0.1", **settings)
        web = next(s for s in acqs if isinstance(s, WebService))
        self.base = f"http://127.0.0.1:{web.address.port}"
        return acqs

    async def scrape(self) -> dict:
        code, headers, text = await get(self.base + "/metrics")
        self.assertEqual(code, 200)
        self.assertTrue(headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain"))
        return samples(text)

    async def answered(self, man_id):
        def recorded():
            """the row's answer is recorded"""
            return (self.db.action(man_id) or {}).get("answered_at")
        await eventually(recorded)

    async def callLived(self):
        """An Originate through its whole life, to DEAD; its man_id and callerid."""
        callerid = "V0130172253000000042"
        man_id = self.db.insertAction(SERVER, "Originate", callerid, [
            "Channel: Local/8600011@demo", "Context: default", "Exten: 917274515135",
            "Priority: 1", f"Callerid: {callerid}"])

        def dead():
            """the call's row is DEAD"""
            return self.db.status(man_id) == "DEAD"
        await eventually(dead)
        return man_id, callerid


class MetricsTests(Watched, TestCase):
    async def test_countsMove(self):
        """A scrape shows the rows claimed, sent by action and response, refused, the AMI
        steps timed and the listener connected; counts move when rows are sent."""
        self.start()
        before = await self.scrape()
        hangup = self.db.insertAction(SERVER, "Hangup", "HLx1", ["Channel: SIP/none-1"])
        refused = self.db.insertAction(SERVER, "Command", "CMx1", ["Command: core stop now"])
        await self.answered(hangup)
        await eventually(lambda: self.db.status(refused) == "DEAD")
        after = await self.scrape()

        def moved(name, **labels):
            key = (name, tuple(sorted(labels.items())))
            return after.get(key, 0) - before.get(key, 0)

        self.assertEqual(moved("acqs_actions_claimed_total", action="Hangup"), 1)
        self.assertEqual(moved("acqs_actions_sent_total", action="Hangup", response="N"), 1)
        self.assertEqual(moved("acqs_actions_refused_total", outcome="refused"), 1)
        self.assertEqual(moved("acqs_ami_answer_seconds_count", action="Hangup"), 1)
        self.assertGreaterEqual(moved("acqs_ami_connect_seconds_count"), 1)
        self.assertGreaterEqual(moved("acqs_ami_login_seconds_count"), 1)
        self.assertEqual(after[("acqs_listener_connected", ())], 1)
        self.assertEqual(after[("acqs_database_errors_total", ())], 0)
        [info] = [dict(k[1]) for k in after if k[0] == "acqs_info"]
        self.assertEqual((info["acqs_instance"], info["server_ip"]), ("e2e", SERVER))
        self.assertIn("vicidial_manager InnoDB", info["database"])
        self.assertIn(("acqs_entry_date_to_send_whole_seconds_count", ()), after)
        self.assertGreaterEqual(moved("acqs_claim_to_send_seconds_count"), 1)


        async def counted():
            """the NEW rows are counted (a look every 5 s; the first may come before the
            database answers)"""
            return ("acqs_new_rows", ()) in await self.scrape()
        await eventuallyAsync(counted, timeout=12)
        self.assertEqual(after[("acqs_ami_down_cause", (("cause", "login_refused"),
                                                        ("link", "listener")))], 0)
        self.assertNotIn("HLx1", repr(after))  # no callerid ever becomes a label

    async def test_noAnswerApartFromError(self):
        """An action Asterisk never answers counts as response none, is not timed as an
        answer, and its record says no answer came (the row's response is N, as VICIdial
        knows only Y and N); Asterisk's Error counts as N with its message."""
        self.patch(AMISession, "_action_hangup", lambda session, message: None)
        self.start(action_timeout=1.0)
        silent = self.db.insertAction(SERVER, "Hangup", "HLx3", ["Channel: SIP/none-3"])
        refused = self.db.insertAction(SERVER, "Redirect", "RDx3", ["Channel: SIP/none-3",
                                       "Context: e2e", "Exten: 300", "Priority: 1"])
        await self.answered(silent)
        await self.answered(refused)
        self.assertTrue(self.db.action(silent)["response_text"].startswith(
            "no answer: AMI action Hangup got no response within 1 s"))
        self.assertEqual(self.db.row(silent)["response"], "N")
        self.assertFalse(self.db.action(refused)["response_text"].startswith("no answer"))
        after = await self.scrape()
        self.assertEqual(after[("acqs_actions_sent_total", (("action", "Hangup"),
                                                            ("response", "none")))], 1)
        self.assertNotIn(("acqs_actions_sent_total", (("action", "Hangup"), ("response", "N"))),
                         after)
        self.assertNotIn(("acqs_ami_answer_seconds_count", (("action", "Hangup"),)), after)
        self.assertEqual(after[("acqs_actions_sent_total", (("action", "Redirect"),
                                                            ("response", "N")))], 1)

    async def test_promtoolLint(self):
        """The served metrics pass promtool check metrics, where promtool is installed."""
        if PROMTOOL is None:
            raise SkipTest("no promtool on this machine (Debian: apt-get install prometheus)")
        self.start()
        await self.answered(self.db.insertAction(SERVER, "Hangup", "HLx2",
                                                 ["Channel: SIP/none-1"]))
        _, _, text = await get(self.base + "/metrics")
        out, err, code = await getProcessOutputAndValue(
            PROMTOOL, ["check", "metrics"], env=dict(os.environ),
            stdinBytes=text.encode("utf-8"))
        self.assertEqual((code, out + err), (0, b""))

    async def test_listenerEvents(self):
        """A call's events count as seen and parsed."""
        self.start()
        await self.callLived()
        after = await self.scrape()
        self.assertGreater(after[("acqs_listener_events_total", ())], 0)
        self.assertGreater(after[("acqs_listener_events_parsed_total", ())], 0)


    async def test_dashboardNamesServed(self):
        """Every acqs metric the sample Grafana dashboard asks for is served."""
        self.start()

        async def served():
            """the NEW rows have been counted once (until then their gauges are absent)"""
            _, _, text = await get(self.base + "/metrics")  # families without samples too
            return "# TYPE acqs_new_rows gauge" in text and text

        served = await eventuallyAsync(served)
        with open(os.path.join(SOURCE, "etc", "grafana-acqs.json"), encoding="utf-8") as f:
            asked = set(re.findall(r"\b(?:acqs|process)_[a-z_]+", f.read()))
        asked = {n for n in asked if not n.endswith("_")} - {"acqs_instance"}  # a label
        self.assertTrue(asked)
        types = set(re.findall(r"(?m)^# TYPE (\S+)", served))
        self.assertIn("acqs_new_oldest_age_seconds", types)
        self.assertEqual({n for n in asked if n.removesuffix("_bucket") not in types}, set())


class InsertToSendTests(TestCase):
    async def test_timesFromTheDatabase(self):
        """Rows this instance marks sending are timed from their entry_date; older ones and
        other instances' are not."""
        db = scratchMySQL(self)
        store = db.openStore()
        old = db.insertAction(SERVER, "Hangup", "HL1", entry_date="2024-01-30 17:22:53")
        await store.claim(SERVER, 10, "box1", send=1)
        clock, metrics = Clock(), Metrics()
        watch = InsertToSend(clock, store, SERVER, "box1", metrics)
        watch.startService()
        self.addCleanup(watch.stopService)
        await eventually(lambda: watch._after is not None)
        db.insertAction(SERVER, "Hangup", "HL2")
        db.insertAction(SERVER, "Hangup", "HL3", entry_date="2000-01-01 00:00:00")
        await store.claim(SERVER, 10, "box1", send=2)
        db.insertAction(SERVER, "Hangup", "HL4")
        await store.claim(SERVER, 10, "box2", send=1)
        clock.advance(5)

        def counted():
            """the watch has read the new send times"""
            return samples(_scrape(metrics)).get(
                ("acqs_entry_date_to_send_whole_seconds_count", ()))
        self.assertEqual(await eventually(counted), 2)
        seen = samples(_scrape(metrics))
        name = "acqs_entry_date_to_send_whole_seconds_bucket"
        self.assertEqual(seen[(name, (("le", "2.0"),))], 1)
        self.assertEqual(seen[(name, (("le", "+Inf"),))], 2)
        self.assertTrue(db.action(old)["sending_at"])


def _scrape(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode("utf-8")


    async def test_wakeupSaid(self):
        """The metrics say which wake-up is in use (a wait in MariaDB), how often it looks
        now and how many looks it made; where the database cannot wait, that it polls and
        why, and the page says so too."""
        self.start()
        await eventually(lambda: self.db.rows("SELECT COUNT(*) FROM acqs_instance")[0][0])
        first = await self.scrape()
        [wait] = [dict(k[1]) for k in first if k[0] == "acqs_wakeup_info"]
        self.assertEqual(wait, {"mode": "wait", "reason": ""})
        self.assertEqual(first[("acqs_wakeup_step_seconds", ())], 0.01)
        await deferLater(reactor, 0.5, lambda: None)
        self.assertGreater((await self.scrape())[("acqs_wakeup_looks_total", ())],
                           first[("acqs_wakeup_looks_total", ())])

    async def test_pollingSaid(self):
        """The same where the database cannot wait in the server: it polls, and says why."""
        self.start(store=self.db.openStore(waits=False))
        await deferLater(reactor, 0.5, lambda: None)
        [poll] = [dict(k[1]) for k in await self.scrape() if k[0] == "acqs_wakeup_info"]
        self.assertEqual(poll, {"mode": "poll",
                                "reason": "it was told it cannot wait in the server"})
        _, _, page = await get(self.base + "/")
        self.assertIn("polls for NEW rows, every 0.01 s now (it was told it cannot wait in"
                      " the server)", page)


class PageTests(Watched, TestCase):
    async def test_rowsAndTheirLives(self):
        """The page shows health, state and this server's rows with their life cycle,
        channel, outcome and Asterisk's answer; GUI input is escaped."""
        self.start()
        man_id, callerid = await self.callLived()
        odd = self.db.insertAction(SERVER, "Hangup", "<b>V1</b>", ["Channel: SIP/none-2"])
        await self.answered(odd)
        self.db.insertAction("10.9.9.9", "Hangup", "OTHERSERVER1", ["Channel: SIP/x-1"])
        code, headers, page = await get(self.base + "/")
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"text/html; charset=utf-8"])
        self.assertIn(b"default-src 'none'", headers.getRawHeaders(b"content-security-policy")[0])
        self.assertIn('<span class="verdict HEALTHY">HEALTHY</span>', page)
        self.assertIn(f'<td title="{man_id}">{man_id}</td>', page)
        self.assertIn(f">{callerid}</td>", page)
        self.assertIn("NEW→QUEUE→SENT→UPDATED→DEAD", page)
        self.assertIn(f">{self.db.row(man_id)['channel']}</td>", page)
        self.assertIn("&lt;b&gt;V1&lt;/b&gt;", page)
        self.assertNotIn("<b>V1", page)
        self.assertNotIn("OTHERSERVER1", page)
        self.assertIn(self.db.action(odd)["response_text"], page)

    async def test_databaseAway(self):
        """With the database away the page still answers 200, and says why no rows show."""
        store = openStore("mysql://root@127.0.0.1:1/acqs", reactor)
        self.addCleanup(store.close)
        self.start(store=store)
        code, _, page = await get(self.base + "/")
        self.assertEqual(code, 200)
        self.assertIn("The rows cannot be read now", page)
        self.assertIn("Can&#x27;t connect to MySQL server", page)

    async def test_slowDatabaseTimesOut(self):
        """A database that does not answer gets the page's timeout, not a hung request."""
        store = self.db.openStore()
        locker = mysqlConnection(self.db.url, database=True)
        self.addCleanup(locker.close)
        locker.cursor().execute("LOCK TABLES vicidial_manager WRITE")
        self.addCleanup(locker.cursor().execute, "UNLOCK TABLES")
        page = StatusPage(reactor, store, lambda: {"server_ip": SERVER, "instance": "t"},
                          timeout=0.5)
        port = reactor.listenTCP(0, QuietSite(page), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        code, _, text = await get(f"http://127.0.0.1:{port.getHost().port}/")
        self.assertEqual(code, 200)
        self.assertIn("the database did not answer within 0.5 s", text)

    async def test_unknownPath(self):
        """Paths other than / and /metrics are 404."""
        self.start()
        code, _, _ = await get(self.base + "/nothing")
        self.assertEqual(code, 404)


class OutageTests(Watched, TestCase):
    """What the page, /health and the metrics say in the first seconds of each outage."""

    async def page(self):
        code, _, text = await get(self.base + "/")
        self.assertEqual(code, 200)
        return text

    async def test_amiDown(self):
        """AMI going away is DEGRADED at once, with its cause, on the page, /health and in
        the metrics; the rows left NEW are counted; all clears once AMI is back."""
        acqs = self.start()
        listener = next(s for s in acqs if isinstance(s, Listener))
        await eventually(lambda: listener.protocol)
        await self.asterisk.down()
        await eventually(lambda: listener.protocol is None)
        waiting = [self.db.insertAction(SERVER, "Hangup", f"HL{n:04d}", ["Channel: SIP/x-1"])
                   for n in range(12)]

        async def said():
            """the page names the cause and counts the NEW rows"""
            page = await self.page()
            return ('<span class="verdict DEGRADED">DEGRADED</span>' in page
                    and ">12, the oldest inserted" in page and page)

        page = await eventuallyAsync(said)
        self.assertIn("DEGRADED: the AMI listener is disconnected for", page)
        self.assertIn("cannot connect (Connection was refused", page)
        code, _, health = await get(self.base + "/health")
        self.assertEqual(code, 200)
        self.assertEqual(health.splitlines()[0], "DEGRADED")
        metrics = await self.scrape()
        self.assertEqual(metrics[("acqs_ami_down_cause", (("cause", "unreachable"),
                                                          ("link", "listener")))], 1)
        self.assertEqual(metrics[("acqs_new_rows", ())], 12)
        self.asterisk.up()
        await eventually(lambda: all(self.db.status(m) == "SENT" for m in waiting))
        healthy = await eventuallyAsync(self.healthy)
        self.assertIn("<dt>rows waiting as NEW</dt><dd title=\"none\">none</dd>", healthy)
        self.assertEqual((await get(self.base + "/health"))[::2], (200, "HEALTHY\n"))

    async def healthy(self):
        """the page is HEALTHY again, with no NEW row"""
        page = await self.page()
        return ('<span class="verdict HEALTHY">' in page and '"none">none</dd>' in page
                and page)

    async def test_wrongSecret(self):
        """A refused login is named on the page, in /health and in the metrics, at once."""
        self.start(listen_secret="wrong", send_secret="wrong")

        async def said():
            """the page names the refused login"""
            page = await self.page()
            return "login refused, check the AMI user and its secret" in page and page

        page = await eventuallyAsync(said)
        self.assertIn('<span class="verdict DEGRADED">DEGRADED</span>', page)
        self.assertIn("refused: Authentication failed", page)
        self.assertIn("not tried yet: no send session since start (claims wait for the"
                      " listener)", page)
        self.assertNotIn("wrong", page.replace("wrong user", ""))
        metrics = await self.scrape()
        self.assertEqual(metrics[("acqs_ami_down_cause", (("cause", "login_refused"),
                                                          ("link", "listener")))], 1)

    async def test_databaseDown(self):
        """An unreachable database is DEGRADED at once, saying why."""
        store = openStore("mysql://root@127.0.0.1:1/acqs", reactor)
        self.addCleanup(store.close)
        self.start(store=store)

        async def said():
            """the page says the database fails"""
            page = await self.page()
            return "DEGRADED: the database is failing for" in page and page

        page = await eventuallyAsync(said)
        self.assertIn("Can&#x27;t connect to MySQL server", page)
        self.assertIn('rows waiting as NEW</dt><dd title="not known (the database has not'
                      ' answered)"', page)

    async def test_metricsPortTaken(self):
        """A metrics port already in use makes acqs DEGRADED, in acqs health, saying so."""
        taken = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        status = os.path.abspath(self.mktemp())
        acqs = startAcqs(self, self.db, self.asterisk.endpoint, status_file=status,
                         metrics=f"tcp:{taken.getHost().port}:interface=127.0.0.1")
        web = next(s for s in acqs if isinstance(s, WebService))
        await eventually(lambda: web.error)
        listener = next(s for s in acqs if isinstance(s, Listener))
        await eventually(lambda: listener.protocol)
        await deferLater(reactor, 5.5, lambda: None)  # the status file's next writing
        verdict, problems = check(status, 30)
        self.assertEqual(verdict, "DEGRADED")
        self.assertEqual(len(problems), 1)
        self.assertTrue(problems[0].startswith(
            f"cannot serve metrics and the status page on tcp:{taken.getHost().port}"), problems)
        self.assertIn("Address already in use", problems[0])


async def eventuallyAsync(check, timeout=20.0, interval=0.1):
    """Call the coroutine function C{check()} until it returns something true."""
    deadline = reactor.seconds() + timeout
    while True:
        value = await check()
        if value:
            return value
        if reactor.seconds() > deadline:
            raise AssertionError(f"not true within {timeout:g} s: {check.__doc__ or check}")
        await deferLater(reactor, interval, lambda: None)


def pngSize(path: str):
    """The width and height of a PNG file."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def pngColours(path: str, pixels: int = 200_000) -> int:
    """How many different bytes the first decoded rows hold: a blank page has one or two."""
    with open(path, "rb") as f:
        data = f.read()
    chunks, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            chunks.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    return len(set(zlib.decompress(b"".join(chunks))[:pixels]))


class BrowserTests(Watched, TestCase):
    """The status page in a real headless Chromium, as an operator's browser shows it."""

    def setUp(self):
        if CHROMIUM is None:
            raise SkipTest("no Chromium on this machine (.ci/run installs Debian's chromium)")
        super().setUp()

    async def chromium(self, *arguments) -> str:
        profile = os.path.abspath(self.mktemp())
        os.mkdir(profile)
        out, err, code = await getProcessOutputAndValue(
            CHROMIUM, [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
            env={"HOME": profile, "PATH": os.environ.get("PATH", "")}, path=profile)
        self.assertEqual(code, 0, err.decode("utf-8", "replace")[-2000:])
        return out.decode("utf-8", "replace")

    async def screenshotText(self, width: int, height: int, check=lambda shot: None) -> str:
        """The page as Chromium shows it in a C{width}x{height} window, read by OCR."""
        shot = os.path.abspath(self.mktemp() + ".png")
        await self.chromium(f"--screenshot={shot}", f"--window-size={width},{height}",
                            "--hide-scrollbars", self.base + "/")
        self.assertEqual(pngSize(shot), (width, height))
        check(shot)
        if TESSERACT is None:
            raise SkipTest("no tesseract on this machine (.ci/run installs tesseract-ocr);"
                           " the screenshot was taken but not read")
        text, err, code = await getProcessOutputAndValue(TESSERACT, [shot, "-"],
                                                         env=dict(os.environ))
        self.assertEqual(code, 0, err)
        return text.decode("utf-8", "replace")

    async def test_domInBrowser(self):
        """Chromium's DOM of the page holds the health summary and the row, as elements."""
        self.start()
        man_id, callerid = await self.callLived()
        dom = await self.chromium("--dump-dom", self.base + "/")
        self.assertIn('<span class="verdict HEALTHY">HEALTHY</span>', dom)
        self.assertRegex(dom, rf'<tr><td title="{man_id}">{man_id}</td><td [^>]+>[^<]+</td>'
                              rf'<td [^>]+>Originate</td><td [^>]+>{callerid}</td>'
                              rf'<td [^>]+>NEW→QUEUE→SENT→UPDATED→DEAD')
        self.assertNotIn("<script", dom)

    async def test_screenshot(self):
        """A screenshot of the page shows the health summary, the row's man_id, callerid
        and life cycle (read back by OCR where tesseract is installed)."""
        self.start()
        man_id, callerid = await self.callLived()
        words = await self.screenshotText(1600, 1000, lambda shot: self.assertGreater(
            pngColours(shot), 8, "the screenshot is blank"))
        self.assertIn("HEALTHY", words)
        self.assertIn("Last 50 rows", words)
        self.assertRegex(words, rf"(?m)^{man_id} \d{{4}}-\d\d-\d\d")
        self.assertIn(callerid[1:].lower(), words.lower())  # OCR may read V as v
        self.assertIn("Originate", words)
        self.assertIn("DEAD", words)

    async def outage(self) -> list:
        """acqs whose AMI went away after one call, with 30 rows left NEW; their man_ids."""
        acqs = self.start()
        await self.callLived()
        listener = next(s for s in acqs if isinstance(s, Listener))
        await self.asterisk.down()
        await eventually(lambda: listener.protocol is None)
        waiting = [self.db.insertAction(SERVER, "Hangup", f"V12071822000000{n:05d}",
                                        [f"Channel: SIP/carrier-{n:08x}"],
                                        channel=f"SIP/carrier-{n:08x}") for n in range(30)]

        async def counted():
            """the page counts the rows left NEW"""
            _, _, page = await get(self.base + "/")
            return ">30, the oldest inserted" in page

        await eventuallyAsync(counted)
        return waiting

    async def test_outageScreenshot(self):
        """During an AMI outage a 1280x900 screenshot shows DEGRADED, the cause and the rows
        left NEW (read back by OCR)."""
        waiting = await self.outage()
        words = await self.screenshotText(1280, 900)
        self.assertIn("DEGRADED", words)
        self.assertIn("the AMI listener is disconnected", words)
        self.assertIn("cannot connect", words)
        self.assertIn("rows waiting as NEW", words)  # OCR reads the grid's columns apart
        self.assertIn("30, the oldest inserted", words)
        self.assertIn(str(waiting[-1]), words)

    async def test_compactLayout(self):
        """In Chromium at 1280x900, at least 20 rows of the table are on the first screen
        and nothing is wider than the window (measured by a script the test adds to the
        page's own HTML and CSS, which allow none)."""
        await self.outage()
        _, _, page = await get(self.base + "/")
        measure = (
            "<script>const rows = [...document.querySelectorAll('tbody tr')];"
            "const m = document.createElement('pre'); m.id = 'measured';"
            "m.textContent = JSON.stringify({rows: rows.length,"
            " fit: rows.filter(r => r.getBoundingClientRect().bottom <= 900).length,"
            " scrollWidth: document.documentElement.scrollWidth, innerWidth: innerWidth,"
            " cut: [0, 1, 3, 4, 6].map(c => rows.filter(r =>"
            "  r.cells[c].scrollWidth > r.cells[c].clientWidth).length)});"
            "document.body.appendChild(m);</script>")
        site = Resource()
        site.putChild(b"", Data(page.replace("</body>", measure + "</body>").encode("utf-8"),
                                "text/html; charset=utf-8"))
        port = reactor.listenTCP(0, Site(site), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        dom = await self.chromium("--dump-dom", "--window-size=1280,900",
                                  f"http://127.0.0.1:{port.getHost().port}/")
        found = re.search(r'<pre id="measured">([^<]+)</pre>', dom)
        self.assertIsNotNone(found, dom[-2000:])
        measured = json.loads(html.unescape(found.group(1)))
        self.assertEqual(measured["innerWidth"], 1280, measured)
        self.assertEqual(measured["rows"], 31, measured)
        self.assertGreaterEqual(measured["fit"], 20, measured)
        self.assertLessEqual(measured["scrollWidth"], 1280, measured)
        # man_id, entry date, callerid, life cycle and channel are never cut.
        self.assertEqual(measured["cut"], [0, 0, 0, 0, 0], measured)

"""
The queue store on the real MariaDB only: VICIdial's own INSERT, instances
racing for the same rows (InnoDB and VICIdial's MyISAM), and outages.
"""

import random
import secrets
from functools import partial

import attr
import pymysql
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from acqs.store import StoreUnavailable, openStore
from acqs.store.records import SendResult

from .databases import mysqlConnection, scratchMySQL

SERVER = "10.10.11.12"

# The INSERT that GUI clients send, verbatim from ../shared/reference/ACQS.txt.
ACQS_INSERT = (
    "INSERT INTO vicidial_manager values('','','2004-01-30 17:22:53','NEW','N','10.10.11.12',"
    "'','Originate','DL40130172253cc160','Channel: local/8600011@demo','Context: default',"
    "'Exten: 917274515135','Priority: 1','Callerid: DL40130172253cc160','','','','','');"
)


def logged(observer, level):
    return [formatEvent(e) for e in observer if e["log_level"] == level]


class VICIdialInsertTests(TestCase):
    """GUI clients' positional INSERT, unchanged."""

    def setUp(self):
        self.db = scratchMySQL(self)
        self.gui = self.db.connect()
        self.addCleanup(self.gui.close)

    async def test_insertVerbatim(self):
        """ACQS.txt's INSERT works unchanged under sql_mode=''; its row is claimed as written."""
        cursor = self.gui.cursor()
        cursor.execute("SET SESSION sql_mode=''")
        cursor.execute(ACQS_INSERT)
        man_id = cursor.lastrowid
        self.assertGreater(man_id, 0)
        [row] = await self.db.openStore().claim(SERVER, 10, "box1")
        self.assertEqual(
            (row.man_id, row.action, row.callerid, row.cmd_lines[:5]),
            (
                man_id,
                "Originate",
                "DL40130172253cc160",
                (
                    "Channel: local/8600011@demo",
                    "Context: default",
                    "Exten: 917274515135",
                    "Priority: 1",
                    "Callerid: DL40130172253cc160",
                ),
            ),
        )

    def test_strictModeRefusesInsert(self):
        """Under STRICT_TRANS_TABLES the INSERT fails: '' is no integer for man_id (1366)."""
        cursor = self.gui.cursor()
        cursor.execute("SET SESSION sql_mode='STRICT_TRANS_TABLES'")
        with self.assertRaises(pymysql.err.MySQLError) as caught:
            cursor.execute(ACQS_INSERT)
        code, text = caught.exception.args
        self.assertEqual(code, 1366)
        self.assertIn("Incorrect integer value: '' for column", text)
        self.assertIn("man_id", text)
        self.assertEqual(self.db.rows("SELECT COUNT(*) FROM vicidial_manager"), [(0,)])


class RaceTests(TestCase):
    """Instances serving the same server_ip never claim the same row."""

    ROWS = 1500
    INSTANCES = 6

    async def race(self, db):
        ids = db.insertActions(SERVER, self.ROWS)
        stores = [db.openStore() for _ in range(self.INSTANCES)]
        claims = {}

        async def claimUntilEmpty(store, name):
            rng = random.Random(name)
            while True:
                rows = await store.claim(SERVER, rng.choice((1, 5, 20, 50)), name)
                if not rows:
                    return
                for row in rows:
                    claims.setdefault(row.man_id, []).append(name)
                marked = await store.markSending([(row.man_id, row.claim) for row in rows])
                self.assertEqual(marked, [row.man_id for row in rows])
                await store.recordSent(
                    [SendResult(row.man_id, row.claim, True, "ok") for row in rows])

        await gatherResults(
            [
                # Two concurrent loops per store: more transactions in flight.
                Deferred.fromCoroutine(claimUntilEmpty(store, f"box{n}"))
                for n, store in enumerate(stores)
                for _ in range(2)
            ]
        )
        self.assertEqual(sorted(claims), ids)
        self.assertEqual([m for m, names in claims.items() if len(names) > 1], [])
        self.assertEqual(
            db.rows("SELECT status, COUNT(*) FROM vicidial_manager GROUP BY 1"),
            [("SENT", self.ROWS)],
        )
        recorded = dict(db.rows("SELECT man_id, claimed_by FROM acqs_action"))
        self.assertEqual(recorded, {m: names[0] for m, names in claims.items()})
        self.assertGreater(len(set(recorded.values())), 1)

    async def test_raceInnoDB(self):
        """Stores racing on InnoDB claim every row exactly once (FOR UPDATE SKIP LOCKED)."""
        await self.race(scratchMySQL(self))

    async def test_raceMyISAM(self):
        """On VICIdial's MyISAM table, serialised claims take every row exactly once."""
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        await self.race(scratchMySQL(self, engine="MyISAM"))
        warnings = [text for text in logged(observer, LogLevel.warn) if "MyISAM" in text]
        self.assertEqual(len(warnings), self.INSTANCES)
        self.assertIn("serialised with GET_LOCK", warnings[0])

    async def test_raceWithoutSkipLocked(self):
        """Where the server has no SKIP LOCKED (forced here), serialised claims with plain
        FOR UPDATE take every row exactly once."""
        db = scratchMySQL(self)
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        db.openStore = partial(db.openStore, skipLocked=False)
        await self.race(db)
        warnings = [t for t in logged(observer, LogLevel.warn) if "serialised" in t]
        self.assertEqual(len(warnings), self.INSTANCES)


class OutageTests(TestCase):
    """A database outage fails calls clearly, is logged once, and heals by itself."""

    def setUp(self):
        self.db = scratchMySQL(self)
        self.admin = mysqlConnection()
        self.addCleanup(self.admin.close)

    def kill(self, where, *params):
        cursor = self.admin.cursor()
        cursor.execute(f"SELECT ID FROM information_schema.PROCESSLIST WHERE {where}", params)
        ids = [i for (i,) in cursor.fetchall()]
        for i in ids:
            cursor.execute(f"KILL {int(i)}")
        return ids

    def deadlocks(self):
        cursor = self.admin.cursor()
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
        return int(cursor.fetchone()[1])

    async def test_killedIdleConnections(self):
        """Connections killed while idle (restart, KILL) are replaced: the next call works."""
        store = self.db.openStore()
        ids = self.db.insertActions(SERVER, 3)
        claimed = await store.claim(SERVER, 1, "box1")
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        helper = self.db.rows("SELECT CONNECTION_ID()")[0][0]
        self.assertTrue(self.kill("DB = %s AND ID <> %s", self.db.url.database, helper))
        claimed += await store.claim(SERVER, 1, "box1")
        claimed += await store.claim(SERVER, 10, "box1")
        self.assertEqual([row.man_id for row in claimed], ids)
        self.assertEqual(logged(observer, LogLevel.error), [])

    async def test_killedMidClaim(self):
        """A claim killed mid-transaction fails, claims nothing, and the next one works."""
        db = scratchMySQL(self, engine="MyISAM")  # claims wait for a lock we can hold
        store = db.openStore()
        [man_id] = db.insertActions(SERVER, 1)
        holder = db.connect()
        self.addCleanup(holder.close)
        holder.cursor().execute("SELECT GET_LOCK(%s, 1)", (f"acqs-claim-{SERVER}",))
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        claiming = store.claim(SERVER, 10, "box1")
        await deferLater(reactor, 0.3, lambda: None)
        self.assertTrue(self.kill("INFO LIKE 'SELECT GET_LOCK%%' AND ID <> CONNECTION_ID()"))
        with self.assertRaises(StoreUnavailable):
            await claiming
        self.assertEqual(db.status(man_id), "NEW")
        holder.cursor().execute("SELECT RELEASE_LOCK(%s)", (f"acqs-claim-{SERVER}",))
        [row] = await store.claim(SERVER, 10, "box1")
        self.assertEqual(row.man_id, man_id)
        [down] = logged(observer, LogLevel.error)
        [back] = logged(observer, LogLevel.info)
        self.assertIn("unavailable", down)
        self.assertIn("is back after", back)

    async def test_outageLoggedOnce(self):
        """An outage is logged once as it starts and once as it ends; no text shows the secret."""
        user, password = f"acqs_{secrets.token_hex(4)}", f"pw-{secrets.token_hex(8)}"
        cursor = self.admin.cursor()
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        self.addCleanup(self.admin.cursor().execute, "DROP USER %s@'%%'", (user,))
        cursor.execute(f"GRANT ALL ON `{self.db.url.database}`.* TO %s@'%%'", (user,))
        url = attr.evolve(self.db.url, user=user, password=None)
        store = openStore(url, reactor, password=password)
        self.addCleanup(store.close)
        await store.heartbeat(SERVER, "box1")

        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        cursor.execute("ALTER USER %s@'%%' ACCOUNT LOCK", (user,))
        self.assertTrue(self.kill("USER = %s", user))
        for _ in range(3):
            with self.assertRaises(StoreUnavailable) as caught:
                await store.heartbeat(SERVER, "box1")
            self.assertIn(f"mysql://{user}:***@127.0.0.1", str(caught.exception))
            self.assertNotIn(password, str(caught.exception))
        cursor.execute("ALTER USER %s@'%%' ACCOUNT UNLOCK", (user,))
        await store.heartbeat(SERVER, "box1")
        await store.heartbeat(SERVER, "box1")

        [down] = logged(observer, LogLevel.error)
        [back] = logged(observer, LogLevel.info)
        self.assertIn(f"Queue store mysql://{user}:***@127.0.0.1", down)
        self.assertIn("unavailable", down)
        self.assertIn("locked", down)
        self.assertIn("is back after", back)
        self.assertNotIn(password, down + back)

    async def test_unreachable(self):
        """A database nobody listens for fails calls at once with StoreUnavailable naming it."""
        store = openStore("mysql://cron:secret@127.0.0.1:9/asterisk", reactor)
        self.addCleanup(store.close)
        self.addCleanup(self.flushLoggedErrors)
        with self.assertRaises(StoreUnavailable) as caught:
            await store.claim(SERVER, 10, "box1")
        text = str(caught.exception)
        self.assertIn("mysql://cron:***@127.0.0.1:9/asterisk", text)
        self.assertIn("Can't connect", text)
        self.assertNotIn("secret", text)

    async def test_deadlockRunAgain(self):
        """A store transaction chosen as a deadlock victim is run again and succeeds."""
        store = self.db.openStore()
        [a, b, *more] = self.db.insertActions(SERVER, 52)
        [ra, rb, *_] = await store.claim(SERVER, 100, "box1")
        await store.markSending([(r.man_id, r.claim) for r in (ra, rb)])
        other = self.db.connect()
        self.addCleanup(other.close)
        other.autocommit(False)
        cursor = other.cursor()
        # The other transaction holds b and many more rows, so that InnoDB
        # picks the store's lighter transaction as the victim.
        cursor.execute(
            "UPDATE vicidial_manager SET channel = 'x' WHERE man_id IN %s", (tuple([b] + more),)
        )
        deadlocks = self.deadlocks()
        sending = store.recordSent([SendResult(a, ra.claim, True, "ok"),
                                    SendResult(b, rb.claim, True, "ok")])
        await deferLater(reactor, 0.5, lambda: None)  # the store now holds a, waits for b
        cursor.execute("UPDATE vicidial_manager SET channel = 'y' WHERE man_id = %s", (a,))
        other.commit()
        await sending
        self.assertEqual(self.deadlocks(), deadlocks + 1)
        self.assertEqual(
            self.db.rows(
                "SELECT status, response, channel FROM vicidial_manager WHERE man_id IN (%s, %s)",
                (a, b),
            ),
            [("SENT", "Y", "y"), ("SENT", "Y", "x")],
        )

"""
The queue store on the real MariaDB only: VICIdial's own INSERT, instances
racing for the same rows (InnoDB and VICIdial's MyISAM), and outages.
"""

import random
import secrets
import time
from collections import Counter
from functools import partial

import attr
import pymysql
from twisted.internet import reactor
from twisted.internet.defer import Deferred, FirstError, gatherResults
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from acqs.store import StoreUnavailable, openStore
from acqs.store.dialects import claimLockName
from acqs.store.records import SendResult

from .databases import mysqlConnection, scratchMySQL

SERVER = "10.10.11.12"
OTHER = "10.10.11.13"

# The INSERT that GUI clients send, verbatim from VICIdial's ACQS.txt.
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


class MarkAndWaitRaceTests(TestCase):
    """
    Two stores serving one server_ip, as a hot-standby pair with warm sessions: each
    waits in the server for NEW rows, then claims and marks some of them itself
    (C{send}), while a GUI client inserts.  Claimed rows are sent (marked first if the
    claim did not mark them), or released as a session lost before it went out would
    release them, marked ones too.  No row is ever held, marked or answered by both; a
    released claim marks and answers nothing; and at the end every row was answered once,
    none left QUEUE or SENT without an answer.
    """

    ROWS = 240

    async def race(self, db):
        stores = [db.openStore() for _ in range(2)]
        held = {}  # man_id: the claimant holding it now
        sent: Counter = Counter()
        released: Counter = Counter()
        marked: Counter = Counter()  # rows claimed, by whether their claim marked them
        inserting = Deferred.fromCoroutine(self.insert(db))
        failed = []

        async def serve(store, name, rng):
            try:
                await claimAndSend(store, name, rng)
            except BaseException:
                failed.append(name)  # the other stops too
                raise

        async def claimAndSend(store, name, rng):
            deadline = time.monotonic() + 120
            while len(sent) < self.ROWS and not failed:
                self.assertLess(time.monotonic(), deadline, f"{len(sent)} rows answered")
                await store.waitForNew(SERVER, 0.1, 0.002)
                rows = await store.claim(SERVER, rng.choice((1, 2, 5)), name,
                                         send=rng.choice((0, 1, 2)))
                for row in rows:
                    self.assertNotIn(row.man_id, held, f"claimed by {name} too")
                    held[row.man_id] = name
                    marked[row.marked] += 1
                claims = [(row.man_id, row.claim) for row in rows]
                gone = [c for c in claims if rng.random() < 0.3]  # their session went
                going = [c for c in claims if c not in gone]
                unmarked = [c for row, c in zip(rows, claims) if c in going and not row.marked]
                self.assertEqual(await store.markSending(unmarked), [m for m, _ in unmarked])
                for man_id, _ in gone:  # the other may claim it as soon as it is NEW
                    del held[man_id]
                    released[man_id] += 1
                self.assertEqual(await store.release(gone, "its session ended"),
                                 [m for m, _ in gone])
                # A released claim is lost to its claimant: no mark, no answer.
                self.assertEqual(await store.markSending(gone), [])
                results = [SendResult(m, token, True, "ok") for m, token in going]
                self.assertEqual(await store.recordSent(results + [
                    SendResult(m, token, True, "late") for m, token in gone]),
                    sorted(m for m, _ in going))
                for man_id, _ in going:
                    self.assertEqual(held.pop(man_id), name)
                    sent[man_id] += 1

        try:
            await gatherResults([Deferred.fromCoroutine(serve(store, f"box{n}",
                                                              random.Random(n)))
                                 for n, store in enumerate(stores)], consumeErrors=True)
        except FirstError as e:
            await inserting
            e.subFailure.raiseException()
        ids = await inserting
        self.assertEqual(sorted(sent), ids)
        self.assertEqual([m for m, times in sent.items() if times > 1], [])
        self.assertEqual(db.rows("SELECT status, response, COUNT(*) FROM vicidial_manager"
                                 " GROUP BY 1, 2"), [("SENT", "Y", self.ROWS)])
        self.assertEqual(dict(db.rows("SELECT man_id, attempts FROM acqs_action"
                                      " WHERE attempts > 0")), dict(released))
        self.assertTrue(released)
        self.assertEqual(bool(marked[True]), stores[0].serverInfo.transactional)
        self.assertEqual({name for (name,) in db.rows("SELECT claimed_by FROM acqs_action")},
                         {"box0", "box1"})

    async def insert(self, db):
        """A GUI client: ROWS rows in bursts, with pauses that claims wait through."""
        gui = db.connect()
        self.addCleanup(gui.close)
        ids = []
        while len(ids) < self.ROWS:
            burst = min(random.choice((1, 3, 8)), self.ROWS - len(ids))
            first = len(ids)
            ids += await deferToThread(lambda first=first, burst=burst: [
                db.insertAction(SERVER, "Hangup", f"R{first + n:019d}", connection=gui)
                for n in range(burst)])
            await deferLater(reactor, random.choice((0, 0.01, 0.05)), lambda: None)
        return ids

    async def test_raceInnoDB(self):
        """The pair on InnoDB (FOR UPDATE SKIP LOCKED)."""
        await self.race(scratchMySQL(self))

    async def test_raceMyISAM(self):
        """The pair on VICIdial's MyISAM table (serialised claims; no claim marks a row)."""
        await self.race(scratchMySQL(self, engine="MyISAM"))

    async def test_raceWithoutSkipLocked(self):
        """The pair where the server has no SKIP LOCKED (forced): serialised claims.  Issue
        16, item 3: a wait once held row locks that the other store's claim, holding the
        claim lock, waited for, until its GET_LOCK gave up after 10 s."""
        db = scratchMySQL(self)
        db.openStore = partial(db.openStore, skipLocked=False)
        await self.race(db)


class WaitLockTests(TestCase):
    """A wait for NEW rows locks nothing that anyone else could wait for (issue 16)."""

    async def waitDuring(self, db, what, seconds=2.0):
        """Run C{what()} in a thread while a store waits C{seconds} for a row never coming."""
        store = db.openStore()
        await store.claim(SERVER, 1, "box1")  # learns the server
        waiting = store.waitForNew(SERVER, seconds, 0.01)
        await deferLater(reactor, 0.3, lambda: None)
        result = await deferToThread(what)
        self.assertEqual(await waiting, (False, 1 + int(seconds / 0.01)))
        return result

    async def alterDuringWait(self, db):
        admin = db.connect()
        self.addCleanup(admin.close)
        gui = db.connect()
        self.addCleanup(gui.close)

        def alter():
            cursor = admin.cursor()
            cursor.execute("SET SESSION lock_wait_timeout = 1")
            cursor.execute("ALTER TABLE vicidial_manager COMMENT 'during a wait'")
            return db.insertAction(OTHER, "Hangup", "G0000000000000000001", connection=gui)

        man_id = await self.waitDuring(db, alter)
        self.assertEqual(db.status(man_id), "NEW")
        [(comment,)] = db.rows("SELECT TABLE_COMMENT FROM information_schema.TABLES"
                               " WHERE TABLE_SCHEMA = DATABASE()"
                               " AND TABLE_NAME = 'vicidial_manager'")
        self.assertEqual(comment, "during a wait")

    async def test_alterDuringWaitInnoDB(self):
        """Issue 16, item 7: the wait holds the metadata lock of vicidial_manager only for
        each look, so an ALTER (or VICIdial's nightly OPTIMIZE) gets it within a
        lock_wait_timeout of 1 s during a 2 s wait, and a GUI INSERT after it goes in."""
        await self.alterDuringWait(scratchMySQL(self))

    async def test_alterDuringWaitMyISAM(self):
        """The same on VICIdial's MyISAM table."""
        await self.alterDuringWait(scratchMySQL(self, engine="MyISAM"))

    async def test_noRowLock(self):
        """A wait that sees a NEW row it cannot claim (another claim holds it FOR UPDATE) does
        not wait for that row's lock, and takes none: the row stays free for a NOWAIT
        locking read."""
        db = scratchMySQL(self)
        [man_id] = db.insertActions(SERVER, 1)
        store = db.openStore()
        holder = db.connect()
        self.addCleanup(holder.close)
        holder.autocommit(False)
        holder.cursor().execute("SELECT man_id FROM vicidial_manager WHERE man_id = %s"
                                " FOR UPDATE", (man_id,))
        self.assertEqual(await store.waitForNew(SERVER, 5, 0.01), (True, 1))
        holder.rollback()
        other = db.connect()
        self.addCleanup(other.close)
        other.autocommit(False)
        cursor = other.cursor()
        cursor.execute("SELECT man_id FROM vicidial_manager WHERE man_id = %s"
                       " FOR UPDATE NOWAIT", (man_id,))
        self.assertEqual(cursor.fetchall(), ((man_id,),))
        other.rollback()


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
        lock = claimLockName(SERVER, db.url.database)
        holder.cursor().execute("SELECT GET_LOCK(%s, 1)", (lock,))
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        claiming = store.claim(SERVER, 10, "box1")
        await deferLater(reactor, 0.3, lambda: None)
        self.assertTrue(self.kill("INFO LIKE 'SELECT GET_LOCK%%' AND ID <> CONNECTION_ID()"))
        with self.assertRaises(StoreUnavailable):
            await claiming
        self.assertEqual(db.status(man_id), "NEW")
        holder.cursor().execute("SELECT RELEASE_LOCK(%s)", (lock,))
        [row] = await store.claim(SERVER, 10, "box1")
        self.assertEqual(row.man_id, man_id)
        [down] = logged(observer, LogLevel.error)
        [back] = logged(observer, LogLevel.info)
        self.assertIn("unavailable", down)
        self.assertIn("is back after", back)

    async def test_claimLockPerDatabase(self):
        """Serialised claims on one server IP wait for claims in the same database only:
        two VICIdial databases on one MariaDB never hold up each other's claims."""
        db = scratchMySQL(self, engine="MyISAM")
        other = scratchMySQL(self, engine="MyISAM")
        [man_id] = db.insertActions(SERVER, 1)
        holder = other.connect()
        self.addCleanup(holder.close)
        cursor = holder.cursor()
        cursor.execute("SELECT GET_LOCK(%s, 1)", (claimLockName(SERVER, other.url.database),))
        started = time.monotonic()
        [row] = await db.openStore().claim(SERVER, 10, "box1")
        self.assertEqual(row.man_id, man_id)
        self.assertLess(time.monotonic() - started, 5)  # not the 10 s lock timeout
        cursor.execute("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()",
                       (claimLockName(SERVER, other.url.database),))
        self.assertEqual(cursor.fetchone(), (1,))

    def test_claimLockNameFits(self):
        """A lock name fits GET_LOCK's 64 characters, whatever the database's name."""
        self.assertEqual(claimLockName("10.10.11.12", "asterisk"),
                         "acqs-claim-10.10.11.12@asterisk")
        long = claimLockName("255.255.255.255", "d" * 64)
        self.assertLessEqual(len(long), 64)
        self.assertNotEqual(long, claimLockName("255.255.255.255", "d" * 63 + "e"))

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

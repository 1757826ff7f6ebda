"""Housekeeping on the real MariaDB: the heartbeat, and pruning what VICIdial flushed."""

import os
import socket

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from acqs.housekeeping import Housekeeper
from acqs.store.records import SendResult

from ..databases import scratchMySQL
from .daemon import SERVER, eventually

LONG_AGO = "2000-01-01 00:00:00"


class HousekeeperTests(TestCase):
    def setUp(self):
        self.db = scratchMySQL(self)
        self.store = self.db.openStore()

    def start(self, **kwargs):
        keeper = Housekeeper(reactor, self.store, SERVER, "box1", 60, interval=0.05,
                             pruneInterval=0, **kwargs)
        keeper.startService()
        self.addCleanup(keeper.stopService)
        return keeper

    async def sent(self, count, **kwargs):
        ids = self.db.insertActions(SERVER, count, **kwargs)
        rows = await self.store.claim(SERVER, count, "box1")
        await self.store.markSending([(r.man_id, r.claim) for r in rows])
        await self.store.recordSent([SendResult(r.man_id, r.claim, True, "ok") for r in rows])
        return ids

    async def test_heartbeatWithHostAndPid(self):
        """The heartbeat says which host and process runs the instance."""
        keeper = self.start()
        await eventually(lambda: keeper.healthy)
        self.assertEqual(self.db.rows("SELECT instance, host, pid FROM acqs_instance"),
                         [("box1", socket.gethostname(), os.getpid())])

    async def test_prunesFlushedRows(self):
        """Records of rows VICIdial's flush deleted go; the others stay."""
        ids = await self.sent(5)
        self.db.execute("DELETE FROM vicidial_manager WHERE man_id < %s", (ids[3],))
        keeper = self.start()
        await eventually(lambda: keeper.pruned == 3)
        self.assertEqual([m for (m,) in self.db.rows("SELECT man_id FROM acqs_action")], ids[3:])

    async def test_keepHours(self):
        """With keepHours, this server's rows older than that are flushed with their records."""
        old = await self.sent(3, entry_date=LONG_AGO)
        young = await self.sent(2)
        keeper = self.start(keepHours=24)
        await eventually(lambda: keeper.pruned == 3)
        self.assertEqual([m for (m,) in self.db.rows("SELECT man_id FROM vicidial_manager")],
                         young)
        self.assertTrue(old)

"""Tests for acqs.live: AMI settings that follow VICIdial's servers row."""

import attr
from twisted.internet.testing import EventLoggingObserver, MemoryReactorClock
from twisted.logger import LogLevel, Logger, LogPublisher, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from acqs.config import Settings
from acqs.live import LiveEndpoint, LiveSettings, rowLogGate
from acqs.store.servers import ServerRead, ServerRow

ROW = ServerRow(telnet_host="10.0.0.9", telnet_port=5038, user="cron", secret="rowsecret",
                user_send="sendcron", user_listen="listencron", vd_server_logs=True,
                max_vicidial_trunks=23, asterisk_version="13.38.3")


class LiveSettingsTests(SynchronousTestCase):
    def setUp(self):
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.changes = []

    def live(self, **settings) -> LiveSettings:
        given = frozenset(settings) | {"server_ip"}
        live = LiveSettings(Settings(server_ip="10.0.0.4", given=given, **settings))
        live.whenChanged(self.changes.append)
        return live

    def text(self) -> str:
        return "\n".join(formatEvent(e) for e in self.logged)

    def test_rowGivesWhatOptionsDoNot(self):
        """The servers row gives the endpoint, the role users and the shared secret, the
        trunks and the version; what acqs' options give beats it, said once at start."""
        live = self.live(send_user="mine", listen_secret="own")
        live.follow(ServerRead(ROW))
        self.assertEqual(live.ami, "tcp:host=10.0.0.9:port=5038")
        self.assertEqual(live.sendCredentials(), ("mine", "rowsecret"))
        self.assertEqual(live.listenCredentials(), ("listencron", "own"))
        self.assertEqual((live.max_vicidial_trunks, live.asterisk_version), (23, "13.38.3"))
        self.assertIn("from VICIdial's servers row but send-user, listen-secret, given to acqs",
                      self.text())
        self.assertNotIn("rowsecret", self.text())

    def test_originateRoomFromTrunks(self):
        """Without --max-originates, the room for Originates is twice the servers row's
        max_vicidial_trunks, 100 at least, and 200 until a row says; the option beats it."""
        live = self.live()
        self.assertEqual(live.maxOriginates(), 200)
        live.follow(ServerRead(ROW))  # 23 trunks
        self.assertEqual(live.maxOriginates(), 100)
        live.follow(ServerRead(attr.evolve(ROW, max_vicidial_trunks=96)))
        self.assertEqual(live.maxOriginates(), 192)
        given = self.live(max_originates=40)
        given.follow(ServerRead(attr.evolve(ROW, max_vicidial_trunks=96)))
        self.assertEqual(given.maxOriginates(), 40)

    def test_roleUsersLongerThanThree(self):
        """A role user of 3 characters or fewer gives way to ASTmgrUSERNAME, as in VICIdial."""
        live = self.live()
        live.follow(ServerRead(attr.evolve(ROW, user_send="abc", user_listen="")))
        self.assertEqual((live.send_user, live.listen_user), ("cron", "cron"))

    def test_changes(self):
        """A changed row is taken, said without the secret, and watchers are told what
        changed; an unchanged one changes nothing."""
        live = self.live()
        live.follow(ServerRead(ROW))  # the first read changes defaults; nobody listens yet
        self.changes.clear()
        changed = live.follow(ServerRead(attr.evolve(ROW, secret="newsecret", telnet_port=5039,
                                                     user_send="sendcron2")))
        self.assertEqual(changed, {"ami", "send_user", "send_secret", "listen_secret"})
        self.assertEqual(self.changes, [changed])
        self.assertEqual(live.sendCredentials(), ("sendcron2", "newsecret"))
        [line] = [formatEvent(e) for e in self.logged if "changed" in formatEvent(e)]
        self.assertIn("secret changed", line)
        self.assertIn("ami tcp:host=10.0.0.9:port=5039 (was tcp:host=10.0.0.9:port=5038)", line)
        self.assertIn("the listener logs in again", line)
        self.assertNotIn("secret", self.text().replace("secret changed", ""))
        self.assertEqual(live.follow(ServerRead(live.row)), frozenset())

    def test_noTableOrRow(self):
        """Without a servers table or row acqs keeps its own settings, saying so once; a row
        that appears later is taken, one that goes away leaves the settings as they were."""
        live = self.live(send_secret="s", listen_secret="s")
        for _ in range(3):
            live.follow(ServerRead(None, "Table 'asterisk.servers' doesn't exist"))
        self.assertFalse(live.wantsRows())
        live.follow(ServerRead(None))
        self.assertEqual(self.text().count("acqs uses its own AMI settings"), 2)
        self.assertTrue(live.wantsRows())
        self.assertEqual(live.ami, "tcp:host=127.0.0.1:port=5038")
        live.follow(ServerRead(ROW))
        self.assertEqual(live.ami, ROW.ami)
        self.assertEqual(self.changes, [{"ami", "send_user", "listen_user"}])
        live.follow(ServerRead(None))
        self.assertEqual(live.ami, ROW.ami)
        self.assertIn("is gone; acqs keeps the settings it had", self.text())

    def test_rowLogsFollowsVdServerLogs(self):
        """vd_server_logs N turns per-row lines off unless --row-logs says otherwise."""
        live = self.live()
        live.follow(ServerRead(attr.evolve(ROW, vd_server_logs=False)))
        self.assertFalse(live.row_logs)
        forced = self.live(row_logs=True)
        forced.follow(ServerRead(attr.evolve(ROW, vd_server_logs=False)))
        self.assertTrue(forced.row_logs)


class RowLogGateTests(SynchronousTestCase):
    def test_dropsPerRowInfoOnly(self):
        """While row logs are off, info lines naming a row are dropped; other info lines,
        warnings and errors pass; with row logs on, everything passes."""
        on = [True]
        seen = []
        publisher = LogPublisher(seen.append)
        log = Logger(observer=rowLogGate(lambda: on[0], publisher))
        on[0] = False
        log.info("man_id {man_id} sent", man_id=1)
        log.info("callerid {callerid} UPDATED", callerid="V1")
        log.info("Listening to AMI")
        log.warn("man_id {man_id} refused", man_id=2)
        log.error("uniqueid {uniqueid} lost", uniqueid="1.2")
        on[0] = True
        log.info("man_id {man_id} sent", man_id=3)
        self.assertEqual([formatEvent(e) for e in seen], [
            "Listening to AMI", "man_id 2 refused", "uniqueid 1.2 lost", "man_id 3 sent"])
        self.assertEqual([e["log_level"] for e in seen][:1], [LogLevel.info])


class LiveEndpointTests(SynchronousTestCase):
    def test_connectsWhereTheSettingSays(self):
        """Each connection goes to the endpoint in force at that moment."""
        reactor = MemoryReactorClock()
        where = ["tcp:host=127.0.0.1:port=5038"]
        endpoint = LiveEndpoint(reactor, lambda: where[0])
        endpoint.connect(object())
        where[0] = "tcp:host=10.0.0.9:port=5039"
        endpoint.connect(object())
        self.assertEqual([(host, port) for host, port, *_ in reactor.tcpClients],
                         [("127.0.0.1", 5038), ("10.0.0.9", 5039)])

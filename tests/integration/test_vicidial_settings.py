"""
acqs on VICIdial's settings: the AMI settings of the servers row, followed
while acqs runs, on the real MariaDB and the simulator on loopback TCP.
"""

import attr
from twisted.internet import reactor
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from acqs.app import Acqs, acqsServices, readServerSettings
from acqs.config import Settings
from acqs.live import LiveEndpoint, LiveSettings
from acqs.simulator import User

from ..databases import addServer, createServers, scratchMySQL, setServer
from .daemon import DIALPLAN, SERVER, SimulatorOnTCP, eventually

# As VICIdial's sample manager.conf: every user shares ASTmgrSECRET.
VICIDIAL_USERS = [
    User("sendcron", "1234", read="command", write="system,call,originate,command"),
    User("listencron", "1234", read="all", write="system,call"),
    User("sendcron2", "5678", read="command", write="system,call,originate,command"),
]


class ServersRowTests(TestCase):
    def setUp(self):
        self.db = scratchMySQL(self)
        self.asterisk = SimulatorOnTCP(self, dialplan=DIALPLAN)
        self.asterisk.simulator.users = {u.username: u for u in VICIDIAL_USERS}
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        createServers(self.db)

    def settings(self, **given) -> Settings:
        values = dict(server_ip=SERVER, db=str(self.db.url), linger=0, poll_interval=0.01,
                      action_timeout=5.0, status_file=None, instance="e2e", warm_sessions=0,
                      **given)
        return Settings(given=frozenset(values) - {"linger", "poll_interval"}
                        | {k for k in ("send_secret", "listen_secret") if values.get(k)},
                        **values)

    def start(self, settings: Settings) -> LiveSettings:
        live = LiveSettings(settings)
        readServerSettings(settings, live)
        store = self.db.openStore()
        acqs = Acqs(store)
        for service in acqsServices(settings, reactor, store,
                                    LiveEndpoint(reactor, lambda: live.ami), live):
            service.setServiceParent(acqs)
        acqs.startService()
        self.addCleanup(lambda: acqs.running and acqs.stopService())
        return live

    def text(self) -> str:
        return "\n".join(formatEvent(e) for e in self.logged)

    def logins(self, user):
        """The sessions logged in as C{user} now."""
        return [s for s in self.asterisk.simulator.sessions if s.username == user and s.welcomed]

    def senders(self):
        """Who sent each Hangup Asterisk got, in order."""
        return [user for user, m in self.asterisk.simulator.actions if m["Action"] == "Hangup"]

    async def send(self, n: int) -> int:
        man_id = self.db.insertAction(SERVER, "Hangup", f"HL{n:018d}", [f"Channel: SIP/x-{n}"])
        # Answered, not only SENT: the mark commits just before the action is written.
        await eventually(lambda: (self.db.action(man_id) or {}).get("answered_at"), timeout=20)
        return man_id

    async def test_followsTheRow(self):
        """With no AMI settings of its own acqs takes VICIdial's: the row's host and port, the
        send and listen users and the shared secret; a change made in Admin -> Servers is
        used by the next send session, the listener logs in again with it, and the log says
        what changed but never the secret.  vd_server_logs N drops the per-row lines."""
        addServer(self.db, SERVER, telnet_host="127.0.0.1", telnet_port=self.asterisk.number,
                  ASTmgrUSERNAMEsend="sendcron", ASTmgrUSERNAMElisten="listencron")
        live = self.start(self.settings())
        await eventually(lambda: self.logins("listencron"))
        await self.send(1)
        self.assertEqual(self.senders(), ["sendcron"])
        # The operator changes the secret and the send user; manager.conf follows.
        sim = self.asterisk.simulator
        sim.users["listencron"] = User("listencron", "5678", read="all", write="system,call")
        setServer(self.db, SERVER, ASTmgrUSERNAMEsend="sendcron2", ASTmgrSECRET="5678")
        [before] = self.logins("listencron")
        await eventually(lambda: live.send_user == "sendcron2", timeout=20)
        await eventually(lambda: [s for s in self.logins("listencron") if s is not before],
                         timeout=20)
        await self.send(2)
        self.assertEqual(self.senders(), ["sendcron", "sendcron2"])
        self.assertIn("secret changed; send user sendcron2 (was sendcron)", self.text())
        setServer(self.db, SERVER, vd_server_logs="N")
        await eventually(lambda: not live.row_logs, timeout=20)
        quiet = await self.send(3)
        self.assertIn("man_id 2 Hangup sent", self.text().replace(" (response", "\n"))
        self.assertNotIn(f"man_id {quiet} Hangup sent", self.text())
        for secret in ("1234", "5678"):
            self.assertNotIn(secret, self.text())

    async def test_optionsBeatTheRow(self):
        """A user and secret given to acqs beat the servers row's."""
        addServer(self.db, SERVER, telnet_host="127.0.0.1", telnet_port=self.asterisk.number,
                  ASTmgrUSERNAMEsend="sendcron", ASTmgrUSERNAMElisten="listencron",
                  ASTmgrSECRET="wrong")
        self.start(self.settings(send_user="sendcron2", send_secret="5678",
                                 listen_secret="1234"))
        await eventually(lambda: self.logins("listencron"))
        await self.send(1)
        self.assertEqual(self.senders(), ["sendcron2"])
        self.assertIn("but send-user, send-secret, listen-secret, given to acqs", self.text())

    def test_noSecretAnywhere(self):
        """Without a secret of its own and without a servers row acqs does not start, and
        says where a secret may come from."""
        settings = self.settings()
        with self.assertRaises(SystemExit) as caught:
            readServerSettings(settings, LiveSettings(settings))
        self.assertIn("no AMI secret", str(caught.exception))
        self.assertIn(f"servers row of {SERVER} (ASTmgrSECRET)", str(caught.exception))

    def test_noSecretNoDatabase(self):
        """Without a secret of its own and with the database unreachable acqs does not start
        either: the servers row cannot give one."""
        settings = attr.evolve(self.settings(), db="mysql://cron@127.0.0.1:9/asterisk")
        with self.assertRaises(SystemExit) as caught:
            readServerSettings(settings, LiveSettings(settings))
        self.assertIn("no AMI secret: none given, and VICIdial's servers row",
                      str(caught.exception))

    async def test_notVICIdial(self):
        """Without a servers table acqs runs on its own settings, saying so in one line."""
        self.db.execute("DROP TABLE servers")
        self.start(self.settings(ami=f"tcp:host=127.0.0.1:port={self.asterisk.number}",
                                 send_user="sendcron", send_secret="1234",
                                 listen_user="listencron", listen_secret="1234"))
        await self.send(1)
        await eventually(lambda: self.text().count("No VICIdial servers table") == 1)
        self.assertEqual(self.text().count("No VICIdial servers table"), 1)

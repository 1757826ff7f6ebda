"""
The Perl listener's other duties end to end: acqs in-process on the real
reactor and MariaDB (VICIdial 2.14's tables, MyISAM), with the simulator
speaking each Asterisk version's dialect, VICIdial's patched chan_sip where
the event only comes from there.
"""

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from acqs.app import snapshotOf
from acqs.listener import Listener
from acqs.simulator import User

from ..databases import scratchMySQL
from ..vicidial_tables import createVICIdialTables
from .daemon import SERVER, USERS, SimulatorOnTCP, eventually, startAcqs

CID = "V1126100310000012345"
# VICIdial's stock listen user (manager.conf.sample-13): reads these classes,
# may only run Command (no Filter, no CoreShowChannels).
LISTENCRON = User("listencron", "1234", read="system,call,log,verbose,command,agent,user,dtmf",
                  write="command")


class DutiesTestsMixin:
    dialect = "asterisk22"
    patched = False
    users = USERS
    listener = ("listener", "listenersecret")

    def setUp(self):
        self.db = scratchMySQL(self)
        createVICIdialTables(self.db)
        self.asterisk = SimulatorOnTCP(self, self.dialect, users=self.users,
                                       vicidialPatches=self.patched)
        self.sim = self.asterisk.simulator
        self.observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        user, secret = self.listener
        self.acqs = startAcqs(self, self.db, self.asterisk.endpoint, listen_user=user,
                              listen_secret=secret)
        self.listenerService = next(s for s in self.acqs if isinstance(s, Listener))

    def said(self, text):
        return [formatEvent(e) for e in self.observer if text in formatEvent(e)]

    async def liveCall(self, callerid=CID):
        """A call answered and held up (Local/200@e2e); its row's channel."""
        await eventually(lambda: self.listenerService.duties.plan is not None)
        man_id = self.db.insertAction(SERVER, "Originate", callerid, [
            "Channel: Local/200@e2e", "Context: e2e", "Exten: 200", "Priority: 1",
            f"Callerid: {callerid}"])
        await eventually(lambda: self.db.status(man_id) == "UPDATED")
        return self.db.row(man_id)["channel"]

    def dtmfRows(self):
        return self.db.rows("SELECT channel, uniqueid, digit, direction, state"
                            " FROM vicidial_dtmf_log ORDER BY dtmf_id")

    def peerRows(self):
        return self.db.rows("SELECT event_type, channel_type, peer, channel, host_ip, port, data"
                            " FROM vicidial_peer_event_log ORDER BY peer_event_id")


class Asterisk22Tests(DutiesTestsMixin, TestCase):
    async def test_dtmf(self):
        """A digit keyed on a call is a BEGIN and an END row of its channel and uniqueid."""
        channel = await self.liveCall()
        uniqueid = self.sim.channels[channel].uniqueid
        self.sim.dtmf(channel, "7")
        await eventually(lambda: len(self.dtmfRows()) == 2)
        self.assertEqual(self.dtmfRows(), [(channel, uniqueid, "7", "Received", "BEGIN"),
                                           (channel, uniqueid, "7", "Received", "END")])
        self.assertEqual(self.listenerService.duties.written, 2)

    async def test_pjsipPeerStatus(self):
        """A PJSIP endpoint's reachability is logged and set on its phone."""
        await eventually(lambda: self.listenerService.duties.plan is not None)
        self.db.execute("INSERT INTO phones (extension, server_ip, protocol)"
                        " VALUES ('phone1', %s, 'PJSIP')", (SERVER,))
        self.sim.peerStatus("PJSIP", "phone1", "Reachable")
        await eventually(lambda: self.peerRows())
        self.assertEqual(self.peerRows(), [("REACHABLE", "PJSIP", "PJSIP/phone1", "", "", None,
                                            "|")])
        await eventually(lambda: self.db.rows("SELECT peer_status FROM phones")
                         == [("REACHABLE",)])

    async def test_statusSnapshot(self):
        """The status file's snapshot shows each duty on, and the rows written."""
        channel = await self.liveCall()
        self.sim.dtmf(channel, "9")
        await eventually(lambda: len(self.dtmfRows()) == 2)
        services = {type(s).__name__: s for s in self.acqs}
        snapshot = snapshotOf(self.listenerService, services["Sender"],
                              services["Housekeeper"], self.acqs.store,
                              services["NewRowsWatch"], 0.0, lambda: "tcp:host=127.0.0.1")()
        self.assertEqual(snapshot["duties"], {
            "dtmf": "on", "peer_events": "on", "phone_ip": "on", "phone_status": "on",
            "cpd": "on", "sip_hangup_cause": "on"})
        self.assertEqual((snapshot["duty_rows_written"], snapshot["duty_rows_dropped"]), (2, 0))
        self.assertEqual(snapshot["catch_up"], "CoreShowChannels")

    async def test_saysWhichDuties(self):
        """One log line says which duties are on."""
        await eventually(lambda: self.said("VICIdial duties on:"))
        self.assertEqual(self.said("VICIdial duties on:"), [
            "VICIdial duties on: DTMF log, peer event log, phones.phone_ip, phones.peer_status,"
            " CPD log, SIP hangup causes; off: none"])


class StockListencronTests(DutiesTestsMixin, TestCase):
    """VICIdial's stock listencron: Asterisk refuses its Filter, acqs filters itself."""

    users = USERS + [LISTENCRON]
    listener = ("listencron", "1234")

    async def test_dtmfUnfiltered(self):
        """With the Filter refused, DTMF still reaches its table, and the noise is skipped."""
        channel = await self.liveCall()
        await eventually(lambda: self.listenerService.filtered is False)
        self.sim.flood(500)
        self.sim.dtmf(channel, "#")
        await eventually(lambda: len(self.dtmfRows()) == 2)
        self.assertEqual([row[2:] for row in self.dtmfRows()],
                         [("#", "Received", "BEGIN"), ("#", "Received", "END")])


class Asterisk18Tests(DutiesTestsMixin, TestCase):
    dialect = "asterisk18"
    patched = True

    async def test_dtmf(self):
        """1.8's DTMF events (Begin: Yes, then End: Yes) are BEGIN and END rows."""
        channel = await self.liveCall()
        self.sim.dtmf(channel, "3")
        await eventually(lambda: len(self.dtmfRows()) == 2)
        self.assertEqual([row[2:] for row in self.dtmfRows()],
                         [("3", "Received", "BEGIN"), ("3", "Received", "END")])

    async def test_chanSipPeerStatus(self):
        """chan_sip's PeerStatus (Registered, with its address) is logged, and the phone's
        peer_status set; phone_ip is VICIdial's PeerRegistered's alone."""
        await eventually(lambda: self.listenerService.duties.plan is not None)
        self.db.execute("INSERT INTO phones (extension, server_ip, protocol)"
                        " VALUES ('1001', %s, 'SIP')", (SERVER,))
        self.sim.peerStatus("SIP", "1001", "Registered", address="10.0.0.5", port=5060)
        await eventually(lambda: self.db.rows("SELECT peer_status, phone_ip FROM phones")
                         == [("REGISTERED", None)])
        self.assertEqual(self.peerRows(), [("REGISTERED", "SIP", "SIP/1001", "", "", None, "|")])

    async def test_cpdResult(self):
        """NetBorder's CPD-Result (VICIdial's 1.8 patch) is a NEW vicidial_cpd_log row of the
        call's callerid and lead."""
        channel = await self.liveCall()
        self.sim.cpdResult(channel, "Answering-Machine", "Machine")
        await eventually(lambda: self.db.rows("SELECT COUNT(*) FROM vicidial_cpd_log")
                         == [(1,)])
        self.assertEqual(self.db.rows(
            "SELECT channel, callerid, lead_id, result, status FROM vicidial_cpd_log"),
            [(channel, CID, 12345, "Answering-Machine", "NEW")])

    async def test_sipHangupCause(self):
        """SIP-Hangup-Cause (VICIdial's 1.8 patch) fills the call's dial log rows."""
        channel = await self.liveCall()
        self.db.execute("INSERT INTO vicidial_dial_log (caller_code, lead_id, server_ip)"
                        " VALUES (%s, 12345, %s)", (CID, SERVER))
        self.sim.sipHangupCause(channel, 503, "Service Unavailable")
        await eventually(lambda: self.db.rows(
            "SELECT sip_hangup_cause, sip_hangup_reason FROM vicidial_dial_log")
            == [(503, "Service Unavailable")])


class Asterisk13PatchedTests(DutiesTestsMixin, TestCase):
    dialect = "asterisk13"
    patched = True

    async def test_patchedPeerEvents(self):
        """PeerRegistered sets phone_ip; PeerStatus with PingTime sets ping_time; RTP
        disconnects and critical timeouts are logged."""
        await eventually(lambda: self.listenerService.duties.plan is not None)
        self.db.execute("INSERT INTO phones (extension, server_ip, protocol)"
                        " VALUES ('1001', %s, 'SIP')", (SERVER,))
        self.sim.peerRegistered("SIP", "1001", "10.0.0.5:5060")
        self.sim.peerStatus("SIP", "1001", "Reachable", time=25, pingTime=25, maxPing=2000)
        channel = await self.liveCall()
        self.sim.rtpDisconnect(channel, 1796667017)
        self.sim.criticalTimeout("INVITE", "abc@10.0.0.1", 102, "10.0.0.9:5060", 32000)
        await eventually(lambda: len(self.peerRows()) == 4)
        self.assertEqual(self.db.rows("SELECT phone_ip, peer_status, ping_time FROM phones"),
                         [("10.0.0.5", "REACHABLE", 25)])
        self.assertEqual([row[0] for row in self.peerRows()],
                         ["REGISTERED", "REACHABLE", "RTPDISCONNECT", "CRITICALTIMEOUT"])


class NoVICIdialTablesTests(TestCase):
    @staticmethod
    def filters(sim):
        return [m["Filter"] for user, m in sim.actions if m["Action"] == "Filter"]

    async def test_dutiesOff(self):
        """On a database with acqs' tables only, duties are off, said once, and the Filter
        of every login once that is known leaves their events out (the first login's, sent
        before the database answers, lets them through); the calls' rows move as ever."""
        db = scratchMySQL(self)
        asterisk = SimulatorOnTCP(self)
        sim = asterisk.simulator
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        acqs = startAcqs(self, db, asterisk.endpoint)
        listener = next(s for s in acqs if isinstance(s, Listener))
        man_id = db.insertAction(SERVER, "Originate", CID, [
            "Channel: Local/200@e2e", "Context: e2e", "Exten: 200", "Priority: 1",
            f"Callerid: {CID}"])
        await eventually(lambda: db.status(man_id) == "UPDATED")
        channel = db.row(man_id)["channel"]
        sim.dtmf(channel, "1")
        sim.peerStatus("PJSIP", "phone1", "Reachable")
        sim.hangup(channel)
        await eventually(lambda: db.status(man_id) == "DEAD")
        # On a busy machine the events may come before the database says which duties are
        # on: they wait in the batch, which then writes none of them.
        await listener.duties.whenIdle()
        self.assertEqual((listener.duties.written, listener.duties.statements,
                          listener.duties.failed), (0, 0, 0))
        sim.dropAll("listener")
        await eventually(lambda: len(self.filters(sim)) == 2)
        first, second = self.filters(sim)
        self.assertIn("DTMFBegin", first)
        self.assertEqual(second, "^Event: (Newstate|Hangup|OriginateResponse|Rename)[[:space:]]")
        said = [formatEvent(e) for e in observer if "VICIdial duties" in formatEvent(e)]
        self.assertEqual(len(said), 1)
        self.assertIn("VICIdial duties on: none; off: DTMF log (no table vicidial_dtmf_log)",
                      said[0])

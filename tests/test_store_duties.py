"""
The listener's duty rows in VICIdial 2.14's own tables (MyISAM), on the
real MariaDB: what each row writes, in how many statements, and what a
database without those tables, or a duty that cannot write, does; and the
listener's duty writer over them.
"""

import time
from datetime import datetime

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from acqs.ami.message import Message
from acqs.dutywriter import DutyWriter
from acqs.store.duties import (
    CpdRow,
    DtmfRow,
    PeerEventRow,
    PhoneAddress,
    PhoneStatus,
    SipCause,
    dutyPlan,
)

from .databases import scratchMySQL
from .vicidial_tables import createVICIdialTables

SERVER = "10.10.11.12"
CID = "V1126100310000012345"


class DutyStoreTests(TestCase):
    def setUp(self):
        self.db = scratchMySQL(self)
        createVICIdialTables(self.db)
        self.store = self.db.openStore()
        self.now = time.time()

    def write(self, *rows):
        return self.store.writeDuties(SERVER, rows, self.now)

    async def test_plan(self):
        """With VICIdial 2.14's tables every duty is on."""
        plan = dutyPlan(await self.store.dutyColumns())
        self.assertEqual(plan, dict.fromkeys(plan))

    async def test_dtmfInOneStatement(self):
        """A batch of DTMF rows is one multi-row INSERT, each row as VICIdial writes it."""
        written = await self.write(
            DtmfRow(self.now, "SIP/agent-0000000a", "1796667017.10", "1", "Received", "BEGIN"),
            DtmfRow(self.now, "SIP/agent-0000000a", "1796667017.10", "1", "Received", "END"),
            DtmfRow(self.now, "SIP/carrier-0000000b", "1796667017.11", "#", "Sent", None),
        )
        self.assertEqual((written.rows, written.statements, written.failed), (3, 1, ()))
        self.assertEqual(self.db.rows(
            "SELECT channel, server_ip, uniqueid, digit, direction, state FROM vicidial_dtmf_log"
            " ORDER BY dtmf_id"), [
            ("SIP/agent-0000000a", SERVER, "1796667017.10", "1", "Received", "BEGIN"),
            ("SIP/agent-0000000a", SERVER, "1796667017.10", "1", "Received", "END"),
            ("SIP/carrier-0000000b", SERVER, "1796667017.11", "#", "Sent", None),
        ])

    async def test_timesOfArrival(self):
        """Each row has the database's time when its event came, however long it waited to
        be written: rows that came 30 s apart are 30 s apart."""
        await self.write(
            PeerEventRow(self.now - 30, "REACHABLE", "PJSIP", peer="PJSIP/phone1", data="|"),
            PeerEventRow(self.now, "UNREACHABLE", "PJSIP", peer="PJSIP/phone1", data="|"),
            DtmfRow(self.now - 30, "SIP/a-1", "1.1", "5", "Received", "BEGIN"),
        )
        [(first, second, dbNow)] = self.db.rows(
            "SELECT MIN(event_date), MAX(event_date), NOW(6) FROM vicidial_peer_event_log")
        self.assertAlmostEqual((second - first).total_seconds(), 30, delta=0.5)
        self.assertLess(abs((dbNow - second).total_seconds()), 5)
        [(dtmf,)] = self.db.rows("SELECT dtmf_time FROM vicidial_dtmf_log")
        self.assertEqual(dtmf.microsecond, 0)
        self.assertLess(abs((first - dtmf).total_seconds()), 1.5)

    async def test_peerEvents(self):
        """Peer event rows carry type, channel type, peer, channel, host, port and data."""
        await self.write(
            PeerEventRow(self.now, "REGISTERED", "SIP", peer="SIP/1001", host_ip="10.0.0.5",
                         port=5060),
            PeerEventRow(self.now, "RTPDISCONNECT", "SIP", channel="SIP/1001-0000000a",
                         data="|RTPLastRX=1796667017|"),
            PeerEventRow(self.now, "UNKNOWN", None, peer="Skinny/x", data="|PeerStatus=Odd|"),
        )
        self.assertEqual(self.db.rows(
            "SELECT event_type, server_ip, channel_type, peer, channel, host_ip, port, data"
            " FROM vicidial_peer_event_log ORDER BY peer_event_id"), [
            ("REGISTERED", SERVER, "SIP", "SIP/1001", "", "10.0.0.5", 5060, ""),
            ("RTPDISCONNECT", SERVER, "SIP", "", "SIP/1001-0000000a", "", None,
             "|RTPLastRX=1796667017|"),
            ("UNKNOWN", SERVER, None, "Skinny/x", "", "", None, "|PeerStatus=Odd|"),
        ])

    def phone(self, extension, protocol="SIP", server_ip=SERVER):
        self.db.execute("INSERT INTO phones (extension, dialplan_number, server_ip, protocol)"
                        " VALUES (%s, %s, %s, %s)", (extension, extension, server_ip, protocol))

    def phones(self):
        return self.db.rows("SELECT extension, server_ip, protocol, phone_ip, peer_status,"
                            " ping_time FROM phones ORDER BY extension, server_ip")

    async def test_phonesInOneStatement(self):
        """Phones are matched by extension, server_ip and protocol; each takes the last status
        and address of the batch, ping_time only where given; one UPDATE per duty."""
        for extension in ("1001", "1002", "1003"):
            self.phone(extension)
        self.phone("phone1", "PJSIP")
        self.phone("1001", server_ip="10.10.11.99")
        written = await self.write(
            PhoneStatus("1001", "SIP", "REACHABLE", 25),
            PhoneAddress("1001", "SIP", "10.0.0.5"),
            PhoneStatus("1001", "SIP", "LAGGED"),
            PhoneStatus("1002", "PJSIP", "REACHABLE"),
            PhoneStatus("phone1", "PJSIP", "UNREACHABLE"),
        )
        self.assertEqual(written.statements, 2)  # one per column group: address, status
        self.assertEqual(self.phones(), [
            ("1001", SERVER, "SIP", "10.0.0.5", "LAGGED", 25),
            ("1001", "10.10.11.99", "SIP", None, "UNKNOWN", None),
            ("1002", SERVER, "SIP", None, "UNKNOWN", None),
            ("1003", SERVER, "SIP", None, "UNKNOWN", None),
            ("phone1", SERVER, "PJSIP", None, "UNREACHABLE", None),
        ])

    async def test_cpd(self):
        """A CPD row is NEW, with callerid, lead and result, at the database's time."""
        await self.write(CpdRow(self.now, "SIP/paraxip-out-1", "1233564450.141", CID, 12345,
                                "Answering-Machine"))
        [(channel, uniqueid, callerid, server_ip, lead_id, result, status, date)] = self.db.rows(
            "SELECT channel, uniqueid, callerid, server_ip, lead_id, result, status, event_date"
            " FROM vicidial_cpd_log")
        self.assertEqual((channel, uniqueid, callerid, server_ip, lead_id, result, status),
                         ("SIP/paraxip-out-1", "1233564450.141", CID, SERVER, 12345,
                          "Answering-Machine", "NEW"))
        self.assertIsNotNone(date)

    def local(self, epoch):
        return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")

    async def test_sipHangupCause(self):
        """The cause goes to every dial log row of the call (with the uniqueid), and to its
        newest carrier log row from 180 s before to 10 s after the call started."""
        start = 1700000000
        for date in (start - 5, start + 1):
            self.db.execute("INSERT INTO vicidial_dial_log (caller_code, lead_id, server_ip,"
                            " call_date) VALUES (%s, %s, %s, %s)",
                            (CID, 12345, SERVER, self.local(date)))
        self.db.execute("INSERT INTO vicidial_dial_log (caller_code, lead_id, server_ip)"
                        " VALUES (%s, %s, %s)", (CID, 12345, "10.10.11.99"))
        for uniqueid, date in (("old", start - 200), ("older", start - 100),
                               ("newest", start + 5), ("late", start + 11)):
            self.db.execute("INSERT INTO vicidial_carrier_log (uniqueid, call_date, server_ip,"
                            " lead_id, caller_code) VALUES (%s, %s, %s, %s, %s)",
                            (uniqueid, self.local(date), SERVER, 12345, CID))
        written = await self.write(SipCause(CID, 12345, "1700000000.5", 486, "Busy Here", start))
        self.assertEqual((written.rows, written.failed), (1, ()))
        self.assertEqual(self.db.rows(
            "SELECT server_ip, sip_hangup_cause, sip_hangup_reason, uniqueid"
            " FROM vicidial_dial_log ORDER BY server_ip, call_date"), [
            ("10.10.11.12", 486, "Busy Here", "1700000000.5"),
            ("10.10.11.12", 486, "Busy Here", "1700000000.5"),
            ("10.10.11.99", 0, "", ""),
        ])
        self.assertEqual(self.db.rows(
            "SELECT uniqueid, sip_hangup_cause, sip_hangup_reason FROM vicidial_carrier_log"
            " WHERE sip_hangup_cause > 0"), [("newest", 486, "Busy Here")])

    async def test_failingDutyStopsAlone(self):
        """A duty whose table went (or whose privilege is missing) fails alone: its rows are
        reported, the others written."""
        self.db.execute("DROP TABLE vicidial_cpd_log")
        written = await self.write(
            CpdRow(self.now, "SIP/a-1", "1.1", CID, 12345, "Human"),
            CpdRow(self.now, "SIP/a-2", "1.2", CID, 12345, "Human"),
            DtmfRow(self.now, "SIP/a-1", "1.1", "5", "Received", "BEGIN"),
        )
        self.assertEqual(written.rows, 1)
        [(duty, reason, count)] = written.failed
        self.assertEqual((duty, count), ("cpd", 2))
        self.assertIn("vicidial_cpd_log", reason)
        self.assertEqual(self.db.rows("SELECT COUNT(*) FROM vicidial_dtmf_log"), [(1,)])


class NoVICIdialTablesTests(TestCase):
    async def test_allOff(self):
        """On a database without VICIdial's tables (acqs initdb's only) every duty is off."""
        store = scratchMySQL(self).openStore()
        plan = dutyPlan(await store.dutyColumns())
        self.assertEqual(plan["dtmf"], "no table vicidial_dtmf_log")
        self.assertTrue(all(plan.values()))

    async def test_oldPhones(self):
        """phones before schema 1636 (no peer_status, ping_time): phone_ip only."""
        db = scratchMySQL(self)
        createVICIdialTables(db, ["phones"], oldPhones=True)
        plan = dutyPlan(await db.openStore().dutyColumns())
        self.assertIsNone(plan["phone_ip"])
        self.assertEqual(plan["phone_status"], "phones has no peer_status, ping_time")




class DutyWriterTests(TestCase):
    """The listener's duty writer on the real reactor and MariaDB."""

    def setUp(self):
        from twisted.internet import reactor

        self.db = scratchMySQL(self)
        createVICIdialTables(self.db)
        self.duties = DutyWriter(reactor, self.db.openStore(), SERVER, delay=0)
        self.addCleanup(self.duties.stop)
        self.observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def said(self, level):
        return [formatEvent(e) for e in self.observer if e["log_level"] == level]

    def peerStatus(self, peer, status):
        return Message([("Event", "PeerStatus"), ("ChannelType", "SIP"), ("Peer", peer),
                        ("PeerStatus", status)])

    async def test_misfitsSaidOnce(self):
        """Values that do not fit are said once per kind, however many events carry them."""
        await self.duties.find()
        for peer in ("SIP/1001", "SIP/1002", "SIP/1003"):
            self.duties.event(self.peerStatus(peer, "Rejected"))
        await self.duties.whenIdle()
        self.assertEqual(self.said(LogLevel.warn), [
            "VICIdial duties: vicidial_peer_event_log.event_type has no 'Rejected': written"
            " UNKNOWN, with PeerStatus=Rejected in data (said once)",
            "VICIdial duties: phones.peer_status has no 'Rejected': the phone keeps its status"
            " (said once)"])
        self.assertEqual(self.duties.written, 3)

    async def test_failingDutyStops(self):
        """A duty whose writes fail for good is stopped and said once; its rows count as
        dropped, and the other duties go on."""
        await self.duties.find()
        self.db.execute("DROP TABLE vicidial_peer_event_log")
        self.duties.event(self.peerStatus("SIP/1001", "Reachable"))
        await self.duties.whenIdle()
        self.duties.event(self.peerStatus("SIP/1002", "Reachable"))
        self.duties.event(Message([("Event", "DTMFBegin"), ("Channel", "SIP/a-1"),
                                   ("Uniqueid", "1.1"), ("Digit", "5"),
                                   ("Direction", "Received")]))
        await self.duties.whenIdle()
        [error] = self.said(LogLevel.error)
        self.assertIn("VICIdial duty peer event log stopped: writing failed", error)
        self.assertEqual((self.duties.dropped, self.duties.written), (1, 3))
        self.assertTrue(self.duties.snapshot()["peer_events"].startswith("writing failed"))
        self.assertEqual(self.db.rows("SELECT COUNT(*) FROM vicidial_dtmf_log"), [(1,)])

    async def test_unknownPlanFoundOnWrite(self):
        """Rows that come before the duties are known wait, and are written once they are."""
        self.duties.event(self.peerStatus("SIP/1001", "Reachable"))
        self.assertIsNone(self.duties.plan)
        await self.duties.whenIdle()
        self.assertIsNotNone(self.duties.plan)
        self.assertEqual(self.db.rows("SELECT event_type FROM vicidial_peer_event_log"),
                         [("REACHABLE",)])

"""Tests for acqs.duties: which VICIdial rows each duty event calls for."""

from twisted.trial.unittest import SynchronousTestCase

from acqs.ami.message import Message
from acqs.duties import dutyRows, leadID, uniqueidEpoch
from acqs.store.duties import (
    CpdRow,
    DtmfRow,
    PeerEventRow,
    PhoneAddress,
    PhoneStatus,
    SipCause,
    dutyPlan,
)

AT = 1796667017.25
CID = "V1126100310000012345"  # V, MMDDhhmmss trimmed to 9 digits, lead 0000012345


def event(name, **headers):
    return Message([("Event", name), ("Privilege", "system,all")] + list(headers.items()))


def rows(message):
    return dutyRows(message, AT)[0]


def misfits(message):
    return [m.kind for m in dutyRows(message, AT)[1]]


class DtmfTests(SynchronousTestCase):
    def test_asterisk22(self):
        """DTMFBegin and DTMFEnd (12+, as the real Asterisk 22 prints them) are BEGIN and
        END rows of the channel, uniqueid, digit and direction."""
        headers = dict(Channel="Local/8600050@acqs-facts-00000005;1", ChannelState="6",
                       ChannelStateDesc="Up", CallerIDName="DL40130172253cc160",
                       ConnectedLineName="DL40130172253cc160", Uniqueid="1796667017.10",
                       Linkedid="1796667017.8", Digit="1")
        self.assertEqual(rows(event("DTMFBegin", **headers, Direction="Received")), [
            DtmfRow(AT, "Local/8600050@acqs-facts-00000005;1", "1796667017.10", "1", "Received",
                    "BEGIN")])
        self.assertEqual(rows(event("DTMFEnd", **headers, DurationMs="100", Direction="Sent")), [
            DtmfRow(AT, "Local/8600050@acqs-facts-00000005;1", "1796667017.10", "1", "Sent",
                    "END")])

    def test_asterisk18(self):
        """1.6 - 11's DTMF is BEGIN with Begin: Yes, END with End: Yes."""
        headers = dict(Channel="SIP/agent-00000001", Uniqueid="1233564450.141", Digit="#",
                       Direction="Received")
        self.assertEqual(rows(event("DTMF", **headers, Begin="Yes", End="No"))[0].state, "BEGIN")
        self.assertEqual(rows(event("DTMF", **headers, Begin="No", End="Yes"))[0].state, "END")

    def test_neitherBeginNorEnd(self):
        """A DTMF neither Begin nor End (VICIdial writes '', outside the ENUM) is written with
        state NULL, and said."""
        message = event("DTMF", Channel="SIP/a-1", Uniqueid="1.1", Digit="5",
                        Direction="Received", Begin="No", End="No")
        self.assertIsNone(rows(message)[0].state)
        self.assertEqual(misfits(message), ["DTMF state"])

    def test_widths(self):
        """A systemname's long uniqueid is cut to the column's 20 characters, and said."""
        message = event("DTMFBegin", Channel="SIP/a-1", Uniqueid="vicibox-ast01-1796107644.12",
                        Digit="5", Direction="Received")
        self.assertEqual(rows(message)[0].uniqueid, "vicibox-ast01-179610")
        self.assertEqual(misfits(message), ["vicidial_dtmf_log.uniqueid width"])

    def test_noChannel(self):
        """An event without a channel (a NOT NULL column) writes nothing, and is said."""
        self.assertEqual(rows(event("DTMFBegin", Digit="5")), [])
        self.assertEqual(misfits(event("DTMFBegin", Digit="5")), ["DTMFBegin without Channel"])


class PeerStatusTests(SynchronousTestCase):
    def test_pjsip(self):
        """Asterisk 22's PJSIP PeerStatus (the real capture's) logs REACHABLE with data '|'
        and sets the phone's peer_status, matched by extension and protocol."""
        message = event("PeerStatus", ChannelType="PJSIP", Peer="PJSIP/phone1",
                        PeerStatus="Reachable")
        self.assertEqual(rows(message), [
            PeerEventRow(AT, "REACHABLE", "PJSIP", peer="PJSIP/phone1", data="|"),
            PhoneStatus("phone1", "PJSIP", "REACHABLE")])
        self.assertEqual(misfits(message), [])

    def test_pingTimes(self):
        """VICIdial's patched chan_sip: PingTime, Time and MaxPing go to data in that order,
        and PingTime to ping_time."""
        message = event("PeerStatus", ChannelType="SIP", Peer="SIP/1001", PeerStatus="Lagged",
                        Time="2500", PingTime="2500", MaxPing="2000")
        self.assertEqual(rows(message), [
            PeerEventRow(AT, "LAGGED", "SIP", peer="SIP/1001",
                         data="|PingTime=2500|Time=2500|MaxPing=2000|"),
            PhoneStatus("1001", "SIP", "LAGGED", 2500)])

    def test_asterisk14(self):
        """Asterisk 1.4 prints no ChannelType: the Peer's technology stands for it."""
        message = event("PeerStatus", Peer="SIP/1001", PeerStatus="Unregistered",
                        Cause="Expired")
        self.assertEqual(rows(message)[-1], PhoneStatus("1001", "SIP", "UNREGISTERED"))

    def test_rejected(self):
        """Rejected fits neither ENUM: the log row says UNKNOWN and keeps the status in data;
        the phone keeps its status; each is said."""
        message = event("PeerStatus", ChannelType="SIP", Peer="SIP/1001", PeerStatus="Rejected",
                        Cause="AUTH_SECRET_FAILED", Address="10.0.0.5", Port="5060")
        self.assertEqual(rows(message), [
            PeerEventRow(AT, "UNKNOWN", "SIP", peer="SIP/1001", data="|PeerStatus=Rejected|")])
        self.assertEqual(misfits(message), ["vicidial_peer_event_log.event_type Rejected",
                                            "phones.peer_status Rejected"])

    def test_pingTimeOutOfRange(self):
        """A PingTime beyond SMALLINT is not written to ping_time (the status is), and said."""
        message = event("PeerStatus", ChannelType="SIP", Peer="SIP/1001",
                        PeerStatus="Reachable", PingTime="40000")
        self.assertEqual(rows(message)[-1], PhoneStatus("1001", "SIP", "REACHABLE"))
        self.assertEqual(misfits(message), ["phones.ping_time"])

    def test_otherChannelType(self):
        """A channel type outside the ENUM is written NULL, and said."""
        message = event("PeerStatus", ChannelType="Skinny", Peer="Skinny/phone",
                        PeerStatus="Reachable")
        self.assertIsNone(rows(message)[0].channel_type)
        self.assertEqual(misfits(message), ["vicidial_peer_event_log.channel_type Skinny"])


class PatchedPeerEventTests(SynchronousTestCase):
    """VICIdial's patched chan_sip events."""

    def test_peerRegistered(self):
        """PeerRegistered logs REGISTERED with host and port, and sets the phone's phone_ip."""
        message = event("PeerRegistered", ChannelType="SIP", Peer="SIP/1001",
                        Host="10.0.0.5:5060")
        self.assertEqual(rows(message), [
            PeerEventRow(AT, "REGISTERED", "SIP", peer="SIP/1001", host_ip="10.0.0.5",
                         port=5060),
            PhoneAddress("1001", "SIP", "10.0.0.5")])

    def test_highPort(self):
        """A port beyond SMALLINT's 32767 is left out of port and kept in data."""
        message = event("PeerRegistered", ChannelType="SIP", Peer="SIP/1001",
                        Host="10.0.0.5:50600")
        self.assertEqual(rows(message)[0], PeerEventRow(
            AT, "REGISTERED", "SIP", peer="SIP/1001", host_ip="10.0.0.5",
            data="|Host=10.0.0.5:50600|"))
        self.assertEqual(rows(message)[1], PhoneAddress("1001", "SIP", "10.0.0.5"))
        self.assertEqual(misfits(message), ["vicidial_peer_event_log.port"])

    def test_ipv6Host(self):
        """An IPv6 host fits neither host_ip nor phone_ip: kept in data, the phone left as it
        was."""
        message = event("PeerRegistered", ChannelType="SIP", Peer="SIP/1001",
                        Host="[2001:db8::15]:5060")
        self.assertEqual(rows(message), [PeerEventRow(
            AT, "REGISTERED", "SIP", peer="SIP/1001", port=5060,
            data="|Host=[2001:db8::15]:5060|")])
        self.assertEqual(misfits(message), ["vicidial_peer_event_log.host_ip"])

    def test_rtpDisconnect(self):
        """SIPRTPDisconnect logs RTPDISCONNECT with the channel, its type and RTPLastRX."""
        message = event("SIPRTPDisconnect", Channel="SIP/1001-0000000a", RTPLastRX="1796667017")
        self.assertEqual(rows(message), [PeerEventRow(
            AT, "RTPDISCONNECT", "SIP", channel="SIP/1001-0000000a",
            data="|RTPLastRX=1796667017|")])

    def test_criticalTimeout(self):
        """SIPCriticalTimeout logs CRITICALTIMEOUT, type SIP, with host, port and the rest in
        data."""
        message = event("SIPCriticalTimeout", Type="INVITE", CallID="abc@10.0.0.1",
                        SeqNo="102", Host="10.0.0.9:5060", Timeout="32000")
        self.assertEqual(rows(message), [PeerEventRow(
            AT, "CRITICALTIMEOUT", "SIP", host_ip="10.0.0.9", port=5060,
            data="|Type=INVITE|CallID=abc@10.0.0.1|SeqNo=102|Timeout=32000|")])

    def test_missingFields(self):
        """An event lacking a field VICIdial needs writes nothing, and is said."""
        message = event("PeerRegistered", ChannelType="SIP", Peer="SIP/1001")
        self.assertEqual(rows(message), [])
        self.assertEqual(misfits(message), ["PeerRegistered without Host"])


class CpdTests(SynchronousTestCase):
    def test_asterisk18(self):
        """1.8's NetBorder CPD-Result is a row of channel, uniqueid, callerid, lead and
        CPDResult."""
        message = event("CPD-Result", Channeltype="SIP", Channel="SIP/paraxip-out-08291448",
                        CallerIDName=CID, Uniqueid="1233564450.141",
                        CPDResult="Answering-Machine", CPDDetailedResult="Machine",
                        CPDCallID="x", CPDReferenceID="y", CPDCampaignName="z")
        self.assertEqual(rows(message), [CpdRow(AT, "SIP/paraxip-out-08291448", "1233564450.141",
                                                CID, 12345, "Answering-Machine")])

    def test_asterisk14(self):
        """1.4's patch prints Result instead."""
        message = event("CPD-Result", ChannelDriver="SIP", Channel="SIP/paraxip-out-1",
                        CallerIDName=f'"{CID}" <3125551234>', Uniqueid="1.1", Result="Human")
        self.assertEqual(rows(message)[0].result, "Human")
        self.assertEqual(rows(message)[0].callerid, CID)

    def test_noResult(self):
        """No result, no row (as VICIdial)."""
        self.assertEqual(rows(event("CPD-Result", Channel="SIP/a-1", Uniqueid="1.1",
                                    CallerIDName=CID, CPDResult="")), [])


class SipHangupCauseTests(SynchronousTestCase):
    def message(self, result, uniqueid="1700000000.141"):
        return event("SIP-Hangup-Cause", ChannelDriver="SIP", Channel="SIP/carrier-0000000a",
                     CallerIDName=CID, Uniqueid=uniqueid, Result=result)

    def test_cause(self):
        """Code and reason, with the callerid's lead and the call's start from its uniqueid."""
        self.assertEqual(rows(self.message("486|Busy Here")), [
            SipCause(CID, 12345, "1700000000.141", 486, "Busy Here", 1700000000)])

    def test_407Skipped(self):
        """407 (proxy authentication) is not recorded, as in VICIdial."""
        self.assertEqual(rows(self.message("407|Proxy Authentication Required")), [])

    def test_systemname(self):
        """The start of a systemname's uniqueid is after its name."""
        self.assertEqual(rows(self.message("503|Service Unavailable",
                                           "box-1-1700000000.5"))[0].started, 1700000000)

    def test_badCode(self):
        """A code that is no number is not written (a SMALLINT column), and said."""
        self.assertEqual(rows(self.message("abc|Nonsense")), [])
        self.assertEqual(misfits(self.message("abc|Nonsense")), ["sip_hangup_cause"])


class HelpersTests(SynchronousTestCase):
    def test_leadID(self):
        """The lead is the number in characters 11 to 20 of the callerid, 0 if none."""
        self.assertEqual(leadID(CID), 12345)
        self.assertEqual(leadID("M1126100310000098765"), 98765)
        self.assertEqual(leadID("DL40130172253cc160"), 253)
        self.assertEqual(leadID("UNKNOWN"), 0)

    def test_uniqueidEpoch(self):
        """A uniqueid starts with its epoch second, after the systemname if any."""
        self.assertEqual(uniqueidEpoch("1700000000.12"), 1700000000)
        self.assertEqual(uniqueidEpoch("vicibox-ast01-1700000000.12"), 1700000000)
        self.assertIsNone(uniqueidEpoch("UNKNOWN"))

    def test_otherEvents(self):
        """Events of no duty call for nothing."""
        self.assertEqual(dutyRows(event("Newstate", Channel="SIP/a-1"), AT), ([], []))


class PlanTests(SynchronousTestCase):
    def test_plan(self):
        """Each duty is on where its table has its columns, else off with why."""
        plan = dutyPlan({
            "vicidial_dtmf_log": frozenset(["dtmf_time", "channel", "server_ip", "uniqueid",
                                            "digit", "direction", "state"]),
            "phones": frozenset(["extension", "server_ip", "protocol", "phone_ip"]),
        })
        self.assertEqual(plan["dtmf"], None)
        self.assertEqual(plan["phone_ip"], None)
        self.assertEqual(plan["phone_status"], "phones has no peer_status, ping_time")
        self.assertEqual(plan["cpd"], "no table vicidial_cpd_log")
        self.assertEqual(plan["sip_hangup_cause"],
                         "no table vicidial_dial_log; no table vicidial_carrier_log")

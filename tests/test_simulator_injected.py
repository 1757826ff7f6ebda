"""Tests for the simulator's injected events: DTMF, peer status and VICIdial's patched events."""

from typing import List

from twisted.internet.task import Clock
from twisted.python.filepath import FilePath

from acqs.simulator import Simulator

from .test_simulator import CALLERID, Peer, SimulatorTestCase

FACTS = FilePath(__file__).sibling("data").child("asterisk22").child("facts")


def captured(name: str, event: str) -> List[str]:
    """The header names of the first C{event} in the capture C{name}."""
    for block in FACTS.child(name).getContent().decode().split("\r\n\r\n"):
        lines = block.split("\r\n")
        if lines[0] == f"Event: {event}" or lines[-1:] == [f"Event: {event}"]:
            start = lines.index(f"Event: {event}")
            return [line.partition(": ")[0] for line in lines[start:]]
    raise AssertionError(f"no {event} in {name}")


class InjectedTestCase(SimulatorTestCase):
    patched = False

    def setUp(self):
        self.clock = Clock()
        self.use(self.dialect)

    def use(self, dialect: str) -> Peer:
        """A fresh simulator of C{dialect}, a listener and a sender; the listener."""
        self.sim = Simulator(self.clock, dialect=dialect, vicidialPatches=self.patched)
        self.listener = self.peer("listener")
        self.sender = self.peer("sender", events="off")
        return self.listener

    def call(self) -> str:
        """An answered call that stays up; the name of its first channel."""
        self.originate(self.sender, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        self.advance(1)
        return next(iter(self.sim.channels))

    def fresh(self, name: str) -> List[dict]:
        """Events named C{name} the listener got since the last call of fresh."""
        seen = self.listener.events()
        new, self._seen = seen[getattr(self, "_seen", 0):], len(seen)
        return [e for e in new if e["Event"] == name]


class Asterisk22InjectedTests(InjectedTestCase):
    def test_dtmfAsCaptured(self):
        """A digit prints DTMFBegin now and DTMFEnd with DurationMs later, headers as on 22."""
        channel = self.call()
        self.fresh("DTMFBegin")
        self.sim.dtmf(channel, "5", durationMs=120)
        self.flush()
        [begin] = self.fresh("DTMFBegin")
        self.assertEqual(list(begin), captured("dtmf.listener.ami", "DTMFBegin"))
        self.assertEqual((begin["Channel"], begin["Digit"], begin["Direction"],
                          begin["Privilege"], begin["CallerIDName"]),
                         (channel, "5", "Received", "dtmf,all", CALLERID))
        self.advance(0.1)
        self.assertEqual(self.listener.events("DTMFEnd"), [])
        self.advance(0.05)
        [end] = self.listener.events("DTMFEnd")
        self.assertEqual(list(end), captured("dtmf.listener.ami", "DTMFEnd"))
        self.assertEqual((end["Digit"], end["DurationMs"], end["Uniqueid"]),
                         ("5", "120", begin["Uniqueid"]))

    def test_dtmfClass(self):
        """DTMF reaches an Events: dtmf session and not an Events: call one."""
        calls, keys = self.peer("listener", events="call"), self.peer("listener", events="dtmf")
        channel = self.call()
        self.sim.dtmf(channel, "#", "Sent")
        self.advance(0.2)
        self.assertEqual(calls.events("DTMFBegin") + calls.events("DTMFEnd"), [])
        self.assertEqual([(e["Event"], e["Direction"]) for e in keys.events()],
                         [("DTMFBegin", "Sent"), ("DTMFEnd", "Sent")])

    def test_dtmfEndOfAGoneChannel(self):
        """A channel hung up while the key is down prints no DTMFEnd."""
        channel = self.call()
        self.sim.dtmf(channel, "1", durationMs=500)
        self.sender.send("Hangup", ("Channel", channel))
        self.advance(1)
        self.assertEqual(len(self.listener.events("DTMFBegin")), 1)
        self.assertEqual(self.listener.events("DTMFEnd"), [])

    def test_dtmfRefusals(self):
        """No such channel is a KeyError; a bad digit or direction a ValueError."""
        self.assertRaises(KeyError, self.sim.dtmf, "SIP/nobody-00000001", "1")
        channel = self.call()
        self.assertRaises(ValueError, self.sim.dtmf, channel, "12")
        self.assertRaises(ValueError, self.sim.dtmf, channel, "1", "Up")

    def test_pjsipPeerStatusAsCaptured(self):
        """A PJSIP PeerStatus has ChannelType, Peer and PeerStatus only, class system."""
        self.sim.peerStatus("PJSIP", "phone1", "Reachable")
        self.sim.peerStatus("PJSIP", "PJSIP/phone1", "Reachable")
        self.flush()
        status, same = self.listener.events("PeerStatus")
        self.assertEqual(same, status)
        self.assertEqual(list(status), captured("pjsip_register.listener.ami", "PeerStatus"))
        self.assertEqual(status, {"Event": "PeerStatus", "Privilege": "system,all",
                                  "ChannelType": "PJSIP", "Peer": "PJSIP/phone1",
                                  "PeerStatus": "Reachable"})

    def test_peerStatusRefusals(self):
        """22 has no chan_sip; PJSIP has no Registered nor Address; stock has no PingTime."""
        self.assertRaises(ValueError, self.sim.peerStatus, "SIP", "1001", "Reachable")
        self.assertRaises(ValueError, self.sim.peerStatus, "PJSIP", "1001", "Registered")
        self.assertRaises(ValueError, self.sim.peerStatus, "PJSIP", "1001", "Reachable",
                          address="10.0.0.1")
        self.assertRaises(ValueError, self.sim.peerStatus, "PJSIP", "SIP/1001", "Reachable")
        self.assertRaises(ValueError, self.sim.peerStatus, "PJSIP", "1001", "Reachable",
                          pingTime=12)

    def test_peerStatusFiltered(self):
        """Filter and Events mask apply to injected events."""
        self.listener.send("Filter", ("Operation", "Add"), ("Filter", "!Event: PeerStatus"))
        calls = self.peer("listener", events="call")
        self.flush()
        self.sim.peerStatus("PJSIP", "phone1", "Unreachable")
        self.flush()
        self.assertEqual(self.listener.events("PeerStatus") + calls.events("PeerStatus"), [])

    def test_patchedEventsRefused(self):
        """A stock 22 prints none of VICIdial's patched events."""
        channel = self.call()
        for inject in (lambda: self.sim.peerRegistered("SIP", "1001", "10.0.0.5:5060"),
                       lambda: self.sim.rtpDisconnect(channel, 1700000000),
                       lambda: self.sim.criticalTimeout("INVITE", "abc@1", 102, "10.0.0.5:5060",
                                                        32000),
                       lambda: self.sim.cpdResult(channel, "Voice"),
                       lambda: self.sim.sipHangupCause(channel, 486, "Busy Here")):
            self.assertRaises(ValueError, inject)


class Asterisk14InjectedTests(InjectedTestCase):
    dialect = "asterisk14"
    patched = True

    def test_noDtmf(self):
        """1.4 prints no DTMF event at all."""
        channel = self.call()
        self.sim.dtmf(channel, "1")
        self.advance(1)
        self.assertEqual([e for e in self.listener.events() if "DTMF" in e["Event"]], [])

    def test_peerStatus(self):
        """1.4's PeerStatus: no ChannelType, no Address; a qualify Time."""
        self.sim.peerStatus("SIP", "1001", "Registered", address="10.0.0.5", port=5060)
        self.sim.peerStatus("SIP", "1001", "Lagged", time=2100)
        self.flush()
        self.assertEqual(self.listener.messages()[-2:], [
            [("Event", "PeerStatus"), ("Privilege", "system,all"), ("Peer", "SIP/1001"),
             ("PeerStatus", "Registered")],
            [("Event", "PeerStatus"), ("Privilege", "system,all"), ("Peer", "SIP/1001"),
             ("PeerStatus", "Lagged"), ("Time", "2100")]])

    def test_patchedCallEvents(self):
        """The 1.4 patches' CPD-Result and SIP-Hangup-Cause name the channel's ids."""
        channel = self.call()
        ch = self.sim.channels[channel]
        self.sim.cpdResult(channel, "Answering-Machine", detailed="ignored on 1.4")
        self.sim.cpdResult(None, "Voice")
        self.sim.sipHangupCause(channel, 486, "Busy Here")
        self.flush()
        self.assertEqual(self.listener.messages()[-3:], [
            [("Event", "CPD-Result"), ("Privilege", "system,all"), ("ChannelDriver", "SIP"),
             ("Channel", channel), ("CallerIDName", CALLERID), ("Uniqueid", ch.uniqueid),
             ("Result", "Answering-Machine")],
            [("Event", "CPD-Result"), ("Privilege", "system,all"), ("ChannelDriver", "SIP"),
             ("Channel", "UNKNOWN"), ("CallerIDName", "UNKNOWN"), ("Uniqueid", "UNKNOWN"),
             ("Result", "Voice")],
            [("Event", "SIP-Hangup-Cause"), ("Privilege", "system,all"),
             ("ChannelDriver", "SIP"), ("Channel", channel), ("CallerIDName", CALLERID),
             ("Uniqueid", ch.uniqueid), ("Result", "486|Busy Here")]])

    def test_only14Patches(self):
        """1.4's patches print no PeerRegistered nor PingTime; causes are 400-900."""
        channel = self.call()
        self.assertRaises(ValueError, self.sim.peerRegistered, "SIP", "1001", "10.0.0.5:5060")
        self.assertRaises(ValueError, self.sim.peerStatus, "SIP", "1001", "Reachable",
                          pingTime=3)
        self.assertRaises(ValueError, self.sim.sipHangupCause, channel, 200, "OK")


class UnpatchedTests(InjectedTestCase):
    dialect = "asterisk14"

    def test_patchedNeedsPatches(self):
        """Without vicidialPatches even a version the patches exist for refuses them."""
        e = self.assertRaises(ValueError, self.sim.cpdResult, None, "Voice")
        self.assertIn("vicidialPatches=True", str(e))



def headers(peer, count: int) -> List[list]:
    """The last C{count} messages a raw client got, as header lists."""
    return peer.messages()[-count:]


class PeerStatusTests(InjectedTestCase):
    """PeerStatus as chan_sip (1.4 - 20) and res_pjsip (13+) of each version print it."""

    patched = True

    def statuses(self, dialect: str, *calls) -> List[list]:
        listener = self.use(dialect)
        for kwargs in calls:
            self.sim.peerStatus(**kwargs)
        self.flush()
        return [m[2:] for m in headers(listener, len(calls))]

    registered = dict(channelType="SIP", peer="1001", status="Registered",
                      address="10.0.0.5", port=5060)
    rejected = dict(channelType="SIP", peer="1001", status="Rejected",
                    cause="AUTH_SECRET_FAILED", address="10.0.0.5", port=5060)
    reachable = dict(channelType="SIP", peer="1001", status="Reachable", time=24)
    unreachable = dict(channelType="SIP", peer="1001", status="Unreachable", time=-1)

    def test_asterisk16(self):
        """1.6: ChannelType first; a registration's Address and Port apart; qualify Time."""
        self.assertEqual(self.statuses("asterisk16", self.registered, self.reachable), [
            [("ChannelType", "SIP"), ("Peer", "SIP/1001"), ("PeerStatus", "Registered"),
             ("Address", "10.0.0.5"), ("Port", "5060")],
            [("ChannelType", "SIP"), ("Peer", "SIP/1001"), ("PeerStatus", "Reachable"),
             ("Time", "24")]])

    def test_asterisk18And11(self):
        """1.8 and 11: a registration's Address is ip:port; a rejection keeps Port apart."""
        for dialect in ("asterisk18", "asterisk11"):
            self.assertEqual(self.statuses(dialect, self.registered, self.rejected), [
                [("ChannelType", "SIP"), ("Peer", "SIP/1001"), ("PeerStatus", "Registered"),
                 ("Address", "10.0.0.5:5060")],
                [("ChannelType", "SIP"), ("Peer", "SIP/1001"), ("PeerStatus", "Rejected"),
                 ("Cause", "AUTH_SECRET_FAILED"), ("Address", "10.0.0.5"), ("Port", "5060")]])

    def test_asterisk13(self):
        """13: chan_sip's qualify Time is lost on its way through stasis (Unreachable's
        string -1 survives); the patched build adds PingTime and MaxPing; PJSIP prints
        three headers."""
        self.assertEqual(self.statuses(
            "asterisk13", self.reachable, self.unreachable,
            dict(self.reachable, pingTime=24, maxPing=2000),
            dict(channelType="PJSIP", peer="1001", status="Reachable")), [
            [("ChannelType", "SIP"), ("Peer", "SIP/1001"), ("PeerStatus", "Reachable")],
            [("ChannelType", "SIP"), ("Peer", "SIP/1001"), ("PeerStatus", "Unreachable"),
             ("Time", "-1")],
            [("ChannelType", "SIP"), ("Peer", "SIP/1001"), ("PeerStatus", "Reachable"),
             ("PingTime", "24"), ("MaxPing", "2000")],
            [("ChannelType", "PJSIP"), ("Peer", "PJSIP/1001"), ("PeerStatus", "Reachable")]])

    def test_noPjsipBefore13(self):
        """There is no PJSIP before 13."""
        for dialect in ("asterisk14", "asterisk16", "asterisk18", "asterisk11"):
            self.use(dialect)
            self.assertRaises(ValueError, self.sim.peerStatus, "PJSIP", "1001", "Reachable")


# Which VICIdial-patched events each version's patched build prints.
PATCHED = {
    "asterisk14": {"CPD-Result", "SIP-Hangup-Cause"},
    "asterisk16": set(),
    "asterisk18": {"CPD-Result", "SIP-Hangup-Cause"},
    "asterisk11": {"SIP-Hangup-Cause"},
    "asterisk13": {"PeerRegistered", "SIPRTPDisconnect", "SIPCriticalTimeout", "PingTime"},
    "asterisk22": set(),
}


# The event each patched name is printed in.
PATCHED_EVENTS = {"CPD-Result": "CPD-Result", "SIP-Hangup-Cause": "SIP-Hangup-Cause",
                  "PeerRegistered": "PeerRegistered", "SIPRTPDisconnect": "SIPRTPDisconnect",
                  "SIPCriticalTimeout": "SIPCriticalTimeout", "PingTime": "PeerStatus"}


class PatchedEventTests(InjectedTestCase):
    """VICIdial's patched chan_sip events, on the versions its patches exist for."""

    patched = True

    def injections(self, channel: str) -> dict:
        return {
            "CPD-Result": lambda: self.sim.cpdResult(channel, "Answering-Machine"),
            "SIP-Hangup-Cause": lambda: self.sim.sipHangupCause(channel, 486, "Busy Here"),
            "PeerRegistered": lambda: self.sim.peerRegistered("SIP", "1001", "10.0.0.5:5060"),
            "SIPRTPDisconnect": lambda: self.sim.rtpDisconnect(channel, 1796667000),
            "SIPCriticalTimeout": lambda: self.sim.criticalTimeout(
                "INVITE", "abc@10.0.0.1", 102, "10.0.0.5:5060", 32000),
            "PingTime": lambda: self.sim.peerStatus("SIP", "1001", "Reachable", pingTime=3),
        }

    def test_offered(self):
        """Each version's patched build prints its patches' events and refuses the rest."""
        for dialect, offered in PATCHED.items():
            listener = self.use(dialect)
            channel = self.call()
            printed = set()
            for name, inject in self.injections(channel).items():
                try:
                    inject()
                except ValueError:
                    continue
                printed.add(name)
            self.flush()
            self.assertEqual(printed, offered, dialect)
            events = {e["Event"] for e in listener.events()} & (set(PATCHED_EVENTS) | {
                "PeerStatus"})
            expected = {PATCHED_EVENTS.get(name, name) for name in offered}
            self.assertEqual(events, expected, dialect)

    def test_asterisk18CpdResult(self):
        """1.8's NetBorder patch prints the CPD headers the old listener reads."""
        listener = self.use("asterisk18")
        channel = self.call()
        self.sim.cpdResult(channel, "Answering-Machine", "Machine-Greeting", "cid-1", "ref-1",
                           "campaign")
        self.flush()
        uniqueid = self.sim.channels[channel].uniqueid
        self.assertEqual(headers(listener, 1)[0], [
            ("Event", "CPD-Result"), ("Privilege", "system,all"), ("Channeltype", "SIP"),
            ("Channel", channel), ("CallerIDName", CALLERID), ("Uniqueid", uniqueid),
            ("CPDResult", "Answering-Machine"), ("CPDDetailedResult", "Machine-Greeting"),
            ("CPDCallID", "cid-1"), ("CPDReferenceID", "ref-1"),
            ("CPDCampaignName", "campaign")])

    def test_asterisk13PeerEvents(self):
        """13's patched build prints the headers the AMI2 listener requires of each."""
        listener = self.use("asterisk13")
        self.sim.peerRegistered("SIP", "1001", "10.0.0.5:5060")
        self.sim.rtpDisconnect("SIP/1001-00000001", 1796667000)
        self.sim.criticalTimeout("INVITE", "abc@10.0.0.1", 102, "10.0.0.5:5060", 32000)
        self.flush()
        self.assertEqual([m[2:] for m in headers(listener, 3)], [
            [("ChannelType", "SIP"), ("Peer", "SIP/1001"), ("Host", "10.0.0.5:5060")],
            [("Channel", "SIP/1001-00000001"), ("RTPLastRX", "1796667000")],
            [("Type", "INVITE"), ("CallID", "abc@10.0.0.1"), ("SeqNo", "102"),
             ("Host", "10.0.0.5:5060"), ("Timeout", "32000")]])
        self.assertEqual({m[1] for m in headers(listener, 3)}, {("Privilege", "system,all")})

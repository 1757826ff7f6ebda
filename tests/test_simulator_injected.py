"""Tests for the simulator's injected events: DTMF, peer status and VICIdial's patched events."""

from typing import List

from twisted.internet.task import Clock
from twisted.python.filepath import FilePath

from acqs.simulator import Simulator

from .test_simulator import CALLERID, SimulatorTestCase

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
        self.sim = Simulator(self.clock, dialect=self.dialect, vicidialPatches=self.patched)
        self.listener = self.peer("listener")
        self.sender = self.peer("sender", events="off")

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
        self.flush()
        [status] = self.listener.events("PeerStatus")
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
        self.assertRaises(ValueError, self.sim.peerStatus, "PJSIP", "PJSIP/1001", "Reachable")
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


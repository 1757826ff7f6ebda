"""
The simulator's dialects against what each Asterisk version's source prints
(the references are TAG:path:line in github:asterisk/asterisk; see
/work/notes/asterisk-versions.md): one table row per version.
"""

from typing import Dict, List, Optional

from twisted.internet.task import Clock

from acqs.ami.protocol import AMIProtocol
from acqs.simulator import Simulator
from acqs.simulator.__main__ import parse
from acqs.simulator.dialects import DIALECTS

from .test_simulator import CALLERID, SimulatorTestCase

BLOCK = ("Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName ConnectedLineNum"
         " ConnectedLineName Language AccountCode Context Exten Priority Uniqueid Linkedid")
HEAD = "Event Privilege "


def names(text: str) -> List[str]:
    return text.split()


# What each version prints, from its source.
FACTS: Dict[str, dict] = {
    "asterisk14": dict(
        greeting="Asterisk Call Manager/1.0",                      # 1.4.44:mc:2491
        newchannel=HEAD + "Channel State CallerIDNum CallerIDName Uniqueid",  # ch:894
        newstate=HEAD + "Channel State CallerID CallerIDName Uniqueid",       # ch:4492
        hangup=HEAD + "Channel Uniqueid Cause Cause-txt",                      # ch:1715
        callerid=("Newcallerid", HEAD + "Channel CallerID CallerIDName Uniqueid"
                                        " CID-CallingPres"),                  # ch:4138
        dial=("Dial", HEAD + "Source Destination CallerID CallerIDName SrcUniqueID"
                             " DestUniqueID"),                                 # app_dial.c:410
        dialEnd=None,
        coreShowChannel=None,                                  # no CoreShowChannels in 1.4
        status=HEAD + "Channel CallerID CallerIDNum CallerIDName Account State Context"
                      " Extension Priority Seconds Uniqueid ActionID",        # mc:1620
        concise=12,                                                  # 1.4.44:main/cli.c:605
        local=r"^Local/8600014@acqs-test-[0-9a-f]{4},1$",      # chan_local.c:804
        dtmf=[],                                                       # no DTMF event
        filter=False, fullyBooted=False, follows=True, anyBit=False,
    ),
    "asterisk16": dict(
        greeting="Asterisk Call Manager/1.1",                 # 1.6.2.24:include/.../manager.h
        newchannel=HEAD + "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName"
                          " AccountCode Exten Context Uniqueid",              # ch:960
        newstate=HEAD + "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName"
                        " Uniqueid",                                          # ch:5078
        hangup=HEAD + "Channel Uniqueid CallerIDNum CallerIDName Cause Cause-txt",  # ch:1888
        callerid=("NewCallerid", HEAD + "Channel CallerIDNum CallerIDName Uniqueid"
                                        " CID-CallingPres"),                   # ch:4721
        dial=("Dial", HEAD + "SubEvent Channel Destination CallerIDNum CallerIDName UniqueID"
                             " DestUniqueID Dialstring"),                     # app_dial.c:685
        dialEnd=HEAD + "SubEvent Channel UniqueID DialStatus",               # app_dial.c:701
        coreShowChannel="Event ActionID Channel UniqueID Context Extension Priority"
                        " ChannelState ChannelStateDesc Application ApplicationData"
                        " CallerIDnum Duration AccountCode BridgedChannel BridgedUniqueID",
        status=HEAD + "Channel CallerIDNum CallerIDName Accountcode ChannelState"
                      " ChannelStateDesc Context Extension Priority Seconds Uniqueid"
                      " ActionID",                                             # mc:2058
        concise=13,
        local=r"^Local/8600014@acqs-test-[0-9a-f]{4};1$",      # chan_local.c:918
        dtmf=[("DTMF", "Yes", "No"), ("DTMF", "No", "Yes")],            # ch:2640
        filter=False, fullyBooted=False, follows=True, anyBit=True,
    ),
    "asterisk18": dict(
        greeting="Asterisk Call Manager/1.1",
        newchannel=HEAD + "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName"
                          " AccountCode Exten Context Uniqueid",              # ch:1342
        newstate=HEAD + "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName"
                        " ConnectedLineNum ConnectedLineName Uniqueid",       # ch:7135
        hangup=HEAD + "Channel Uniqueid CallerIDNum CallerIDName ConnectedLineNum"
                      " ConnectedLineName Cause Cause-txt",                    # ch:2896
        callerid=("NewCallerid", HEAD + "Channel CallerIDNum CallerIDName Uniqueid"
                                        " CID-CallingPres"),                   # ch:6473
        dial=("Dial", HEAD + "SubEvent Channel Destination CallerIDNum CallerIDName"
                             " ConnectedLineNum ConnectedLineName UniqueID DestUniqueID"
                             " Dialstring"),                                   # app_dial.c:790
        dialEnd=HEAD + "SubEvent Channel UniqueID DialStatus",
        coreShowChannel="Event ActionID Channel UniqueID Context Extension Priority"
                        " ChannelState ChannelStateDesc Application ApplicationData"
                        " CallerIDnum CallerIDname ConnectedLineNum ConnectedLineName"
                        " Duration AccountCode BridgedChannel BridgedUniqueID",  # mc:4577
        status=HEAD + "Channel CallerIDNum CallerIDName ConnectedLineNum ConnectedLineName"
                      " Accountcode ChannelState ChannelStateDesc Context Extension Priority"
                      " Seconds Uniqueid ActionID",                            # mc:3380
        concise=14,                                                # 1.8.32.3:main/cli.c:850
        local=r"^Local/8600014@acqs-test-[0-9a-f]{8};1$",      # chan_local.c:1216
        dtmf=[("DTMF", "Yes", "No"), ("DTMF", "No", "Yes")],            # ch:3712
        filter=False, fullyBooted=True, follows=True, anyBit=True,
    ),
    "asterisk11": dict(
        greeting="Asterisk Call Manager/1.3",
        newchannel=HEAD + "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName"
                          " AccountCode Exten Context Uniqueid",              # ch:1155
        newstate=HEAD + "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName"
                        " ConnectedLineNum ConnectedLineName Uniqueid",       # ch:7471
        hangup=HEAD + "Channel Uniqueid CallerIDNum CallerIDName ConnectedLineNum"
                      " ConnectedLineName AccountCode Cause Cause-txt",        # ch:2862
        callerid=("NewCallerid", HEAD + "Channel CallerIDNum CallerIDName Uniqueid"
                                        " CID-CallingPres"),                   # ch:6768
        dial=("Dial", HEAD + "SubEvent Channel Destination CallerIDNum CallerIDName"
                             " ConnectedLineNum ConnectedLineName UniqueID DestUniqueID"
                             " Dialstring"),                                   # app_dial.c:837
        dialEnd=HEAD + "SubEvent Channel UniqueID DialStatus",               # app_dial.c:869
        coreShowChannel="Event ActionID Channel UniqueID Context Extension Priority"
                        " ChannelState ChannelStateDesc Application ApplicationData"
                        " CallerIDnum CallerIDname ConnectedLineNum ConnectedLineName"
                        " Duration AccountCode BridgedChannel BridgedUniqueID",  # mc:5062
        status=HEAD + "Channel CallerIDNum CallerIDName ConnectedLineNum ConnectedLineName"
                      " Accountcode ChannelState ChannelStateDesc Context Extension Priority"
                      " Seconds Uniqueid ActionID",                            # mc:3660
        concise=14,                                               # 11.25.3:main/cli.c:942
        local=r"^Local/8600014@acqs-test-[0-9a-f]{8};1$",
        dtmf=[("DTMF", "Yes", "No"), ("DTMF", "No", "Yes")],            # ch:3750
        filter=True, fullyBooted=True, follows=True, anyBit=True,
    ),
    "asterisk13": dict(
        greeting="Asterisk Call Manager/2.10.6",                       # 13.38.3 manager.h:57
        newchannel=HEAD + BLOCK, newstate=HEAD + BLOCK,                 # 13.38.3:mch:462
        hangup=HEAD + BLOCK + " Cause Cause-txt",                         # mch:576
        callerid=("NewCallerid", HEAD + BLOCK + " CID-CallingPres"),     # mch:647
        dial=("DialBegin", HEAD + BLOCK + " " + " ".join("Dest" + n for n in names(BLOCK))
              + " DialString"),                                           # 12.8.2:mch:1011
        dialEnd=None,
        coreShowChannel="Event ActionID " + BLOCK + " Application ApplicationData Duration"
                        " BridgeId",                                     # 13.38.3:mc:6354
        status=HEAD + BLOCK.replace(" Language AccountCode", " Accountcode") + " Type DNID"
               " EffectiveConnectedLineNum EffectiveConnectedLineName TimeToHangup BridgeID"
               " Application Data Nativeformats Readformat Readtrans Writeformat Writetrans"
               " Callgroup Pickupgroup Seconds ActionID",                 # mc:4730
        concise=14,                                               # 13.38.3:main/cli.c:958
        local=r"^Local/8600014@acqs-test-[0-9a-f]{8};1$",
        dtmf=[("DTMFBegin", None, None), ("DTMFEnd", None, None)],      # mch:893/942
        filter=True, fullyBooted=True, follows=True, anyBit=True,
    ),
    "asterisk22": dict(
        greeting="Asterisk Call Manager/11.0.0",                        # [22-cap]
        newchannel=HEAD + BLOCK, newstate=HEAD + BLOCK,
        hangup=HEAD + BLOCK + " Cause Cause-txt",
        callerid=("NewCallerid", HEAD + BLOCK + " CID-CallingPres"),
        dial=("DialBegin", HEAD + BLOCK + " " + " ".join("Dest" + n for n in names(BLOCK))
              + " DialString"),
        dialEnd=None,
        coreShowChannel="Event ActionID " + BLOCK + " Application ApplicationData Duration"
                        " BridgeId",
        status=HEAD + BLOCK + " Type DNID EffectiveConnectedLineNum EffectiveConnectedLineName"
               " TimeToHangup BridgeID Application Data Nativeformats Readformat Readtrans"
               " Writeformat Writetrans Callgroup Pickupgroup Seconds ActionID",
        concise=14,
        local=r"^Local/8600014@acqs-test-[0-9a-f]{8};1$",
        dtmf=[("DTMFBegin", None, None), ("DTMFEnd", None, None)],
        filter=True, fullyBooted=True, follows=False, anyBit=True,
    ),
}


class DialectFactsMixin:
    """The table row of C{self.dialect} holds for the simulator."""

    dialect = ""

    @property
    def facts(self) -> dict:
        return FACTS[self.dialect]

    def setUp(self):
        self.clock = Clock()
        self.sim = Simulator(self.clock, dialect=self.dialect)
        self.listener = self.peer("listener")
        self.sender = self.peer("sender", events="off")

    def dialled(self) -> None:
        """Local/8600030 dials Local/8600012, which rings 3 s and talks 2 s."""
        self.originate(self.sender, "Local/8600030@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        self.advance(10)

    def held(self) -> str:
        """An answered call that stays up (8600014); its originated channel."""
        self.originate(self.sender, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        self.advance(1)
        return next(n for n in self.sim.channels if n.endswith("1"))

    def layout(self, name: str, channel: Optional[str] = None) -> str:
        for event in self.listener.events(name):
            if channel is None or event.get("Channel") == channel:
                return " ".join(event)
        self.fail(f"no {name} event")

    def test_greeting(self):
        """The greeting names this version's AMI version."""
        self.assertEqual(self.listener.greeting.decode(), self.facts["greeting"])

    def test_channelEvents(self):
        """Newchannel, Newstate, Hangup and the caller ID event print this version's headers."""
        self.dialled()
        self.assertEqual(self.layout("Newchannel"), self.facts["newchannel"])
        self.assertEqual(self.layout("Newstate"), self.facts["newstate"])
        self.assertEqual(self.layout("Hangup"), self.facts["hangup"])
        event, layout = self.facts["callerid"]
        self.assertEqual(self.layout(event), layout)

    def test_dial(self):
        """Dial() prints this version's dial event(s); the originate's own dial only 12+."""
        self.dialled()
        event, layout = self.facts["dial"]
        begins = [e for e in self.listener.events(event) if e.get("SubEvent", "Begin") ==
                  "Begin"]
        self.assertEqual(" ".join(begins[-1]), layout)
        ends = [e for e in self.listener.events("Dial") if e.get("SubEvent") == "End"]
        if self.facts["dialEnd"] is None:
            self.assertEqual(ends, [])
        else:
            self.assertEqual([" ".join(e) for e in ends], [self.facts["dialEnd"]])
            self.assertEqual(ends[0]["DialStatus"], "ANSWER")
        self.assertEqual(len(begins), 2 if event == "DialBegin" else 1)

    def test_coreShowChannels(self):
        """CoreShowChannel items as this version prints them (1.4 has no such action)."""
        channel = self.held()
        self.sender.send("CoreShowChannels", ("ActionID", "l"))
        self.flush()
        items = [e for e in self.sender.events("CoreShowChannel") if e["Channel"] == channel]
        if self.facts["coreShowChannel"] is None:
            self.assertEqual(self.sender.responses()[-1]["Message"], "Invalid/unknown command")
            return
        self.assertEqual(" ".join(items[0]), self.facts["coreShowChannel"])
        self.assertEqual(items[0].get("CallerIDName", items[0].get("CallerIDname")),
                         None if self.dialect == "asterisk16" else CALLERID)

    def test_status(self):
        """A Status item of a channel running the dialplan, with the ActionID last."""
        channel = self.held()
        self.sender.send("Status", ("ActionID", "s"))
        self.flush()
        [item] = [e for e in self.sender.events("Status") if e["Channel"] == channel]
        self.assertEqual(" ".join(item), self.facts["status"])

    def test_conciseAndCommandFraming(self):
        """core show channels concise: this version's fields, in its Command framing."""
        channel = self.held()
        client = self.client("sender")
        d = client.command("core show channels concise")
        self.flush()
        lines = self.successResultOf(d)
        [line] = [x for x in lines if x.startswith(channel + "!")]
        fields = line.split("!")
        self.assertEqual(len(fields), self.facts["concise"])
        self.assertEqual(fields[:6], [channel, "acqs-test", "8600014", "2", "Up", "Wait"])
        self.assertNotIn(CALLERID, fields)  # no caller name in any version
        self.sender.send("Command", ("ActionID", "c"), ("Command", "core show version"))
        self.flush()
        raw = bytes(self.sender.received)
        if self.facts["follows"]:
            self.assertIn(b"Response: Follows\r\nPrivilege: Command\r\nActionID: c\r\n", raw)
            self.assertTrue(raw.endswith(b"--END COMMAND--\r\n\r\n"))
        else:
            self.assertIn(b"Response: Success\r\nActionID: c\r\n"
                          b"Message: Command output follows\r\nOutput: ", raw)

    def test_localNames(self):
        """Local channel names: separator and the digits after the device."""
        self.assertRegex(self.held(), self.facts["local"])

    def test_dtmf(self):
        """A digit prints this version's DTMF events, or none in 1.4."""
        channel = self.held()
        self.sim.dtmf(channel, "7", durationMs=80)
        self.advance(0.25)
        printed = [(e["Event"], e.get("Begin"), e.get("End")) for e in self.listener.events()
                   if e["Event"].startswith("DTMF")]
        self.assertEqual(printed, self.facts["dtmf"])
        for event in self.listener.events():
            if event["Event"].startswith("DTMF"):
                self.assertEqual((event["Digit"], event["Privilege"]), ("7", "dtmf,all"))

    def test_filterAction(self):
        """Filter exists from 10 on; before, it is an unknown action."""
        self.listener.send("Filter", ("ActionID", "f"), ("Operation", "Add"),
                           ("Filter", "Event: Hangup"))
        self.flush()
        message = self.listener.responses()[-1]["Message"]
        if self.facts["filter"]:
            self.assertEqual(message, "Success")
        else:
            self.assertIn("Invalid/unknown command", message)

    def test_fullyBooted(self):
        """FullyBooted follows a login with system events from 1.8 on."""
        self.assertEqual(bool(self.listener.events("FullyBooted")), self.facts["fullyBooted"])

    def test_writePermission(self):
        """A user who may write call: Status (system,call,reporting from 1.6: any bit does)
        passes; Originate (call in 1.4, originate from 1.6) passes in 1.4 only."""
        self.sim.users["partial"] = type(self.sim.users["sender"])(
            "partial", "partialsecret", "all", "call")
        partial = self.peer("partial", events="off")
        partial.send("Status", ("ActionID", "s"))
        partial.send("Originate", ("ActionID", "o"), ("Channel", "Local/8600100@acqs-test"),
                     ("Context", "acqs-test"), ("Exten", "8600100"), ("Priority", "1"),
                     ("Async", "true"))
        self.flush()
        messages = {r["ActionID"]: r["Message"] for r in partial.responses()[1:]}
        self.assertEqual(messages["s"], "Channel status will follow")
        # Originate needs call in 1.4, originate from 1.6.
        self.assertEqual(messages["o"] == "Permission denied", self.facts["anyBit"])

    def test_syncOriginate(self):
        """A sync Originate is answered once the call is up, the session's next action after
        it, and no OriginateResponse is printed (the same in every version)."""
        self.originate(self.sender, "Local/8600012@acqs-test")  # rings 3 s
        self.sender.send("Ping", ("ActionID", "p"))
        self.advance(2.75)
        self.assertEqual(len(self.sender.responses()), 1)  # the login's
        self.advance(0.5)
        self.assertEqual([r.get("ActionID") for r in self.sender.responses()],
                         ["login", "orig", "p"])
        self.assertEqual(self.sender.responses()[1]["Message"], "Originate successfully queued")
        self.assertEqual(self.listener.events("OriginateResponse"), [])

    def test_eventClasses(self):
        """An Events mask naming dtmf means nothing to 1.4, whose classes lack it."""
        keys = self.peer("listener", events="dtmf")
        channel = self.held()
        self.sim.dtmf(channel, "1")
        self.advance(0.25)
        self.assertEqual(bool(keys.events()), bool(self.facts["dtmf"]))


def _dialectTests(name: str) -> type:
    return type(f"{name.capitalize()}FactsTests", (DialectFactsMixin, SimulatorTestCase),
                {"dialect": name, "__doc__": f"The {name} dialect prints as its source does."})


for _name in FACTS:
    globals()[_dialectTests(_name).__name__] = _dialectTests(_name)


class RegistryTests(SimulatorTestCase):
    def test_everyDialectHasFacts(self):
        """Every dialect has a row in the table of facts."""
        self.assertEqual(set(DIALECTS), set(FACTS))

    def test_commandLineTakesEveryDialect(self):
        """python -m acqs.simulator --dialect accepts every dialect, and a patched build."""
        for name in DIALECTS:
            self.assertEqual(parse(["--dialect", name]).dialect, name)
        self.assertEqual((parse([]).vicidial_patches, parse(["--vicidial-patches"])
                          .vicidial_patches), (False, True))

    def test_clientReadsEveryGreeting(self):
        """acqs' client logs in to every dialect and reads its AMI version."""
        for name in DIALECTS:
            self.sim = Simulator(self.clock, dialect=name)
            client = self.connect(AMIProtocol(self.clock, timeout=5))
            d = client.login("sender", "sendersecret", "off")
            self.flush()
            self.successResultOf(d)
            self.assertEqual("Asterisk Call Manager/" + client.amiVersion,
                             FACTS[name]["greeting"])



class MasqueradeMixin:
    """
    A Redirect of the dialled leg of a bridge (1.4 - 11: a masquerade): the
    leg a Local channel's C{;2} dials, with C{/n} so that the Local pair is
    not optimised away first.
    """

    dialect = ""

    def setUp(self):
        self.clock = Clock()
        self.sim = Simulator(self.clock, dialect=self.dialect)
        self.listener = self.peer("listener")
        self.sender = self.peer("sender", events="off")
        self.originate(self.sender, "Local/915551234@default/n", "8600014", "acqs-test",
                       ("Async", "true"))
        self.advance(1.5)
        [self.sip] = [n for n in self.sim.channels if n.startswith("SIP/")]
        self.before = self.sim.channels[self.sip].uniqueid
        self.seen = len(self.listener.events())
        self.sender.send("Redirect", ("Channel", self.sip), ("Context", "default"),
                         ("Exten", "8600051"), ("Priority", "1"))
        self.advance(1)

    def events(self, name: str) -> List[dict]:
        return [e for e in self.listener.events()[self.seen:] if e["Event"] == name]

    def renamed(self) -> List[tuple]:
        return [(e.get("Oldname", e.get("Channel")), e["Newname"], e["Uniqueid"])
                for e in self.events("Rename")]


class ClassicMasqueradeMixin(MasqueradeMixin):
    def test_zombie(self):
        """AsyncGoto/<name> takes the name with a new uniqueid; the old channel is renamed
        <MASQ> then AsyncGoto/<name><ZOMBIE> and hangs up with its old uniqueid."""
        live = self.sim.channels[self.sip]
        self.assertNotEqual(live.uniqueid, self.before)
        zombie = f"AsyncGoto/{self.sip}<ZOMBIE>"
        self.assertEqual(self.renamed(), [
            (self.sip, self.sip + "<MASQ>", self.before),
            (f"AsyncGoto/{self.sip}", self.sip, live.uniqueid),
            (self.sip + "<MASQ>", zombie, self.before)])
        [new] = self.events("Newchannel")
        self.assertEqual((new["Channel"], new["Uniqueid"]),
                         (f"AsyncGoto/{self.sip}", live.uniqueid))
        hangups = [(e["Channel"], e["Uniqueid"]) for e in self.events("Hangup")]
        self.assertIn((zombie, self.before), hangups)
        self.assertNotIn(self.sip, [channel for channel, _ in hangups])
        self.assertEqual((live.callerIDName, live.context, live.exten),
                         (CALLERID, "default", "8600051"))
        self.assertEqual(self.events("MeetmeJoin")[0]["Uniqueid"], live.uniqueid)
        self.assertEqual(bool(self.events("Masquerade")), self.dialect != "asterisk14")

    def test_listedUnderItsName(self):
        """After the masquerade the live channel is listed under the old name."""
        self.sender.send("Command", ("ActionID", "c"),
                         ("Command", "core show channels concise"))
        self.flush()
        self.assertIn(f"\n{self.sip}!default!8600051!".encode(), bytes(self.sender.received))
        self.assertNotIn(b"ZOMBIE", bytes(self.sender.received))


class LocalOptimisationMixin:
    """A Local channel whose C{;2} dials a carrier leg, without C{/n}."""

    dialect = ""

    def setUp(self):
        self.clock = Clock()
        self.sim = Simulator(self.clock, dialect=self.dialect)
        self.listener = self.peer("listener")
        self.sender = self.peer("sender", events="off")

    def call(self, channel: str = "Local/915551234@default") -> None:
        self.originate(self.sender, channel, "8600014", "acqs-test", ("Async", "true"))
        self.advance(1.5)

    def named(self, prefix: str) -> List[dict]:
        return [e for e in self.listener.events() if e["Event"] in ("Newchannel", "Rename")
                and (e.get("Channel") or e.get("Oldname")).startswith(prefix)]


class ClassicLocalOptimisationMixin(LocalOptimisationMixin):
    def test_optimisedAway(self):
        """Once ;2 is bridged to the carrier leg, that leg is masqueraded into ;1: ;1's
        uniqueid and dialplan go on as SIP/carrier-..., the leg's old uniqueid hangs up as
        Local/...;1<ZOMBIE>, and ;2 ends."""
        self.call()
        [one, two, sip] = [e["Uniqueid"] for e in self.listener.events("Newchannel")]
        [live] = self.sim.channels.values()
        self.assertTrue(live.name.startswith("SIP/carrier-"), live.name)
        self.assertEqual((live.uniqueid, live.exten, live.tech, live.callerIDName),
                         (one, "8600014", "SIP", CALLERID))
        [oneName] = [e["Channel"] for e in self.listener.events("Newchannel")
                     if e["Uniqueid"] == one]
        self.assertEqual(
            [(e.get("Oldname", e.get("Channel")), e["Newname"], e["Uniqueid"])
             for e in self.listener.events("Rename")],
            [(live.name, live.name + "<MASQ>", sip), (oneName, live.name, one),
             (live.name + "<MASQ>", oneName + "<ZOMBIE>", sip)])
        hangups = [(e["Channel"], e["Uniqueid"]) for e in self.listener.events("Hangup")]
        self.assertEqual(hangups[0], (oneName + "<ZOMBIE>", sip))
        self.assertIn(two, [u for _, u in hangups])
        self.sim.hangup(live.name)
        self.advance(1)
        self.assertEqual(self.listener.events("Hangup")[-1]["Uniqueid"], one)

    def test_farEndStillEnds(self):
        """The carrier's far end hanging up after its hold time ends the optimised call."""
        self.call("Local/95551234@default")  # default's far end talks 5 s
        [live] = self.sim.channels.values()
        self.advance(5)
        self.assertEqual(self.sim.channels, {})
        self.assertEqual(self.listener.events("Hangup")[-1]["Uniqueid"], live.uniqueid)

    def test_notWithN(self):
        """Local/.../n is never optimised away."""
        self.call("Local/915551234@default/n")
        self.assertEqual(len(self.sim.channels), 3)
        self.assertEqual(self.listener.events("Rename"), [])


class StasisLocalOptimisationMixin(LocalOptimisationMixin):
    def test_keptInThePath(self):
        """12+: a Local pair whose ;1 is not in a bridge stays, as on the real 22."""
        self.call()
        self.assertEqual(len(self.sim.channels), 3)
        self.assertNotIn("ZOMBIE", bytes(self.listener.received).decode())


class StasisMasqueradeMixin(MasqueradeMixin):
    def test_noZombie(self):
        """12+: the redirected channel keeps its name and uniqueid; no Rename, no zombie."""
        self.assertEqual(self.sim.channels[self.sip].uniqueid, self.before)
        self.assertEqual(self.renamed(), [])
        self.assertNotIn("ZOMBIE", bytes(self.listener.received).decode())


for _name in FACTS:
    _stasis = _name in ("asterisk13", "asterisk22")
    for _base, _what, _doc in (
            (StasisMasqueradeMixin if _stasis else ClassicMasqueradeMixin, "Masquerade",
             "Redirect of a bridged leg"),
            (StasisLocalOptimisationMixin if _stasis else ClassicLocalOptimisationMixin,
             "LocalOptimisation", "A Local channel dialling a carrier leg")):
        _case = type(f"{_name.capitalize()}{_what}Tests", (_base, SimulatorTestCase),
                     {"dialect": _name, "__doc__": f"{_doc} on {_name}."})
        globals()[_case.__name__] = _case
del _stasis, _base, _what, _doc, _case

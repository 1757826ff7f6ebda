"""
How each Asterisk version prints what happened.

Asterisk 22 (C{"asterisk22"}) is printed as the captures in
C{tests/data/asterisk22/} show it: header names and orders, empty values,
C{<unknown>} caller IDs, C{Privilege: Call} and a trailing ActionID on
C{Status}, the list framing, the texts of responses.  What the captures do
not show was checked by probing a private Asterisk 22 of the same build
(not committed): the error texts of refused actions (C{Missing action in
request}, C{Must specify AuthType}, C{Already authenticated}, C{Channel not
specified}, C{Invalid channel}, C{Invalid priority}, C{Invalid timeout},
C{No channel specified}, C{Channel does not exist: NAME}, C{No command
provided}, C{No such channel}), C{Dual Redirect successful}, the C{Events}
action's answer, C{InvalidPassword}/C{InvalidAccountID}/
C{ChallengeResponseFailed}, C{core show channels} with calls, C{core show
uptime}, an unanswered C{;1} hung up by the Hangup action, and an
Application originate.  That build has no app_meetme (C{meetme list} is an
unknown command there); the simulator answers as an Asterisk 22 with
app_meetme loaded would, from C{apps/app_meetme.c} (read, not copied):
C{MeetmeJoin}/C{MeetmeLeave}/C{MeetmeEnd} and the C{meetme list} line with
its C{(Request to Talk)} column.

Asterisk 1.4 (C{"asterisk14"}, AMI 1.0) was not captured; its formats come
from reading the 1.4 sources (never copied): C{main/manager.c} (greeting
C{Asterisk Call Manager/1.0}, C{Response: Pong}, the one-second sleep
before C{Authentication failed}, C{Invalid/unknown command},
C{Authentication Required} before login, C{See ya} for a Logoff before
login, C{Already logged in},
C{Response: Follows} / C{Privilege: Command} / C{--END COMMAND--} for
Command, C{Status} with C{CallerID}/C{Account}/C{State}/C{Extension} and a
bare C{StatusComplete}, C{OriginateResponse} with C{CallerID} and
C{Uniqueid: <null>} on failure, event classes system/call/log/verbose/
command/agent/user/config, and events filtered by read permission and
event mask); C{main/channel.c} (C{Newchannel} with C{State} and
C{CallerIDNum}, C{Newstate} with C{State} and C{CallerID},
C{Newcallerid} with C{<Unknown>}, C{Hangup} with C{Cause}/C{Cause-txt},
C{Link}/C{Unlink}); C{channels/chan_local.c} (C{Local/exten@context-XXXX,1}
and C{,2}, four random hex digits); C{main/pbx.c} (a C{Newexten} for every
application run); C{apps/app_dial.c} (the C{Dial} event);
C{apps/app_meetme.c} (C{meetme list} lines, C{No such conference});
C{main/cli.c} of 1.2/1.4 (the C{core show channels} layout).  Events
Asterisk 1.4 did not have (C{NewConnectedLine}, C{LocalBridge},
C{DialBegin} of an originate, C{DialState}, C{DialEnd},
C{DeviceStateChange}, C{HangupRequest}, C{SoftHangupRequest}, bridges,
C{TestEvent}, C{FullyBooted}, security events) print nothing.

Simplified in 1.4: C{;1}/C{,1} gets C{Newstate Ringing} as in 22; a
non-Local channel is named with a counter (1.4's chan_sip used a pointer);
C{VarSet} is not printed; C{MeetmeJoin}/C{MeetmeLeave} carry Channel,
Uniqueid, Meetme and Usernum only; C{CallerID1}/C{CallerID2} of C{Link}
print C{(null)} for a channel without a number, as glibc prints a NULL.
"""

from typing import List, Optional, Sequence, Tuple

from ..ami.message import Header, encode
from .channels import UNKNOWN, Channel, causeText
from .events import DIALPLAN_UNCHANGED, LOCAL_COPY, PSEUDO_APP, Event

CALL, DIALPLAN, SYSTEM, SECURITY, REPORTING = "call", "dialplan", "system", "security", "reporting"
DTMF = "dtmf"

# Events that reach the manager from outside a call the simulator plays: a
# dialect computes their fields when they are injected (L{Dialect.peerStatus}
# and the like), and prints them as they are, class system.
PEER_EVENTS = frozenset(["PeerStatus", "PeerRegistered", "SIPRTPDisconnect",
                         "SIPCriticalTimeout", "CPD-Result", "SIP-Hangup-Cause"])
# VICIdial's patched chan_sip (no Asterisk release prints these); "PingTime"
# stands for PeerStatus' PingTime and MaxPing headers.
PATCHED = frozenset(["PeerRegistered", "SIPRTPDisconnect", "SIPCriticalTimeout", "CPD-Result",
                     "SIP-Hangup-Cause", "PingTime"])
PEER_STATES = {"SIP": ("Registered", "Unregistered", "Rejected", "Reachable", "Lagged",
                       "Unreachable"),
               "PJSIP": ("Reachable", "Unreachable")}


def _seconds(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Dialect:
    """What both dialects share; subclasses fill in the version's texts."""

    name = ""
    greeting = b""
    classes: Tuple[str, ...] = ()
    checksOriginateTarget = False
    hasFullyBooted = False
    hasSecurityEvents = False
    version = ""
    chanlistFormat = ""
    noConferences = ""
    # Session texts and rules
    unauthenticated = ""
    alreadyLoggedIn = ""
    anonymousLogoff: Optional[str] = None   # Message of Logoff before Login, if not Goodbye
    authority: dict = {}                     # action -> classes it needs
    unsupportedActions: frozenset = frozenset()
    oldCommandNames = False                  # "show channels" for "core show channels"
    peerTypes: Tuple[str, ...] = ("SIP",)    # channel drivers that print PeerStatus
    patchedEvents: frozenset = frozenset()   # of PATCHED, those VICIdial's patches add here

    def __init__(self, patched: bool = False):
        self.patched = patched  # a build with VICIdial's chan_sip patches

    def offers(self, name: str) -> None:
        """Raise ValueError unless this build prints the VICIdial-patched C{name}."""
        if name not in self.patchedEvents:
            raise ValueError(f"no VICIdial patch prints {name} on {self.name}")
        if not self.patched:
            raise ValueError(f"{name} comes only from VICIdial's patched chan_sip: make the"
                             " Simulator with vicidialPatches=True")

    def parseClasses(self, text: str) -> frozenset:
        """A comma list of classes (C{all} for every one) as a set."""
        words = {w.strip().lower() for w in (text or "").split(",")}
        if "all" in words:
            return frozenset(self.classes)
        return frozenset(w for w in words if w in self.classes)

    def privilege(self, category: str) -> str:
        return f"{category},all"

    # Events from outside the simulated calls: their fields as this version prints them

    peerChannelType = True        # PeerStatus starts with ChannelType (1.6 and later)
    peerDetails: Tuple[str, ...] = ("Cause", "Address", "Port", "Time")
    peerAddressWithPort = True    # a registration's Address is ip:port (1.8 and later)
    peerTimeIfUnreachable = False  # the stasis quirk of 12-20: qualify times are lost
    noCallerName = UNKNOWN        # CallerIDName of a VICIdial event for a channel without one

    def peerStatus(self, channelType: str, peer: str, status: str,
                   details: Sequence[Tuple[str, Optional[str]]]) -> List[Header]:
        """
        A C{PeerStatus} of C{channelType/peer}; C{details} gives Cause,
        Address, Port, Time, PingTime and MaxPing, None where absent.
        """
        if channelType not in self.peerTypes:
            raise ValueError(f"{self.name} has no {channelType} peers: use one of"
                             f" {', '.join(self.peerTypes)}")
        if status not in PEER_STATES[channelType]:
            raise ValueError(f"{channelType} prints no PeerStatus {status!r}")
        if "/" in peer:
            raise ValueError(f"give the peer's name without its technology, not {peer!r}")
        given = {k: v for k, v in details if v is not None}
        if "PingTime" in given or "MaxPing" in given:
            self.offers("PingTime")
        headers = [("ChannelType", channelType)] if self.peerChannelType else []
        headers += [("Peer", f"{channelType}/{peer}"), ("PeerStatus", status)]
        if channelType == "PJSIP":
            stray = set(given) & {"Cause", "Address", "Port", "Time"}
            if stray:
                raise ValueError(f"a PJSIP PeerStatus carries no {', '.join(sorted(stray))}")
        else:
            if self.peerAddressWithPort and status == "Registered" and "Port" in given:
                given["Address"] = f"{given.get('Address', '')}:{given.pop('Port')}"
            if self.peerTimeIfUnreachable and status != "Unreachable":
                given.pop("Time", None)
            headers += [(k, given[k]) for k in self.peerDetails if k in given]
        return headers + [(k, given[k]) for k in ("PingTime", "MaxPing") if k in given]

    def peerRegistered(self, channelType: str, peer: str, host: str) -> List[Header]:
        self.offers("PeerRegistered")
        return [("ChannelType", channelType), ("Peer", f"{channelType}/{peer}"), ("Host", host)]

    def rtpDisconnect(self, channel: str, lastRx: str) -> List[Header]:
        self.offers("SIPRTPDisconnect")
        return [("Channel", channel), ("RTPLastRX", lastRx)]

    def criticalTimeout(self, kind: str, callID: str, seqNo: str, host: str,
                        timeout: str) -> List[Header]:
        self.offers("SIPCriticalTimeout")
        return [("Type", kind), ("CallID", callID), ("SeqNo", seqNo), ("Host", host),
                ("Timeout", timeout)]

    def _owner(self, ch: Optional[Channel]) -> List[Header]:
        if ch is None:
            return [("Channel", "UNKNOWN"), ("CallerIDName", "UNKNOWN"), ("Uniqueid", "UNKNOWN")]
        return [("Channel", ch.name), ("CallerIDName", ch.callerIDName or self.noCallerName),
                ("Uniqueid", ch.uniqueid)]

    def cpdResult(self, ch: Optional[Channel], result: str, detailed: str, callID: str,
                  referenceID: str, campaign: str) -> List[Header]:
        """NetBorder's call progress result (1.8's patch; 1.4 overrides)."""
        self.offers("CPD-Result")
        return [("Channeltype", "SIP")] + self._owner(ch) + [
            ("CPDResult", result), ("CPDDetailedResult", detailed), ("CPDCallID", callID),
            ("CPDReferenceID", referenceID), ("CPDCampaignName", campaign)]

    def sipHangupCause(self, ch: Channel, code: int, reason: str) -> List[Header]:
        self.offers("SIP-Hangup-Cause")
        return [("ChannelDriver", "SIP")] + self._owner(ch) + [("Result", f"{code}|{reason}")]

    # Session texts

    def unknownAction(self, action: str) -> str:
        raise NotImplementedError

    def permitted(self, granted: frozenset, needed: frozenset) -> bool:
        raise NotImplementedError

    # Events

    def category(self, event: Event) -> Optional[str]:
        raise NotImplementedError

    def render(self, event: Event) -> Optional[List[Header]]:
        """The headers after C{Event} and C{Privilege}, or None if not printed."""
        raise NotImplementedError

    def eventName(self, event: Event) -> str:
        return event.name

    def renderBytes(self, event: Event) -> Optional[Tuple[str, bytes]]:
        """C{(class, wire bytes)} of an event, or None if not printed."""
        category = self.category(event)
        if category is None:
            return None
        body = self.render(event)
        if body is None:
            return None
        headers = [("Event", self.eventName(event)), ("Privilege", self.privilege(category))]
        return category, encode(headers + body)

    # CLI

    def noSuchCommand(self, command: str, best: str) -> str:
        raise NotImplementedError

    def meetmeLine(self, user, now: float) -> str:
        raise NotImplementedError

    hasTalkRequest = False  # MeetMe's "(Request to Talk)" column (1.6 and later)

    def meetmeConcise(self, user, now: float) -> str:
        ch = user.channel
        fields = [str(user.number), ch.callerIDNum, ch.callerIDName, ch.name, "", "",
                  "1" if user.muted else ""]
        if self.hasTalkRequest:
            fields.append("")
        return "!".join(fields + ["-1", _seconds(now - user.joined)])


class Asterisk22(Dialect):
    name = "asterisk22"
    greeting = b"Asterisk Call Manager/11.0.0\r\n"
    classes = ("system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf",
               "reporting", "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test",
               "security", "message")
    checksOriginateTarget = True
    hasFullyBooted = True
    hasSecurityEvents = True
    version = ("Asterisk 22.10.1+dfsg+~cs6.17.60671434-1 built by nobody @ buildd.debian.org"
               " on a unknown running Linux on 2026-07-20 21:35:32 UTC")
    chanlistFormat = "{:<64.64} {:<32.32} {:<7.7} {:<30.30}"
    noConferences = "No active MeetMe conferences."
    unauthenticated = "Permission denied"
    alreadyLoggedIn = "Already authenticated"
    hasTalkRequest = True
    authority = {"originate": "originate", "command": "command", "redirect": "call",
                 "hangup": "system,call", "status": "system,call,reporting",
                 "coreshowchannels": "system,reporting", "filter": "system"}

    peerTypes = ("PJSIP",)  # chan_sip was removed in 21
    peerTimeIfUnreachable = True

    _categories = {
        "DTMFBegin": DTMF, "DTMFEnd": DTMF,
        "Newexten": DIALPLAN, "VarSet": DIALPLAN, "TestEvent": REPORTING,
        "FullyBooted": SYSTEM, "SuccessfulAuth": SECURITY, "InvalidPassword": SECURITY,
        "InvalidAccountID": SECURITY, "ChallengeResponseFailed": SECURITY,
    }

    def unknownAction(self, action: str) -> str:
        return (f"Invalid/unknown command: {action}. Use Action: ListCommands to show"
                " available commands.")

    def permitted(self, granted: frozenset, needed: frozenset) -> bool:
        return not needed or bool(granted & needed)

    def localNames(self, exten: str, context: str, number: int, rng) -> Tuple[str, str]:
        base = f"Local/{exten}@{context}-{number:08x}"
        return base + ";1", base + ";2"

    def channelName(self, tech: str, peer: str, number: int, rng) -> str:
        return f"{tech}/{peer}-{number:08x}"

    # Events

    def category(self, event: Event) -> Optional[str]:
        if event.name in PEER_EVENTS:
            return SYSTEM
        return self._categories.get(event.name, CALL)

    @staticmethod
    def snapshot(ch: Channel, prefix: str = "") -> List[Header]:
        return [
            (prefix + "Channel", ch.name),
            (prefix + "ChannelState", str(ch.stateCode)),
            (prefix + "ChannelStateDesc", ch.state),
            (prefix + "CallerIDNum", ch.callerIDNum or UNKNOWN),
            (prefix + "CallerIDName", ch.callerIDName or UNKNOWN),
            (prefix + "ConnectedLineNum", ch.connectedLineNum or UNKNOWN),
            (prefix + "ConnectedLineName", ch.connectedLineName or UNKNOWN),
            (prefix + "Language", ch.language),
            (prefix + "AccountCode", ch.accountCode),
            (prefix + "Context", ch.context),
            (prefix + "Exten", ch.exten),
            (prefix + "Priority", str(ch.priority)),
            (prefix + "Uniqueid", ch.uniqueid),
            (prefix + "Linkedid", ch.linkedid),
        ]

    @staticmethod
    def bridgeSnapshot(bridge) -> List[Header]:
        return [
            ("BridgeUniqueid", bridge.uniqueid),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", UNKNOWN),
            ("BridgeName", UNKNOWN),
            ("BridgeNumChannels", str(len(bridge.members))),
            ("BridgeVideoSourceMode", "none"),
        ]

    def render(self, event: Event) -> Optional[List[Header]]:
        name = event.name
        fields = list(event.fields)
        if name in PEER_EVENTS:
            return fields
        if name == "Newexten" and DIALPLAN_UNCHANGED in event.tags:
            return None
        if name == "OriginateResponse":
            out = [(k, v or UNKNOWN) if k in ("Uniqueid", "CallerIDNum", "CallerIDName")
                   else (k, v) for k, v in fields]
            return [h for h in out if h != ("ActionID", "")]
        if name == "Hangup":
            cause = int(event.get("Cause", "0"))
            return self.snapshot(event.channel) + fields + [("Cause-txt", causeText(cause))]
        if name == "LocalBridge":
            return (self.snapshot(event.channel, "LocalOne") + self.snapshot(event.dest, "LocalTwo")
                    + fields)
        if name in ("DialBegin", "DialState", "DialEnd"):
            caller = self.snapshot(event.channel) if event.channel is not None else []
            return caller + self.snapshot(event.dest, "Dest") + fields
        if name.startswith("Meetme") and event.channel is not None:
            return fields[:1] + self.snapshot(event.channel) + fields[1:]
        out: List[Header] = []
        if event.bridge is not None:
            out += self.bridgeSnapshot(event.bridge)
        if event.channel is not None:
            out += self.snapshot(event.channel)
        return out + fields

    # Lists

    def statusItem(self, ch: Channel, now: float, actionID: Optional[str]) -> List[Header]:
        native = "slin" if ch.tech == "Local" else "ulaw"
        headers = [("Event", "Status"), ("Privilege", "Call")] + self.snapshot(ch) + [
            ("Type", ch.tech),
            ("DNID", ""),
            ("EffectiveConnectedLineNum", ch.connectedLineNum or UNKNOWN),
            ("EffectiveConnectedLineName", ch.connectedLineName or UNKNOWN),
            ("TimeToHangup", "0"),
            ("BridgeID", ch.bridge.uniqueid if ch.bridge is not None else ""),
            ("Application", ch.application),
            ("Data", ch.appData),
            ("Nativeformats", f"({native})"),
            ("Readformat", native),
            ("Readtrans", ""),
            ("Writeformat", native),
            ("Writetrans", ""),
            ("Callgroup", "0"),
            ("Pickupgroup", "0"),
            ("Seconds", str(int(now - ch.created))),
        ]
        return headers + _actionID(actionID)

    def statusList(self, channels: Sequence[Channel], now: float, actionID: Optional[str]):
        response = [("Response", "Success")] + _actionID(actionID) + [
            ("EventList", "start"), ("Message", "Channel status will follow")]
        items = [self.statusItem(ch, now, actionID) for ch in channels]
        complete = [("Event", "StatusComplete")] + _actionID(actionID) + [
            ("EventList", "Complete"), ("ListItems", str(len(items))), ("Items", str(len(items)))]
        return response, items, complete

    def coreShowChannels(self, channels: Sequence[Channel], now: float, actionID: Optional[str]):
        response = [("Response", "Success")] + _actionID(actionID) + [
            ("EventList", "start"), ("Message", "Channels will follow")]
        items = [[("Event", "CoreShowChannel")] + _actionID(actionID) + self.snapshot(ch) + [
            ("Application", ch.application),
            ("ApplicationData", ch.appData),
            ("Duration", _seconds(now - ch.created)),
            ("BridgeId", ch.bridge.uniqueid if ch.bridge is not None else ""),
        ] for ch in channels]
        complete = [("Event", "CoreShowChannelsComplete")] + _actionID(actionID) + [
            ("EventList", "Complete"), ("ListItems", str(len(items)))]
        return response, items, complete

    # Responses

    def ping(self, now: float) -> List[Header]:
        return [("Response", "Success"), ("Ping", "Pong"), ("Timestamp", f"{now:.6f}")]

    def commandResponse(self, actionID: Optional[str], ok: bool, lines: Sequence[str]) -> bytes:
        headers = [("Response", "Success" if ok else "Error")] + _actionID(actionID) + [
            ("Message", "Command output follows")]
        headers += [("Output", line) for line in lines]
        return encode(headers)

    def eventsResponse(self, on: bool) -> List[Header]:
        return [("Response", "Success"), ("Events", "On" if on else "Off")]

    # CLI

    def noSuchCommand(self, command: str, best: str) -> str:
        return (f"No such command '{command}' (type 'core show help {best}' for other"
                " possible commands)")

    def chanlistTotals(self, channels: int, calls: int, processed: int) -> List[str]:
        return [_plural(channels, "active channel"), _plural(calls, "active call"),
                _plural(processed, "call") + " processed"]

    def meetmeLine(self, user, now: float) -> str:
        ch = user.channel
        return "User #: {:02d} {:>12.12} {:<20.20} Channel: {} {} {} {} {} {} {}".format(
            user.number, ch.callerIDNum or "<unknown>", ch.callerIDName or "<no name>", ch.name,
            "", "", "(Admin Muted)" if user.muted else "", "", "(unmonitored)",
            _seconds(now - user.joined))


class Asterisk14(Dialect):
    name = "asterisk14"
    greeting = b"Asterisk Call Manager/1.0\r\n"
    classes = ("system", "call", "log", "verbose", "command", "agent", "user", "config")
    version = ("Asterisk 1.4.44 built by root @ localhost on a x86_64 running Linux"
               " on 2012-02-20 16:57:16 UTC")
    chanlistFormat = "{:<20.20} {:<20.20} {:<7.7} {:<30.30}"
    noConferences = "No active conferences."
    unauthenticated = "Authentication Required"
    alreadyLoggedIn = "Already logged in"
    anonymousLogoff = "See ya"
    authority = {"originate": "call", "command": "command", "redirect": "call",
                 "hangup": "call", "status": "call"}
    unsupportedActions = frozenset(["coreshowchannels", "filter"])
    oldCommandNames = True
    patchedEvents = frozenset(["CPD-Result", "SIP-Hangup-Cause"])
    peerChannelType = False
    peerDetails = ("Cause", "Time")
    noCallerName = "(null)"  # the patches print a NULL cid_name as glibc does

    def unknownAction(self, action: str) -> str:
        return "Invalid/unknown command"

    def permitted(self, granted: frozenset, needed: frozenset) -> bool:
        return needed <= granted

    def localNames(self, exten: str, context: str, number: int, rng) -> Tuple[str, str]:
        base = f"Local/{exten}@{context}-{rng.getrandbits(16):04x}"
        return base + ",1", base + ",2"

    def channelName(self, tech: str, peer: str, number: int, rng) -> str:
        return f"{tech}/{peer}-{number:08x}"

    # Events

    _printed = frozenset(["Newchannel", "Newstate", "NewCallerid", "Newexten", "Hangup",
                          "OriginateResponse", "DialBegin", "BridgeEnter", "BridgeLeave",
                          "MeetmeJoin", "MeetmeLeave"])

    _renamed = {"NewCallerid": "Newcallerid", "DialBegin": "Dial", "BridgeEnter": "Link",
                "BridgeLeave": "Unlink"}

    def category(self, event: Event) -> Optional[str]:
        if event.name in PEER_EVENTS:
            return SYSTEM
        return CALL if event.name in self._printed else None

    def cpdResult(self, ch: Optional[Channel], result: str, detailed: str, callID: str,
                  referenceID: str, campaign: str) -> List[Header]:
        self.offers("CPD-Result")
        return [("ChannelDriver", "SIP")] + self._owner(ch) + [("Result", result)]

    def eventName(self, event: Event) -> str:
        return self._renamed.get(event.name, event.name)

    def render(self, event: Event) -> Optional[List[Header]]:
        name = event.name
        ch = event.channel
        if name in PEER_EVENTS:
            return list(event.fields)
        if name == "Newchannel":
            return [("Channel", ch.name), ("State", ch.state),
                    ("CallerIDNum", ch.callerIDNum or UNKNOWN),
                    ("CallerIDName", ch.callerIDName or UNKNOWN), ("Uniqueid", ch.uniqueid)]
        if name == "Newstate":
            return [("Channel", ch.name), ("State", ch.state),
                    ("CallerID", ch.callerIDNum or UNKNOWN),
                    ("CallerIDName", ch.callerIDName or UNKNOWN), ("Uniqueid", ch.uniqueid)]
        if name == "NewCallerid":
            if LOCAL_COPY in event.tags:
                return None
            return [("Channel", ch.name),
                    ("CallerID", ch.callerIDNum or "<Unknown>"),
                    ("CallerIDName", ch.callerIDName or "<Unknown>"), ("Uniqueid", ch.uniqueid),
                    ("CID-CallingPres", event.get("CID-CallingPres"))]
        if name == "Newexten":
            if PSEUDO_APP in event.tags:
                return None
            return [("Channel", ch.name), ("Context", ch.context), ("Extension", ch.exten),
                    ("Priority", str(ch.priority)), ("Application", event.get("Application")),
                    ("AppData", event.get("AppData")), ("Uniqueid", ch.uniqueid)]
        if name == "Hangup":
            cause = int(event.get("Cause", "0"))
            return [("Channel", ch.name), ("Uniqueid", ch.uniqueid), ("Cause", str(cause)),
                    ("Cause-txt", causeText(cause))]
        if name == "OriginateResponse":
            f = dict(event.fields)
            out = [("ActionID", f["ActionID"])] if f["ActionID"] else []
            return out + [
                ("Response", f["Response"]), ("Channel", f["Channel"]),
                ("Context", f.get("Context", "")), ("Exten", f.get("Exten", "")),
                ("Reason", f["Reason"]),
                ("Uniqueid", f["Uniqueid"] or "<null>"),
                ("CallerID", f["CallerIDNum"] or UNKNOWN),
                ("CallerIDNum", f["CallerIDNum"] or UNKNOWN),
                ("CallerIDName", f["CallerIDName"] or UNKNOWN),
            ]
        if name == "DialBegin":
            if ch is None:
                return None
            dest = event.dest
            return [("Source", ch.name), ("Destination", dest.name),
                    ("CallerID", ch.callerIDNum or UNKNOWN),
                    ("CallerIDName", ch.callerIDName or UNKNOWN),
                    ("SrcUniqueID", ch.uniqueid), ("DestUniqueID", dest.uniqueid)]
        if name in ("BridgeEnter", "BridgeLeave"):
            bridge = event.bridge
            linked = len(bridge.members) == 2 if name == "BridgeEnter" else len(bridge.members) == 1
            if not linked or len(bridge.entered) < 2:
                return None
            first, second = bridge.entered[1], bridge.entered[0]
            return [("Channel1", first.name), ("Channel2", second.name),
                    ("Uniqueid1", first.uniqueid), ("Uniqueid2", second.uniqueid),
                    ("CallerID1", first.callerIDNum or "(null)"),
                    ("CallerID2", second.callerIDNum or "(null)")]
        if name in ("MeetmeJoin", "MeetmeLeave"):
            return [("Channel", ch.name), ("Uniqueid", ch.uniqueid),
                    ("Meetme", event.get("Meetme")), ("Usernum", event.get("User"))]
        return None

    # Lists

    def statusList(self, channels: Sequence[Channel], now: float, actionID: Optional[str]):
        response = [("Response", "Success")] + _actionID(actionID) + [
            ("Message", "Channel status will follow")]
        items = []
        for ch in channels:
            headers = [("Event", "Status"), ("Privilege", "Call"), ("Channel", ch.name),
                       ("CallerID", ch.callerIDNum or UNKNOWN),
                       ("CallerIDNum", ch.callerIDNum or UNKNOWN),
                       ("CallerIDName", ch.callerIDName or UNKNOWN),
                       ("Account", ch.accountCode), ("State", ch.state)]
            if ch.runningPBX:
                headers += [("Context", ch.context), ("Extension", ch.exten),
                            ("Priority", str(ch.priority)),
                            ("Seconds", str(int(now - ch.created)))]
            partner = _bridgedTo(ch)
            if partner is not None:
                headers.append(("Link", partner.name))
            headers.append(("Uniqueid", ch.uniqueid))
            items.append(headers + _actionID(actionID))
        complete = [("Event", "StatusComplete")] + _actionID(actionID)
        return response, items, complete

    # Responses

    def ping(self, now: float) -> List[Header]:
        return [("Response", "Pong")]

    def commandResponse(self, actionID: Optional[str], ok: bool, lines: Sequence[str]) -> bytes:
        headers = [("Response", "Follows"), ("Privilege", "Command")] + _actionID(actionID)
        head = encode(headers)[:-2]  # the raw output follows the headers directly
        body = "".join(line + "\n" for line in lines).encode("utf-8")
        return head + body + b"--END COMMAND--\r\n\r\n"

    def eventsResponse(self, on: bool) -> List[Header]:
        return [("Response", "Events On" if on else "Events Off")]

    # CLI

    def noSuchCommand(self, command: str, best: str) -> str:
        return f"No such command '{best}' (type 'help' for help)"

    def chanlistTotals(self, channels: int, calls: int, processed: int) -> List[str]:
        return [_plural(channels, "active channel"), _plural(calls, "active call")]

    def meetmeLine(self, user, now: float) -> str:
        ch = user.channel
        return "User #: {:02d} {:>12.12} {:<20.20} Channel: {} {} {} {} {} {}".format(
            user.number, ch.callerIDNum or "<unknown>", ch.callerIDName or "<no name>", ch.name,
            "", "", "(Admin Muted)" if user.muted else "", "(unmonitored)",
            _seconds(now - user.joined))


def _actionID(actionID: Optional[str]) -> List[Header]:
    return [("ActionID", actionID)] if actionID else []


def _bridgedTo(ch: Channel) -> Optional[Channel]:
    if ch.bridge is None:
        return None
    return next((m for m in ch.bridge.members if m is not ch), None)


DIALECTS = {d.name: d for d in (Asterisk22, Asterisk14)}


def dialect(name: str, patched: bool = False) -> Dialect:
    """
    A fresh dialect by name (C{"asterisk22"} or C{"asterisk14"}); C{patched}
    for a build with VICIdial's chan_sip patches.
    """
    try:
        return DIALECTS[name](patched)
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}: use one of {', '.join(DIALECTS)}") from None

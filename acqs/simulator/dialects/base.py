"""
What every dialect shares: the session rules and texts as data, the events
injected from outside the calls (peer status, VICIdial's patched chan_sip),
the CLI lines, and the helpers the per-version modules use.
"""

from typing import List, Optional, Sequence, Tuple

from ...ami.message import Header, encode
from ..channels import UNKNOWN, Channel
from ..events import Event

CALL, DIALPLAN, SYSTEM, SECURITY, REPORTING, DTMF = (
    "call", "dialplan", "system", "security", "reporting", "dtmf")

# Events that reach the manager from outside a call the simulator plays: a
# dialect computes their fields when they are injected (L{Dialect.peerStatus}
# and the like), and prints them as they are, class system.
PEER_EVENTS = frozenset(["PeerStatus", "PeerRegistered", "SIPRTPDisconnect",
                         "SIPCriticalTimeout", "CPD-Result", "SIP-Hangup-Cause"])
PEER_STATES = {"SIP": ("Registered", "Unregistered", "Rejected", "Reachable", "Lagged",
                       "Unreachable"),
               "PJSIP": ("Reachable", "Unreachable")}

# Event classes (manager.c's perms table), oldest first.
CLASSES_14: Tuple[str, ...] = ("system", "call", "log", "verbose", "command", "agent", "user",
                               "config")
CLASSES_16: Tuple[str, ...] = CLASSES_14 + ("dtmf", "reporting", "cdr", "dialplan", "originate",
                                            "agi")
CLASSES_18: Tuple[str, ...] = CLASSES_16 + ("cc", "aoc", "test")
CLASSES_11: Tuple[str, ...] = CLASSES_18 + ("message",)
CLASSES_13: Tuple[str, ...] = CLASSES_18 + ("security", "message")

UNKNOWN_ACTION = ("Invalid/unknown command: {}. Use Action: ListCommands to show available"
                  " commands.")


def seconds(value: float) -> str:
    """hh:mm:ss."""
    s = int(value)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def withActionID(value: Optional[str]) -> List[Header]:
    return [("ActionID", value)] if value else []


def bridgedTo(ch: Channel) -> Optional[Channel]:
    if ch.bridge is None:
        return None
    return next((m for m in ch.bridge.members if m is not ch), None)


class Dialect:
    """
    How one Asterisk version prints things; the class attributes are its
    differences as data, the methods the shapes that depend on them.
    """

    name = ""
    greeting = b""
    version = ""                              # core show version
    classes: Tuple[str, ...] = ()
    anyBit = True                             # an action needs any bit of its class (1.6+)
    authority: dict = {}                      # action -> classes it needs
    unsupportedActions: frozenset = frozenset()
    checksOriginateTarget = False             # Originate checks the exten exists (12+)
    hasFullyBooted = False                    # FullyBooted after a login (1.8+)
    hasSecurityEvents = False                 # SuccessfulAuth and the like (13+)
    testFramework = False                     # TestEvent printed (a build with the test suite)
    masquerades = False                       # Redirect of a channel outside the dialplan
    #                                           masquerades it (AsyncGoto, ZOMBIE; 1.4 - 11)
    # Session texts
    unauthenticated = "Permission denied"
    alreadyLoggedIn = "Already authenticated"
    anonymousLogoff: Optional[str] = None    # Message of Logoff before Login, if not Goodbye
    pingTimestamp = True                      # Ping's answer has a Timestamp (1.8+)
    # CLI
    oldCommandNames = False                   # "show channels" for "core show channels"
    chanlistFormat = "{:<20.20} {:<32.32} {:<7.7} {:<30.30}"
    chanlistProcessed = True                  # "N calls processed" (1.6+)
    # core show channels concise: the fields after AccountCode (see concise())
    conciseTail: Tuple[str, ...] = ("PeerAccount", "AMAFlags", "Duration", "BridgeID",
                                    "Uniqueid")
    noConferences = "No active MeetMe conferences."
    hasTalkRequest = True                     # MeetMe's "(Request to Talk)" column (1.6+)
    # Local channels: ;1/;2 and an 8-hex counter from 1.8; ,1 (1.4) and 4 random hex before
    localSeparator = ";"
    localCounter = True
    # Peer status and VICIdial's patched chan_sip
    peerTypes: Tuple[str, ...] = ("SIP",)    # channel drivers that print PeerStatus
    peerChannelType = True                    # PeerStatus starts with ChannelType (1.6+)
    peerDetails: Tuple[str, ...] = ("Cause", "Address", "Port", "Time")
    peerAddressWithPort = True                # a registration's Address is ip:port (1.8+)
    peerTimeIfUnreachable = False             # the stasis quirk of 12 - 20: qualify times lost
    noCallerName = UNKNOWN                    # CallerIDName of a patched event, none set
    # The events VICIdial's patches add to this version (PATCHED below); "PingTime" stands
    # for PeerStatus' PingTime and MaxPing headers.
    patchedEvents: frozenset = frozenset()

    def __init__(self, patched: bool = False):
        self.patched = patched  # a build with VICIdial's chan_sip patches

    # Session rules

    def parseClasses(self, text: str) -> frozenset:
        """A comma list of classes (C{all} for every one) as a set."""
        words = {w.strip().lower() for w in (text or "").split(",")}
        if "all" in words:
            return frozenset(self.classes)
        return frozenset(w for w in words if w in self.classes)

    def permitted(self, granted: frozenset, needed: frozenset) -> bool:
        if self.anyBit:
            return not needed or bool(granted & needed)
        return needed <= granted

    def unknownAction(self, action: str) -> str:
        return UNKNOWN_ACTION.format(action)

    def ping(self, now: float) -> List[Header]:
        if self.pingTimestamp:
            return [("Response", "Success"), ("Ping", "Pong"), ("Timestamp", f"{now:.6f}")]
        return [("Response", "Success"), ("Ping", "Pong")]

    def eventsResponse(self, actionID: Optional[str], on: bool) -> bytes:
        return encode([("Response", "Success")] + withActionID(actionID)
                      + [("Events", "On" if on else "Off")])

    def fullyBooted(self, uptime: int) -> Tuple[Tuple[str, str], ...]:
        return (("Status", "Fully Booted"),)

    # Events

    def privilege(self, category: str) -> str:
        return f"{category},all"

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

    def localNames(self, exten: str, context: str, number: int, rng) -> Tuple[str, str]:
        tag = f"{number:08x}" if self.localCounter else f"{rng.getrandbits(16):04x}"
        base = f"Local/{exten}@{context}-{tag}{self.localSeparator}"
        return base + "1", base + "2"

    def channelName(self, tech: str, peer: str, number: int, rng) -> str:
        return f"{tech}/{peer}-{number:08x}"

    # Lists and responses (per era)

    def statusList(self, channels: Sequence[Channel], now: float, actionID: Optional[str]):
        raise NotImplementedError

    def coreShowChannels(self, channels: Sequence[Channel], now: float,
                         actionID: Optional[str]):
        raise NotImplementedError

    def commandResponse(self, actionID: Optional[str], ok: bool, lines: Sequence[str]) -> bytes:
        """C{Response: Follows}, the raw text and C{--END COMMAND--} (1.4 - 13)."""
        head = encode([("Response", "Follows"), ("Privilege", "Command")]
                      + withActionID(actionID))[:-2]  # the raw output follows the headers
        body = "".join(line + "\n" for line in lines).encode("utf-8")
        return head + body + b"--END COMMAND--\r\n\r\n"

    # CLI

    def noSuchCommand(self, command: str, best: str) -> str:
        return (f"No such command '{command}' (type 'core show help {best}' for other"
                " possible commands)")

    def chanlistTotals(self, channels: int, calls: int, processed: int) -> List[str]:
        lines = [plural(channels, "active channel"), plural(calls, "active call")]
        if self.chanlistProcessed:
            lines.append(plural(processed, "call") + " processed")
        return lines

    def concise(self, ch: Channel, now: float) -> str:
        """One C{core show channels concise} line (no caller name, no Linkedid)."""
        partner = bridgedTo(ch)
        values = {
            "PeerAccount": "",
            "AMAFlags": "3",  # ast_default_amaflags: DOCUMENTATION
            "Duration": str(int(now - ch.created)),
            "BridgedChannel": partner.name if partner is not None else "(None)",
            "BridgeID": ch.bridge.uniqueid if ch.bridge is not None else "",
            "Uniqueid": ch.uniqueid,
        }
        head = [ch.name, ch.context, ch.exten, str(ch.priority), ch.state,
                ch.application or "(None)", ch.appData, ch.callerIDNum, ch.accountCode]
        return "!".join(head + [values[f] for f in self.conciseTail])

    def meetmeLine(self, user, now: float) -> str:
        ch = user.channel
        columns = ["", "", "(Admin Muted)" if user.muted else ""]
        if self.hasTalkRequest:
            columns.append("")
        columns += ["(unmonitored)", seconds(now - user.joined)]
        return "User #: {:02d} {:>12.12} {:<20.20} Channel: {} {}".format(
            user.number, ch.callerIDNum or "<unknown>", ch.callerIDName or "<no name>", ch.name,
            " ".join(columns))

    def meetmeConcise(self, user, now: float) -> str:
        ch = user.channel
        fields = [str(user.number), ch.callerIDNum, ch.callerIDName, ch.name, "", "",
                  "1" if user.muted else ""]
        if self.hasTalkRequest:
            fields.append("")
        return "!".join(fields + ["-1", seconds(now - user.joined)])

    # Events from outside the simulated calls: their fields as this version prints them

    def offers(self, name: str) -> None:
        """Raise ValueError unless this build prints the VICIdial-patched C{name}."""
        if name not in self.patchedEvents:
            raise ValueError(f"no VICIdial patch prints {name} on {self.name}")
        if not self.patched:
            raise ValueError(f"{name} comes only from VICIdial's patched chan_sip: make the"
                             " Simulator with vicidialPatches=True")

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
        peer = self._peerName(channelType, peer)
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
        peer = self._peerName(channelType, peer)
        return [("ChannelType", channelType), ("Peer", f"{channelType}/{peer}"), ("Host", host)]

    @staticmethod
    def _peerName(channelType: str, peer: str) -> str:
        """C{1001} of C{1001} or C{SIP/1001}; ValueError for another technology's."""
        tech, sep, name = peer.partition("/")
        if not sep:
            return peer
        if tech != channelType or not name or "/" in name:
            raise ValueError(f"peer {peer!r} is not a {channelType} peer's name")
        return name

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


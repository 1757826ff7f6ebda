"""
Asterisk 12 and later, whose manager events are built from stasis channel
snapshots: every channel event carries the same block of headers.

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
its C{(Request to Talk)} column.  DTMF and PJSIP C{PeerStatus} are held to
C{tests/data/asterisk22/facts/}.

Asterisk 13 (C{"asterisk13"}) models 13.38.3, the last 13 (tag 13.38.3 of
github:asterisk/asterisk, read, not copied): what 22 prints minus what came
later.  Greeting C{2.10.6}; C{Command} answered C{Response: Follows} with
the raw text and C{--END COMMAND--} (C{Output:} lines came in 14); no
C{DialState} (14); C{FullyBooted} with C{Status} only (Uptime and LastReload
came in 20); C{Status} items with C{Accountcode} and no C{Language}
(C{main/manager.c} builds them by hand); C{core show channels} in 20-wide
columns; chan_sip still there (removed in 21), so C{SIP} and C{PJSIP} peers,
and VICIdial's patched chan_sip events (C{PeerRegistered},
C{SIPRTPDisconnect}, C{SIPCriticalTimeout}, C{PingTime}/C{MaxPing}) with
C{vicidialPatches}; a production build (no C{TestEvent}).  Asterisk 14 - 18
differ from it mostly in the C{Command} framing and C{DialState}.
"""

from typing import List, Optional, Sequence, Tuple

from ...ami.message import Header, encode
from ..channels import UNKNOWN, Channel, causeText
from ..events import DIALPLAN_UNCHANGED, Event
from .base import (CALL, CLASSES_13, DIALPLAN, DTMF, PEER_EVENTS, REPORTING, SECURITY, SYSTEM,
                   Dialect, seconds, withActionID)


class Asterisk22(Dialect):
    name = "asterisk22"
    greeting = b"Asterisk Call Manager/11.0.0\r\n"
    version = ("Asterisk 22.10.1+dfsg+~cs6.17.60671434-1 built by nobody @ buildd.debian.org"
               " on a unknown running Linux on 2026-07-20 21:35:32 UTC")
    classes = CLASSES_13
    checksOriginateTarget = True
    hasFullyBooted = True
    hasSecurityEvents = True
    testFramework = True  # the captured Debian build has the test framework compiled in
    chanlistFormat = "{:<64.64} {:<32.32} {:<7.7} {:<30.30}"
    authority = {"originate": "originate", "command": "command", "redirect": "call",
                 "hangup": "system,call", "status": "system,call,reporting",
                 "coreshowchannels": "system,reporting", "filter": "system"}
    peerTypes: Tuple[str, ...] = ("PJSIP",)  # chan_sip was removed in 21
    peerTimeIfUnreachable = True

    _categories = {
        "DTMFBegin": DTMF, "DTMFEnd": DTMF,
        "Newexten": DIALPLAN, "VarSet": DIALPLAN, "TestEvent": REPORTING,
        "FullyBooted": SYSTEM, "SuccessfulAuth": SECURITY, "InvalidPassword": SECURITY,
        "InvalidAccountID": SECURITY, "ChallengeResponseFailed": SECURITY,
    }
    # What the call engine publishes for older versions only.
    _silent = frozenset(["DialReturned", "Rename", "Masquerade"])

    def fullyBooted(self, uptime: int) -> Tuple[Tuple[str, str], ...]:
        return (("Uptime", str(uptime)), ("LastReload", str(uptime)),
                ("Status", "Fully Booted"))

    # Events

    def category(self, event: Event) -> Optional[str]:
        if event.name in PEER_EVENTS:
            return SYSTEM
        if event.name in self._silent:
            return None
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
            return [(k, v or UNKNOWN) if k in ("Uniqueid", "CallerIDNum", "CallerIDName")
                    else (k, v) for k, v in fields if (k, v) != ("ActionID", "")]
        if name == "Hangup" and event.channel is not None:
            cause = int(event.get("Cause", "0"))
            return self.snapshot(event.channel) + fields + [("Cause-txt", causeText(cause))]
        if name == "LocalBridge" and event.channel is not None and event.dest is not None:
            return (self.snapshot(event.channel, "LocalOne") + self.snapshot(event.dest, "LocalTwo")
                    + fields)
        if name in ("DialBegin", "DialState", "DialEnd") and event.dest is not None:
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

    def statusBlock(self, ch: Channel) -> List[Header]:
        return self.snapshot(ch)

    def statusItem(self, ch: Channel, now: float, actionID: Optional[str]) -> List[Header]:
        native = "slin" if ch.tech == "Local" else "ulaw"
        headers = [("Event", "Status"), ("Privilege", "Call")] + self.statusBlock(ch) + [
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
        return headers + withActionID(actionID)

    def statusList(self, channels: Sequence[Channel], now: float, actionID: Optional[str]):
        response = [("Response", "Success")] + withActionID(actionID) + [
            ("EventList", "start"), ("Message", "Channel status will follow")]
        items = [self.statusItem(ch, now, actionID) for ch in channels]
        complete = [("Event", "StatusComplete")] + withActionID(actionID) + [
            ("EventList", "Complete"), ("ListItems", str(len(items))), ("Items", str(len(items)))]
        return response, items, complete

    def coreShowChannels(self, channels: Sequence[Channel], now: float,
                         actionID: Optional[str]):
        response = [("Response", "Success")] + withActionID(actionID) + [
            ("EventList", "start"), ("Message", "Channels will follow")]
        items = [[("Event", "CoreShowChannel")] + withActionID(actionID) + self.snapshot(ch) + [
            ("Application", ch.application),
            ("ApplicationData", ch.appData),
            ("Duration", seconds(now - ch.created)),
            ("BridgeId", ch.bridge.uniqueid if ch.bridge is not None else ""),
        ] for ch in channels]
        complete = [("Event", "CoreShowChannelsComplete")] + withActionID(actionID) + [
            ("EventList", "Complete"), ("ListItems", str(len(items)))]
        return response, items, complete

    # Responses

    def commandResponse(self, actionID: Optional[str], ok: bool, lines: Sequence[str]) -> bytes:
        """C{Response: Success} (Error for an unknown command) and C{Output:} lines (14+)."""
        headers = [("Response", "Success" if ok else "Error")] + withActionID(actionID) + [
            ("Message", "Command output follows")]
        headers += [("Output", line) for line in lines]
        return encode(headers)


class Asterisk13(Asterisk22):
    name = "asterisk13"
    greeting = b"Asterisk Call Manager/2.10.6\r\n"
    version = ("Asterisk 13.38.3 built by root @ vicibox on a x86_64 running Linux"
               " on 2021-07-22 14:47:09 UTC")
    testFramework = False
    chanlistFormat = "{:<20.20} {:<20.20} {:<7.7} {:<30.30}"
    peerTypes: Tuple[str, ...] = ("SIP", "PJSIP")
    patchedEvents = frozenset(["PeerRegistered", "SIPRTPDisconnect", "SIPCriticalTimeout",
                               "PingTime"])

    fullyBooted = Dialect.fullyBooted
    commandResponse = Dialect.commandResponse

    def render(self, event: Event) -> Optional[List[Header]]:
        if event.name == "DialState":
            return None
        return super().render(event)

    def statusBlock(self, ch: Channel) -> List[Header]:
        block = [h for h in self.snapshot(ch) if h[0] != "Language"]
        return [("Accountcode", v) if k == "AccountCode" else (k, v) for k, v in block]

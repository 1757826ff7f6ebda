"""
Asterisk 1.4 to 11, whose channel, dialplan and application code print
their own manager events, each with its own headers.

Not captured: read in the sources (github:asterisk/asterisk, never copied)
at the last tag of each branch: 1.4.44, 1.6.2.24, 1.8.32.3, 11.25.3.
C{main/manager.c} (greeting, Login, Ping, Events, permissions and classes,
Status, CoreShowChannels, Command, OriginateResponse), C{main/channel.c}
(Newchannel, Newstate, NewCallerid, Hangup, Rename, Masquerade, the
zombie a masquerade leaves, Link/Unlink then Bridge, DTMF), C{main/pbx.c}
(Newexten for every application run, VarSet, AsyncGoto),
C{apps/app_dial.c} (Dial, with Begin and End from 1.6), C{apps/app_meetme.c},
C{channels/chan_local.c} (names, LocalBridge in 11), C{channels/chan_sip.c}
(PeerStatus), C{main/cli.c} (C{core show channels}).  Each version is the
one before it plus what changed (L{Asterisk14} -> L{Asterisk16} ->
L{Asterisk18} -> L{Asterisk11}); an event is printed by its layout: the
header names in order, the text an empty caller ID prints as, and
C{Name=value} for a constant.

  - 1.4 (C{"asterisk14"}, AMI 1.0): C{State} and C{CallerID}, C{Newcallerid},
    one C{Dial} (C{Source}, C{SrcUniqueID}), C{Link}/C{Unlink}, no DTMF
    event, classes without dtmf/originate/reporting/dialplan, an action
    needs every bit of its class, C{Local/...-XXXX,1} (4 random hex).
  - 1.6 (C{"asterisk16"}, AMI 1.1): C{ChannelState}/C{ChannelStateDesc},
    C{Dial} with C{SubEvent: Begin}/C{End} and C{UniqueID}, C{Bridge},
    C{DTMF}, C{Masquerade}, CoreShowChannels without the caller's name,
    C{;1} with 4 random hex.
  - 1.8 (C{"asterisk18"}, AMI 1.1): ConnectedLine headers, C{CallerIDname}
    in CoreShowChannel, C{;1} with an 8-hex counter, FullyBooted, Ping's
    Timestamp, C{Address: ip:port} of a registration.
  - 11 (C{"asterisk11"}, AMI 1.3): C{AccountCode} in Hangup, C{LocalBridge},
    the Filter action (10+), the Application form of OriginateResponse.

Until 11 (C{masquerades}) two things masquerade one channel into another
(the call engine plays them, L{acqs.simulator.calls}): a Redirect of a
channel that runs no dialplan (the dialled leg of a bridge), which a new
C{AsyncGoto/<name>} channel takes over with a new uniqueid, leaving
C{AsyncGoto/<name><ZOMBIE>}; and chan_local's optimisation, which, once a
Local channel's C{;2} is bridged to a carrier leg (no C{/n}), masquerades
that leg into C{;1}: C{;1}'s uniqueid goes on under the leg's name, and
C{<;1's name><ZOMBIE>} hangs up with the leg's old uniqueid.  Both print
C{Rename} (C{<MASQ>}, then C{<ZOMBIE>}) and, from 1.6, C{Masquerade}.

Simplified: a channel's CDR starts when the channel is created (durations);
VarSet is not printed in 1.4; 1.6 answers a second Login like the first;
1.4's one-time warning for a deprecated command name (C{show channels}) is
not printed; C{CallerID1}/C{CallerID2} of 1.4's C{Link} print C{(null)} for
a channel without a number, as glibc prints a NULL.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

from ...ami.message import Header, encode
from ..channels import UNKNOWN, Channel, causeText
from ..events import LOCAL_COPY, PSEUDO_APP, Event
from .base import (CALL, CLASSES_11, CLASSES_14, CLASSES_16, CLASSES_18, DIALPLAN, DTMF,
                   PEER_EVENTS, SYSTEM, Dialect, bridgedTo, seconds, withActionID)

# An event's layout: what an empty caller ID prints as, and its header names.
Layout = Tuple[str, Tuple[str, ...]]

_CALLER_IDS = frozenset(["callerid", "calleridnum", "calleridname", "connectedlinenum",
                         "connectedlinename"])


def layout(empty: str, names: str) -> Layout:
    return empty, tuple(names.split())


def _value(name: str, ch: Any, dest: Any, event: Event, now: float) -> str:
    """
    The value of header C{name} of C{event} about C{ch} (and its C{dest});
    a layout names channel fields only of events that have the channels.
    """
    key = name.lower()
    if key in ("channel", "source", "oldname", "channel1"):
        return ch.name
    if key in ("uniqueid", "srcuniqueid", "uniqueid1"):
        return ch.uniqueid
    if key in ("callerid", "calleridnum"):
        return ch.callerIDNum
    if key == "calleridname":
        return ch.callerIDName
    if key == "connectedlinenum":
        return ch.connectedLineNum
    if key == "connectedlinename":
        return ch.connectedLineName
    if key in ("state", "channelstatedesc"):
        return ch.state
    if key == "channelstate":
        return str(ch.stateCode)
    if key in ("accountcode", "account"):
        return ch.accountCode
    if key == "context":
        return ch.context
    if key in ("exten", "extension"):
        return ch.exten
    if key == "priority":
        return str(ch.priority)
    if key in ("destination", "channel2"):
        return dest.name
    if key in ("destuniqueid", "uniqueid2"):
        return dest.uniqueid
    if key == "cause-txt":
        return causeText(int(event.get("Cause", "0")))
    if key == "usernum":
        return event.get("User")
    if key == "dialstring":
        return event.get("DialString")
    if key == "seconds":
        return str(int(now - ch.created))
    if key == "duration" and event.name.startswith("Meetme"):
        return event.get("Duration", "0")
    return event.get(name)


def _layOut(spec: Layout, ch: Optional[Channel], dest: Optional[Channel], event: Event,
            now: float = 0.0, values: Optional[Dict[str, str]] = None) -> List[Header]:
    """The headers of C{spec}; C{values} gives some by name."""
    empty, names = spec
    out = []
    for name in names:
        name, eq, constant = name.partition("=")
        if eq:
            out.append((name, constant))
            continue
        if values is not None and name in values:
            out.append((name, values[name]))
            continue
        value = _value(name, ch, dest, event, now)
        out.append((name, value or empty if name.lower() in _CALLER_IDS else value))
    return out


class Asterisk14(Dialect):
    name = "asterisk14"
    greeting = b"Asterisk Call Manager/1.0\r\n"
    version = ("Asterisk 1.4.44 built by root @ localhost on a x86_64 running Linux"
               " on 2012-02-20 16:57:16 UTC")
    classes = CLASSES_14
    anyBit = False
    authority = {"originate": "call", "command": "command", "redirect": "call",
                 "hangup": "call", "status": "call"}
    unsupportedActions = frozenset(["coreshowchannels", "filter"])
    masquerades = True
    unauthenticated = "Authentication Required"
    alreadyLoggedIn = "Already logged in"
    anonymousLogoff: Optional[str] = "See ya"
    oldCommandNames = True
    chanlistFormat = "{:<20.20} {:<20.20} {:<7.7} {:<30.30}"
    chanlistProcessed = False
    conciseTail: Tuple[str, ...] = ("AMAFlags", "Duration", "BridgedChannel")
    noConferences = "No active conferences."
    hasTalkRequest = False
    localSeparator = ","
    localCounter = False
    peerChannelType = False
    peerDetails: Tuple[str, ...] = ("Cause", "Time")
    noCallerName = "(null)"  # the patches print a NULL cid_name as glibc does
    patchedEvents = frozenset(["CPD-Result", "SIP-Hangup-Cause"])

    # Event name printed, by the call engine's name
    names = {"NewCallerid": "Newcallerid", "DialBegin": "Dial", "BridgeEnter": "Link",
             "BridgeLeave": "Unlink"}
    dialplanClass = CALL  # Newexten's class (dialplan from 1.6)
    layouts: Dict[str, Layout] = {
        "Newchannel": layout(UNKNOWN, "Channel State CallerIDNum CallerIDName Uniqueid"),
        "Newstate": layout(UNKNOWN, "Channel State CallerID CallerIDName Uniqueid"),
        "NewCallerid": layout("<Unknown>", "Channel CallerID CallerIDName Uniqueid"
                                           " CID-CallingPres"),
        "Newexten": layout("", "Channel Context Extension Priority Application AppData"
                               " Uniqueid"),
        "Hangup": layout("", "Channel Uniqueid Cause Cause-txt"),
        "DialBegin": layout(UNKNOWN, "Source Destination CallerID CallerIDName SrcUniqueID"
                                     " DestUniqueID"),
        "MeetmeJoin": layout("", "Channel Uniqueid Meetme Usernum"),
        "MeetmeLeave": layout("", "Channel Uniqueid Meetme Usernum"),
        "Rename": layout("", "Oldname Newname Uniqueid"),
    }
    # Status: the item of a channel running the dialplan, and of one that is not.
    statusLayouts: Tuple[Layout, Layout] = (
        layout(UNKNOWN, "Channel CallerID CallerIDNum CallerIDName Account State Context"
                        " Extension Priority Seconds Link Uniqueid"),
        layout(UNKNOWN, "Channel CallerID CallerIDNum CallerIDName Account State Link Uniqueid"),
    )
    bridgeCallerID = "(null)"
    originateCallerID = True       # OriginateResponse's deprecated CallerID (1.4 only)
    originateApplication = False   # the Application/Data form of OriginateResponse (11+)

    # Session texts

    def unknownAction(self, action: str) -> str:
        return "Invalid/unknown command"

    def ping(self, now: float) -> List[Header]:
        return [("Response", "Pong")]

    def eventsResponse(self, actionID: Optional[str], on: bool) -> bytes:
        return encode([("Response", "Events On" if on else "Events Off")]
                      + withActionID(actionID))

    def noSuchCommand(self, command: str, best: str) -> str:
        return (f"No such command '{command}' (type 'help {best}' for other possible"
                " commands)")

    def cpdResult(self, ch: Optional[Channel], result: str, detailed: str, callID: str,
                  referenceID: str, campaign: str) -> List[Header]:
        """1.4's NetBorder patch prints the result alone."""
        self.offers("CPD-Result")
        return [("ChannelDriver", "SIP")] + self._owner(ch) + [("Result", result)]

    # Events

    def category(self, event: Event) -> Optional[str]:
        name = event.name
        if name in PEER_EVENTS or name == "FullyBooted":
            return SYSTEM
        if name in ("Newexten", "VarSet"):
            return self.dialplanClass
        if name in ("DTMFBegin", "DTMFEnd"):
            return DTMF if "dtmf" in self.classes else None
        return CALL

    def eventName(self, event: Event) -> str:
        return self.names.get(event.name, event.name)

    def render(self, event: Event) -> Optional[List[Header]]:
        name = event.name
        if name in PEER_EVENTS or (name == "FullyBooted" and self.hasFullyBooted):
            return list(event.fields)
        if LOCAL_COPY in event.tags or (name == "Newexten" and PSEUDO_APP in event.tags):
            return None  # chan_local copies caller ID without an event; AppDial never runs
        if name == "OriginateResponse":
            return self.originateResponse(dict(event.fields))
        if name in ("BridgeEnter", "BridgeLeave"):
            return self.bridgeEvent(event)
        spec = self.layouts.get(name)
        if spec is None or (name == "DialBegin" and event.channel is None):
            return None  # an event this version lacks, or an originate's dial
        return _layOut(spec, event.channel, event.dest, event)

    def originateResponse(self, f: dict) -> List[Header]:
        out = withActionID(f["ActionID"]) + [("Response", f["Response"]),
                                             ("Channel", f["Channel"])]
        if self.originateApplication and "Application" in f:
            out += [("Application", f["Application"]), ("Data", f["Data"])]
        else:
            out += [("Context", f.get("Context", "")), ("Exten", f.get("Exten", ""))]
        out += [("Reason", f["Reason"]), ("Uniqueid", f["Uniqueid"] or "<null>")]
        if self.originateCallerID:
            out.append(("CallerID", f["CallerIDNum"] or UNKNOWN))
        return out + [("CallerIDNum", f["CallerIDNum"] or UNKNOWN),
                      ("CallerIDName", f["CallerIDName"] or UNKNOWN)]

    def bridgeEvent(self, event: Event) -> Optional[List[Header]]:
        """
        The core bridge of a Dial(): linked when its second channel enters,
        unlinked when the first leaves; the caller (who enters second) first.
        """
        bridge = event.bridge
        entering = event.name == "BridgeEnter"
        if bridge is None or len(bridge.entered) < 2:
            return None
        if len(bridge.members) != (2 if entering else 1):
            return None
        first, second = bridge.entered[1], bridge.entered[0]
        return self.bridgeState(entering) + [
            ("Channel1", first.name), ("Channel2", second.name),
            ("Uniqueid1", first.uniqueid), ("Uniqueid2", second.uniqueid),
            ("CallerID1", first.callerIDNum or self.bridgeCallerID),
            ("CallerID2", second.callerIDNum or self.bridgeCallerID)]

    def bridgeState(self, linked: bool) -> List[Header]:
        return []

    # Lists

    def statusList(self, channels: Sequence[Channel], now: float, actionID: Optional[str]):
        response = [("Response", "Success")] + withActionID(actionID) + [
            ("Message", "Channel status will follow")]
        items = []
        for ch in channels:
            spec = self.statusLayouts[0 if ch.runningPBX else 1]
            item = [("Event", "Status"), ("Privilege", "Call")]
            for header in _layOut(spec, ch, None, Event("Status"), now):
                if header[0] == "Link":
                    item += self.statusBridge(ch)
                else:
                    item.append(header)
            items.append(item + withActionID(actionID))
        return response, items, [("Event", "StatusComplete")] + withActionID(actionID) + (
            self.statusCount(len(items)))

    def statusBridge(self, ch: Channel) -> List[Header]:
        partner = bridgedTo(ch)
        return [("Link", partner.name)] if partner is not None else []

    def statusCount(self, count: int) -> List[Header]:
        return []


class Asterisk16(Asterisk14):
    name = "asterisk16"
    greeting = b"Asterisk Call Manager/1.1\r\n"
    version = ("Asterisk 1.6.2.24 built by root @ localhost on a x86_64 running Linux"
               " on 2012-07-10 13:41:20 UTC")
    classes = CLASSES_16
    anyBit = True
    authority = {"originate": "originate", "command": "command", "redirect": "call",
                 "hangup": "system,call", "status": "system,call,reporting",
                 "coreshowchannels": "system,reporting"}
    unsupportedActions = frozenset(["filter"])
    unauthenticated = "Permission denied"
    alreadyLoggedIn = "Authentication accepted"
    anonymousLogoff = None
    pingTimestamp = False
    oldCommandNames = False
    chanlistProcessed = True
    conciseTail: Tuple[str, ...] = ("AMAFlags", "Duration", "BridgedChannel", "Uniqueid")
    noConferences = "No active MeetMe conferences."
    hasTalkRequest = True
    localSeparator = ";"
    peerChannelType = True
    peerDetails = ("Cause", "Address", "Port", "Time")
    peerAddressWithPort = False
    noCallerName = UNKNOWN
    patchedEvents = frozenset()

    names = {"DialBegin": "Dial", "DialReturned": "Dial", "BridgeEnter": "Bridge",
             "BridgeLeave": "Bridge", "DTMFBegin": "DTMF", "DTMFEnd": "DTMF"}
    dialplanClass = DIALPLAN
    layouts = {
        **Asterisk14.layouts,
        "Newchannel": layout("", "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName"
                                 " AccountCode Exten Context Uniqueid"),
        "Newstate": layout("", "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName"
                               " Uniqueid"),
        "NewCallerid": layout("", "Channel CallerIDNum CallerIDName Uniqueid CID-CallingPres"),
        "Hangup": layout(UNKNOWN, "Channel Uniqueid CallerIDNum CallerIDName Cause Cause-txt"),
        "DialBegin": layout(UNKNOWN, "SubEvent=Begin Channel Destination CallerIDNum"
                                     " CallerIDName UniqueID DestUniqueID Dialstring"),
        "DialReturned": layout("", "SubEvent=End Channel UniqueID DialStatus"),
        "VarSet": layout("", "Channel Variable Value Uniqueid"),
        "MeetmeJoin": layout(UNKNOWN, "Channel Uniqueid Meetme Usernum CallerIDnum"
                                      " CallerIDname"),
        "MeetmeLeave": layout(UNKNOWN, "Channel Uniqueid Meetme Usernum CallerIDNum"
                                       " CallerIDName Duration"),
        "Rename": layout("", "Channel Newname Uniqueid"),
        "Masquerade": layout("", "Clone CloneState Original OriginalState"),
        "DTMFBegin": layout("", "Channel Uniqueid Digit Direction Begin=Yes End=No"),
        "DTMFEnd": layout("", "Channel Uniqueid Digit Direction Begin=No End=Yes"),
    }
    statusLayouts = (
        layout("", "Channel CallerIDNum CallerIDName Accountcode ChannelState ChannelStateDesc"
                   " Context Extension Priority Seconds Link Uniqueid"),
        layout(UNKNOWN, "Channel CallerIDNum CallerIDName Account State Link Uniqueid"),
    )
    # CoreShowChannel, after Event and ActionID
    coreShowChannelLayout = layout("", "Channel UniqueID Context Extension Priority"
                                       " ChannelState ChannelStateDesc Application"
                                       " ApplicationData CallerIDnum Duration AccountCode"
                                       " BridgedChannel BridgedUniqueID")
    bridgeCallerID = ""
    originateCallerID = False

    unknownAction = Dialect.unknownAction
    eventsResponse = Dialect.eventsResponse
    noSuchCommand = Dialect.noSuchCommand
    cpdResult = Dialect.cpdResult
    ping = Dialect.ping

    def bridgeState(self, linked: bool) -> List[Header]:
        return [("Bridgestate", "Link" if linked else "Unlink"), ("Bridgetype", "core")]

    def statusBridge(self, ch: Channel) -> List[Header]:
        partner = bridgedTo(ch)
        if partner is None:
            return []
        return [("BridgedChannel", partner.name), ("BridgedUniqueid", partner.uniqueid)]

    def statusCount(self, count: int) -> List[Header]:
        return [("Items", str(count))]

    def coreShowChannels(self, channels: Sequence[Channel], now: float,
                         actionID: Optional[str]):
        response = [("Response", "Success")] + withActionID(actionID) + [
            ("EventList", "start"), ("Message", "Channels will follow")]
        items = []
        for ch in channels:
            partner = bridgedTo(ch)
            values = {"Application": ch.application, "ApplicationData": ch.appData,
                      "Duration": seconds(now - ch.created),
                      "BridgedChannel": partner.name if partner is not None else "",
                      "BridgedUniqueID": partner.uniqueid if partner is not None else ""}
            item = _layOut(self.coreShowChannelLayout, ch, None, Event("CoreShowChannel"), now,
                           values)
            items.append([("Event", "CoreShowChannel")] + withActionID(actionID) + item)
        complete = [("Event", "CoreShowChannelsComplete"), ("EventList", "Complete"),
                    ("ListItems", str(len(items)))] + withActionID(actionID)
        return response, items, complete


class Asterisk18(Asterisk16):
    name = "asterisk18"
    version = ("Asterisk 1.8.32.3 built by root @ localhost on a x86_64 running Linux"
               " on 2015-04-07 10:11:52 UTC")
    classes = CLASSES_18
    alreadyLoggedIn = "Already authenticated"
    hasFullyBooted = True
    pingTimestamp = True
    conciseTail = ("PeerAccount", "AMAFlags", "Duration", "BridgedChannel", "Uniqueid")
    localCounter = True
    peerAddressWithPort = True
    patchedEvents = frozenset(["CPD-Result", "SIP-Hangup-Cause"])

    layouts = {
        **Asterisk16.layouts,
        "Newstate": layout("", "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName"
                               " ConnectedLineNum ConnectedLineName Uniqueid"),
        "Hangup": layout(UNKNOWN, "Channel Uniqueid CallerIDNum CallerIDName ConnectedLineNum"
                                  " ConnectedLineName Cause Cause-txt"),
        "DialBegin": layout(UNKNOWN, "SubEvent=Begin Channel Destination CallerIDNum"
                                     " CallerIDName ConnectedLineNum ConnectedLineName UniqueID"
                                     " DestUniqueID Dialstring"),
        "MeetmeJoin": layout(UNKNOWN, "Channel Uniqueid Meetme Usernum CallerIDnum"
                                      " CallerIDname ConnectedLineNum ConnectedLineName"),
        "MeetmeLeave": layout(UNKNOWN, "Channel Uniqueid Meetme Usernum CallerIDNum"
                                       " CallerIDName ConnectedLineNum ConnectedLineName"
                                       " Duration"),
    }
    statusLayouts = (
        layout(UNKNOWN, "Channel CallerIDNum CallerIDName ConnectedLineNum ConnectedLineName"
                        " Accountcode ChannelState ChannelStateDesc Context Extension Priority"
                        " Seconds Link Uniqueid"),
        layout(UNKNOWN, "Channel CallerIDNum CallerIDName ConnectedLineNum ConnectedLineName"
                        " Account State Link Uniqueid"),
    )
    coreShowChannelLayout = layout("", "Channel UniqueID Context Extension Priority"
                                       " ChannelState ChannelStateDesc Application"
                                       " ApplicationData CallerIDnum CallerIDname"
                                       " ConnectedLineNum ConnectedLineName Duration AccountCode"
                                       " BridgedChannel BridgedUniqueID")


class Asterisk11(Asterisk18):
    name = "asterisk11"
    greeting = b"Asterisk Call Manager/1.3\r\n"
    version = ("Asterisk 11.25.3 built by root @ vicibox on a x86_64 running Linux"
               " on 2017-09-21 08:12:38 UTC")
    classes = CLASSES_11
    authority = {**Asterisk18.authority, "filter": "system"}
    unsupportedActions = frozenset()
    patchedEvents = frozenset(["SIP-Hangup-Cause"])
    originateApplication = True

    layouts = {
        **Asterisk18.layouts,
        "Hangup": layout(UNKNOWN, "Channel Uniqueid CallerIDNum CallerIDName ConnectedLineNum"
                                  " ConnectedLineName AccountCode Cause Cause-txt"),
        "LocalBridge": layout("", "Channel1 Channel2 Uniqueid1 Uniqueid2 Context Exten"
                                  " LocalOptimization"),
    }

"""
The Perl listener's other duties, as rules: the VICIdial rows an event calls
for (L{dutyRows}), as VICIdial 2.14's listeners write them
(C{AST_manager_listen_AMI2.pl} for 13+, C{AST_manager_listen.pl} before).

 - C{DTMFBegin}/C{DTMFEnd} (12+) and C{DTMF} (1.6 - 11): a
   vicidial_dtmf_log row per event, state BEGIN or END;
 - C{PeerStatus}: a vicidial_peer_event_log row (the status as its type,
   C{|PingTime=|Time=|MaxPing=|} as data) and the phone's C{peer_status}
   (and C{ping_time} when the event has a C{PingTime});
 - C{PeerRegistered}: a REGISTERED row (host and port) and the phone's
   C{phone_ip};
 - C{SIPRTPDisconnect}, C{SIPCriticalTimeout}: RTPDISCONNECT and
   CRITICALTIMEOUT rows;
 - C{CPD-Result} (1.4 - 11, VICIdial's NetBorder patch): a vicidial_cpd_log
   row, status NEW, for the call's callerid and lead;
 - C{SIP-Hangup-Cause} (1.4 - 11, VICIdial's patch; not 407): the SIP code
   and reason on the call's vicidial_dial_log rows and carrier log row.

A phone is the C{phones} row of this server whose C{extension} is the part
of C{Peer} after its C{/} and whose C{protocol} is the C{ChannelType}
(Asterisk 1.4 prints none: the C{Peer}'s technology).  The lead is digits 11
to 20 of the callerid (VICIdial's C{V}/C{M} callerids end in the lead id).

Only values that fit VICIdial's columns are written: a status outside
C{event_type}'s ENUM is written UNKNOWN (the status kept in C{data}), one
outside C{peer_status}'s leaves the phone as it was; a host that is no
IPv4 address, or a port beyond C{SMALLINT}, is left out (kept in C{data});
text is cut to its column.  Each such case comes back as a L{Misfit}, for
the listener to log once per kind.
"""

import re
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import attr

from .correlate import cleanCallerID
from .store.duties import (
    CPD,
    DTMF,
    PEER_EVENTS,
    PHONE_IP,
    PHONE_STATUS,
    SIP_CAUSE,
    CpdRow,
    DtmfRow,
    DutyRow,
    PeerEventRow,
    PhoneAddress,
    PhoneStatus,
    SipCause,
)

# The events each duty reads, as Asterisk names them.
EVENTS: Mapping[str, Tuple[str, ...]] = {
    "DTMFBegin": (DTMF,), "DTMFEnd": (DTMF,), "DTMF": (DTMF,),
    "PeerStatus": (PEER_EVENTS, PHONE_STATUS), "PeerRegistered": (PEER_EVENTS, PHONE_IP),
    "SIPRTPDisconnect": (PEER_EVENTS,), "SIPCriticalTimeout": (PEER_EVENTS,),
    "CPD-Result": (CPD,), "SIP-Hangup-Cause": (SIP_CAUSE,),
}

# VICIdial's ENUMs and widths.
EVENT_TYPES = frozenset(["UNKNOWN", "REGISTERED", "UNREGISTERED", "REACHABLE", "LAGGED",
                         "UNREACHABLE", "RTPDISCONNECT", "CRITICALTIMEOUT"])
PEER_STATUSES = frozenset(["UNKNOWN", "REGISTERED", "UNREGISTERED", "REACHABLE", "LAGGED",
                           "UNREACHABLE"])
CHANNEL_TYPES = frozenset(["IAX2", "SIP", "PJSIP"])
DIRECTIONS = {"received": "Received", "sent": "Sent"}
SMALLINT = range(-32768, 32768)
SMALLINT_UNSIGNED = range(0, 65536)
WIDTHS = {"channel": 100, "uniqueid": 20, "digit": 1, "peer": 100, "host_ip": 15,
          "data": 255, "callerid": 20, "result": 20, "sip_hangup_reason": 50}
# SIP responses VICIdial does not record (proxy authentication required).
SKIPPED_SIP_CODE = "407"

_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}\Z")
_LEAD = re.compile(r"\s*(\d*)")


@attr.s(frozen=True, auto_attribs=True)
class Misfit:
    """A value of an event that VICIdial's column cannot hold: C{kind} is what to log once."""

    kind: str
    text: str


class _Rule:
    """One event's reading: its rows, and the values that did not fit."""

    def __init__(self, event: Mapping[str, str], name: str):
        self.event = event
        self.name = name
        self.rows: List[DutyRow] = []
        self.misfits: List[Misfit] = []

    def get(self, key: str) -> str:
        return self.event.get(key) or ""

    def missing(self, *keys: str) -> bool:
        """Whether one of C{keys} is absent (noted: the event writes nothing)."""
        absent = [key for key in keys if not self.get(key)]
        if absent:
            self.misfit(f"{self.name} without {absent[0]}",
                        f"{self.name} events without {', '.join(absent)} write nothing")
        return bool(absent)

    def misfit(self, kind: str, text: str) -> None:
        self.misfits.append(Misfit(kind, text))

    def text(self, value: str, column: str, table: str) -> str:
        """C{value} cut to C{column}'s width."""
        width = WIDTHS[column]
        if len(value) > width:
            self.misfit(f"{table}.{column} width",
                        f"{table}.{column} holds {width} characters: longer values are cut"
                        f" (e.g. {value!r})")
        return value[:width]

    def channelType(self, value: str, table: str) -> Optional[str]:
        if value.upper() in CHANNEL_TYPES:
            return value.upper()
        self.misfit(f"{table}.channel_type {value}",
                    f"{table}.channel_type has no {value!r}: written NULL")
        return None

    def host(self, host: str, table: str) -> Tuple[str, Optional[int], str]:
        """C{(host_ip, port, data)} of an C{ip:port}; data keeps a host that does not fit."""
        address, port = _splitHost(host)
        fits = bool(_IPV4.match(address))
        number = _integer(port)
        if port and not _fits(number, SMALLINT):
            self.misfit(f"{table}.port", f"{table}.port is a SMALLINT: port {port} is left out"
                                         " (the host is kept in data)")
            number = None
        if not fits:
            self.misfit(f"{table}.host_ip", f"{table}.host_ip holds an IPv4 address: host"
                                            f" {host!r} is kept in data instead")
        data = f"|Host={host}|" if host and (not fits or (port and number is None)) else ""
        return (address if fits else ""), number, data


def dutyRows(event: Mapping[str, str], at: float) -> Tuple[List[DutyRow], List[Misfit]]:
    """
    The duty rows an event calls for, and what of it did not fit; C{at} is
    when it arrived (clock seconds).  No rows for other events.
    """
    name = event.get("Event") or ""
    reader = _READERS.get(name.lower())
    if reader is None:
        return [], []
    rule = _Rule(event, name)
    reader(rule, at)
    return rule.rows, rule.misfits


def _dtmf(rule: _Rule, at: float) -> None:
    if rule.missing("Channel"):
        return
    name = rule.name.lower()
    if name == "dtmfbegin" or rule.get("Begin").lower() == "yes":
        state: Optional[str] = "BEGIN"
    elif name == "dtmfend" or rule.get("End").lower() == "yes":
        state = "END"
    else:
        state = None
        rule.misfit("DTMF state", "DTMF events neither Begin nor End: state written NULL")
    direction = DIRECTIONS.get(rule.get("Direction").lower())
    if direction is None:
        rule.misfit(f"DTMF direction {rule.get('Direction')}",
                    f"vicidial_dtmf_log.direction has no {rule.get('Direction')!r}:"
                    " written NULL")
    table = "vicidial_dtmf_log"
    rule.rows.append(DtmfRow(
        at, rule.text(rule.get("Channel"), "channel", table),
        rule.text(rule.get("Uniqueid"), "uniqueid", table),
        rule.text(rule.get("Digit"), "digit", table), direction, state))


def _peerStatus(rule: _Rule, at: float) -> None:
    if rule.missing("Peer", "PeerStatus"):
        return
    table = "vicidial_peer_event_log"
    peer, status = rule.get("Peer"), rule.get("PeerStatus")
    channelType = rule.get("ChannelType") or peer.partition("/")[0]
    data = "|" + "".join(f"{key}={rule.get(key)}|" for key in ("PingTime", "Time", "MaxPing")
                         if key in rule.event)
    eventType = status.upper()
    if eventType not in EVENT_TYPES:
        rule.misfit(f"{table}.event_type {status}",
                    f"{table}.event_type has no {status!r}: written UNKNOWN, with"
                    f" PeerStatus={status} in data")
        eventType, data = "UNKNOWN", data + f"PeerStatus={status}|"
    rule.rows.append(PeerEventRow(
        at, eventType, rule.channelType(channelType, table), peer=rule.text(peer, "peer", table),
        data=rule.text(data, "data", table)))
    extension = peer.partition("/")[2]
    if not extension:
        return
    if status.upper() not in PEER_STATUSES:
        rule.misfit(f"phones.peer_status {status}",
                    f"phones.peer_status has no {status!r}: the phone keeps its status")
        return
    ping = None
    if "PingTime" in rule.event:
        ping = _integer(rule.get("PingTime"))
        if not _fits(ping, SMALLINT):
            rule.misfit("phones.ping_time", "phones.ping_time is a SMALLINT: PingTime"
                                            f" {rule.get('PingTime')!r} is not written")
            ping = None
    rule.rows.append(PhoneStatus(extension, channelType, status.upper(), ping))


def _peerRegistered(rule: _Rule, at: float) -> None:
    if rule.missing("ChannelType", "Peer", "Host"):
        return
    table = "vicidial_peer_event_log"
    peer, channelType = rule.get("Peer"), rule.get("ChannelType")
    ip, port, data = rule.host(rule.get("Host"), table)
    rule.rows.append(PeerEventRow(
        at, "REGISTERED", rule.channelType(channelType, table),
        peer=rule.text(peer, "peer", table), host_ip=ip, port=port,
        data=rule.text(data, "data", table)))
    extension = peer.partition("/")[2]
    if extension and ip:
        rule.rows.append(PhoneAddress(extension, channelType, ip))


def _rtpDisconnect(rule: _Rule, at: float) -> None:
    if rule.missing("Channel", "RTPLastRX"):
        return
    table = "vicidial_peer_event_log"
    channel = rule.get("Channel")
    rule.rows.append(PeerEventRow(
        at, "RTPDISCONNECT", rule.channelType(channel.partition("/")[0], table),
        channel=rule.text(channel, "channel", table),
        data=rule.text(f"|RTPLastRX={rule.get('RTPLastRX')}|", "data", table)))


def _criticalTimeout(rule: _Rule, at: float) -> None:
    keys = ("Type", "CallID", "SeqNo", "Host", "Timeout")
    if rule.missing(*keys):
        return
    table = "vicidial_peer_event_log"
    ip, port, hostData = rule.host(rule.get("Host"), table)
    data = "|" + "".join(f"{key}={rule.get(key)}|" for key in keys if key != "Host")
    rule.rows.append(PeerEventRow(
        at, "CRITICALTIMEOUT", "SIP", host_ip=ip, port=port,
        data=rule.text(data + hostData[1:], "data", table)))


def _cpdResult(rule: _Rule, at: float) -> None:
    if rule.missing("Channel", "Uniqueid"):
        return
    result = rule.get("CPDResult") or rule.get("Result")  # 1.8's patch, 1.4's
    if not result:
        return
    table = "vicidial_cpd_log"
    callerid = cleanCallerID(rule.get("CallerIDName"))
    rule.rows.append(CpdRow(
        at, rule.text(rule.get("Channel"), "channel", table),
        rule.text(rule.get("Uniqueid"), "uniqueid", table), callerid, leadID(callerid),
        rule.text(result, "result", table)))


def _sipHangupCause(rule: _Rule, at: float) -> None:
    if rule.missing("Channel", "Uniqueid"):
        return
    result = rule.get("Result")
    if not result:
        return
    parts = result.split("|")
    code = parts[0].strip()
    if code.startswith(SKIPPED_SIP_CODE):
        return
    number = _integer(code)
    if number is None or not _fits(number, SMALLINT_UNSIGNED):
        rule.misfit("sip_hangup_cause", "sip_hangup_cause is a SMALLINT UNSIGNED: SIP result"
                                        f" {result!r} is not written")
        return
    callerid = cleanCallerID(rule.get("CallerIDName"))
    uniqueid = rule.get("Uniqueid")
    rule.rows.append(SipCause(
        callerid, leadID(callerid), rule.text(uniqueid, "uniqueid", "vicidial_dial_log"),
        number, rule.text(parts[1] if len(parts) > 1 else "", "sip_hangup_reason",
                          "vicidial_dial_log"),
        uniqueidEpoch(uniqueid)))


_READERS: Dict[str, Callable[[_Rule, float], None]] = {
    "dtmfbegin": _dtmf, "dtmfend": _dtmf, "dtmf": _dtmf,
    "peerstatus": _peerStatus, "peerregistered": _peerRegistered,
    "siprtpdisconnect": _rtpDisconnect, "sipcriticaltimeout": _criticalTimeout,
    "cpd-result": _cpdResult, "sip-hangup-cause": _sipHangupCause,
}


def leadID(callerid: str) -> int:
    """The lead id in a VICIdial callerid: the number at characters 11 to 20 (0 if none)."""
    match = _LEAD.match(callerid[10:20])  # it always does, maybe with no digits
    digits = match.group(1) if match is not None else ""
    return int(digits) if digits else 0


def uniqueidEpoch(uniqueid: str) -> Optional[int]:
    """The epoch second a uniqueid starts with (after the systemname, if any)."""
    seconds = uniqueid.partition(".")[0].rpartition("-")[2]
    return int(seconds) if seconds.isdigit() else None


def _splitHost(host: str) -> Tuple[str, str]:
    """C{(address, port)} of C{ip:port}, C{[ipv6]:port}, or an address alone."""
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        return address, rest[1:] if rest.startswith(":") else ""
    if host.count(":") == 1:
        address, _, port = host.partition(":")
        return address, port
    return host, ""


def _fits(number: Optional[int], allowed: range) -> bool:
    return number is not None and number in allowed


def _integer(text: str) -> Optional[int]:
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else None

"""
Which AMI events move which vicidial_manager rows: the listener's rules.

An originated call carries its row's callerid as the caller ID name of its
channels.  A channel of the call that rings or is answered makes the row
UPDATED with that channel and its uniqueid; the hangup of that uniqueid
makes the row DEAD.  The channel written is one a GUI client can act on
(Redirect, Hangup): a dialled non-Local leg when there is one, else the
originated Local leg: C{;1} (C{,1} in Asterisk 1.4), and in Asterisk 12+ the
one whose uniqueid is the call's linkedid, because a Local channel dialled
further down the call (its own C{;1}) often rings first.

L{readEvent} turns an event of either dialect (Asterisk 1.4's C{State},
C{CallerID}; 1.6 and later's C{ChannelStateDesc}, C{CallerIDNum},
C{ConnectedLineName}) into a L{ChannelEvent}; L{CallTracker} applies the
rules to the calls acqs is waiting for, and never touches the database.
"""

from collections import OrderedDict
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple, Union

import attr

from .store.records import CallDead, CallUpdated, TrackedCalls

CALLERID_WIDTH = 20  # vicidial_manager.callerid is VARCHAR(20)

STATE, HANGUP = "state", "hangup"
_PROGRESS = frozenset(["ringing", "up"])
# ChannelState numbers of Asterisk 1.6+, for events without ChannelStateDesc.
_STATE_NUMBERS = {"5": "ringing", "6": "up"}

Update = Union[CallUpdated, CallDead]


def cleanCallerID(name: Optional[str]) -> str:
    """
    A caller ID name as VICIdial's listeners compare it: a leading quote
    dropped and everything from the next quote on; a name with 18 or more
    non-space characters in a row cut at its first space; and no longer than
    the callerid column, which MySQL truncates on INSERT.
    """
    if not name:
        return ""
    name = name.strip()
    if name.startswith('"'):
        name = name[1:]
    name = name.partition('"')[0]
    if any(len(word) >= 18 for word in name.split(" ")):
        name = name.partition(" ")[0]
    return name[:CALLERID_WIDTH]


def isLocal(channel: str) -> bool:
    return channel[:6].lower() == "local/"


def isOriginatedLocalLeg(channel: str) -> bool:
    """The originated half of a Local channel pair: C{;1} (C{,1} in 1.4)."""
    return isLocal(channel) and channel[-2:] in (";1", ",1")


@attr.s(frozen=True, auto_attribs=True)
class ChannelEvent:
    """The parts of a Newstate, Status or Hangup event that the rules use."""

    kind: str  # STATE or HANGUP
    channel: str
    uniqueid: str
    names: Tuple[str, ...]  # cleaned CallerIDName, then ConnectedLineName
    state: str = ""  # lower-case state description: "ringing", "up", ...
    cause: Optional[str] = None
    linkedid: str = ""  # Asterisk 12+: the uniqueid of the call's first channel


def readEvent(event: Mapping[str, str]) -> Optional[ChannelEvent]:
    """
    Read a Newstate, Hangup, CoreShowChannel or Status event of any
    dialect; None for other events and for events missing a channel or
    uniqueid.
    """
    name = (event.get("Event") or "").lower()
    channel = event.get("Channel") or ""
    uniqueid = event.get("Uniqueid") or event.get("UniqueID") or ""
    if not channel or not uniqueid:
        return None
    names = tuple(
        n for n in (cleanCallerID(event.get("CallerIDName")),
                    cleanCallerID(event.get("ConnectedLineName"))) if n
    )
    if name == "hangup":
        return ChannelEvent(HANGUP, channel, uniqueid, names, cause=event.get("Cause"))
    if name in ("newstate", "coreshowchannel", "status"):
        state = (event.get("ChannelStateDesc") or event.get("State") or "").lower()
        state = _STATE_NUMBERS.get(state, state)
        if not state:
            state = _STATE_NUMBERS.get(event.get("ChannelState") or "", "")
        return ChannelEvent(STATE, channel, uniqueid, names, state=state,
                            linkedid=event.get("Linkedid") or "")
    return None


@attr.s(auto_attribs=True, eq=False)
class _Call:
    channel: str = ""
    uniqueid: str = ""


class CallTracker:
    """
    The originated calls acqs is waiting for, by callerid, and the uniqueid
    each row was last UPDATED with.  Events of other calls cost a dict
    lookup.  At most C{maxCalls} calls are kept, the least recently seen
    dropped first.
    """

    def __init__(self, maxCalls: int = 100_000):
        self._maxCalls = maxCalls
        self._calls: "OrderedDict[str, _Call]" = OrderedDict()
        self._byUniqueid: Dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def expect(self, callerid: str) -> None:
        """Wait for events of a call originated with this callerid."""
        callerid = cleanCallerID(callerid)
        if callerid and callerid not in self._calls:
            self._calls[callerid] = _Call()
            self._trim()

    def refresh(self, tracked: TrackedCalls) -> None:
        """Add the calls the database says are in progress."""
        for callerid in tracked.callerids:
            self.expect(callerid)
        for uniqueid in tracked.uniqueids:
            self._byUniqueid.setdefault(uniqueid, "")

    def _trim(self) -> None:
        while len(self._calls) > self._maxCalls:
            _, call = self._calls.popitem(last=False)
            self._byUniqueid.pop(call.uniqueid, None)

    def observe(self, event: ChannelEvent) -> List[Update]:
        """The row updates an event calls for (none for untracked calls)."""
        if event.kind == HANGUP:
            callerid = self._byUniqueid.pop(event.uniqueid, None)
            if callerid is None:
                return []
            self._calls.pop(callerid, None)
            return [CallDead(event.uniqueid, event.channel, event.cause)]
        if event.state not in _PROGRESS:
            return []
        for callerid in event.names:
            call = self._calls.get(callerid)
            if call is not None:
                return self._progress(callerid, call, event)
        return []

    def _progress(self, callerid: str, call: _Call, event: ChannelEvent) -> List[Update]:
        channel = event.channel
        if isLocal(channel):
            originated = isOriginatedLocalLeg(channel) and (
                event.linkedid in ("", event.uniqueid))
            if call.channel or not originated:
                return []
        elif call.channel == channel and call.uniqueid == event.uniqueid:
            return []
        self._byUniqueid.pop(call.uniqueid, None)
        call.channel, call.uniqueid = channel, event.uniqueid
        self._byUniqueid[event.uniqueid] = callerid
        self._calls.move_to_end(callerid)
        return [CallUpdated(callerid, channel, event.uniqueid)]

    def uniqueids(self) -> FrozenSet[str]:
        """The uniqueids whose hangup would make a row DEAD."""
        return frozenset(self._byUniqueid)

    def reconcile(self, before: FrozenSet[str], live: Iterable[ChannelEvent]) -> List[Update]:
        """
        After (re)connecting: the updates that the channels live on Asterisk
        (from CoreShowChannels or Status) call for.  C{before} is
        L{uniqueids} taken before the list was asked for: those with no live
        channel hung up while nobody listened.  Uniqueids tracked since may
        belong to channels too new for the list, and are left alone.
        """
        live = list(live)
        updates: List[Update] = []
        for event in live:
            updates.extend(self.observe(event))
        alive = {event.uniqueid for event in live}
        for uniqueid in before - alive:
            if uniqueid in self._byUniqueid:
                updates.extend(self.observe(ChannelEvent(HANGUP, "", uniqueid, ())))
        return updates

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

An C{OriginateResponse} Success (printed once the call is answered) counts
as the originated channel answering; a Failure ends the wait for that call.

A call whose synchronous Originate was answered (Asterisk answers it only
once the call is up) but of which no event was ever seen rang and was
answered while nobody listened: if no live channel carries its callerid
when the listener catches up, it has ended too, and its row becomes DEAD
(L{CallEnded}).  Rows of Originates that failed stay as VICIdial leaves
them.

L{readEvent} turns an event of either dialect (Asterisk 1.4's C{State},
C{CallerID}; 1.6 and later's C{ChannelStateDesc}, C{CallerIDNum},
C{ConnectedLineName}) into a L{ChannelEvent}; L{CallTracker} applies the
rules to the calls acqs is waiting for, and never touches the database.
"""

from collections import OrderedDict
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple, Union

import attr

from .store.records import CallDead, CallEnded, CallUpdated, TrackedCalls

CALLERID_WIDTH = 20  # vicidial_manager.callerid is VARCHAR(20)

STATE, HANGUP, ORIGINATED = "state", "hangup", "originated"
_PROGRESS = frozenset(["ringing", "up"])
# ChannelState numbers of Asterisk 1.6+, for events without ChannelStateDesc.
_STATE_NUMBERS = {"5": "ringing", "6": "up"}

Update = Union[CallUpdated, CallDead, CallEnded]

ENDED_UNSEEN = ("its synchronous Originate was answered, no event of the call was seen, and"
                " no live channel carried its callerid when the listener caught up: it ended"
                " while nobody listened")


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

    kind: str  # STATE, HANGUP or ORIGINATED (an OriginateResponse)
    channel: str
    uniqueid: str
    names: Tuple[str, ...]  # cleaned CallerIDName, then ConnectedLineName
    state: str = ""  # lower-case state description: "ringing", "up", ...
    cause: Optional[str] = None
    linkedid: str = ""  # Asterisk 12+: the uniqueid of the call's first channel


def readEvent(event: Mapping[str, str]) -> Optional[ChannelEvent]:
    """
    Read a Newstate, Hangup, OriginateResponse, CoreShowChannel or Status
    event of any dialect; None for other events and for events missing a
    channel or uniqueid (a failed OriginateResponse has neither but its
    name).
    """
    name = (event.get("Event") or "").lower()
    channel = event.get("Channel") or ""
    uniqueid = event.get("Uniqueid") or event.get("UniqueID") or ""
    names = tuple(
        n for n in (cleanCallerID(event.get("CallerIDName")),
                    cleanCallerID(event.get("ConnectedLineName"))) if n
    )
    if name == "originateresponse":
        success = (event.get("Response") or "").lower() == "success"
        return ChannelEvent(ORIGINATED, channel, uniqueid, names,
                            state="up" if success else "failed") if names else None
    if not channel or not uniqueid:
        return None
    if name == "hangup":
        cause = " ".join(c for c in (event.get("Cause"), event.get("Cause-txt")) if c)
        return ChannelEvent(HANGUP, channel, uniqueid, names, cause=cause or None)
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
    seen: bool = False  # an event of the call was seen
    answered: bool = False  # Asterisk said the call was answered


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

    def answered(self, callerid: str) -> bool:
        """
        The call's synchronous Originate was answered Success.  True if no
        event of the call was seen yet (the listener may have missed it).
        """
        callerid = cleanCallerID(callerid)
        call = self._calls.get(callerid)
        if call is None:
            if not callerid:
                return False
            self.expect(callerid)
            call = self._calls[callerid]
        call.answered = True
        return not call.seen

    def refresh(self, tracked: TrackedCalls) -> None:
        """Add the calls the database says are in progress."""
        for callerid in tracked.callerids:
            self.expect(callerid)
        for callerid in tracked.answered:
            self.answered(callerid)
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
        if event.kind == ORIGINATED and event.state == "failed":
            for callerid in event.names:
                call = self._calls.get(callerid)
                if call is not None and not call.channel:
                    del self._calls[callerid]  # it never rang: nothing more will come
            return []
        if event.state not in _PROGRESS:
            return []
        for callerid in event.names:
            call = self._calls.get(callerid)
            if call is not None:
                call.seen = True
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

    def tracks(self, uniqueid: str) -> bool:
        """Whether the hangup of C{uniqueid} would make a row DEAD."""
        return uniqueid in self._byUniqueid

    def uniqueids(self) -> FrozenSet[str]:
        """The uniqueids whose hangup would make a row DEAD."""
        return frozenset(self._byUniqueid)

    def unseenAnswered(self) -> FrozenSet[str]:
        """The callerids of answered calls of which no event was seen."""
        return frozenset(c for c, call in self._calls.items() if call.answered and not call.seen)

    def reconcile(self, before: FrozenSet[str], live: Iterable[ChannelEvent],
                  unseen: FrozenSet[str] = frozenset()) -> List[Update]:
        """
        After (re)connecting: the updates that the channels live on Asterisk
        (from CoreShowChannels or Status) call for.  C{before} is
        L{uniqueids} and C{unseen} L{unseenAnswered}, both taken before the
        list was asked for: uniqueids with no live channel hung up while
        nobody listened, and answered calls that no live channel carries
        ended unseen.  Those tracked since may belong to channels too new for
        the list, and are left alone.
        """
        live = list(live)
        updates: List[Update] = []
        for event in live:
            updates.extend(self.observe(event))
        alive = {event.uniqueid for event in live}
        for uniqueid in before - alive:
            if uniqueid in self._byUniqueid:
                updates.extend(self.observe(ChannelEvent(HANGUP, "", uniqueid, ())))
        carried = {name for event in live for name in event.names}
        for callerid in unseen - carried:
            call = self._calls.get(callerid)
            if call is not None and call.answered and not call.seen:
                del self._calls[callerid]
                updates.append(CallEnded(callerid, ENDED_UNSEEN))
        return updates

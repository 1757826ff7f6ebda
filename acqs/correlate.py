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

A non-Local leg that dials (Newstate C{Dialing}: DAHDI, PRI, analog, before
it rings) gives the row its channel and uniqueid without UPDATING it
(L{CallDialing}); a leg that rings or is answered later still UPDATEs it,
and the dialing leg's hangup makes it DEAD, so a call that fails before
ringing ends DEAD on its trunk channel, as VICIdial leaves it.  A leg never
replaces a non-Local leg that rang or was answered.

Asterisk 1.4 - 11 hang up the loser of every masquerade (a Redirect of a
bridged channel, a Local channel optimised away) as C{<name><ZOMBIE>},
with the uniqueid of the channel whose name and call live on: events of
C{<ZOMBIE>} and C{<MASQ>} channels move no row.  The channel that takes the
name announces it (C{Rename}); a tracked call so renamed goes on with the
new uniqueid (L{CallMoved}); where the Rename was not seen, the live list
shows the channel's name under its new uniqueid when the listener catches
up.

A call whose synchronous Originate was answered (Asterisk answers it only
once the call is up) but of which no event was ever seen rang and was
answered while nobody listened: if no live channel carries its callerid
when the listener catches up, it has ended too, and its row becomes DEAD
(L{CallEnded}).  Rows of Originates that failed stay as VICIdial leaves
them.

L{readEvent} turns an event of either dialect (Asterisk 1.4's C{State},
C{CallerID}; 1.6 and later's C{ChannelStateDesc}, C{CallerIDNum},
C{ConnectedLineName}) into a L{ChannelEvent}, and L{readConcise} a line of
C{core show channels concise}; L{CallTracker} applies the rules to the
calls acqs is waiting for, and never touches the database.
"""

import re
from collections import OrderedDict
from typing import Dict, FrozenSet, Iterable, List, Optional, Protocol, Set, Tuple, Union

import attr

from .store.records import CallDead, CallDialing, CallEnded, CallMoved, CallUpdated, TrackedCalls

CALLERID_WIDTH = 20  # vicidial_manager.callerid is VARCHAR(20)

STATE, HANGUP, ORIGINATED, RENAMED = "state", "hangup", "originated", "renamed"
_PROGRESS = frozenset(["ringing", "up"])
DIALING = "dialing"  # also "dialing offhook"
# ChannelState numbers of Asterisk 1.6+, for events without ChannelStateDesc.
_STATE_NUMBERS = {"3": DIALING, "5": "ringing", "6": "up"}
# What Asterisk 1.4 - 11 add to the names of a masquerade's losers.
_LOSERS = ("<ZOMBIE>", "<MASQ>")

Update = Union[CallUpdated, CallDialing, CallMoved, CallDead, CallEnded]


class Fields(Protocol):
    """An event's headers as L{readEvent} reads them: an AMI message or a dict."""

    def get(self, key: str, /) -> Optional[str]: ...

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


def isLoser(channel: str) -> bool:
    """A masquerade's loser (Asterisk 1.4 - 11): C{...<ZOMBIE>} or C{...<MASQ>}."""
    return channel.endswith(_LOSERS)


def isOriginatedLocalLeg(channel: str) -> bool:
    """The originated half of a Local channel pair: C{;1} (C{,1} in 1.4)."""
    return isLocal(channel) and channel[-2:] in (";1", ",1")


@attr.s(frozen=True, auto_attribs=True)
class ChannelEvent:
    """The parts of a Newstate, Status or Hangup event that the rules use."""

    kind: str  # STATE, HANGUP, ORIGINATED (an OriginateResponse) or RENAMED (the new name)
    channel: str
    uniqueid: str
    names: Tuple[str, ...]  # cleaned CallerIDName, then ConnectedLineName
    state: str = ""  # lower-case state description: "ringing", "up", ...
    cause: Optional[str] = None
    linkedid: str = ""  # Asterisk 12+: the uniqueid of the call's first channel


def readEvent(event: Fields) -> Optional[ChannelEvent]:
    """
    Read a Newstate, Hangup, OriginateResponse, Rename, CoreShowChannel or
    Status event of any dialect; None for other events and for events
    missing a channel or uniqueid (a failed OriginateResponse has neither
    but its name).
    """
    name = (event.get("Event") or "").lower()
    if name == "rename":  # 1.6+: Channel, Newname; 1.4: Oldname, Newname
        newName, uniqueid = event.get("Newname") or "", event.get("Uniqueid") or ""
        return ChannelEvent(RENAMED, newName, uniqueid, ()) if newName and uniqueid else None
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


def readConcise(lines: Iterable[str]) -> Optional[List[ChannelEvent]]:
    """
    The live channels in the output of C{core show channels concise}, as
    L{ChannelEvent}s without caller ID names (the list has none); None if
    a line is not such a channel line, or the list has no uniqueids
    (Asterisk 1.4).  Fields are C{!}-separated: the channel, context, exten,
    priority, state and application first, the uniqueid last (1.6 and
    later); the application's data, in between, may hold C{!} itself.
    """
    events = []
    for line in lines:
        if not line.strip():
            continue
        fields = line.split("!")
        if len(fields) < _CONCISE_FIELDS or not _UNIQUEID.match(fields[-1]):
            return None
        events.append(ChannelEvent(STATE, fields[0], fields[-1], (), state=fields[4].lower()))
    return events


# Fields of a concise channel line from 1.6 on (13; 14 from 1.8).
_CONCISE_FIELDS = 13
_UNIQUEID = re.compile(r"(?:.+-)?\d+\.\d+\Z")


@attr.s(auto_attribs=True, eq=False)
class _Call:
    channel: str = ""
    uniqueid: str = ""
    seen: bool = False  # an event of the call was seen
    answered: bool = False  # Asterisk said the call was answered
    dialing: bool = False  # channel and uniqueid are of a dialing leg: the row is not UPDATED


class CallTracker:
    """
    The originated calls acqs is waiting for, by callerid, and the uniqueid
    (and channel) each row was last given.  Events of other calls cost a
    dict lookup.  At most C{maxCalls} calls are kept, the least recently
    seen dropped first.
    """

    def __init__(self, maxCalls: int = 100_000):
        self._maxCalls = maxCalls
        self._calls: "OrderedDict[str, _Call]" = OrderedDict()
        self._byUniqueid: Dict[str, str] = {}  # tracked uniqueid -> callerid ('' unknown)
        self._channelOf: Dict[str, str] = {}  # tracked uniqueid -> its channel, where known
        self._byChannel: Dict[str, str] = {}  # and back
        # Tracked uniqueids whose channel lost a masquerade (its <ZOMBIE> hung
        # up) though no Rename said which channel took its name.
        self._masqueraded: Set[str] = set()

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
        channels = tracked.channels or ("",) * len(tracked.uniqueids)
        for uniqueid, channel in zip(tracked.uniqueids, channels):
            if uniqueid not in self._byUniqueid:
                self._track(uniqueid, "", channel)

    def _track(self, uniqueid: str, callerid: str, channel: str) -> None:
        self._byUniqueid[uniqueid] = callerid
        if channel:
            self._channelOf[uniqueid] = channel
            self._byChannel[channel] = uniqueid

    def _untrack(self, uniqueid: str) -> Optional[str]:
        """Stop following C{uniqueid}; its callerid ('' if unknown), None if not followed."""
        self._masqueraded.discard(uniqueid)
        channel = self._channelOf.pop(uniqueid, None)
        if channel is not None and self._byChannel.get(channel) == uniqueid:
            del self._byChannel[channel]
        return self._byUniqueid.pop(uniqueid, None)

    def _trim(self) -> None:
        while len(self._calls) > self._maxCalls:
            _, call = self._calls.popitem(last=False)
            self._untrack(call.uniqueid)

    def observe(self, event: ChannelEvent) -> List[Update]:
        """The row updates an event calls for (none for untracked calls)."""
        if isLoser(event.channel):
            # The uniqueid it carries lives on under the channel's own name.
            if event.kind == HANGUP and event.uniqueid in self._byUniqueid:
                self._masqueraded.add(event.uniqueid)
            return []
        if event.kind == HANGUP:
            callerid = self._untrack(event.uniqueid)
            if callerid is None:
                return []
            self._calls.pop(callerid, None)
            return [CallDead(event.uniqueid, event.channel, event.cause)]
        if event.kind == RENAMED:
            tracked = self._byChannel.get(event.channel)
            if tracked is None or tracked == event.uniqueid:
                return []
            return [self._moved(tracked, event.uniqueid, event.channel)]
        if event.kind == ORIGINATED and event.state == "failed":
            for callerid in event.names:
                call = self._calls.get(callerid)
                if call is not None and not call.channel:
                    del self._calls[callerid]  # it never rang: nothing more will come
            return []
        dialing = event.state.startswith(DIALING)
        if not dialing and event.state not in _PROGRESS:
            return []
        for callerid in event.names:
            call = self._calls.get(callerid)
            if call is not None:
                call.seen = True
                if dialing:
                    return self._dialing(callerid, call, event)
                return self._progress(callerid, call, event)
        return []

    def _moved(self, uniqueid: str, newUniqueid: str, channel: str) -> CallMoved:
        callerid = self._untrack(uniqueid) or ""
        self._track(newUniqueid, callerid, channel)
        call = self._calls.get(callerid) if callerid else None
        if call is not None:
            call.uniqueid = newUniqueid
        return CallMoved(uniqueid, newUniqueid, channel)

    def _dialing(self, callerid: str, call: _Call, event: ChannelEvent) -> List[Update]:
        if isLocal(event.channel) or (call.channel and not isLocal(call.channel)):
            return []  # a rung or answered leg is never replaced
        self._follow(callerid, call, event)
        call.dialing = True
        return [CallDialing(callerid, event.channel, event.uniqueid)]

    def _progress(self, callerid: str, call: _Call, event: ChannelEvent) -> List[Update]:
        channel = event.channel
        if isLocal(channel):
            originated = isOriginatedLocalLeg(channel) and (
                event.linkedid in ("", event.uniqueid))
            if call.channel or not originated:
                return []
        elif (call.channel == channel and call.uniqueid == event.uniqueid
              and not call.dialing):
            return []
        self._follow(callerid, call, event)
        call.dialing = False
        return [CallUpdated(callerid, channel, event.uniqueid)]

    def _follow(self, callerid: str, call: _Call, event: ChannelEvent) -> None:
        """The call's rows now go with C{event}'s channel and uniqueid."""
        self._untrack(call.uniqueid)
        call.channel, call.uniqueid = event.channel, event.uniqueid
        self._track(event.uniqueid, callerid, event.channel)
        self._calls.move_to_end(callerid)

    def tracks(self, uniqueid: str) -> bool:
        """Whether the hangup of C{uniqueid} would make a row DEAD."""
        return uniqueid in self._byUniqueid

    def tracksChannel(self, channel: str) -> bool:
        """Whether C{channel} is the channel of a tracked uniqueid (a Rename to it matters)."""
        return channel in self._byChannel

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
        (from CoreShowChannels, Status or the concise list) call for.
        C{before} is L{uniqueids} and C{unseen} L{unseenAnswered}, both
        taken before the list was asked for: uniqueids with no live channel
        hung up while nobody listened, unless a masquerade's C{<ZOMBIE>} took
        them and their channel lives on under another uniqueid; answered calls that no live channel
        carries ended unseen.  Those tracked since may belong to channels too
        new for the list, and are left alone.  Pass no C{unseen} when the
        list has no caller ID names (1.6's CoreShowChannels, the concise
        list): it cannot tell that a call ended.
        """
        live = list(live)
        updates: List[Update] = []
        for event in live:
            updates.extend(self.observe(event))
        alive = {event.uniqueid for event in live}
        for event in live:
            tracked = self._byChannel.get(event.channel)
            if tracked in self._masqueraded and tracked not in alive:
                updates.append(self._moved(tracked, event.uniqueid, event.channel))
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

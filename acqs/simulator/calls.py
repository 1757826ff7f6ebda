"""
The call engine: Originate played as a call, Local channel pairs, Dial(),
bridges, MeetMe, Redirect and hangups, published as L{Event}s in the order
real Asterisk 22 prints them (see the captures in C{tests/data/asterisk22/}
and C{capture.py} there).

How the order comes about: Asterisk runs each channel in its own thread and
publishes through stasis, so events of one instant interleave.  Here every
stimulus (an action, a timer) runs to completion, and what Asterisk does
"a moment later" in another thread is queued with L{PBX._soon} and run
before control returns; an C{Answer()} that really answers is followed by a
short media wait in Asterisk, so the answering channel resumes only once
nothing else is left to do at that instant (the C{idle} queue).  The result
is the majority ordering of the captures; the orderings the captures show
to vary are chosen per call by L{Races}.

Rules taken from Asterisk 22's behaviour:
 - C{Newexten} is published when a channel starts an application and
   either had none before or its context/exten/priority changed
   (C{manager_channels.c}); the engine tags the others and the dialect
   decides;
 - the two halves of a Local channel share a Linkedid, C{;2} runs the
   dialplan, C{;1} is the dialled side whose state follows C{;2}'s
   C{Ringing()}/C{Answer()};
 - a channel asked to hang up prints C{SoftHangupRequest} with cause 16
   whatever its hangup cause, runs the C{h} extension with
   C{${HANGUPCAUSE}}, and on going away asks its Local peer to hang up
   (C{HangupRequest} with the cause);
 - a call dialled by C{Dial()} gets the dialler's Linkedid and caller ID
   (the dialler's exten as number when it has none).

For Asterisk 1.4 - 11 (the dialect's C{masquerades}) a redirected channel
that runs no dialplan is masqueraded into a new C{AsyncGoto/} channel, and
a Local channel whose C{;2} is bridged to a non-Local leg is optimised
away (L{PBX._optimizeLocal}); both leave a C{<ZOMBIE>} that hangs up.

Simplified: one bridge technology (a two-party basic bridge); from 12 a
redirected channel that was not running the dialplan starts it in place
(Asterisk masquerades it into a new channel, silently); a Local pair is
optimised only when its C{;2} is bridged to a non-Local channel (chan_local
waits for a media frame; a Local callee may carry none); the far end of a non-Local channel is
an L{Exten} (ring, answer, hold) rather than a phone, and such a channel is
created in its dialler's context; C{;2} always reports Up before C{;1}
(the captures saw the reverse in about one run in ten); the captures twice
saw a Success C{OriginateResponse} right after C{;1}'s C{Newstate Ringing},
seconds before the answer: here it is never earlier than the answer
(position C{beforeUp}); no channel ever reaches state C{Dialing} (none did
in the captures, where dialled channels go from Down to Ringing).
"""

import itertools
import random
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple

import attr
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .channels import (DOWN, NO_ANSWER, NORMAL_CLEARING, RING, RINGING, UP, Bridge, Channel,
                       Conference)
from .dialplan import HANGUP_EXTEN, App, Dialplan, Exten, substitute
from .events import DIALPLAN_UNCHANGED, LOCAL_COPY, PSEUDO_APP, Event

SUCCESS_POSITIONS = ("beforeUp", "afterLegTwoUp", "afterUp", "afterDialEnd")
FAILURE_POSITIONS = ("beforeHangups", "betweenHangups", "afterHangups")
HANGUP_ORDERS = ("self", "peer")
# How often each ordering came up in the repeated capture runs behind tests/data/asterisk22.
_SUCCESS_WEIGHTS = (8, 12, 7, 27)
_FAILURE_WEIGHTS = (5, 10, 3)
_HANGUP_WEIGHTS = (7, 3)

# OriginateResponse reasons seen: 4 answered, 3 no answer while ringing, 0 anything else
# (a missing exten or context, or the dialled channel hung up before answering).
REASON_FAILED, REASON_RINGING, REASON_ANSWERED = 0, 3, 4

# What a Local channel optimisation swaps between ;1 and the channel masqueraded into it.
_SWAPPED = ("tech", "callerIDNum", "callerIDName", "connectedLineNum", "connectedLineName",
            "farEnd")


class _FarEnd:
    """Holds the timer of a far end's hangup moved by a masquerade."""

    timer = None


# What a masquerade moves from the old channel to the one that takes its place.
_MASQUERADED = ("callerIDNum", "callerIDName", "connectedLineNum", "connectedLineName",
                "accountCode", "language", "variables", "farEnd", "localPeer", "localSide",
                "created", "answered", "callID")

_DIAL_VARIABLES = ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME",
                   "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "RINGTIME", "RINGTIME_MS",
                   "PROGRESSTIME", "PROGRESSTIME_MS")


@attr.s(auto_attribs=True)
class Races:
    """
    The orderings real Asterisk leaves to chance.  C{None} draws one per
    call from the simulator's seeded random generator, weighted as the
    captures saw them; a value pins it.

    @ivar originateResponse: where a Success C{OriginateResponse} lands
        (one of L{SUCCESS_POSITIONS}) or a Failure one (one of
        L{FAILURE_POSITIONS}); a value of the other kind is ignored.
    @ivar hangupOrder: when one half of a Local channel goes, whether its
        own C{Hangup} comes before (C{"self"}) or after (C{"peer"}) its
        peer's teardown.
    """

    originateResponse: Optional[str] = None
    hangupOrder: Optional[str] = None


@attr.s(frozen=True, auto_attribs=True)
class OriginateRequest:
    """An Originate action, parsed."""

    tech: str
    data: str
    context: str = ""
    exten: str = ""
    priority: int = 1
    application: str = ""
    appData: str = ""
    timeout: float = 30.0
    callerIDNum: str = ""
    callerIDName: str = ""
    account: str = ""
    variables: Tuple[Tuple[str, str], ...] = ()
    actionID: Optional[str] = None
    isAsync: bool = True

    @property
    def dialString(self) -> str:
        return f"{self.tech}/{self.data}"


class _Originate:
    """The originate thread: dials one channel, then sends it to the target."""

    def __init__(self, pbx: "PBX", request: OriginateRequest,
                 done: Optional[Callable[[bool], None]]):
        self.pbx = pbx
        self.request = request
        self.done = done
        self.channel: Optional[Channel] = None
        self.finished = False
        self.sawRinging = False
        self.timer = None
        self.successAt, self.failureAt = pbx._draw()

    # Reporting

    def _respond(self, success: bool, reason: int) -> None:
        if self.done is not None:
            self.pbx._soon(self.done, success)
            return
        r = self.request
        ch = self.channel if success else None
        target = (("Application", r.application), ("Data", r.appData)) if r.application else (
            ("Context", r.context), ("Exten", r.exten))
        self.pbx._emit("OriginateResponse", fields=(
            ("ActionID", r.actionID or ""),
            ("Response", "Success" if success else "Failure"),
            ("Channel", r.dialString if ch is None else ch.name),
            *target,
            ("Reason", str(reason)),
            ("Uniqueid", "" if ch is None else ch.uniqueid),
            ("CallerIDNum", r.callerIDNum),
            ("CallerIDName", r.callerIDName),
        ))

    def at(self, point: str) -> None:
        """Send the success response if this is where it lands."""
        if point == self.successAt and not self.finished and self.done is None:
            self.finished = True
            self._respond(True, REASON_ANSWERED)

    # Dialer callbacks

    def onRinging(self, ch: Channel) -> None:
        self.sawRinging = True
        self.pbx._emit("DialState", dest=ch, fields=(("DialStatus", "RINGING"),))

    def onAnswer(self, ch: Channel) -> None:
        pbx = self.pbx
        pbx._cancel(self)
        ch.dialer = None
        pbx._emit("DialEnd", dest=ch, fields=(("DialStatus", "ANSWER"),))
        if self.done is not None:
            self.finished = True
            self._respond(True, REASON_ANSWERED)
        r = self.request
        if r.application:
            # The channel runs just the application, outside the dialplan: no
            # call id, no h extension, and it goes with cause 0 when it ends.
            ch.program = [(r.application, r.appData)]
            ch.priority = 1
            pbx._execute(ch)
        else:
            pbx._startPBX(ch, r.context, r.exten, r.priority)
        if not self.finished:
            pbx._soon(self.at, "afterDialEnd")

    def onHangup(self, ch: Channel) -> None:
        """The dialled channel went before it answered."""
        self.fail(REASON_FAILED, ch.hangupCause)

    def cancelled(self, ch: Channel, cause: int) -> None:
        """The dialled channel was asked to hang up before it answered."""
        self.pbx._emit("DialEnd", dest=ch, fields=(("DialStatus", "NOANSWER"),))
        self.fail(REASON_FAILED, cause, [ch])

    def timedOut(self) -> None:
        self.timer = None
        ch = self.channel
        if ch is None or ch.gone or ch.stateCode == UP:
            return
        self.fail(REASON_RINGING if self.sawRinging else REASON_FAILED, NO_ANSWER, [ch])

    def fail(self, reason: int, cause: int, hangups: Sequence[Channel] = (),
             device: str = "NOT_INUSE", notifyPeer: bool = True) -> None:
        """
        The call failed: hang up C{hangups} in order and report it before,
        between (after the first) or after them.
        """
        if self.finished:
            return
        self.finished = True
        pbx = self.pbx
        pbx._cancel(self)
        where = "afterHangups" if self.done is not None else self.failureAt
        if where == "beforeHangups":
            self._respond(False, reason)
        for i, ch in enumerate(hangups):
            if not ch.gone:
                ch.dialer = None
                pbx._destroy(ch, cause, notifyPeer=notifyPeer, device=device)
            if i == 0 and where == "betweenHangups":
                self._respond(False, reason)
        if not hangups and where == "betweenHangups":
            self._respond(False, reason)
        elif where == "afterHangups":
            pbx._soon(self._respond, False, reason, rounds=2)


class _Dial:
    """A running C{Dial()} application."""

    def __init__(self, pbx: "PBX", caller: Channel, target: str, timeout: float):
        self.pbx = pbx
        self.caller = caller
        self.target = target
        self.timeout = timeout
        self.callee: Optional[Channel] = None
        self.started = pbx.now
        self.answered: Optional[float] = None
        self.timer = None
        self.peerNumber = target.partition("/")[2]

    def onRinging(self, callee: Channel) -> None:
        pbx = self.pbx
        pbx._indicateRinging(self.caller)
        pbx._setVar(self.caller, "RINGTIME", "0")
        pbx._setVar(self.caller, "RINGTIME_MS", "0")
        pbx._emit("DialState", self.caller, callee, (("DialStatus", "RINGING"),))

    def onAnswer(self, callee: Channel) -> None:
        pbx = self.pbx
        caller = self.caller
        pbx._cancel(self)
        callee.dialer = None
        self.answered = pbx.now
        pbx._setVar(caller, "DIALSTATUS", "ANSWER")
        pbx._setVar(caller, "DIALEDPEERNAME", callee.name)
        pbx._setVar(caller, "DIALEDPEERNUMBER", self.peerNumber)
        callee.exten = ""
        pbx._emit("DialEnd", caller, callee, (("DialStatus", "ANSWER"),))
        pbx._answer(caller)
        bridge = Bridge(pbx._bridgeID())
        pbx._emit("BridgeCreate", bridge=bridge)
        pbx._setApp(callee, "AppDial", "(Outgoing Line)", pseudo=True)
        pbx._enterBridge(callee, bridge)
        pbx._soon(self._callerEnters, bridge, rounds=1)

    def _callerEnters(self, bridge: Bridge) -> None:
        pbx = self.pbx
        callee = self.callee
        if self.caller.gone or callee is None or callee.gone:
            return
        pbx._enterBridge(self.caller, bridge)
        pbx._setVar(callee, "BRIDGEPEER", self.caller.name)
        pbx._setVar(self.caller, "BRIDGEPEER", callee.name)
        caller = self.caller
        if (pbx._names.masquerades and caller.localSide == 2 and not caller.noOptimization
                and callee.tech.lower() != "local"):
            pbx._soon(pbx._optimizeLocal, caller, callee)

    def onHangup(self, callee: Channel) -> None:
        """The callee went before it answered."""
        self._end("CHANUNAVAIL" if callee.hangupCause != NO_ANSWER else "NOANSWER")

    def timedOut(self) -> None:
        self.timer = None
        callee = self.callee
        if callee is not None and not callee.gone:
            callee.dialer = None
            self.pbx._destroy(callee, NO_ANSWER)
        self._end("NOANSWER")

    def _end(self, status: str) -> None:
        """Dial() returns without a bridge; the caller's dialplan goes on."""
        pbx = self.pbx
        caller = self.caller
        pbx._cancel(self)
        pbx._setVar(caller, "DIALSTATUS", status)
        if self.callee is not None:
            pbx._emit("DialEnd", caller, self.callee, (("DialStatus", status),))
        self.returned()
        caller.dial = None
        caller.waiting = None
        if not caller.gone and not caller.hangupRequested:
            pbx._soon(pbx._next, caller)

    def times(self) -> None:
        pbx = self.pbx
        now = pbx.now
        if self.answered is not None:
            talk = now - self.answered
            pbx._setVar(self.caller, "ANSWEREDTIME", str(int(talk)))
            pbx._setVar(self.caller, "ANSWEREDTIME_MS", str(int(talk * 1000)))
        dialled = now - self.started
        pbx._setVar(self.caller, "DIALEDTIME", str(int(dialled)))
        pbx._setVar(self.caller, "DIALEDTIME_MS", str(int(dialled * 1000)))
        pbx._setVar(self.caller, "DIALSTATUS", "ANSWER" if self.answered is not None else "CANCEL")
        self.returned()

    def returned(self) -> None:
        """Dial() returns to the caller's dialplan (printed as Dial's End in 1.6 - 11)."""
        self.pbx._emit("DialReturned", self.caller, fields=(
            ("DialStatus", self.caller.variables.get("DIALSTATUS", "")),))


class PBX:
    """
    The channels, conferences and calls of one simulated Asterisk.

    Every public method runs to completion synchronously; timers use the
    injected clock only.  C{publish} receives every L{Event}; C{names}
    (a dialect) names new channels.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, dialplan: Dialplan,
                 publish: Callable[[Event], None], names, *, seed: int = 0,
                 races: Optional[Races] = None, farEnd: Optional[Exten] = None):
        self._clock = clock
        self.dialplan = dialplan
        self._publish = publish
        self._names = names
        self.random = random.Random(seed)
        self.races = races if races is not None else Races()
        self.farEnd = farEnd if farEnd is not None else Exten(ring=1, answer=True, hold=None)
        self.systemName: Optional[str] = None  # asterisk.conf's systemname
        self.channels: Dict[str, Channel] = {}
        self.conferences: Dict[str, Conference] = {}
        self.startTime = clock.seconds()
        self.processedCalls = 0
        self._uniqueids = itertools.count(1)
        self._counters: Dict[str, "itertools.count[int]"] = {}
        self._callIDs = itertools.count(1)
        self._queue: Deque[Tuple[Callable, tuple]] = deque()
        self._idle: Deque[Tuple[Callable, tuple]] = deque()
        self._draining = False
        self._timers: set = set()

    # Scheduling

    @property
    def now(self) -> float:
        return self._clock.seconds()

    def _soon(self, fn: Callable, *args, rounds: int = 0) -> None:
        """Run C{fn} after what is already queued (C{rounds} times over)."""
        if rounds:
            self._queue.append((lambda: self._soon(fn, *args, rounds=rounds - 1), ()))
        else:
            self._queue.append((fn, args))

    def _whenIdle(self, fn: Callable, *args) -> None:
        self._idle.append((fn, args))

    def _run(self, fn: Callable, *args) -> None:
        self._queue.append((fn, args))
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue or self._idle:
                task, taskArgs = (self._queue or self._idle).popleft()
                try:
                    task(*taskArgs)
                except Exception:
                    self.log.failure("Simulator call engine failed in {task!r}", task=task)
        finally:
            self._draining = False

    def _later(self, owner, seconds: float, fn: Callable, *args) -> None:
        """Call C{fn} after C{seconds}; C{owner} keeps the one timer it may have."""
        self._cancel(owner)
        owner.timer = self._clock.callLater(max(0.0, seconds), self._fire, owner, fn, args)
        self._timers.add(owner.timer)

    def _fire(self, owner, fn: Callable, args: tuple) -> None:
        self._timers.discard(owner.timer)
        owner.timer = None
        self._run(fn, *args)

    def _cancel(self, owner) -> None:
        timer = getattr(owner, "timer", None)
        if timer is not None:
            self._timers.discard(timer)
            if timer.active():
                timer.cancel()
        owner.timer = None

    def stop(self) -> None:
        """Cancel every timer: calls freeze where they are."""
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers.clear()

    def _draw(self) -> Tuple[str, str]:
        """Where this call's OriginateResponse lands on success and on failure."""
        success = self.random.choices(SUCCESS_POSITIONS, _SUCCESS_WEIGHTS)[0]
        failure = self.random.choices(FAILURE_POSITIONS, _FAILURE_WEIGHTS)[0]
        pinned = self.races.originateResponse
        if pinned in SUCCESS_POSITIONS:
            success = pinned
        elif pinned in FAILURE_POSITIONS:
            failure = pinned
        return success, failure

    # Publishing

    def _emit(self, name: str, channel: Optional[Channel] = None, dest: Optional[Channel] = None,
              fields=(), bridge: Optional[Bridge] = None, tags=()) -> None:
        self._publish(Event(name, channel, dest, tuple(fields), bridge, frozenset(tags)))

    def _deviceState(self, ch: Channel, state: str) -> None:
        self._emit("DeviceStateChange", fields=(("Device", ch.device), ("State", state)))

    def _setVar(self, ch: Channel, name: str, value: str) -> None:
        ch.variables[name] = value
        self._emit("VarSet", ch, fields=(("Variable", name), ("Value", value)))

    def _setApp(self, ch: Channel, app: str, data: str, pseudo: bool = False) -> None:
        cep = (ch.context, ch.exten, ch.priority)
        tags = []
        if ch.application and cep == ch.announced:
            tags.append(DIALPLAN_UNCHANGED)
        if pseudo:
            tags.append(PSEUDO_APP)
        ch.application, ch.appData = app, data
        ch.announced = cep
        self._emit("Newexten", ch, fields=(("Extension", ch.exten), ("Application", app),
                                           ("AppData", data)), tags=tags)

    def _setState(self, ch: Channel, state: int) -> None:
        if ch.stateCode != state:
            ch.stateCode = state
            self._emit("Newstate", ch)
            self._soon(self._deviceState, ch, "INUSE")

    def _callID(self, ch: Channel, inherit: Optional[int] = None) -> None:
        prior = ch.callID
        ch.callID = inherit if inherit is not None else next(self._callIDs)
        self._emit("TestEvent", fields=(
            ("Type", "StateChange"), ("State", "CallIDChange"),
            ("AppFile", "channel_internal_api.c"), ("AppFunction", "ast_channel_callid_set"),
            ("AppLine", "677"), ("State", "CallIDChange"), ("Channel", ch.name),
            ("CallID", f"[C-{ch.callID:08x}]"),
            ("PriorCallID", "" if prior is None else f"[C-{prior:08x}]"),
        ))

    def _bridgeID(self) -> str:
        h = f"{self.random.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    # Channels

    def _counter(self, kind: str) -> int:
        return next(self._counters.setdefault(kind, itertools.count(1)))

    def _newChannel(self, name: str, tech: str, context: str, exten: str, state: int,
                    linkedid: Optional[str] = None) -> Channel:
        uniqueid = f"{int(self.now)}.{next(self._uniqueids)}"
        if self.systemName:  # as Asterisk names them then: vicibox-ast01-1796107644.1
            uniqueid = f"{self.systemName}-{uniqueid}"
        ch = Channel(name, uniqueid, linkedid or uniqueid, tech, context, exten, state, self.now)
        self.channels[name] = ch
        self._emit("Newchannel", ch)
        return ch

    def _newLocalPair(self, exten: str, context: str, linkedid: Optional[str] = None,
                      callID: Optional[int] = None) -> Tuple[Channel, Channel]:
        name1, name2 = self._names.localNames(exten, context, self._counter("Local"), self.random)
        one = self._newChannel(name1, "Local", context, exten, DOWN, linkedid)
        if callID is not None:
            self._callID(one, callID)
        two = self._newChannel(name2, "Local", context, exten, RING, one.linkedid)
        if callID is not None:
            self._callID(two, callID)
        one.localPeer, two.localPeer = two, one
        one.localSide, two.localSide = 1, 2
        return one, two

    def _newTechChannel(self, tech: str, resource: str, context: str, exten: str,
                        linkedid: Optional[str] = None) -> Channel:
        peer = resource.partition("/")[0]
        name = self._names.channelName(tech, peer, self._counter(tech), self.random)
        return self._newChannel(name, tech, context, exten, DOWN, linkedid)

    def find(self, name: str) -> Optional[Channel]:
        ch = self.channels.get(name)
        if ch is None:
            lowered = name.lower()
            ch = next((c for n, c in self.channels.items() if n.lower() == lowered), None)
        return ch

    def activeCalls(self) -> int:
        return sum(1 for ch in self.channels.values() if ch.runningPBX)

    # Originate

    def originate(self, request: OriginateRequest,
                  done: Optional[Callable[[bool], None]] = None) -> None:
        """
        Place a call.  Async (C{done} None): an C{OriginateResponse} event
        reports the outcome.  Sync: C{done(answered)} is called instead.
        """
        self._run(self._originate, _Originate(self, request, done))

    def failOriginate(self, request: OriginateRequest) -> None:
        """Report an async originate that could not even create its channel."""
        o = _Originate(self, request, None)
        o.failureAt = "beforeHangups"
        self._run(o.fail, REASON_FAILED, 0)

    def _originate(self, o: _Originate) -> None:
        r = o.request
        if r.tech.lower() == "local":
            self._originateLocal(o)
            return
        number = r.data.partition("/")[2]
        ch = self._newTechChannel(r.tech, r.data, "default", number or "s")
        o.channel = ch
        self._outgoing(ch, r.callerIDNum, r.callerIDName, r.account, "AppDial2")
        ch.dialer = o
        self._emit("DialBegin", dest=ch, fields=(("DialString", r.data),))
        self._later(o, r.timeout, o.timedOut)
        self._startFarEnd(ch, self.farEnd)

    def _outgoing(self, ch: Channel, number: str, name: str, account: str, app: str) -> None:
        ch.accountCode = account
        self._setApp(ch, app, "(Outgoing Line)", pseudo=True)
        ch.callerIDNum, ch.callerIDName = number, name
        self._emit("NewCallerid", ch, fields=(("CID-CallingPres",
                                               "0 (Presentation Allowed, Not Screened)"),))
        ch.connectedLineNum, ch.connectedLineName = number, name
        self._emit("NewConnectedLine", ch)

    def _originateLocal(self, o: _Originate) -> None:
        r = o.request
        exten, _, context = r.data.partition("/")[0].partition("@")
        context = context or "default"
        one, two = self._newLocalPair(exten, context)
        one.noOptimization = two.noOptimization = "n" in r.data.partition("/")[2]
        o.channel = one
        for key, value in r.variables:
            one.variables[key] = value
        self._outgoing(one, r.callerIDNum, r.callerIDName, r.account, "AppDial2")
        two.accountCode = r.account
        two.callerIDNum, two.callerIDName = r.callerIDNum, r.callerIDName
        two.connectedLineNum, two.connectedLineName = r.callerIDNum, r.callerIDName
        self._emit("NewCallerid", two, fields=(("CID-CallingPres",
                                                "0 (Presentation Allowed, Not Screened)"),),
                   tags=[LOCAL_COPY])
        self._emit("NewConnectedLine", two, tags=[LOCAL_COPY])
        if not self.dialplan.exists(context, exten):
            # local_call() fails: ;2 goes first, then the originate gives up on ;1.
            o.fail(REASON_FAILED, 0, [two, one], device="INVALID", notifyPeer=False)
            return
        one.dialer = o
        self._emit("LocalBridge", one, two, fields=(
            ("Context", context), ("Exten", exten), ("LocalOptimization", "Yes")))
        self._emit("DialBegin", dest=one, fields=(("DialString", f"{exten}@{context}"),))
        self._later(o, r.timeout, o.timedOut)
        self._startPBX(two, context, exten, 1)

    # The far end of a non-Local channel

    def _startFarEnd(self, ch: Channel, behaviour: Exten) -> None:
        ch.farEnd = behaviour
        self._soon(self._outboundRinging, ch)
        if behaviour.answer:
            self._later(ch, behaviour.ring, self._farAnswer, ch)

    def _farAnswer(self, ch: Channel) -> None:
        if ch.gone:
            return
        self._outboundAnswered(ch)
        if ch.farEnd.hold is not None:
            self._later(ch, ch.farEnd.hold, self._farHangup, ch)

    def _farHangup(self, ch: Channel, cause: int = NORMAL_CLEARING) -> None:
        if ch.gone or ch.hangupRequested:
            return
        self._emit("HangupRequest", ch, fields=(("Cause", str(cause)),))
        self._requestHangup(ch, cause)

    # State changes of dialled channels

    def _outboundRinging(self, ch: Channel) -> None:
        if ch.gone or ch.stateCode in (RINGING, UP):
            return
        self._setState(ch, RINGING)
        if ch.dialer is not None:
            self._soon(ch.dialer.onRinging, ch)

    def _outboundAnswered(self, ch: Channel) -> None:
        if ch.gone or ch.stateCode == UP:
            return
        self._goUp(ch, ch.dialer, ("afterLegTwoUp", "afterUp"))
        if ch.dialer is not None:
            self._soon(ch.dialer.onAnswer, ch)

    def _goUp(self, ch: Channel, dialer, after: Tuple[str, ...]) -> None:
        """C{ch} goes Up; an originate's response may land just before or after."""
        o = dialer if isinstance(dialer, _Originate) else None
        if o is not None:
            o.at("beforeUp")
        ch.answered = self.now
        self._setState(ch, UP)
        if o is not None:
            for point in after:
                o.at(point)

    def _indicateRinging(self, ch: Channel) -> None:
        """C{ch} tells its caller it is ringing."""
        peer = ch.localPeer
        if ch.localSide == 2 and peer is not None and not peer.gone:
            self._outboundRinging(peer)

    def _answer(self, ch: Channel) -> None:
        """C{ch} answers; for C{;2} of a Local pair, C{;1} follows."""
        if ch.stateCode == UP:
            return
        peer = ch.localPeer if ch.localSide == 2 else None
        self._goUp(ch, peer.dialer if peer is not None else None, ("afterLegTwoUp",))
        if peer is not None:
            self._soon(self._outboundAnswered, peer)

    # The dialplan

    def _startPBX(self, ch: Channel, context: str, exten: str, priority: int) -> None:
        if ch.gone:
            return
        if ch.callID is None:
            self._callID(ch)
        ch.runningPBX = True
        self.processedCalls += 1
        self._goto(ch, context, exten, priority)

    def _goto(self, ch: Channel, context: str, exten: str, priority: int) -> None:
        ch.context, ch.exten, ch.priority = context, exten, priority
        self._execute(ch)

    def _applications(self, ch: Channel) -> Optional[List[App]]:
        if ch.program is not None:
            return ch.program
        return self.dialplan.applications(ch.context, ch.exten)

    def _next(self, ch: Channel) -> None:
        if ch.gone or ch.hangupRequested:
            return
        ch.waiting = None
        if not ch.runningPBX:  # an originated application is done
            self._pbxEnded(ch)
            return
        ch.priority += 1
        self._execute(ch)

    def _execute(self, ch: Channel) -> None:
        if ch.gone or ch.hangupRequested:
            return
        apps = self._applications(ch)
        if apps is None or not 1 <= ch.priority <= len(apps):
            self._pbxEnded(ch)
            return
        app, data = apps[ch.priority - 1]
        data = substitute(data, ch.exten).replace("${HANGUPCAUSE}", str(ch.hangupCause))
        self._setApp(ch, app, data)
        run = getattr(self, "_app" + app, None)
        if run is None:
            self._next(ch)
        else:
            run(ch, data)

    def _appAnswer(self, ch: Channel, data: str) -> None:
        if ch.stateCode == UP:
            self._next(ch)
        else:
            self._answer(ch)
            self._whenIdle(self._next, ch)

    def _appRinging(self, ch: Channel, data: str) -> None:
        self._indicateRinging(ch)
        self._next(ch)

    def _appWait(self, ch: Channel, data: str) -> None:
        ch.waiting = "Wait"
        self._later(ch, float(data or 0), self._next, ch)

    def _appMusicOnHold(self, ch: Channel, data: str) -> None:
        ch.waiting = "MusicOnHold"

    def _appHangup(self, ch: Channel, data: str) -> None:
        cause = int(data) if data.isdigit() else NORMAL_CLEARING
        self._requestHangup(ch, ch.hangupCause or cause)

    def _appMeetMe(self, ch: Channel, data: str) -> None:
        number = data.split(",")[0]
        conference = self.conferences.get(number)
        if conference is None:
            conference = self.conferences[number] = Conference(number)
        user = conference.join(ch, self.now)
        ch.conference = conference
        ch.waiting = "MeetMe"
        self._emit("MeetmeJoin", ch, fields=(("Meetme", number), ("User", str(user.number))))

    def _appDial(self, ch: Channel, data: str) -> None:
        target, _, rest = data.partition(",")
        timeout = float(rest.split(",")[0] or 0) or 3600.0
        dial = _Dial(self, ch, target, timeout)
        ch.dial = dial
        ch.waiting = "Dial"
        for name in _DIAL_VARIABLES:
            self._setVar(ch, name, "")
        tech, _, resource = target.partition("/")
        behaviour = self.dialplan.lookup(ch.context, ch.exten)
        if tech.lower() == "local":
            exten, _, context = resource.partition("/")[0].partition("@")
            context = context or ch.context
            if not self.dialplan.exists(context, exten):
                dial._end("CHANUNAVAIL")
                return
            one, two = self._newLocalPair(exten, context, ch.linkedid, ch.callID)
            one.noOptimization = two.noOptimization = "n" in resource.partition("/")[2]
            self._callID(one, ch.callID)
            dial.callee = one
            self._dialled(ch, one, dial)
            self._setVar(two, "DIALEDPEERNUMBER", dial.peerNumber)
            two.callerIDNum, two.callerIDName = "", ch.callerIDName
            two.connectedLineNum, two.connectedLineName = one.callerIDNum, ch.callerIDName
            self._emit("NewCallerid", two, fields=(("CID-CallingPres",
                                                    "0 (Presentation Allowed, Not Screened)"),),
                       tags=[LOCAL_COPY])
            self._emit("NewConnectedLine", two, tags=[LOCAL_COPY])
            self._emit("LocalBridge", one, two, fields=(
                ("Context", context), ("Exten", exten), ("LocalOptimization", "Yes")))
            self._emit("DialBegin", ch, one, (("DialString", resource),))
            self._later(dial, timeout, dial.timedOut)
            self._startPBX(two, context, exten, 1)
        else:
            callee = self._newTechChannel(tech, resource, ch.context, resource.partition("/")[2])
            callee.linkedid = ch.linkedid
            self._callID(callee, ch.callID)
            dial.callee = callee
            self._dialled(ch, callee, dial)
            self._emit("DialBegin", ch, callee, (("DialString", resource),))
            self._later(dial, timeout, dial.timedOut)
            farEnd = behaviour if isinstance(behaviour, Exten) else self.farEnd
            self._startFarEnd(callee, farEnd)

    def _dialled(self, caller: Channel, callee: Channel, dial: _Dial) -> None:
        """Caller ID and location Dial() gives the channel it dials."""
        callee.dialer = dial
        self._setVar(callee, "DIALEDPEERNUMBER", dial.peerNumber)
        callee.context, callee.exten, callee.priority = caller.context, caller.exten, 1
        callee.callerIDNum = caller.callerIDNum or caller.exten
        callee.callerIDName = caller.callerIDName
        callee.connectedLineNum = caller.connectedLineNum
        callee.connectedLineName = caller.callerIDName
        self._setApp(callee, "AppDial", "(Outgoing Line)", pseudo=True)
        self._emit("NewCallerid", callee, fields=(("CID-CallingPres",
                                                   "0 (Presentation Allowed, Not Screened)"),))
        self._emit("NewConnectedLine", callee)

    def _pbxEnded(self, ch: Channel) -> None:
        """The dialplan ran out: hang up as Asterisk's autofallthrough does."""
        ch.hangupRequested = True
        if not ch.runningPBX:  # an originated application ended
            self._destroy(ch, ch.hangupCause)
            return
        ch.hangupCause = ch.hangupCause or NORMAL_CLEARING
        self._runHangupHandler(ch)
        self._destroy(ch, ch.hangupCause)

    def _runHangupHandler(self, ch: Channel) -> None:
        if not ch.runningPBX or self.dialplan.lookup(ch.context, HANGUP_EXTEN) is None:
            return
        ch.program = None
        apps = self.dialplan.applications(ch.context, HANGUP_EXTEN) or []
        ch.exten = HANGUP_EXTEN
        for priority, (app, data) in enumerate(apps, 1):
            ch.priority = priority
            self._setApp(ch, app, data.replace("${HANGUPCAUSE}", str(ch.hangupCause)))
        ch.priority = len(apps) + 1

    # Bridges

    def _enterBridge(self, ch: Channel, bridge: Bridge) -> None:
        bridge.members.append(ch)
        bridge.entered.append(ch)
        ch.bridge = bridge
        self._emit("BridgeEnter", ch, bridge=bridge)

    def _leaveBridge(self, ch: Channel) -> None:
        bridge = ch.bridge
        if bridge is None:
            return
        bridge.members.remove(ch)
        ch.bridge = None
        self._emit("BridgeLeave", ch, bridge=bridge)
        if not bridge.members:
            self._emit("BridgeDestroy", bridge=bridge)

    def _clearBridgePeers(self, first: Channel, second: Optional[Channel]) -> None:
        self._setVar(first, "BRIDGEPEER", "")
        if second is not None and not second.gone:
            self._setVar(second, "BRIDGEPEER", "")

    # Hanging up

    def _requestHangup(self, ch: Channel, cause: int) -> None:
        """
        Ask C{ch} to hang up.  A channel running the dialplan stops what it
        does (C{SoftHangupRequest}), runs C{h} and goes; one that is still
        being dialled makes its dial fail; a dialled one in a bridge leaves
        it and its caller's C{Dial()} returns.
        """
        if ch.gone or ch.hangupRequested:
            return
        ch.hangupRequested = True
        ch.hangupCause = cause
        self._cancel(ch)
        dial = ch.dial
        if ch.runningPBX:
            if dial is not None:
                self._cancel(dial)
                callee = dial.callee
                if ch.bridge is not None:
                    self._clearBridgePeers(ch, callee)
                    self._leaveBridge(ch)
                dial.times()
            self._emit("SoftHangupRequest", ch, fields=(("Cause", str(NORMAL_CLEARING)),))
            self._leaveConference(ch)
            self._runHangupHandler(ch)
            self._destroy(ch, ch.hangupCause)
            if dial is not None and dial.callee is not None and not dial.callee.gone:
                callee = dial.callee
                callee.dialer = None
                self._leaveBridge(callee)
                self._destroy(callee, NORMAL_CLEARING)
            return
        if isinstance(ch.dialer, _Originate):
            originate, ch.dialer = ch.dialer, None
            originate.cancelled(ch, cause)
            return
        caller = self._bridgePartner(ch)
        if caller is not None:
            self._clearBridgePeers(ch, caller)
            self._leaveBridge(ch)
        self._leaveConference(ch)
        self._destroy(ch, cause)
        if caller is not None:
            self._soon(self._callerDialReturns, caller)

    def _bridgePartner(self, ch: Channel) -> Optional[Channel]:
        if ch.bridge is None:
            return None
        return next((m for m in ch.bridge.members if m is not ch), None)

    def _callerDialReturns(self, caller: Channel) -> None:
        if caller.gone or caller.hangupRequested:
            return
        self._leaveBridge(caller)
        dial = caller.dial
        if dial is not None:
            dial.times()
        caller.dial = None
        caller.waiting = None
        self._next(caller)

    def _leaveConference(self, ch: Channel) -> None:
        conference = ch.conference
        if conference is None:
            return
        user = conference.leave(ch)
        ch.conference = None
        if user is not None:
            duration = int(self.now - user.joined)
            fields = [("Meetme", conference.number), ("User", str(user.number))]
            if duration > 0:
                fields.append(("Duration", str(duration)))
            self._emit("MeetmeLeave", ch, fields=fields)
        if not conference.users:
            self.conferences.pop(conference.number, None)
            self._emit("MeetmeEnd", fields=(("Meetme", conference.number),))

    def _destroy(self, ch: Channel, cause: int, notifyPeer: bool = True,
                 device: str = "NOT_INUSE") -> None:
        """C{ch} goes away; its Local peer is asked to follow."""
        if ch.gone:
            return
        ch.gone = True
        ch.hangupCause = cause
        self._cancel(ch)
        self.channels.pop(ch.name, None)
        peer = ch.localPeer
        if peer is not None and (peer.gone or not notifyPeer):
            peer = None
        if peer is not None and not peer.hangupRequested:
            peer.hangupCause = cause
            self._emit("HangupRequest", peer, fields=(("Cause", str(cause)),))
        else:
            peer = None
        order = self.races.hangupOrder or self.random.choices(HANGUP_ORDERS, _HANGUP_WEIGHTS)[0]
        if peer is not None and order == "peer":
            self._soon(self._peerThenSelf, ch, peer, cause)
        else:
            self._hungUp(ch)
            if peer is not None:
                self._soon(self._requestHangup, peer, cause)
        self._soon(self._deviceState, ch, device)
        dialer = ch.dialer
        if dialer is not None:
            ch.dialer = None
            self._soon(dialer.onHangup, ch)

    def _peerThenSelf(self, ch: Channel, peer: Channel, cause: int) -> None:
        self._requestHangup(peer, cause)
        self._hungUp(ch)

    def _hungUp(self, ch: Channel) -> None:
        self._emit("Hangup", ch, fields=(("Cause", str(ch.hangupCause)),))

    # Actions from AMI (each runs to completion)

    def hangup(self, name: str, cause: int = 0) -> bool:
        """Hang up a live channel (the Hangup action); False if there is none."""
        ch = self.find(name)
        if ch is None:
            return False
        self._run(self._requestHangup, ch, cause)
        return True

    def farHangup(self, name: str, cause: int = NORMAL_CLEARING) -> bool:
        """The far end of C{name} hangs up (test side)."""
        ch = self.find(name)
        if ch is None:
            return False
        if ch.tech.lower() == "local":
            self._run(self._requestHangup, ch, cause)
        else:
            self._run(self._farHangup, ch, cause)
        return True

    def redirect(self, name: str, context: str, exten: str, priority: int) -> bool:
        """Send a live channel to C{exten@context}; False if there is none."""
        ch = self.find(name)
        if ch is None:
            return False
        self._run(self._redirect, ch, context, exten, priority)
        return True

    def _redirect(self, ch: Channel, context: str, exten: str, priority: int) -> None:
        if ch.gone:
            return
        self._cancel(ch)
        old = ch
        if not ch.runningPBX and self._names.masquerades:
            ch = self._asyncGoto(old)
        partner = self._bridgePartner(old)
        if partner is not None:
            self._clearBridgePeers(old, partner)
            self._leaveBridge(old)
            self._leaveBridge(partner)
        if old is not ch:
            self._soon(self._destroy, old, NORMAL_CLEARING)  # whoever held the zombie
        if partner is not None:
            if partner.runningPBX:
                self._soon(self._callerDialReturns, partner)
            else:
                partner.dialer = None
                self._destroy(partner, NORMAL_CLEARING)
        self._leaveConference(ch)
        if ch.dial is not None:
            ch.dial.times()
            ch.dial = None
        ch.waiting = None
        ch.program = None
        if ch.runningPBX:
            self._goto(ch, context, exten, priority)
        else:
            ch.dialer = None
            self._startPBX(ch, context, exten, priority)

    def _asyncGoto(self, ch: Channel) -> Channel:
        """
        Asterisk 1.4 - 11 redirect a channel that runs no dialplan by
        masquerading it into a new one (ast_async_goto): C{AsyncGoto/<name>}
        takes its name, technology, caller ID and CDR with a new uniqueid;
        the old channel, renamed C{<name><MASQ>} and then
        C{AsyncGoto/<name><ZOMBIE>}, is left for its holder to hang up.
        Returns the new channel.
        """
        name = ch.name
        new = self._newChannel(f"AsyncGoto/{name}", ch.tech, ch.context, ch.exten,
                               ch.stateCode, ch.linkedid)
        self._emit("Masquerade", fields=(("Clone", name), ("CloneState", ch.state),
                                         ("Original", new.name), ("OriginalState", new.state)))
        self._rename(ch, f"{name}<MASQ>")
        self._rename(new, name)
        for attribute in _MASQUERADED:
            setattr(new, attribute, getattr(ch, attribute))
        ch.callerIDNum = ch.callerIDName = ch.connectedLineNum = ch.connectedLineName = ""
        ch.localPeer, ch.localSide, ch.farEnd = None, 0, None
        if new.localPeer is not None:
            new.localPeer.localPeer = new
        self._rename(ch, f"AsyncGoto/{name}<ZOMBIE>")
        return new

    def _optimizeLocal(self, two: Channel, far: Channel) -> None:
        """
        Asterisk 1.4 - 11 take a Local pair out of the call once its C{;2}
        is bridged to another channel (chan_local's check_bridge, unless
        C{/n}): that channel is masqueraded into C{;1}, which keeps its
        uniqueid and dialplan and goes on under the other's name,
        technology and caller ID; the other's old self, renamed
        C{<;1's name><ZOMBIE>}, is left to C{;2} and hangs up.
        """
        one = two.localPeer
        if (one is None or one.gone or one.hangupRequested or two.gone or far.gone
                or far.bridge is None or far.bridge is not two.bridge):
            return
        oneName, farName = one.name, far.name
        self._emit("Masquerade", fields=(("Clone", farName), ("CloneState", far.state),
                                         ("Original", oneName), ("OriginalState", one.state)))
        self._rename(far, f"{farName}<MASQ>")
        self._rename(one, farName)
        for attribute in _SWAPPED:
            mine, theirs = getattr(one, attribute), getattr(far, attribute)
            setattr(one, attribute, theirs)
            setattr(far, attribute, mine)
        one.localPeer, one.localSide = None, 0
        far.localPeer, far.localSide, two.localPeer = two, 1, far
        hold = far.timer
        if hold is not None and hold.active():  # the far end's hangup now ends ;1
            self._later(_FarEnd(), hold.getTime() - self.now, self._farHangup, one)
        self._cancel(far)
        self._rename(far, f"{oneName}<ZOMBIE>")
        self._soon(self._requestHangup, far, NORMAL_CLEARING)

    def _rename(self, ch: Channel, name: str) -> None:
        self._emit("Rename", ch, fields=(("Newname", name),))
        self.channels.pop(ch.name, None)
        ch.name = name
        self.channels[name] = ch

    def muteConferenceUser(self, number: str, user: str, muted: bool) -> bool:
        """(Un)mute user C{user} (a number, or C{all}) of a conference."""
        conference = self.conferences.get(number)
        if conference is None:
            return False
        users = [u for u in conference.users.values()
                 if user == "all" or (user.isdigit() and u.number == int(user))]
        for u in users:
            u.muted = muted
        return bool(users)

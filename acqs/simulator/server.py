"""
The simulated manager interface: one L{AMISession} per connection, and the
L{Simulator} that owns the users, the call engine, the sessions and the
fault knobs.

Sessions behave as Asterisk's manager threads do: actions of one session
are answered in order; while an action is not yet answered (a synchronous
Originate, a failed login's delay, L{Simulator.responseDelay}) the session
reads no further action and keeps its events, which follow the response.
Events reach a session only once it has logged in, and only those of a
class both its user may read and its C{Events:} mask asks for (on when the
header is absent), that pass the filters its C{Filter} actions added
(L{acqs.simulator.filters}; Asterisk 10 and later).  List events are part of the response, so an
C{Events: off} session gets them too.

Simplified: permissions are checked per action class only (no ACLs, no
C{displayconnects}, no C{authlimit}); C{RequestNotAllowed} is not printed.
The security events carry the fields a real Asterisk 22 printed.
"""

import hashlib
import itertools
import random
import time
from collections import deque
from types import MappingProxyType
from typing import (Callable, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import attr
from twisted.internet.interfaces import IReactorTime, IStreamServerEndpoint, ITCPTransport
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..ami.framing import MessageReader
from ..ami.message import Header, Message, encode
from . import cli
from .calls import PBX, OriginateRequest
from .channels import NORMAL_CLEARING, Channel, parseCallerID
from .dialects import Dialect, dialect as makeDialect
from .filters import BadFilter, compileFilter, passes
from .dialplan import DEFAULT_DIALPLAN, Dialplan
from .events import Event

MASK = "********"
_SECRET_HEADERS = frozenset(["secret", "key"])
_TRUE = frozenset(["yes", "true", "y", "t", "1", "on"])
_FALSE = frozenset(["no", "false", "n", "f", "0", "off"])

DEFAULT_GARBAGE = b"\x00\xff\xfeGARBAGE that is not AMI\r\nno colon here\r\n\r\n"


@attr.s(frozen=True, auto_attribs=True, repr=False)
class User:
    """A manager user; C{read}/C{write} are comma lists of classes."""

    username: str
    secret: str
    read: str = "all"
    write: str = "all"

    def __repr__(self) -> str:
        return f"User({self.username!r}, read={self.read!r}, write={self.write!r})"


# The users of the test Asterisk (tests/asterisk/etc/manager.conf.in):
# username -> secret, and their permissions there.
DEFAULT_USERS: Mapping[str, str] = MappingProxyType(
    {"sender": "sendersecret", "listener": "listenersecret"})
PERMISSIONS: Mapping[str, Tuple[str, str]] = MappingProxyType({
    "sender": ("system,call,originate", "system,call,originate,command,reporting"),
    "listener": ("all", "system"),
})


def makeUsers(users: Union[Mapping[str, str], Iterable[User]]) -> Dict[str, User]:
    """
    Users by name, from L{User}s or from a mapping of username to secret
    (permissions as the test Asterisk gives them, all for other names).
    """
    if isinstance(users, Mapping):
        users = [User(name, secret, *PERMISSIONS.get(name, ("all", "all")))
                 for name, secret in users.items()]
    return {u.username: u for u in users}


def masked(message: Message) -> Message:
    """A copy of an action with its secret and MD5 key hidden."""
    return Message([(k, MASK if k.lower() in _SECRET_HEADERS else v)
                    for k, v in message.headers])


def _noDelay(transport) -> None:
    """
    TCP_NODELAY, as Asterisk's manager (and acqs) set it: with Nagle's
    algorithm on, an event written while an earlier one waits for its ACK
    waits for the reader's delayed ACK, up to 40 ms.
    """
    setTcpNoDelay = getattr(transport, "setTcpNoDelay", None)
    if setTcpNoDelay is not None:
        setTcpNoDelay(True)


def _isoTime(seconds: float) -> str:
    whole = int(seconds)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{stamp}.{int((seconds - whole) * 1000):03d}+0000"


def _address(address) -> str:
    host = getattr(address, "host", "127.0.0.1")
    port = getattr(address, "port", 0)
    return f"IPV4/TCP/{host}/{port}"


class AMISession(Protocol):
    """One manager connection, server side."""

    log = Logger()
    # Set by makeConnection before any data or close can reach this protocol.
    transport: ITCPTransport

    def __init__(self, simulator: "Simulator"):
        self._sim = simulator
        self._reader = MessageReader(self._discarded)
        self.user: Optional[User] = None  # set by a successful login
        self.welcomed = False  # its login's answer was written
        self._wanted: frozenset = frozenset()
        self._filters: list = []  # what the Filter action added: (include, pattern)
        self._challenge: Optional[str] = None
        self._busy = False
        self._held: List[bytes] = []
        self._pending: Deque[Message] = deque()
        self._timers: list = []
        self._closed = False
        self.sessionID = f"0x{next(simulator._sessionIDs):012x}"

    @property
    def username(self) -> Optional[str]:
        return self.user.username if self.user is not None else None

    @property
    def eventsOn(self) -> bool:
        return self.authenticated and bool(self._wanted)

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    def __repr__(self) -> str:
        return f"<AMISession {self.sessionID} user={self.username!r}>"

    # Connection

    def connectionMade(self) -> None:
        self._sim.sessions.append(self)
        _noDelay(self.transport)
        self.transport.write(self._sim.dialect.greeting)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closed = True
        if self in self._sim.sessions:
            self._sim.sessions.remove(self)
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers = []

    def _discarded(self, size: int, why: str) -> None:
        self.log.warn("Simulator dropped a {size}-byte action that {why}", size=size, why=why)

    def dataReceived(self, data: bytes) -> None:
        for raw in self._reader.feed(data):
            self._pending.append(Message.fromBytes(raw))
        self._process()

    def _process(self) -> None:
        while self._pending and not self._busy and not self._closed:
            self._handle(self._pending.popleft())

    # Writing

    def sendEvent(self, category: str, data: bytes) -> bool:
        """Deliver an event if this session wants its class and its filters pass it."""
        if category not in self._wanted or self._closed:
            return False
        if self._filters and not passes(self._filters, data.decode("utf-8", "replace")):
            return False
        if self._busy:
            self._held.append(data)
        else:
            self.transport.write(data)
        return True

    def _later(self, seconds: float, fn: Callable, *args) -> None:
        self._timers = [t for t in self._timers if t.active()]
        self._timers.append(self._sim._clock.callLater(seconds, fn, *args))

    def _reply(self, data: bytes, then: Optional[Callable[[], None]] = None,
               delay: Optional[float] = None) -> None:
        """Answer the current action, after the response delay if one is set."""
        delay = self._sim.responseDelay if delay is None else delay
        if delay > 0:
            self._busy = True
            self._later(delay, self._deliver, data, then)
        else:
            self._deliver(data, then)

    def _deliver(self, data: bytes, then: Optional[Callable[[], None]] = None) -> None:
        if self._closed:
            return
        self._busy = False
        self.transport.write(data)
        held, self._held = self._held, []
        for event in held:
            self.transport.write(event)
        if then is not None:
            then()
        self._process()

    def _respond(self, message: Message, *headers: Header) -> bytes:
        """A response: the first header, the action's ActionID, the rest."""
        actionID = message.get("ActionID")
        first, rest = headers[0], list(headers[1:])
        return encode([first] + ([("ActionID", actionID)] if actionID else []) + rest)

    def _success(self, message: Message, text: str) -> bytes:
        return self._respond(message, ("Response", "Success"), ("Message", text))

    def _error(self, message: Message, text: str) -> bytes:
        return self._respond(message, ("Response", "Error"), ("Message", text))

    # Actions

    def _handle(self, message: Message) -> None:
        sim = self._sim
        action = (message.get("Action") or "").strip()
        who = self.username or (message.get("Username") if action.lower() == "login" else None)
        record = (who, masked(message))
        sim.actions.append(record)
        sim.actionTimes.append(sim._clock.seconds())
        if sim.onAction is not None:
            sim.onAction(*record)
        if sim.unresponsive:
            return
        if not action:
            self._reply(self._error(message, "Missing action in request"))
            return
        if sim.shuttingDown:  # Asterisk says so before it looks at the action, Login too
            self._reply(self._error(message, "Asterisk is shutting down"))
            return
        key = action.lower()
        user = self.user
        if user is None:
            if key == "login":
                self._login(message)
            elif key == "challenge":
                self._challengeAction(message)
            elif key == "logoff":
                if sim.dialect.anonymousLogoff is not None:
                    self._reply(self._success(message, sim.dialect.anonymousLogoff), self._close)
                else:
                    self._logoff(message)
            else:
                self._reply(self._error(message, sim.dialect.unauthenticated))
            return
        handler = getattr(self, "_action_" + key, None)
        if handler is None or key in sim.dialect.unsupportedActions:
            self._reply(self._error(message, sim.dialect.unknownAction(action)))
            return
        needed = sim.dialect.parseClasses(sim.dialect.authority.get(key, ""))
        granted = sim.dialect.parseClasses(user.write)
        if not sim.dialect.permitted(granted, needed):
            self._reply(self._error(message, "Permission denied"))
            return
        handler(message)

    def _close(self) -> None:
        if not self._closed:
            self.transport.loseConnection()

    def _challengeAction(self, message: Message) -> None:
        if (message.get("AuthType") or "").lower() != "md5":
            self._reply(self._error(message, "Must specify AuthType"))
            return
        if self._challenge is None:
            self._challenge = str(self._sim._challenges.randrange(100000000, 2 ** 31))
        self._reply(self._respond(message, ("Response", "Success"),
                                  ("Challenge", self._challenge)))

    def _login(self, message: Message) -> None:
        sim = self._sim
        username = message.get("Username") or ""
        user = next((u for u in sim.users.values() if u.username.lower() == username.lower()),
                    None)
        md5 = (message.get("AuthType") or "").lower() == "md5"
        extra: Tuple[Header, ...] = ()
        if user is None:
            accepted, failure = False, "InvalidAccountID"
        elif md5:
            expected = hashlib.md5(((self._challenge or "") + user.secret).encode("utf-8"),
                                   usedforsecurity=False).hexdigest()
            accepted = self._challenge is not None and message.get("Key") == expected
            # As Asterisk 22 prints it: no account, the key sent and the one expected.
            failure, username = "ChallengeResponseFailed", ""
            extra = (("Challenge", self._challenge or ""), ("Response", message.get("Key") or ""),
                     ("ExpectedResponse", expected))
        else:
            accepted, failure = message.get("Secret") == user.secret, "InvalidPassword"
        if sim.refuseLogins:
            accepted = False
        if not accepted:
            sim._securityEvent(failure, self, username, extra)
            self._reply(self._error(message, "Authentication failed"), self._close,
                        delay=sim.loginFailureDelay + sim.responseDelay)
            return
        self.user = user
        self._setEventMask(message.get("Events") or "on")
        self._reply(self._success(message, "Authentication accepted"), self._welcome)

    def _welcome(self) -> None:
        self.welcomed = True
        sim = self._sim
        if sim.dialect.hasFullyBooted:
            up = int(sim._clock.seconds() - sim.pbx.startTime)
            rendered = sim.dialect.renderBytes(Event("FullyBooted",
                                                     fields=sim.dialect.fullyBooted(up)))
            if rendered is not None:
                self.sendEvent(*rendered)
        sim._securityEvent("SuccessfulAuth", self, self.username or "")

    def _logoff(self, message: Message) -> None:
        self._reply(self._respond(message, ("Response", "Goodbye"),
                                  ("Message", "Thanks for all the fish.")), self._close)

    _action_logoff = _logoff

    def _action_login(self, message: Message) -> None:
        self._reply(self._success(message, self._sim.dialect.alreadyLoggedIn))

    def _action_challenge(self, message: Message) -> None:
        self._challengeAction(message)

    def _action_ping(self, message: Message) -> None:
        self._reply(self._respond(message, *self._sim.dialect.ping(self._sim._clock.seconds())))

    def _setEventMask(self, text: str) -> None:
        """Events on, off or by class, within what the logged-in user may read."""
        readable = "" if self.user is None else self.user.read
        dialect = self._sim.dialect
        mask = text.strip().lower()
        if mask in _TRUE:
            wanted = frozenset(dialect.classes)
        elif mask in _FALSE:
            wanted = frozenset()
        else:
            wanted = dialect.parseClasses(mask)
        self._wanted = wanted & dialect.parseClasses(readable)

    def _action_events(self, message: Message) -> None:
        self._setEventMask(message.get("EventMask") or "")
        self._reply(self._sim.dialect.eventsResponse(message.get("ActionID"), bool(self._wanted)))

    def _action_filter(self, message: Message) -> None:
        if (message.get("Operation") or "").strip().lower() != "add":
            self._reply(self._error(message, "Unknown operation"))
            return
        try:
            self._filters.append(compileFilter(message.get("Filter") or ""))
        except BadFilter:
            self._reply(self._error(
                message, "Filter did not compile.  Check the syntax of the filter given."))
            return
        self._reply(self._success(message, "Success"))

    def _action_command(self, message: Message) -> None:
        sim = self._sim
        command = message.get("Command") or ""
        if not command.strip():
            self._reply(self._error(message, "No command provided"))
            return
        known, lines = cli.run(command, sim.pbx, sim.dialect, sim._clock.seconds(),
                               meetme=sim.meetmeLoaded)
        self._reply(sim.dialect.commandResponse(message.get("ActionID"), known, lines))

    def _list(self, message: Message, build) -> None:
        sim = self._sim
        name = (message.get("Channel") or "").strip()
        if name:
            ch = sim.pbx.find(name)
            if ch is None:
                self._reply(self._error(message, "No such channel"))
                return
            channels = [ch]
        else:
            channels = list(sim.pbx.channels.values())
        response, items, complete = build(channels, sim._clock.seconds(),
                                          message.get("ActionID"))
        self._reply(b"".join(encode(h) for h in [response] + items + [complete]))

    def _action_status(self, message: Message) -> None:
        self._list(message, self._sim.dialect.statusList)

    def _action_coreshowchannels(self, message: Message) -> None:
        self._list(message, self._sim.dialect.coreShowChannels)

    def _action_hangup(self, message: Message) -> None:
        sim = self._sim
        name = (message.get("Channel") or "").strip()
        if not name:
            self._reply(self._error(message, "No channel specified"))
            return
        if sim.pbx.find(name) is None:
            self._reply(self._error(message, "No such channel"))
            return
        cause = message.get("Cause") or "0"
        self._reply(self._success(message, "Channel Hungup"))
        sim.pbx.hangup(name, int(cause) if cause.isdigit() else 0)

    def _action_redirect(self, message: Message) -> None:
        sim = self._sim
        name = (message.get("Channel") or "").strip()
        extra = (message.get("ExtraChannel") or "").strip()
        context = message.get("Context") or ""
        exten = message.get("Exten") or ""
        priority = (message.get("Priority") or "1").strip()
        if not name:
            self._reply(self._error(message, "Channel not specified"))
            return
        if not priority.isdigit():
            self._reply(self._error(message, "Invalid priority"))
            return
        if sim.pbx.find(name) is None:
            self._reply(self._error(message, f"Channel does not exist: {name}"))
            return
        if extra and sim.pbx.find(extra) is None:
            self._reply(self._error(message, "Secondary redirect failed"))
            return
        self._reply(self._success(message,
                                  "Dual Redirect successful" if extra else "Redirect successful"))
        sim.pbx.redirect(name, context, exten, int(priority))
        if extra:
            sim.pbx.redirect(extra, context, exten, int(priority))

    def _action_originate(self, message: Message) -> None:
        sim = self._sim
        request = self._originateRequest(message)
        if isinstance(request, str):
            self._reply(self._error(message, request))
            return
        queued = self._success(message, "Originate successfully queued")
        if request.isAsync:
            self._reply(queued)
            if sim.failOriginates:
                sim.pbx.failOriginate(request)
            else:
                sim.pbx.originate(request)
            return
        if sim.failOriginates:
            self._reply(self._error(message, "Originate failed"))
            return
        self._busy = True
        failed = self._error(message, "Originate failed")

        def done(answered: bool) -> None:
            self._reply(queued if answered else failed, delay=sim.responseDelay)

        sim.pbx.originate(request, done)

    def _originateRequest(self, message: Message) -> Union[OriginateRequest, str]:
        """The call an Originate asks for, or why Asterisk would refuse it."""
        sim = self._sim
        channel = (message.get("Channel") or "").strip()
        if not channel:
            return "Channel not specified"
        tech, sep, data = channel.partition("/")
        if not sep or not data:
            return "Invalid channel"
        priority = (message.get("Priority") or "").strip()
        if priority and not priority.isdigit():
            return "Invalid priority"
        timeout = (message.get("Timeout") or "30000").strip()
        if not timeout.lstrip("-").isdigit():
            return "Invalid timeout"
        exten = (message.get("Exten") or "").strip()
        context = (message.get("Context") or "").strip()
        application = (message.get("Application") or "").strip()
        if not application:
            if not (exten and context and priority):
                return "Originate with 'Exten' requires 'Context' and 'Priority'"
            if sim.dialect.checksOriginateTarget and not sim.pbx.dialplan.exists(
                    context, exten, int(priority)):
                return "Extension does not exist."
        number, name = parseCallerID(message.get("CallerID") or "")
        variables = []
        for header in message.getall("Variable"):
            for item in header.split(","):
                key, eq, value = item.partition("=")
                if eq and key.strip():
                    variables.append((key.strip(), value))
        return OriginateRequest(
            tech=tech, data=data, context=context, exten=exten,
            priority=int(priority or 1), application=application,
            appData=message.get("Data") or "", timeout=max(int(timeout), 0) / 1000.0,
            callerIDNum=number, callerIDName=name, account=message.get("Account") or "",
            variables=tuple(variables), actionID=message.get("ActionID"),
            isAsync=(message.get("Async") or "").strip().lower() in _TRUE,
        )


def _delegated(name: str, doc: str) -> property:
    """A read-write attribute kept by the call engine."""
    return property(lambda self: getattr(self.pbx, name),
                    lambda self, value: setattr(self.pbx, name, value), doc=doc)


class AMIServerFactory(Factory):
    """Builds L{AMISession}s for one L{Simulator}."""

    def __init__(self, simulator: "Simulator"):
        self.simulator = simulator

    def buildProtocol(self, addr) -> AMISession:
        session = AMISession(self.simulator)
        session.factory = self
        return session


class Simulator:
    """
    A simulated Asterisk manager interface: users, a dialplan, live calls.

    @ivar factory: the server factory to listen with (or to connect
        in-memory with C{twisted.test.iosim}).
    @ivar actions: C{(username, Message)} for every action received after
        the greeting, in order; Login secrets and MD5 keys are masked.
    @ivar actionTimes: when each of C{actions} was received (clock seconds).
    @ivar channels: the live channels by name (see L{Channel}).
    @ivar sessions: the connected L{AMISession}s.
    @ivar races: the L{Races} knobs for orderings real Asterisk leaves to
        chance (drawn per call from C{seed} unless pinned).
    @ivar onAction: if set, called as C{onAction(username, Message)} with
        each action the moment it is received, as recorded in C{actions}.
    @ivar onEvent: if set, called with each L{Event} the moment it is
        published, before any session gets it.

    C{dialect} names the Asterisk version (L{acqs.simulator.dialects});
    C{vicidialPatches} makes it a build with VICIdial's chan_sip patches,
    whose events the injection methods (L{dtmf}, L{peerStatus} and the
    rest, see L{acqs.simulator}) can then print.

    Fault knobs, all driven by the injected clock:
     - C{responseDelay}: seconds before every response (and, while it
       waits, before the session's events);
     - C{loginFailureDelay}: seconds before a refused login is answered
       (Asterisk's 1 s), after which the connection closes;
     - C{refuseLogins}: refuse every login as a bad secret;
     - C{failOriginates}: every Originate fails as if the channel could not
       be created (async: queued, then a Failure C{OriginateResponse};
       sync: C{Originate failed});
     - C{unresponsive}: record actions but never answer them;
     - C{shuttingDown}: answer every action C{Asterisk is shutting down}
       without running it, as Asterisk does while it shuts down;
     - C{meetmeLoaded}: answer C{meetme} CLI commands, as with app_meetme;
       False makes them unknown, as on the captured Debian build;
     - C{systemName}: uniqueids as Asterisk with C{systemname} set makes
       them (C{vicibox-ast01-1796107644.1}, longer than vicidial_manager's
       20 characters);
     - C{testEvents}: print C{TestEvent}s, as the captured Debian build
       of 22 (compiled with the test framework) does; False for a
       production-like stream (the default of the other dialects);
     - L{dropAll} (of one user, or all), L{sendGarbage}, L{flood}, L{hangup}.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, *,
                 users: Union[Mapping[str, str], Iterable[User]] = DEFAULT_USERS,
                 dialect: str = "asterisk22", dialplan: Dialplan = DEFAULT_DIALPLAN,
                 seed: int = 0, vicidialPatches: bool = False):
        self._clock = clock
        self.dialect: Dialect = makeDialect(dialect, vicidialPatches)
        self.users: Dict[str, User] = makeUsers(users)
        self.actions: List[Tuple[Optional[str], Message]] = []
        self.actionTimes: List[float] = []
        self.sessions: List[AMISession] = []
        self.responseDelay = 0.0
        self.loginFailureDelay = 1.0
        self.refuseLogins = False
        self.failOriginates = False
        self.unresponsive = False
        self.shuttingDown = False
        self.testEvents = self.dialect.testFramework
        self.meetmeLoaded = True
        self.onAction: Optional[Callable[[Optional[str], Message], None]] = None
        self.onEvent: Optional[Callable[[Event], None]] = None
        self._keys: list = []  # DTMFEnd timers of digits still pressed
        self._sessionIDs = itertools.count(0x7F5860000F40, 0x1010)
        self._challenges = random.Random(seed)
        self.pbx = PBX(clock, dialplan, self._publish, self.dialect, seed=seed)
        self.factory = AMIServerFactory(self)

    def __repr__(self) -> str:
        return f"<Simulator {self.dialect.name} sessions={len(self.sessions)}>"

    @property
    def channels(self) -> Dict[str, Channel]:
        return self.pbx.channels

    races = _delegated("races", "The L{Races} knobs (see L{calls.Races}).")
    farEnd = _delegated("farEnd", "How the far end of an originated non-Local channel behaves"
                                  " (an L{Exten}: ring, answer, hold).")
    systemName = _delegated("systemName", "asterisk.conf's C{systemname}, which Asterisk puts"
                                          " before every uniqueid; None for none.")

    @property
    def conferences(self):
        return self.pbx.conferences

    def listen(self, endpoint: IStreamServerEndpoint):
        """Listen on C{endpoint}; fires with the C{IListeningPort}."""
        return endpoint.listen(self.factory)

    def stop(self) -> None:
        """Close every session and cancel every timer (calls freeze)."""
        for session in list(self.sessions):
            session.transport.loseConnection()
        self.pbx.stop()
        for timer in self._keys:
            if timer.active():
                timer.cancel()
        self._keys = []

    # Events

    def _publish(self, event: Event) -> None:
        if event.name == "TestEvent" and not self.testEvents:
            return
        if self.onEvent is not None:
            self.onEvent(event)
        rendered = self.dialect.renderBytes(event)
        if rendered is None:
            return
        for session in list(self.sessions):
            session.sendEvent(*rendered)

    def _securityEvent(self, name: str, session: AMISession, account: str,
                       extra: Sequence[Header] = ()) -> None:
        """Asterisk 22's security events, with the fields a real one printed."""
        if not self.dialect.hasSecurityEvents:
            return
        now = _isoTime(self._clock.seconds())
        transport = session.transport
        fields = [("EventTV", now),
                  ("Severity", "Informational" if name == "SuccessfulAuth" else "Error"),
                  ("Service", "AMI"),
                  ("EventVersion", "2" if name == "InvalidPassword" else "1"),
                  ("AccountID", account), ("SessionID", session.sessionID),
                  ("LocalAddress", _address(transport.getHost())),
                  ("RemoteAddress", _address(transport.getPeer()))]
        if name == "SuccessfulAuth":
            fields += [("UsingPassword", "0"), ("SessionTV", now)]
        else:
            fields += list(extra) + [("SessionTV", "1970-01-01T00:00:00.000+0000")]
        self._publish(Event(name, fields=tuple(fields)))

    # Events from outside the calls: keypads, phones, SIP responses

    def _live(self, name: str) -> Channel:
        ch = self.pbx.find(name)
        if ch is None:
            raise KeyError(name)
        return ch

    def _inject(self, name: str, fields: Sequence[Header],
                channel: Optional[Channel] = None) -> None:
        self._publish(Event(name, channel, fields=tuple(fields)))

    def dtmf(self, channel: str, digit: str, direction: str = "Received",
             durationMs: int = 100) -> None:
        """
        Digit C{digit} is keyed on the live C{channel}: C{DTMFBegin} now and
        C{DTMFEnd} C{durationMs} later (12+), two C{DTMF} events (1.6 - 11)
        or nothing (1.4).  The end is not printed if the channel is gone by then.
        """
        ch = self._live(channel)
        if len(digit) != 1 or digit.upper() not in "0123456789*#ABCD":
            raise ValueError(f"not a DTMF digit: {digit!r}")
        if direction not in ("Received", "Sent"):
            raise ValueError(f"direction is Received or Sent, not {direction!r}")
        self._inject("DTMFBegin", (("Digit", digit), ("Direction", direction)), ch)
        end = (("Digit", digit), ("DurationMs", str(durationMs)), ("Direction", direction))
        self._keys = [t for t in self._keys if t.active()]
        self._keys.append(self._clock.callLater(durationMs / 1000.0, self._keyReleased, ch, end))

    def _keyReleased(self, ch: Channel, fields: Sequence[Header]) -> None:
        if not ch.gone:
            self._inject("DTMFEnd", fields, ch)

    def peerStatus(self, channelType: str, peer: str, status: str, address: Optional[str] = None,
                   port: Optional[int] = None, cause: Optional[str] = None,
                   time: Optional[int] = None, pingTime: Optional[int] = None,
                   maxPing: Optional[int] = None) -> None:
        """
        A C{PeerStatus} of C{channelType/peer} (C{peer} given as C{1001} or
        C{SIP/1001}) with the headers this version prints of those given;
        C{pingTime}/C{maxPing} need C{vicidialPatches}.  ValueError for what
        the version cannot print (chan_sip on 22, PJSIP before 13, a status
        the driver never sends, details PJSIP never gives).
        """
        def text(value) -> Optional[str]:
            return None if value is None else str(value)

        self._inject("PeerStatus", self.dialect.peerStatus(channelType, peer, status, (
            ("Cause", cause), ("Address", address), ("Port", text(port)), ("Time", text(time)),
            ("PingTime", text(pingTime)), ("MaxPing", text(maxPing)))))

    def peerRegistered(self, channelType: str, peer: str, host: str) -> None:
        """VICIdial's C{PeerRegistered}: C{peer} registered from C{host} (ip:port)."""
        self._inject("PeerRegistered", self.dialect.peerRegistered(channelType, peer, host))

    def rtpDisconnect(self, channel: str, lastRx: int) -> None:
        """VICIdial's C{SIPRTPDisconnect}: no RTP on C{channel} since C{lastRx}."""
        self._inject("SIPRTPDisconnect", self.dialect.rtpDisconnect(channel, str(lastRx)))

    def criticalTimeout(self, kind: str, callID: str, seqNo: int, host: str,
                        timeout: int) -> None:
        """VICIdial's C{SIPCriticalTimeout}: a SIP transaction to C{host} timed out."""
        self._inject("SIPCriticalTimeout", self.dialect.criticalTimeout(
            kind, callID, str(seqNo), host, str(timeout)))

    def cpdResult(self, channel: Optional[str], result: str, detailed: str = "",
                  callID: str = "", referenceID: str = "", campaign: str = "") -> None:
        """
        VICIdial's C{CPD-Result} (NetBorder call progress detection) for the
        live C{channel}, or for a SIP dialog without one (C{None}: UNKNOWN).
        """
        ch = self._live(channel) if channel is not None else None
        self._inject("CPD-Result", self.dialect.cpdResult(ch, result, detailed, callID,
                                                          referenceID, campaign))

    def sipHangupCause(self, channel: str, code: int, reason: str) -> None:
        """VICIdial's C{SIP-Hangup-Cause}: the live C{channel} got SIP response C{code}."""
        ch = self._live(channel)
        if not 400 <= code <= 900:
            raise ValueError(f"the patch reports SIP responses 400-900 only, not {code}")
        self._inject("SIP-Hangup-Cause", self.dialect.sipHangupCause(ch, code, reason))

    # Test-side controls

    def hangup(self, channelName: str, cause: int = NORMAL_CLEARING) -> None:
        """End a live call from the far end of C{channelName}."""
        if not self.pbx.farHangup(channelName, cause):
            raise KeyError(channelName)

    def dropAll(self, username: Optional[str] = None) -> None:
        """Close every session's connection abruptly (only C{username}'s, if given)."""
        for session in list(self.sessions):
            if username is None or session.username == username:
                session.transport.abortConnection()

    def sendGarbage(self, data: bytes = DEFAULT_GARBAGE) -> None:
        """Write raw bytes to every session."""
        for session in list(self.sessions):
            session.transport.write(data)

    def flood(self, count: int, names: Sequence[str] = ("VarSet", "Newexten")) -> int:
        """
        Send C{count} realistic events nobody waits for (of a channel no
        one originated) to every session with events on, at once (cycling
        through C{names}); returns how many were written in all, past the
        sessions' event classes and filters.
        """
        ghost = Channel("Local/flood@acqs-flood-00000000;2", "0.0", "0.0", "Local",
                        "acqs-flood", "flood", 6, self._clock.seconds())
        ghost.application, ghost.appData = "Wait", "60"
        samples = {
            "VarSet": (("Variable", "FLOODVAR"), ("Value", "1")),
            "Newexten": (("Extension", "flood"), ("Application", "Wait"), ("AppData", "60")),
        }
        rendered = []
        for name in names:
            r = self.dialect.renderBytes(Event(name, ghost, fields=samples.get(name, ())))
            if r is not None:
                rendered.append(r)
        written = 0
        if not rendered:
            return 0
        for session in list(self.sessions):
            if not session.eventsOn:
                continue
            for i in range(count):
                written += session.sendEvent(*rendered[i % len(rendered)])
        return written

"""
The AMI client: wire work only.

L{AMIProtocol} frames and parses messages, matches responses to actions by
ActionID, collects list responses, times actions out, hands events to
registered handlers and fails every pending action when the connection
goes.  L{AMIFactory} connects and logs in.  Neither knows about queues or
calls.
"""

import hashlib
import itertools
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import attr
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (IDelayedCall, IReactorTime, IStreamClientEndpoint,
                                         ITCPTransport)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from .errors import (ActionTimeout, AMIConnectionLost, AMIError, LoginFailed, NotAsterisk,
                     StepTimeout)
from .framing import FOLLOWS, DEFAULT_MAX_LINE, MessageReader, parseFollows
from .message import Header, Message, encode

EventHandler = Callable[[Message], object]
Headers = Union[Mapping[str, str], Iterable[Header]]

DEFAULT_TIMEOUT = 10.0

_actionIDs = itertools.count(1)


def nextActionID() -> str:
    """An ActionID not used before by this process."""
    return f"acqs-{next(_actionIDs)}"


@attr.s(frozen=True, auto_attribs=True)
class ListResult:
    """The answer to a list action: its response, the listed events, and the
    event that closed the list."""

    response: Message
    events: Tuple[Message, ...]
    complete: Message


@attr.s(auto_attribs=True, eq=False)
class _Pending:
    actionID: str
    action: str
    deferred: Deferred
    listEnd: Optional[str]  # lower-cased name of the event closing a list
    timer: Optional[IDelayedCall] = None
    response: Optional[Message] = None
    events: List[Message] = attr.Factory(list)
    complete: Optional[Message] = None

    @property
    def collecting(self) -> bool:
        return self.listEnd is not None or self.response is not None


def _actionIDOf(raw: bytes) -> Optional[str]:
    start = raw.find(b"\nActionID:")
    if start < 0:
        return None
    start += 10
    stop = raw.find(b"\n", start)
    value = raw[start:] if stop < 0 else raw[start:stop]
    return value.strip().decode("utf-8", "replace")


class AMIProtocol(Protocol):
    """
    One AMI connection, client side.

    @ivar greeting: the peer's first line, once received.
    @ivar amiVersion: the version in the greeting, e.g. C{"10.0.0"}.
    """

    log = Logger()
    # Set by makeConnection before any data, action or close can reach this protocol.
    transport: ITCPTransport

    def __init__(self, clock: IReactorTime, timeout: float = DEFAULT_TIMEOUT):
        self._clock = clock
        self.timeout = timeout
        self.greeting: Optional[str] = None
        self.amiVersion: Optional[str] = None
        self._head = b""
        self._reader = MessageReader(self._discarded)
        self._reader.follows = False  # only while a Command waits (see framing)
        self._commands = 0
        self._pending: Dict[str, _Pending] = {}
        self._lists: Dict[str, _Pending] = {}
        self._handlers: Dict[Optional[str], List[EventHandler]] = {}
        self._routes: Dict[bytes, Tuple[EventHandler, ...]] = {}
        self._greetingWaiters: List[Deferred] = []
        self._lostWaiters: List[Deferred] = []
        self._lost: Optional[Failure] = None

    def connectionMade(self) -> None:
        # No Nagle: an action written while an earlier one waits for its ACK
        # would wait for the delayed ACK, up to 40 ms.
        setTcpNoDelay = getattr(self.transport, "setTcpNoDelay", None)
        if setTcpNoDelay is not None:
            setTcpNoDelay(True)

    # Reading

    def dataReceived(self, data: bytes) -> None:
        if self.greeting is None:
            data = self._readGreeting(data)
            if not data:
                return
        routes = self._routes
        for raw in self._reader.feed(data):
            try:
                if raw.startswith(b"Event: ") and not self._lists:
                    # The hot path: most events are ones nobody listens to.
                    eol = raw.find(b"\n", 7)
                    key = raw[7:eol] if eol > 0 else raw[7:]
                    handlers = routes.get(key)
                    if handlers is None:
                        handlers = self._resolve(key)
                    if handlers:
                        self._dispatch(handlers, raw)
                else:
                    self._route(raw)
            except Exception:
                self.log.failure("AMI: could not handle a message")

    def _resolve(self, key: bytes) -> Tuple[EventHandler, ...]:
        """The handlers for an event name as it appears on the wire, cached."""
        name = key.decode("utf-8", "replace").strip().lower()
        handlers = tuple(self._handlers.get(name, ())) + tuple(self._handlers.get(None, ()))
        if len(self._routes) > 1000:
            self._routes.clear()  # garbage names must not grow the cache
        self._routes[key] = handlers
        return handlers

    def _dispatch(self, handlers: Tuple[EventHandler, ...], raw: bytes) -> None:
        message = Message.fromBytes(raw)
        for handler in handlers:
            try:
                handler(message)
            except Exception:
                self.log.failure("AMI event handler {handler!r} failed on {event}",
                                 handler=handler, event=message.get("Event"))

    def _readGreeting(self, data: bytes) -> bytes:
        head = self._head + data
        eol = head.find(b"\n")
        if eol < 0:
            self._head = head
            if len(head) > DEFAULT_MAX_LINE:
                self._refuseGreeting(head[:80].decode("utf-8", "replace"))
            return b""
        self._head = b""
        line = head[:eol].rstrip(b"\r").decode("utf-8", "replace")
        if "Call Manager" not in line:
            self._refuseGreeting(line)
            return b""
        self.greeting = line
        self.amiVersion = line.rpartition("/")[2].strip() or None
        waiters, self._greetingWaiters = self._greetingWaiters, []
        for d in waiters:
            d.callback(line)
        return head[eol + 1 :]

    def _refuseGreeting(self, line: str) -> None:
        error = NotAsterisk(line)
        self.log.error("AMI peer {peer} {problem}", peer=self._peer(), problem=str(error))
        waiters, self._greetingWaiters = self._greetingWaiters, []
        for d in waiters:
            d.errback(error)
        self.transport.abortConnection()

    def _discarded(self, size: int, why: str) -> None:
        self.log.error(
            "AMI message of {size} bytes from {peer} dropped: it {why}",
            size=size,
            peer=self._peer(),
            why=why,
        )

    def _route(self, raw: bytes) -> None:
        if raw.startswith(b"Event: "):
            eol = raw.find(b"\n")
            name = (raw[7:] if eol < 0 else raw[7:eol]).rstrip(b"\r ")
            self._event(name.decode("utf-8", "replace"), raw)
        elif raw.startswith(b"Response: "):
            follows = self._commands and raw.startswith(FOLLOWS)
            message = parseFollows(raw) if follows else Message.fromBytes(raw)
            self._response(message)
        else:
            message = Message.fromBytes(raw)
            if "Event" in message:
                self._event(message["Event"], raw)
            elif "Response" in message:
                self._response(message)
            else:
                self.log.warn(
                    "AMI: ignored {size}-byte message from {peer} with neither Event"
                    " nor Response: {start!r}",
                    size=len(raw),
                    peer=self._peer(),
                    start=raw[:60],
                )

    def _event(self, name: str, raw: bytes) -> None:
        if self._lists:
            actionID = _actionIDOf(raw)
            pending = None if actionID is None else self._lists.get(actionID)
            if pending is not None:
                self._listEvent(pending, name, Message.fromBytes(raw))
                return
        handlers = self._resolve(name.encode("utf-8"))
        if handlers:
            self._dispatch(handlers, raw)

    def _listEvent(self, pending: _Pending, name: str, message: Message) -> None:
        if (message.get("EventList") or "").lower() == "complete" or (
            name.lower() == pending.listEnd
        ):
            pending.complete = message
            if pending.response is not None:
                self._finishList(pending, pending.response, message)
        else:
            pending.events.append(message)

    def _response(self, message: Message) -> None:
        actionID = message.get("ActionID")
        pending = None if actionID is None else self._pending.get(actionID)
        if actionID is None or pending is None:
            self.log.debug("AMI: response for unknown or expired ActionID {actionID}",
                           actionID=actionID)
            return
        kind = (message.get("Response") or "").lower()
        if kind == "error":
            self._finish(actionID, Failure(AMIError(pending.action, message)))
        elif pending.collecting or (message.get("EventList") or "").lower() == "start":
            pending.response = message
            self._lists[actionID] = pending
            if pending.complete is not None:
                self._finishList(pending, message, pending.complete)
        else:
            self._finish(actionID, message)

    def _finishList(self, pending: _Pending, response: Message, complete: Message) -> None:
        self._finish(pending.actionID, ListResult(response, tuple(pending.events), complete))

    def _finish(self, actionID: str, result: object) -> None:
        pending = self._settle(actionID)
        if pending is not None:
            pending.deferred.callback(result)

    def _settle(self, actionID: str) -> Optional[_Pending]:
        """Forget the pending action C{actionID} (and its timer); it, if it was pending."""
        pending = self._pending.pop(actionID, None)
        self._lists.pop(actionID, None)
        if pending is None:
            return None
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        if pending.action.lower() == "command":
            self._commands -= 1
            self._reader.follows = self._commands > 0
        return pending

    # Events

    def registerEvent(self, name: Optional[str], handler: EventHandler) -> None:
        """
        Call C{handler(message)} for every event called C{name} (any case),
        or for every event when C{name} is None.
        """
        key = None if name is None else name.lower()
        self._handlers.setdefault(key, []).append(handler)
        self._routes.clear()

    def deregisterEvent(self, name: Optional[str], handler: EventHandler) -> None:
        key = None if name is None else name.lower()
        handlers = self._handlers.get(key, [])
        if handler in handlers:
            handlers.remove(handler)
        self._routes.clear()

    # Actions

    def sendAction(
        self,
        action: str,
        headers: Headers = (),
        timeout: Optional[float] = None,
        listEnd: Optional[str] = None,
        actionID: Optional[str] = None,
    ) -> Deferred:
        """
        Send an action; return a Deferred that fires with the response
        L{Message}, or a L{ListResult} for a list action.  A list is
        recognised by C{EventList: start} in the response, or declared by
        naming the event that closes it (C{listEnd}) for Asterisk versions
        that send no EventList headers.  The ActionID is acqs' own unless
        C{actionID} gives one not pending on this connection.

        Fails with L{AMIError} on C{Response: Error}, L{ActionTimeout},
        L{AMIConnectionLost}, or L{UnsafeHeader} (and nothing is written).
        """
        if self._lost is not None:
            return fail(AMIConnectionLost(action, "connection already closed"))
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        if any(k.lower() == "actionid" for k, _ in pairs):
            return fail(ValueError("the ActionID goes in actionID=, not among the headers"))
        if actionID is None:
            actionID = nextActionID()
        elif actionID in self._pending:
            return fail(ValueError(f"ActionID {actionID!r} is already pending"))
        try:
            data = encode([("Action", action), ("ActionID", actionID)] + pairs)
        except ValueError:
            return fail()

        def cancel(d: Deferred) -> None:
            self._settle(actionID)

        pending = _Pending(actionID, action, Deferred(cancel), listEnd and listEnd.lower())
        if listEnd:
            self._lists[actionID] = pending
        timeout = self.timeout if timeout is None else timeout
        pending.timer = self._clock.callLater(timeout, self._timedOut, actionID, timeout)
        self._pending[actionID] = pending
        if action.lower() == "command":
            self._commands += 1
            self._reader.follows = True
        self.transport.write(data)
        return pending.deferred

    def _timedOut(self, actionID: str, timeout: float) -> None:
        pending = self._settle(actionID)
        if pending is not None:  # settling cancels the timer, so it always is
            pending.deferred.errback(ActionTimeout(pending.action, timeout))

    def login(
        self, username: str, secret: str, events: str = "off", md5: bool = False
    ) -> Deferred:
        """
        Log in, in plain text or with the MD5 challenge; C{events} is
        C{"off"}, C{"on"} or a class mask such as C{"call,system"}.  Fails
        with L{LoginFailed}.
        """
        return Deferred.fromCoroutine(self._login(username, secret, events, md5))

    async def _login(self, username: str, secret: str, events: str, md5: bool) -> "AMIProtocol":
        if md5:
            challenge = await self.sendAction("Challenge", [("AuthType", "MD5")])
            key = hashlib.md5(
                (challenge.get("Challenge", "") + secret).encode("utf-8"),
                usedforsecurity=False,
            ).hexdigest()
            headers = [("AuthType", "MD5"), ("Username", username), ("Key", key)]
        else:
            headers = [("Username", username), ("Secret", secret)]
        try:
            await self.sendAction("Login", headers + [("Events", events)])
        except AMIError as e:
            raise LoginFailed(username, e.response) from None
        return self

    def ping(self, timeout: Optional[float] = None) -> Deferred:
        """Ping; fires with the response (C{Ping: Pong} or C{Response: Pong})."""
        return self.sendAction("Ping", timeout=timeout)

    def command(self, command: str, timeout: Optional[float] = None) -> Deferred:
        """Run a CLI command; fires with its output lines, whatever the
        Asterisk version's form of them."""
        d = self.sendAction("Command", [("Command", command)], timeout=timeout)
        return d.addCallback(lambda response: response.getall("Output"))

    def logoff(self, timeout: Optional[float] = None) -> Deferred:
        """
        Log off and close.  Fires with None on C{Response: Goodbye} or when
        the connection closes, whichever comes first; never fails.  If
        Asterisk does not answer in time the connection is aborted.
        """
        if self._lost is not None:
            return succeed(None)
        closed = self.whenLost()
        d = self.sendAction("Logoff", timeout=timeout)

        def done(result: object) -> None:
            if not closed.called:
                self.transport.loseConnection()
                if isinstance(result, Failure) and result.check(ActionTimeout):
                    self.transport.abortConnection()

        d.addBoth(done)
        return closed.addCallback(lambda _: None)

    # Connection

    def whenGreeted(self) -> Deferred:
        """Fires with the greeting line, or fails with L{NotAsterisk} or
        L{AMIConnectionLost}."""
        if self.greeting is not None:
            return succeed(self.greeting)
        d: Deferred[str] = Deferred()
        if self._lost is not None:
            d.errback(AMIConnectionLost("greeting"))
        else:
            self._greetingWaiters.append(d)
        return d

    @property
    def lost(self) -> bool:
        """Whether the connection is gone."""
        return self._lost is not None

    def whenLost(self) -> Deferred:
        """Fires with the reason (an exception) once the connection is gone."""
        d: Deferred[Optional[BaseException]] = Deferred()
        if self._lost is not None:
            d.callback(self._lost.value)
        else:
            self._lostWaiters.append(d)
        return d

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._lost = reason
        why = reason.getErrorMessage()
        pending, self._pending = self._pending, {}
        self._lists = {}
        self._commands = 0
        for p in pending.values():
            if p.timer is not None and p.timer.active():
                p.timer.cancel()
            if p.action == "Logoff":
                p.deferred.callback(None)
            else:
                p.deferred.errback(AMIConnectionLost(p.action, why))
        waiters, self._greetingWaiters = self._greetingWaiters, []
        for d in waiters:
            d.errback(AMIConnectionLost("greeting", why))
        lost, self._lostWaiters = self._lostWaiters, []
        for d in lost:
            d.callback(reason.value)

    def _peer(self) -> str:
        try:
            peer = self.transport.getPeer()
            return f"{peer.host}:{peer.port}"
        except Exception:
            return "?"


class AMIFactory(Factory):
    """
    Builds AMI protocols and logs them in as one user.

    The secret is kept here and only ever written to the wire.  With
    C{credentials}, the user and secret are C{credentials()} at each login
    instead (settings that change while acqs runs).
    """

    noisy = False  # short-lived sessions would log a start and stop each

    def __init__(
        self,
        username: str,
        secret: str,
        clock: IReactorTime,
        *,
        events: str = "off",
        md5: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        greetingTimeout: Optional[float] = None,
        credentials: Optional[Callable[[], Tuple[str, str]]] = None,
    ):
        self._credentials = credentials or (lambda: (username, secret))
        self._clock = clock
        self.events = events
        self.md5 = md5
        self.timeout = timeout
        self.greetingTimeout = timeout if greetingTimeout is None else greetingTimeout

    @property
    def username(self) -> str:
        return self._credentials()[0]

    def __repr__(self) -> str:
        return f"<AMIFactory user={self.username!r} events={self.events!r}>"

    def buildProtocol(self, addr: object) -> AMIProtocol:
        protocol = AMIProtocol(self._clock, self.timeout)
        protocol.factory = self
        return protocol

    def prepare(self, protocol: AMIProtocol) -> Deferred:
        """
        Wait for the greeting and log in; fires with the protocol.  On any
        failure the connection is aborted.
        """
        return Deferred.fromCoroutine(self._prepare(protocol))

    async def _prepare(self, protocol: AMIProtocol) -> AMIProtocol:
        try:
            await _within(protocol.whenGreeted(), self.greetingTimeout, self._clock,
                          "AMI greeting")
            username, secret = self._credentials()
            return await protocol.login(username, secret, self.events, self.md5)
        except BaseException:
            protocol.transport.abortConnection()
            raise

    def connect(self, endpoint: IStreamClientEndpoint) -> Deferred:
        """Connect, within the timeout; fires with the protocol, not yet logged in."""
        return _within(endpoint.connect(self), self.timeout, self._clock, "AMI connection")

    def login(self, endpoint: IStreamClientEndpoint) -> Deferred:
        """Connect (within the timeout) and log in; fires with the protocol."""
        return Deferred.fromCoroutine(self._login(endpoint))

    async def _login(self, endpoint: IStreamClientEndpoint) -> AMIProtocol:
        return await self.prepare(await self.connect(endpoint))


def _within(d: Deferred, timeout: float, clock: IReactorTime, step: str) -> Deferred:
    """C{d}, cancelled and failed with L{StepTimeout} if it takes over C{timeout} seconds."""

    def timedOut(result, timeout):
        raise StepTimeout(step, timeout)

    return d.addTimeout(timeout, clock, onTimeoutCancel=timedOut)

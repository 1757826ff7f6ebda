"""
One action over its own short-lived AMI session.

connect and log in (events off) → take one action → mark the row SENT →
send → wait for the answer → linger → Logoff → close.  A session logs in
before it has its action, so that the sender can keep a few ready; it still
carries exactly one action.  Every step has a timeout; the linger and the
logoff are driven by the clock.  Nothing is ever sent before the mark is
committed, so a row never marked was certainly not sent; and once the mark
is asked for, the action goes out (unless the connection is already gone,
when it certainly was not written, or the mark says the claim was lost).
An action Asterisk answers "Asterisk is shutting down" never ran (Asterisk
answers every action so, unread, while it shuts down): not sent either.
"""

from typing import Callable, Optional, Tuple, TypeVar

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger

from .actions import Action, meetmeUser
from .ami.errors import AMIError
from .ami.protocol import AMIFactory, AMIProtocol, nextActionID
from .metrics import NO_OBSERVER, Observer
from .store.records import SendResult

TEXT_WIDTH = 255
# Asterisk's answer to every action while it shuts down, given before it
# looks at the action (main/manager.c, process_message).
SHUTTING_DOWN = "Asterisk is shutting down"

_T = TypeVar("_T")
# What a session is given: its action, and how to mark the action's row.
Given = Tuple[Action, Callable[[], Deferred]]


class NotSent(Exception):
    """The action never reached AMI; its row may be sent again."""


class MarkFailed(NotSent):
    """The row could not be marked (the database failed): not sent."""


class ClaimLost(NotSent):
    """The mark found the row no longer claimed by this claim: someone else has it."""


class NotRun(NotSent):
    """Asterisk answered that it did not run the action: it is shutting down."""


def _answerText(response) -> str:
    text = response.get("Message") or response.get("Response") or ""
    return text[:TEXT_WIDTH]


class ActionSession:
    """
    A short-lived AMI session for one action.  It connects and logs in at
    once: C{loggedIn} fires True when it has, or False (then C{loginError}
    holds the exception).  L{send} gives it its action; C{answered} then fires with
    the L{SendResult} as soon as Asterisk answers, or fails with L{NotSent}.
    C{closed} fires once the session is over.  C{beforeSend()} marks the
    row: it fires True once the mark is committed, False if the claim was
    lost (nothing is sent then).
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        endpoint: IStreamClientEndpoint,
        factory: AMIFactory,
        linger: float,
        timeout: float,
        metrics: Observer = NO_OBSERVER,
    ):
        self._clock = clock
        self._metrics = metrics
        self._endpoint = endpoint
        self._factory = factory
        self._linger = linger
        self._timeout = timeout
        self.action: Optional[Action] = None
        self._given: Deferred[Given] = Deferred()  # fires when the action is given
        self._step: Optional[Deferred] = None  # what the session waits for now
        self._protocol: Optional[AMIProtocol] = None
        self._lingerCall: Optional[IDelayedCall] = None
        self._marking = False
        self._stopping = False
        self._abandoned = False
        self.loginError: Optional[Exception] = None
        self.loggedIn: Deferred[bool] = Deferred()
        self.answered: Deferred[SendResult] = Deferred()
        self.closed = Deferred.fromCoroutine(self._run())

    @property
    def connecting(self) -> bool:
        """Still connecting or logging in."""
        return not self.loggedIn.called

    @property
    def idle(self) -> bool:
        """Logged in, waiting for its action."""
        return self.loggedIn.called and self.action is None and not self.closed.called

    @property
    def lingering(self) -> bool:
        return self._lingerCall is not None and self._lingerCall.active()

    def send(self, action: Action, beforeSend: Callable[[], Deferred]) -> None:
        """Carry C{action}: mark it with C{beforeSend()}, then send it."""
        if self.action is not None:
            raise RuntimeError("a session carries one action")
        self.action = action
        if self.closed.called:  # it never logged in, or its connection went
            why = self.loginError or "the AMI session ended before its action came"
            self.answered.errback(NotSent(str(why) or repr(why)))
            return
        self._given.callback((action, beforeSend))

    def endLinger(self) -> None:
        """Log off now if lingering."""
        if self._lingerCall is not None and self._lingerCall.active():
            self._lingerCall.cancel()
            if self._step is not None:  # the linger's own Deferred
                self._step.callback(None)

    def stop(self) -> None:
        """
        Wind down: a session still connecting, logging in or waiting for an
        action gives up (its action, if any, is not sent); one marking or
        waiting for its answer goes on, within its timeouts; one lingering
        logs off now.
        """
        self._stopping = True
        if not self._marking and self._step is not None:
            self._step.cancel()
        self.endLinger()

    def abandon(self) -> None:
        """
        Give up now: close the connection.  An action still waiting for its
        answer is recorded as unanswered.
        """
        self._abandoned = self._stopping = True
        if not self._marking and self._step is not None:
            self._step.cancel()
        if self._protocol is not None:
            self._protocol.transport.abortConnection()

    async def _wait(self, d: "Deferred[_T]") -> _T:
        self._step = d
        try:
            return await d
        finally:
            self._step = None

    async def _run(self) -> None:
        try:
            started = self._clock.seconds()
            protocol: AMIProtocol = await self._wait(self._factory.connect(self._endpoint))
            connected = self._clock.seconds()
            self._metrics.connected(connected - started)
            self._protocol = protocol
            await self._wait(self._factory.prepare(protocol))
            self._metrics.loggedIn(self._clock.seconds() - connected)
        except Exception as e:
            self.loginError = e
            self.loggedIn.callback(False)
            if self.action is not None:
                self.answered.errback(NotSent("acqs is stopping" if isinstance(e, CancelledError)
                                              else str(e) or repr(e)))
            return
        self.loggedIn.callback(True)
        try:
            action, beforeSend = await self._wait(_orLost(self._given, protocol))
            if action.meetme is not None:
                self.action = action = await self._findMeetmeUser(protocol, action,
                                                                  *action.meetme)
            if self._stopping:
                raise CancelledError()
            # Once the mark is asked for, it may commit: the action must go out.
            self._marking = True
            try:
                marked = await beforeSend()
            except Exception as e:
                raise MarkFailed(f"the row could not be marked SENT: {e}") from e
            if not marked:
                raise ClaimLost("the claim was lost: another claimant has the row")
            if protocol.lost:
                raise NotSent("the AMI connection closed before the action was written")
        except Exception as e:
            if self.action is not None:
                reason = "acqs is stopping" if isinstance(e, CancelledError) else str(e) or repr(e)
                self.answered.errback(e if isinstance(e, NotSent) else NotSent(reason))
            await protocol.logoff(self._timeout)
            return
        # Without a linger the Logoff goes right behind the action: Asterisk
        # answers them in order, and one round trip is saved.
        result, bye = await self._send(protocol, action,
                                       logoff=self._linger <= 0 or self._stopping)
        if isinstance(result, NotRun):
            self.answered.errback(result)
            await (bye or protocol.logoff(self._timeout))
            return
        self.answered.callback(result)
        if bye is None and not self._stopping:
            lingered: Deferred[None] = Deferred()
            self._lingerCall = self._clock.callLater(self._linger, lingered.callback, None)
            await self._wait(lingered)
        await (bye or protocol.logoff(self._timeout))

    async def _findMeetmeUser(self, protocol: AMIProtocol, action: Action, channel: str,
                              conference: str) -> Action:
        """C{action} with the MeetMe user number of C{channel}, or as it is if none."""
        try:
            output = await self._wait(protocol.command(f"meetme list {conference}",
                                                       self._timeout))
        except AMIError as e:  # e.g. no app_meetme: as VICIdial, send it unchanged
            output = [e.reason]
        user = meetmeUser(output, channel)
        if user is None:
            self.log.warn(
                "man_id {man_id}: {channel} not found in MeetMe conference {conference}"
                " ({output}); sending the volume control unchanged",
                man_id=action.man_id, channel=channel, conference=conference,
                output=" / ".join(output)[:200],
            )
            return action
        return action.withMeetmeUser(user)

    async def _send(self, protocol: AMIProtocol, action: Action, logoff: bool):
        """Send C{action} (and a Logoff behind it, if C{logoff}): its result (L{NotRun} if
        Asterisk did not run it), and the Logoff's Deferred or None."""
        actionID = action.actionID or nextActionID()
        answering = action.answerTimeout(self._timeout)

        def result(answered: bool, text: str) -> SendResult:
            return SendResult(action.man_id, action.claim, answered, text[:TEXT_WIDTH],
                              callAnswered=answered and action.callAnswered, actionID=actionID)

        sentAt = self._clock.seconds()
        sending = protocol.sendAction(action.name, action.headers, answering,
                                      actionID=actionID)
        if action.claimedAt is not None:
            self._metrics.written(sentAt - action.claimedAt)
        # Asterisk reads the Logoff only once it answered the action.
        bye = protocol.logoff(answering + self._timeout) if logoff else None
        try:
            response = await sending
        except AMIError as e:
            if e.reason == SHUTTING_DOWN:
                return NotRun(f"Asterisk did not run it: {e.reason}"), bye
            answer = result(False, e.reason)
        except Exception as e:
            why = "acqs stopped before Asterisk answered" if self._abandoned else f"no answer: {e}"
            self._metrics.unanswered(action.name)  # not Asterisk's Error: nothing came
            return result(False, why), bye
        else:
            answer = result(True, _answerText(response))
        self._metrics.answered(action.name, answer.answered, self._clock.seconds() - sentAt)
        return answer, bye


def _orLost(given: "Deferred[Given]", protocol: AMIProtocol) -> "Deferred[Given]":
    """Fires when the action is given; fails if the connection goes first."""
    waiting: Deferred[Given] = Deferred(lambda _: None)

    def fire(result):
        if waiting.called:
            return
        if isinstance(result, Exception):
            waiting.errback(result)
        else:
            waiting.callback(result)

    given.addCallback(fire)
    protocol.whenLost().addCallback(
        lambda reason: fire(NotSent(f"the AMI connection closed while idle: {reason}")))
    return waiting

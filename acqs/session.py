"""
One action over its own short-lived AMI session.

connect and log in (events off) → mark the row SENT → send → wait for the
answer → linger → Logoff → close.  Every step has a timeout; the linger and
the logoff are driven by the clock.  Nothing is ever sent before the mark is
committed, so a row never marked was certainly not sent; and once the mark
is asked for, the action goes out (unless the connection is already gone,
when it certainly was not written).
"""

from typing import Callable, Optional

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger

from .actions import Action, meetmeUser
from .ami.errors import AMIError
from .ami.protocol import AMIFactory, AMIProtocol
from .store.records import SendResult

TEXT_WIDTH = 255


class NotSent(Exception):
    """The action never reached AMI; its row may be sent again."""


def _answerText(response) -> str:
    text = response.get("Message") or response.get("Response") or ""
    return text[:TEXT_WIDTH]


class ActionSession:
    """
    Send one action.  C{answered} fires with the L{SendResult} as soon as
    Asterisk answers (or fails with L{NotSent}); C{closed} fires once the
    session is over.  C{beforeSend()} must fire before anything is sent.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        endpoint: IStreamClientEndpoint,
        factory: AMIFactory,
        action: Action,
        beforeSend: Callable[[], Deferred],
        linger: float,
        timeout: float,
    ):
        self._clock = clock
        self._endpoint = endpoint
        self._factory = factory
        self.action = action
        self._beforeSend = beforeSend
        self._linger = linger
        self._timeout = timeout
        self._step: Optional[Deferred] = None  # what the session waits for now
        self._protocol: Optional[AMIProtocol] = None
        self._lingerCall = None
        self._marking = False
        self._stopping = False
        self._abandoned = False
        self.answered = Deferred()
        self.closed = Deferred.fromCoroutine(self._run())

    @property
    def lingering(self) -> bool:
        return self._lingerCall is not None and self._lingerCall.active()

    def endLinger(self) -> None:
        """Log off now if lingering."""
        if self.lingering:
            self._lingerCall.cancel()
            self._step.callback(None)

    def stop(self) -> None:
        """
        Wind down: a session still connecting or logging in gives up (the
        action is not sent); one marking or waiting for its answer goes on,
        within its timeouts; one lingering logs off now.
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

    async def _wait(self, d: Deferred) -> object:
        self._step = d
        try:
            return await d
        finally:
            self._step = None

    async def _run(self) -> None:
        protocol: Optional[AMIProtocol] = None
        try:
            protocol = self._protocol = await self._wait(self._factory.login(self._endpoint))
            if self.action.meetme is not None:
                await self._findMeetmeUser(protocol)
            if self._stopping:
                raise CancelledError()
            # Once the mark is asked for, it may commit: the action must go out.
            self._marking = True
            await self._beforeSend()
            if protocol.lost:
                raise NotSent("the AMI connection closed before the action was written")
        except Exception as e:
            reason = "acqs is stopping" if isinstance(e, CancelledError) else str(e) or repr(e)
            self.answered.errback(e if isinstance(e, NotSent) else NotSent(reason))
            if protocol is not None:
                await protocol.logoff(self._timeout)
            return
        self.answered.callback(await self._send(protocol))
        if self._linger > 0 and not self._stopping:
            self._lingerCall = self._clock.callLater(self._linger, lambda: self._step.callback(None))
            await self._wait(Deferred())
        await protocol.logoff(self._timeout)

    async def _findMeetmeUser(self, protocol: AMIProtocol) -> None:
        channel, conference = self.action.meetme
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
                man_id=self.action.man_id, channel=channel, conference=conference,
                output=" / ".join(output)[:200],
            )
        else:
            self.action = self.action.withMeetmeUser(user)

    async def _send(self, protocol: AMIProtocol) -> SendResult:
        action = self.action
        try:
            response = await protocol.sendAction(action.name, action.headers,
                                                 action.answerTimeout(self._timeout))
        except AMIError as e:
            return SendResult(action.man_id, False, e.reason[:TEXT_WIDTH])
        except Exception as e:
            why = "acqs stopped before Asterisk answered" if self._abandoned else f"no answer: {e}"
            return SendResult(action.man_id, False, why[:TEXT_WIDTH])
        return SendResult(action.man_id, True, _answerText(response))

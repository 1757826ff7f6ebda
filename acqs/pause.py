"""A pause on a clock that something else may end early."""

from typing import Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime


class Pause:
    """Pauses one at a time: C{pause(seconds)}, ended early by L{end}."""

    def __init__(self, clock: IReactorTime):
        self._clock = clock
        self._waiting: Optional[Deferred] = None

    def __call__(self, seconds: float) -> Deferred:
        """Fires after C{seconds}, or at the next L{end}, whichever comes first."""
        waiting = self._waiting = Deferred()
        call = self._clock.callLater(seconds, self.end)

        def done(result: object) -> object:
            if call.active():
                call.cancel()
            return result

        return waiting.addBoth(done)

    def end(self) -> None:
        """End the pause under way now, if any."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not waiting.called:
            waiting.callback(None)

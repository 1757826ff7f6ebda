"""
The sender's wake-up: how it learns that NEW rows of its server came.

Modes (C{--wakeup}):

  - C{wait}: MariaDB waits in the server, one statement looking every step
    until a row comes (L{acqs.store.waiting}): no round trip per look;
  - C{poll}: acqs looks itself, one statement every step (any database);
  - C{auto}, the default: C{wait} where the database can (MariaDB), C{poll}
    elsewhere (MySQL, SQLite).

Where C{wait} is asked for and the database cannot, acqs polls and says
why (L{Wakeup.reason}); that is no fault.  Looks run outside any
transaction, so a wake-up holds no lock that a claim, an ALTER or a GUI
client's INSERT could wait for.

Every look costs the database a thread wake-up (0.1-0.3 ms of CPU,
whatever the look), so the step backs off by the time since the last
claimed row (L{schedule}): the fast step (C{--poll-interval}, 10 ms) for
2 s, five times that until 10 s, then the idle step
(C{--idle-poll-interval}, 0.25 s).  A wait in the server ends where its
step would change (after one step at least), and after a second at most.
The wake-up is a hint: the claim that follows decides.
"""

import math
from typing import Dict, Optional, Tuple

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .pause import Pause
from .store.interfaces import CannotWait, IQueueStore

AUTO, WAIT, POLL = "auto", "wait", "poll"
MODES = (AUTO, WAIT, POLL)

# Seconds after the last claimed row during which looks come at the fast
# step, and until which they come at the middle one (MIDDLE x the fast).
FAST_FOR = 2.0
MIDDLE_FOR = 10.0
MIDDLE = 5
# The longest one wait in the server lasts (seconds).
LONGEST = 1.0


def schedule(quiet: float, fast: float, idle: float) -> Tuple[float, float]:
    """
    The look step C{quiet} seconds after the last claimed row, and the
    seconds until that step changes (C{inf}: never).
    """
    if quiet < FAST_FOR:
        return fast, FAST_FOR - quiet
    if quiet < MIDDLE_FOR:
        return max(fast, min(idle, MIDDLE * fast)), MIDDLE_FOR - quiet
    return max(fast, idle), math.inf


class Wakeup:
    """
    Waits for NEW rows of C{serverIP} in C{store}, as C{mode} says, looking
    every C{step} seconds while rows come and every C{idleStep} once none
    has come for a while.  L{claimed} says that rows came.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, store: IQueueStore, serverIP: str,
                 mode: str = AUTO, step: float = 0.01, idleStep: float = 0.25):
        if mode not in MODES:
            raise ValueError(f"unknown wake-up {mode!r}")
        self._clock = clock
        self._store = store
        self.serverIP = serverIP
        self.asked = mode
        self.mode = POLL if mode == POLL else WAIT  # in use
        self.reason: Optional[str] = None  # why it polls where a wait was wanted
        self._fast, self._idle = step, idleStep
        self._lastRow = clock.seconds()
        self.looks = 0
        self._pause = Pause(clock)

    @property
    def step(self) -> float:
        """The look step now."""
        return schedule(self._clock.seconds() - self._lastRow, self._fast, self._idle)[0]

    def claimed(self) -> None:
        """Rows came: look at the fast step again."""
        self._lastRow = self._clock.seconds()

    async def wait(self, originates: bool = True, others: bool = True,
                   longest: float = LONGEST) -> bool:
        """
        Whether a NEW row came (of the classes that have room: without
        C{originates}, one that is no Originate; without C{others}, an
        Originate): after a wait in the server (up to its length, and
        C{longest} seconds), or after one look (and, when it found none, a
        pause of one step).  Fails with L{StoreUnavailable} when
        the database does.
        """
        step, left = schedule(self._clock.seconds() - self._lastRow, self._fast, self._idle)
        if self.mode == WAIT:
            try:
                found, looks = await self._store.waitForNew(
                    self.serverIP, max(step, min(longest, left)), step, originates, others)
            except CannotWait as e:
                self._fallBack(str(e))
            else:
                self.looks += looks
                return found
        found = await self._store.lookForNew(self.serverIP, originates, others)
        self.looks += 1
        if not found:
            await self._pause(step)
        return found

    def _fallBack(self, reason: str) -> None:
        self.mode, self.reason = POLL, reason
        if self.asked == WAIT:
            self.log.warn("Cannot wait for NEW rows in the database ({reason}): polling"
                          " instead", reason=reason)
        else:
            self.log.info("Polling for NEW rows: {reason}", reason=reason)

    def interrupt(self) -> None:
        """End a pause between looks now (the sender stops)."""
        self._pause.end()

    def snapshot(self) -> Dict[str, object]:
        """What the status file says of the wake-up."""
        return {"wakeup": self.mode, "wakeup_reason": self.reason,
                "wakeup_step": self.step, "wakeup_looks": self.looks}

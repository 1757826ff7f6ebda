"""
File descriptors: every AMI session is one, and a process started from a
shell, cron or screen gets a soft limit of 1024, fewer than a box with
hundreds of trunks may need (C{--max-sessions} + C{--max-originates}).
Out of descriptors, connecting to AMI fails as if Asterisk were away.
"""

import resource
from typing import Callable, NamedTuple, Optional

from twisted.logger import Logger

# Descriptors beside the send sessions: the listener, the database pool,
# the logs, the metrics port, the wait connection.
RESERVE = 100


class DescriptorLimit(NamedTuple):
    needed: int
    before: int  # the soft limit found
    soft: int  # the soft limit now
    hard: int

    @property
    def enough(self) -> bool:
        return self.soft == resource.RLIM_INFINITY or self.soft >= self.needed


def descriptorsNeeded(maxSessions: int, maxOriginates: int) -> int:
    """The descriptors acqs may hold at once."""
    return maxSessions + maxOriginates + RESERVE


def raiseDescriptorLimit(needed: int, limits=resource) -> DescriptorLimit:
    """
    Raise the soft C{RLIMIT_NOFILE} to C{needed} where it is lower, as far
    as the hard limit allows (never lowers it).
    """
    soft, hard = limits.getrlimit(resource.RLIMIT_NOFILE)
    found = DescriptorLimit(needed, soft, soft, hard)
    if found.enough:
        return found
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target <= soft:
        return found
    limits.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return found._replace(soft=target)


class DescriptorWatch:
    """
    Keeps the soft limit up with what the send sessions may hold while the
    Originates' room follows VICIdial's servers row: raised (or the
    shortfall said) at the first L{check} and whenever the room changes.
    """

    log = Logger()

    def __init__(self, maxSessions: int, maxOriginates: Callable[[], int], limits=resource):
        self._maxSessions = maxSessions
        self._maxOriginates = maxOriginates
        self._limits = limits
        self._room: Optional[int] = None

    def check(self) -> Optional[DescriptorLimit]:
        """The limit, where the room changed since the last check."""
        room = self._maxOriginates()
        if room == self._room:
            return None
        self._room = room
        limit = raiseDescriptorLimit(descriptorsNeeded(self._maxSessions, room), self._limits)
        if not limit.enough:
            self.log.warn(
                "acqs may hold {needed} file descriptors (--max-sessions {sessions} +"
                " --max-originates {originates} + {reserve}) but may open only {soft} (hard"
                " limit {hard}): raise LimitNOFILE in its unit; beyond that, AMI sessions fail"
                " to connect", needed=limit.needed, sessions=self._maxSessions,
                originates=room, reserve=RESERVE, soft=limit.soft, hard=limit.hard)
        elif limit.soft != limit.before:
            self.log.info("File descriptor limit raised from {before} to {soft} for"
                          " --max-sessions {sessions} + --max-originates {originates}",
                          before=limit.before, soft=limit.soft, sessions=self._maxSessions,
                          originates=room)
        return limit

"""
File descriptors: every AMI session is one, and a process started from a
shell, cron or screen gets a soft limit of 1024, fewer than a box with
hundreds of trunks may need (C{--max-sessions} + C{--max-originates}).
Out of descriptors, connecting to AMI fails as if Asterisk were away.
"""

import resource
from typing import NamedTuple

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

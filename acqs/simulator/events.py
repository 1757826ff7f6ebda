"""
What happened, before any dialect has printed it.

The call engine publishes L{Event}s named after the Asterisk 22 manager
events (the richest set); each dialect decides how to print one, or that
its Asterisk version prints nothing for it.  Events are printed at once, so
the channels they point to are read in their state at that moment.
"""

from typing import FrozenSet, Optional, Tuple

import attr

from .channels import Bridge, Channel

Fields = Tuple[Tuple[str, str], ...]

# Tags that let a dialect tell apart events Asterisk 22 prints and older
# versions do not.
LOCAL_COPY = "local-copy"          # the Local driver copied caller ID to ;2
DIALPLAN_UNCHANGED = "cep-same"    # an application started at the same priority
PSEUDO_APP = "pseudo-app"          # AppDial/AppDial2: set by a dial, not run


@attr.s(frozen=True, auto_attribs=True)
class Event:
    name: str
    channel: Optional[Channel] = None
    dest: Optional[Channel] = None
    fields: Fields = ()
    bridge: Optional[Bridge] = None
    tags: FrozenSet[str] = frozenset()

    def get(self, key: str, default: str = "") -> str:
        for k, v in self.fields:
            if k == key:
                return v
        return default

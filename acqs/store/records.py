"""
What passes between the queue store and the rest of acqs.
"""

from typing import Optional, Tuple

import attr

# vicidial_manager.status values, in life-cycle order.
NEW, QUEUE, SENT, UPDATED, DEAD = "NEW", "QUEUE", "SENT", "UPDATED", "DEAD"

CMD_LINE_COLUMNS = tuple(f"cmd_line_{c}" for c in "bcdefghijk")


@attr.s(frozen=True, auto_attribs=True)
class ActionRow:
    """A vicidial_manager row claimed for sending (now in QUEUE)."""

    man_id: int
    server_ip: str
    action: str
    callerid: str
    cmd_lines: Tuple[str, ...]  # cmd_line_b ... cmd_line_k; NULL read as ''


@attr.s(frozen=True, auto_attribs=True)
class SendResult:
    """
    What became of an action that was written to AMI.

    C{answered} is True when Asterisk answered C{Success} (the row's
    C{response} becomes Y, otherwise N).  C{text} is Asterisk's message, or
    why no answer came.
    """

    man_id: int
    answered: bool
    text: str


@attr.s(frozen=True, auto_attribs=True)
class Refusal:
    """A row acqs will not send, and why (kept with the row)."""

    man_id: int
    reason: str


@attr.s(frozen=True, auto_attribs=True)
class CallUpdated:
    """
    The call originated with caller ID name C{callerid} rings or is answered
    on C{channel}: this server's rows with that callerid become UPDATED with
    the channel and uniqueid.
    """

    callerid: str
    channel: str
    uniqueid: str


@attr.s(frozen=True, auto_attribs=True)
class CallDead:
    """The channel with C{uniqueid} hung up: its rows become DEAD."""

    uniqueid: str
    channel: str
    cause: Optional[str] = None


@attr.s(frozen=True, auto_attribs=True)
class Recovery:
    """
    What recovering stranded QUEUE rows did: C{requeued} rows had not been
    written to AMI and are NEW again; C{unknown} rows may have been, are
    marked SENT with response N and are not sent again.
    """

    requeued: Tuple[int, ...]
    unknown: Tuple[int, ...]


@attr.s(frozen=True, auto_attribs=True)
class TrackedCalls:
    """
    Originate rows of one server still in progress, for the listener: the
    callerids of rows in QUEUE, SENT or UPDATED (a later, better channel may
    still update them), and the uniqueids of UPDATED rows (whose hangup
    makes them DEAD).
    """

    callerids: Tuple[str, ...]
    uniqueids: Tuple[str, ...]

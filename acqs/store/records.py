"""
What passes between the queue store and the rest of acqs.
"""

from typing import Optional, Tuple

import attr

# vicidial_manager.status values, in life-cycle order.
NEW, QUEUE, SENT, UPDATED, DEAD = "NEW", "QUEUE", "SENT", "UPDATED", "DEAD"

CMD_LINE_COLUMNS = tuple(f"cmd_line_{c}" for c in "bcdefghijk")

# A claimed row, as the sender names it to the store: (man_id, claim token).
Claim = Tuple[int, str]


@attr.s(frozen=True, auto_attribs=True)
class ActionRow:
    """A vicidial_manager row claimed for sending (now in QUEUE)."""

    man_id: int
    server_ip: str
    action: str
    callerid: str
    cmd_lines: Tuple[str, ...]  # cmd_line_b ... cmd_line_k; NULL read as ''
    claim: str = ""  # this claim's token: marks, results and releases must name it
    marked: bool = False  # marked sending by the claim itself: to AMI at once


@attr.s(frozen=True, auto_attribs=True)
class SendResult:
    """
    What became of an action that was written to AMI.

    C{answered} is True when Asterisk answered C{Success} (the row's
    C{response} becomes Y, otherwise N).  C{text} is Asterisk's message, or
    why no answer came.  C{callAnswered} is True when that Success means
    the call itself was answered (a synchronous Originate).
    """

    man_id: int
    claim: str
    answered: bool
    text: str
    callAnswered: bool = False
    actionID: Optional[str] = None


@attr.s(frozen=True, auto_attribs=True)
class Refusal:
    """A row acqs will not send, and why (kept with the row)."""

    man_id: int
    claim: str
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
class CallDialing:
    """
    A non-Local leg of the call of C{callerid} is dialing (Newstate
    C{Dialing}: DAHDI, PRI, analog): this server's SENT rows with that
    callerid get its channel and uniqueid and stay SENT, and an UPDATED row
    still on a Local channel takes its uniqueid; that uniqueid's hangup
    makes them DEAD, so a call that fails before ringing ends DEAD on its
    trunk channel, as VICIdial's listener leaves it.
    """

    callerid: str
    channel: str
    uniqueid: str


@attr.s(frozen=True, auto_attribs=True)
class CallMoved:
    """
    The call on C{uniqueid} now runs on C{newUniqueid}, still named
    C{channel}: Asterisk 1.4 - 11 gave the name to another channel in a
    masquerade and hung the old one up as C{<ZOMBIE>}.  Its rows take the
    new uniqueid.
    """

    uniqueid: str
    newUniqueid: str
    channel: str


@attr.s(frozen=True, auto_attribs=True)
class CallDead:
    """
    The channel with C{uniqueid} (whole, however long) hung up: its rows
    become DEAD.  C{cause} is Asterisk's, e.g. C{"16 Normal Clearing"}.
    """

    uniqueid: str
    channel: str
    cause: Optional[str] = None


@attr.s(frozen=True, auto_attribs=True)
class CallEnded:
    """
    The answered call of C{callerid} ended while nobody listened: no live
    channel carries it, and no event of it was ever seen.  Its SENT rows
    whose synchronous Originate was answered become DEAD, with C{reason}.
    """

    callerid: str
    reason: str


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
    callerids of rows whose call may still ring (QUEUE, SENT within the
    ring window) or move on (UPDATED: a later, better channel may still
    update them); the whole uniqueids of UPDATED rows, and of SENT rows
    whose call is dialing (whose hangup makes them DEAD), with their
    channels; and the callerids of SENT rows whose call was answered
    though no event of it was seen (C{answered}).
    """

    callerids: Tuple[str, ...]
    uniqueids: Tuple[str, ...]
    answered: Tuple[str, ...] = ()
    channels: Tuple[str, ...] = ()  # the channel of each of uniqueids ('' if unknown)


@attr.s(frozen=True, auto_attribs=True)
class Pruned:
    """What a round of pruning deleted: acqs_action records, vicidial_manager rows."""

    records: int
    rows: int


@attr.s(frozen=True, auto_attribs=True)
class ServerInfo:
    """
    What the store found out about its database: the server's version
    text, vicidial_manager's engine, whether claims skip locked rows
    (InnoDB on MariaDB 10.6+ or MySQL 8.0+) or are serialised with a lock of
    their own, and whether one statement can wait for NEW rows in the
    server (MariaDB's compound statements).
    """

    version: str
    engine: Optional[str]
    skipLocked: bool
    waits: bool = False  # the server can wait for NEW rows itself (MariaDB)

    @property
    def transactional(self) -> bool:
        """Whether vicidial_manager's changes roll back with their transaction (not MyISAM)."""
        return self.engine is None or self.engine.lower() == "innodb"


class InstanceConflict(Exception):
    """Another live process already runs as this instance."""

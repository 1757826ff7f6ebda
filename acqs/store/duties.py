"""
The listener's VICIdial duties in the database: the rows VICIdial 2.14's
Perl listeners write to VICIdial's own tables besides vicidial_manager
(L{acqs.duties} holds the rules that make them from events).

These tables are VICIdial's, never created by acqs: L{dutyPlan} says which
duties their columns allow (L{findColumns} reads them).  A batch of duty
rows is written by L{writeDuties} in one transaction: one multi-row INSERT
per log table, one UPDATE of phones for all their addresses and one for all
their statuses, and for each SIP hangup cause the updates VICIdial makes.  Times are the database's
clock when the event reached acqs (its C{NOW(6)} less the time the row
waited), so batching delays no timestamp.

A statement that fails for good (no privilege, a column gone) stops only
its duty: its rows are reported in L{DutyWritten.failed} and the others are
written.  A lost connection fails the batch, to be written again; on MyISAM
the statements before it have stayed, so a retried batch may log those rows
twice (never lose them).
"""

from datetime import datetime
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import attr

from .transaction import Transaction, chunks, marks

# The duties, as the listener names them.
DTMF, PEER_EVENTS, PHONE_IP, PHONE_STATUS, CPD, SIP_CAUSE = (
    "dtmf", "peer_events", "phone_ip", "phone_status", "cpd", "sip_hangup_cause")
DUTIES = (DTMF, PEER_EVENTS, PHONE_IP, PHONE_STATUS, CPD, SIP_CAUSE)

# The columns each duty writes or matches on, by table.
NEEDS: Mapping[str, Mapping[str, Tuple[str, ...]]] = {
    DTMF: {"vicidial_dtmf_log": ("dtmf_time", "channel", "server_ip", "uniqueid", "digit",
                                 "direction", "state")},
    PEER_EVENTS: {"vicidial_peer_event_log": ("event_date", "event_type", "server_ip",
                                              "host_ip", "port", "channel_type", "peer",
                                              "channel", "data")},
    PHONE_IP: {"phones": ("extension", "server_ip", "protocol", "phone_ip")},
    PHONE_STATUS: {"phones": ("extension", "server_ip", "protocol", "peer_status",
                              "ping_time")},
    CPD: {"vicidial_cpd_log": ("channel", "uniqueid", "callerid", "server_ip", "lead_id",
                               "event_date", "result")},
    SIP_CAUSE: {
        "vicidial_dial_log": ("caller_code", "server_ip", "lead_id", "sip_hangup_cause",
                              "sip_hangup_reason", "uniqueid"),
        "vicidial_carrier_log": ("uniqueid", "caller_code", "server_ip", "lead_id",
                                 "call_date", "sip_hangup_cause", "sip_hangup_reason"),
    },
}
TABLES = tuple(sorted({table for needs in NEEDS.values() for table in needs}))

# How far around the call's start VICIdial looks for its carrier log row (seconds).
CARRIER_BEFORE, CARRIER_AFTER = 180, 10


@attr.s(frozen=True, auto_attribs=True)
class DtmfRow:
    """A vicidial_dtmf_log row: a digit's begin or end seen at C{at} (clock seconds)."""

    duty = DTMF
    at: float
    channel: str
    uniqueid: str
    digit: str
    direction: Optional[str]  # Received or Sent (None: something else)
    state: Optional[str]  # BEGIN or END


@attr.s(frozen=True, auto_attribs=True)
class PeerEventRow:
    """A vicidial_peer_event_log row."""

    duty = PEER_EVENTS
    at: float
    event_type: str
    channel_type: Optional[str]
    peer: str = ""
    channel: str = ""
    host_ip: str = ""
    port: Optional[int] = None
    data: str = ""


@attr.s(frozen=True, auto_attribs=True)
class PhoneAddress:
    """The phone of C{extension} and C{protocol} registered from C{ip}: phones.phone_ip."""

    duty = PHONE_IP
    extension: str
    protocol: str
    ip: str


@attr.s(frozen=True, auto_attribs=True)
class PhoneStatus:
    """phones.peer_status of a phone, and its ping_time when given."""

    duty = PHONE_STATUS
    extension: str
    protocol: str
    status: str
    pingTime: Optional[int] = None


@attr.s(frozen=True, auto_attribs=True)
class CpdRow:
    """A vicidial_cpd_log row (status NEW, its default)."""

    duty = CPD
    at: float
    channel: str
    uniqueid: str
    callerid: str
    lead_id: int
    result: str


@attr.s(frozen=True, auto_attribs=True)
class SipCause:
    """
    A SIP final response to the call of C{callerid}: C{code} and C{reason}
    go to its vicidial_dial_log rows and to its carrier log row of the call
    that started at C{started} (local time, from the uniqueid).
    """

    duty = SIP_CAUSE
    callerid: str
    lead_id: int
    uniqueid: str
    code: int
    reason: str
    started: Optional[int]  # epoch seconds; None when the uniqueid holds none


DutyRow = Union[DtmfRow, PeerEventRow, PhoneAddress, PhoneStatus, CpdRow, SipCause]


@attr.s(frozen=True, auto_attribs=True)
class DutyWritten:
    """
    What a batch of duty rows did: rows written, statements run, and the
    duties whose statements failed for good, C{(duty, reason, rows)}.
    """

    rows: int
    statements: int
    failed: Tuple[Tuple[str, str, int], ...] = ()


def dutyPlan(columns: Mapping[str, FrozenSet[str]]) -> Dict[str, Optional[str]]:
    """
    Each duty, with None where the tables in C{columns} (lower-case names,
    as L{findColumns} gives them) allow it, else why they do not.
    """
    plan: Dict[str, Optional[str]] = {}
    for duty, needs in NEEDS.items():
        reasons = []
        for table, needed in needs.items():
            if table not in columns:
                reasons.append(f"no table {table}")
                continue
            missing = [c for c in needed if c not in columns[table]]
            if missing:
                reasons.append(f"{table} has no {', '.join(missing)}")
        plan[duty] = "; ".join(reasons) or None
    return plan


def findColumns(t: Transaction) -> Dict[str, FrozenSet[str]]:
    """The lower-case columns of those VICIdial tables the duties use that exist."""
    return t.dialect.columnsOf(t, TABLES)


def writeDuties(t: Transaction, server_ip: str, rows: Sequence[DutyRow],
                now: float) -> DutyWritten:
    """
    Write C{rows} in order of table; C{now} is the clock's time (as the
    rows' C{at}) as the transaction starts.
    """
    writer = _Writer(t, now)
    for kind, write in ((DtmfRow, _dtmf), (PeerEventRow, _peerEvents), (CpdRow, _cpd)):
        batch = [row for row in rows if isinstance(row, kind)]
        if batch:
            writer.run(batch[0].duty, len(batch), write, server_ip, batch)
    phones = [row for row in rows if isinstance(row, (PhoneAddress, PhoneStatus))]
    if phones:
        _phones(writer, server_ip, phones)
    for cause in (row for row in rows if isinstance(row, SipCause)):
        writer.run(SIP_CAUSE, 1, _sipCause, server_ip, cause)
    return DutyWritten(writer.written, t.executed, tuple(writer.failed))


class _Writer:
    """Runs each duty's statements; a failure for good stops that duty, not the batch."""

    def __init__(self, t: Transaction, now: float):
        self.t = t
        self.now = now
        self.written = 0
        self.failed: List[Tuple[str, str, int]] = []
        self._stopped: Dict[str, int] = {}

    def ago(self, at: float) -> object:
        return self.t.dialect.agoParameter(self.now - at)

    def run(self, duty: str, count: int, write, *args) -> None:
        if duty in self._stopped:
            self._count(duty, count)
            return
        try:
            write(self, *args)
        except self.t.dialect.errors as e:
            if self.t.dialect.transient(e):
                raise
            self._stopped[duty] = len(self.failed)
            self.failed.append((duty, str(e), 0))
            self._count(duty, count)
        else:
            self.written += count

    def _count(self, duty: str, count: int) -> None:
        index = self._stopped[duty]
        name, reason, rows = self.failed[index]
        self.failed[index] = (name, reason, rows + count)


def _dtmf(w: _Writer, server_ip: str, rows: List[DtmfRow]) -> None:
    for chunk in chunks(rows):
        w.t.write(
            "INSERT INTO vicidial_dtmf_log (dtmf_time, channel, server_ip, uniqueid, digit,"
            " direction, state) VALUES {rows}",
            [v for r in chunk for v in (w.ago(r.at), r.channel, server_ip, r.uniqueid, r.digit,
                                        r.direction, r.state)],
            rows=marks(len(chunk), w.t.dialect.sql("({ago}, %s, %s, %s, %s, %s, %s)")))


def _peerEvents(w: _Writer, server_ip: str, rows: List[PeerEventRow]) -> None:
    for chunk in chunks(rows):
        w.t.write(
            "INSERT INTO vicidial_peer_event_log (event_date, event_type, server_ip, host_ip,"
            " port, channel_type, peer, channel, data) VALUES {rows}",
            [v for r in chunk for v in (w.ago(r.at), r.event_type, server_ip, r.host_ip, r.port,
                                        r.channel_type, r.peer, r.channel, r.data)],
            rows=marks(len(chunk), w.t.dialect.sql("({ago}, %s, %s, %s, %s, %s, %s, %s, %s)")))


def _cpd(w: _Writer, server_ip: str, rows: List[CpdRow]) -> None:
    for chunk in chunks(rows):
        w.t.write(
            "INSERT INTO vicidial_cpd_log (channel, uniqueid, callerid, server_ip, lead_id,"
            " event_date, result) VALUES {rows}",
            [v for r in chunk for v in (r.channel, r.uniqueid, r.callerid, server_ip, r.lead_id,
                                        w.ago(r.at), r.result)],
            rows=marks(len(chunk), w.t.dialect.sql("(%s, %s, %s, %s, %s, {ago}, %s)")))


def _phones(w: _Writer, server_ip: str, updates: Iterable[Union[PhoneAddress, PhoneStatus]]
            ) -> None:
    """The last address, status and ping time of each phone, in one UPDATE (per duty)."""
    addresses: Dict[Tuple[str, str], str] = {}
    statuses: Dict[Tuple[str, str], str] = {}
    pings: Dict[Tuple[str, str], int] = {}
    for update in updates:
        key = (update.extension, update.protocol)
        if isinstance(update, PhoneAddress):
            addresses[key] = update.ip
        else:
            statuses[key] = update.status
            if update.pingTime is not None:
                pings[key] = update.pingTime
    if addresses:
        w.run(PHONE_IP, len(addresses), _updatePhones, server_ip,
              {"phone_ip": addresses})
    if statuses:
        w.run(PHONE_STATUS, len(statuses), _updatePhones, server_ip,
              {"peer_status": statuses, "ping_time": pings})


def _updatePhones(w: _Writer, server_ip: str,
                  columns: Mapping[str, Mapping[Tuple[str, str], object]]) -> None:
    keys = sorted({key for values in columns.values() for key in values})
    for chunk in chunks(keys):
        inChunk = set(chunk)
        assignments, params = [], []
        for column, values in columns.items():
            arms = [(key, value) for key, value in values.items() if key in inChunk]
            if not arms:
                continue
            assignments.append(f"{column} = CASE"
                               + " WHEN extension = %s AND protocol = %s THEN %s" * len(arms)
                               + f" ELSE {column} END")
            params += [v for (extension, protocol), value in arms
                       for v in (extension, protocol, value)]
        w.t.write(
            "UPDATE phones SET {assignments} WHERE server_ip = %s AND extension IN ({keys})",
            params + [server_ip] + sorted({extension for extension, _ in chunk}),
            assignments=", ".join(assignments), keys=marks(len({e for e, _ in chunk})))


def _sipCause(w: _Writer, server_ip: str, cause: SipCause) -> None:
    w.t.write(
        "UPDATE vicidial_dial_log SET sip_hangup_cause = %s, sip_hangup_reason = %s,"
        " uniqueid = %s WHERE caller_code = %s AND server_ip = %s AND lead_id = %s",
        (cause.code, cause.reason, cause.uniqueid, cause.callerid, server_ip, cause.lead_id))
    if cause.started is None:
        return
    # VICIdial's window, in this box's local time as its listener computes it.
    after, before = (datetime.fromtimestamp(cause.started + delta).strftime("%Y-%m-%d %H:%M:%S")
                     for delta in (-CARRIER_BEFORE, CARRIER_AFTER))
    found = w.t.select(
        "SELECT uniqueid FROM vicidial_carrier_log WHERE server_ip = %s AND caller_code = %s"
        " AND lead_id = %s AND call_date > %s AND call_date < %s"
        " ORDER BY call_date DESC LIMIT 1",
        (server_ip, cause.callerid, cause.lead_id, after, before))
    if found:
        w.t.write(
            "UPDATE vicidial_carrier_log SET sip_hangup_cause = %s, sip_hangup_reason = %s"
            " WHERE uniqueid = %s",
            (cause.code, cause.reason, found[0][0]))

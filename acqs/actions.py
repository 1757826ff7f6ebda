"""
From a vicidial_manager row to the AMI action it asks for.

The row's C{action} column names the action; C{cmd_line_b} ... C{cmd_line_k}
each hold one whole C{Name: value} header line.  As in VICIdial's sender,
blank lines and lines holding just C{0} are skipped and the headers go out
in column order, each as the row has it (pseudo-headers such as C{VDACnote}
included).  The ActionID is the row's own when it has one (VICIdial's
stereo MixMonitor row does), else acqs'.  Lines that are not headers
(VICIdial's agent screen writes bare values, a channel or C{on}, into
C{cmd_line_j} and C{cmd_line_k}; Asterisk ignores lines without a colon)
are left out and named.  acqs refuses what could not be sent safely: a line
holding CR or LF, a name that is no action, Login/Logoff/Challenge, and an
action the operator did not allow.

VICIdial's volume control is the one row whose lines are not all headers:
C{cmd_line_b} holds the placeholder C{XXYYXXYYXXYYXX} where the MeetMe user
number belongs, C{cmd_line_j} the agent's channel and C{cmd_line_k} the
conference; the sender looks the number up with C{meetme list} first.
"""

import re
from typing import Collection, List, Optional, Tuple, Union

import attr

from .ami.message import Header, UnsafeHeader, encode
from .store.records import CMD_LINE_COLUMNS, ActionRow, Refusal

_ACTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_HEADER_NAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")
# acqs opens and closes every session itself.
_SESSION_ACTIONS = frozenset(["login", "logoff", "challenge"])
# The actions VICIdial's GUI clients, dialers and AGIs queue (the survey
# behind tests/data/vicidial/rows.json); the default of --allow-actions.
VICIDIAL_ACTIONS = ("Originate", "Redirect", "Hangup", "Monitor", "StopMonitor", "MixMonitor",
                    "MuteAudio", "ConfbridgeMute", "ConfbridgeUnmute")
_TRUE = frozenset(["yes", "true", "y", "t", "1", "on"])  # Asterisk's ast_true()
# How long Asterisk lets an Originate ring when the action names no Timeout.
ORIGINATE_RING = 30.0
MEETME_PLACEHOLDER = "XXYYXXYYXXYYXX"


@attr.s(frozen=True, auto_attribs=True)
class Action:
    """
    An AMI action ready to send for the claim C{claim} of row C{man_id};
    C{ignored} names the row's lines left out, C{actionID} is the row's own
    ActionID, if it has one.
    """

    man_id: int
    name: str
    headers: Tuple[Header, ...]
    ignored: Tuple[str, ...] = ()
    meetme: Optional[Tuple[str, str]] = None  # (channel, conference) to look up
    claim: str = ""
    actionID: Optional[str] = None
    callerid: str = ""
    marked: bool = False  # the claim marked it sending already
    claimedAt: Optional[float] = None  # when its claim came back (acqs' clock)

    @property
    def callAnswered(self) -> bool:
        """Whether Success means the call was answered: a synchronous Originate."""
        return self.originates and self._header("async").lower() not in _TRUE

    @property
    def originates(self) -> bool:
        return self.name.lower() == "originate"

    def _header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name), "")

    def answerTimeout(self, timeout: float) -> float:
        """
        How long to wait for Asterisk's answer.  A synchronous Originate
        (VICIdial sends no C{Async}) is answered only once its call is, so
        it gets its ring time (C{Timeout}, in ms) on top.
        """
        if not self.callAnswered:
            return timeout
        try:
            ring = float(self._header("timeout")) / 1000
        except ValueError:
            ring = ORIGINATE_RING
        return timeout + (ring if ring > 0 else ORIGINATE_RING)

    def withMeetmeUser(self, user: str) -> "Action":
        """The action with the volume-control placeholder replaced."""
        headers = tuple((k, v.replace(MEETME_PLACEHOLDER, user)) for k, v in self.headers)
        return attr.evolve(self, headers=headers, meetme=None)


def meetmeUser(output: List[str], channel: str) -> Optional[str]:
    """The MeetMe user number of C{channel} in C{meetme list} output."""
    for line in output:
        if (channel + " ").lower() in line.lower():
            m = re.search(r"User #: *(\d+)", line)
            if m and int(m.group(1)) > 0:
                return m.group(1)
    return None


def refusal(row: ActionRow, allowed: Optional[Collection[str]] = None) -> Optional[str]:
    """Why a row cannot be sent, or None (the store's C{refuse} rule for claims)."""
    action = rowAction(row, allowed)
    return action.reason if isinstance(action, Refusal) else None


def rowAction(row: ActionRow, allowed: Optional[Collection[str]] = None,
              claimedAt: Optional[float] = None) -> Union[Action, Refusal]:
    """
    The action a claimed row asks for, or why it cannot be sent; with
    C{allowed} (lower-case names), only those actions are sent; claimed at
    C{claimedAt} (clock seconds).
    """

    def refuse(reason: str) -> Refusal:
        return Refusal(row.man_id, row.claim, reason)

    name = (row.action or "").strip()
    if not _ACTION_NAME.match(name):
        return refuse(f"action {name[:40]!r} is not an AMI action name")
    if name.lower() in _SESSION_ACTIONS:
        return refuse(f"action {name} is not allowed: acqs logs in and off by itself")
    if allowed is not None and name.lower() not in allowed:
        return refuse(f"action {name} is not in --allow-actions")
    for column, line in zip(CMD_LINE_COLUMNS, row.cmd_lines):
        if line and ("\r" in line or "\n" in line):  # blank ones and volume rows' too
            return refuse(f"{column} holds CR or LF")
    headers: List[Header] = []
    ignored: List[str] = []
    actionID = None
    lines = dict(zip(CMD_LINE_COLUMNS, row.cmd_lines))
    meetme = None
    if MEETME_PLACEHOLDER in (lines["cmd_line_b"] or ""):
        channel, conference = (lines.pop(c, "") for c in ("cmd_line_j", "cmd_line_k"))
        if not channel.strip() or not conference.strip().isdigit():
            return refuse("volume control needs the channel in cmd_line_j"
                          " and the conference number in cmd_line_k")
        meetme = (channel.strip(), conference.strip())
    for column, line in lines.items():
        if line is None or not line.strip() or line.strip() == "0":
            continue
        key, sep, value = line.partition(":")
        if not sep or not _HEADER_NAME.match(key):
            ignored.append(column)
            continue
        value = value[1:] if value.startswith(" ") else value
        if key.lower() == "actionid":
            if actionID is None and value.strip():
                actionID = value.strip()
            else:
                ignored.append(column)
            continue
        headers.append((key, value))
    try:
        encode([("Action", name), ("ActionID", actionID or "-")] + headers)
    except UnsafeHeader as e:
        return refuse(str(e))
    return Action(row.man_id, name, tuple(headers), tuple(ignored), meetme, row.claim, actionID,
                  row.callerid, row.marked, claimedAt)

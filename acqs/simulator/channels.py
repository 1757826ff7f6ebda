"""
Simulated channels: what a channel is at one moment (the fields Asterisk
prints about it) and the fixed tables behind them.
"""

from typing import Any, Dict, Optional, Tuple

UNKNOWN = "<unknown>"

# ast_state2str, by ChannelState number.
STATES = ("Down", "Rsrvd", "OffHook", "Dialing", "Ring", "Ringing", "Up", "Busy",
          "Dialing Offhook", "Pre-ring", "Unknown")
DOWN, RING, RINGING, UP = 0, 4, 5, 6

# ast_cause2str descriptions of the causes the simulator produces.
CAUSES = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    34: "Circuit/channel congestion",
}
NORMAL_CLEARING = 16
NO_ANSWER = 19


def causeText(cause: int) -> str:
    return CAUSES.get(cause, "Unknown")


def parseCallerID(text: str) -> Tuple[str, str]:
    """
    Split an Originate C{Callerid} into C{(number, name)} as Asterisk does:
    C{"Name" <123>} gives both; a bare value that looks like a phone number
    is a number, anything else a name (VICIdial's C{DL40130172253cc160}).
    """
    text = (text or "").strip()
    if "<" in text and text.endswith(">"):
        name, _, number = text[:-1].rpartition("<")
        return number.strip(), name.strip().strip('"').strip()
    if text and all(c in "0123456789+*#-() " for c in text):
        return "".join(c for c in text if c not in "-() "), ""
    return "", text.strip('"')


class Channel:
    """
    A live channel.  Attributes hold what Asterisk prints in a channel
    snapshot; C{state} is the description (C{"Up"}), C{stateCode} its
    number.  Engine bookkeeping (timers, peers, bridges) lives here too but
    is not part of what tests are meant to read.
    """

    def __init__(self, name: str, uniqueid: str, linkedid: str, tech: str,
                 context: str, exten: str, state: int, created: float):
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.tech = tech
        self.context = context
        self.exten = exten
        self.priority = 1
        self.stateCode = state
        self.callerIDNum = ""
        self.callerIDName = ""
        self.connectedLineNum = ""
        self.connectedLineName = ""
        self.language = "en"
        self.accountCode = ""
        self.application = ""
        self.appData = ""
        self.created = created
        self.answered: Optional[float] = None
        self.hangupCause = 0
        self.variables: Dict[str, str] = {}
        self.callID: Optional[int] = None
        # Engine bookkeeping.
        self.localPeer: Optional["Channel"] = None
        self.localSide = 0               # 1 or 2 for the halves of a Local channel
        self.noOptimization = False      # a Local channel asked for with /n
        self.program: Optional[list] = None  # applications run instead of the dialplan
        self.announced: Optional[tuple] = None  # context/exten/priority of the last Newexten
        self.dialer: Any = None          # who placed this channel and waits for it
        self.farEnd: Any = None          # behaviour of the far end of a non-Local channel
        self.runningPBX = False
        self.waiting: Optional[str] = None   # the blocking application, if any
        self.timer: Any = None
        self.dial: Any = None            # the Dial() this channel is running
        self.bridge: Any = None
        self.conference: Any = None
        self.hangupRequested = False
        self.gone = False

    @property
    def state(self) -> str:
        return STATES[self.stateCode]

    @property
    def device(self) -> str:
        """The device name (C{Local/8600011@acqs-test}, C{SIP/carrier})."""
        base = self.name.split(";")[0].split(",")[0]
        return base.rpartition("-")[0] or base

    def __repr__(self) -> str:
        return f"<Channel {self.name} {self.state} {self.context},{self.exten},{self.priority}>"


class Bridge:
    """A two-party basic bridge created by C{Dial()}."""

    def __init__(self, uniqueid: str):
        self.uniqueid = uniqueid
        self.members: list = []
        self.entered: list = []  # every channel that ever entered, in order


class Conference:
    """A MeetMe conference: its users by user number."""

    def __init__(self, number: str):
        self.number = number
        self.users: Dict[int, "ConferenceUser"] = {}
        self._next = 1

    def join(self, channel: Channel, now: float) -> "ConferenceUser":
        user = ConferenceUser(self._next, channel, now)
        self.users[user.number] = user
        self._next += 1
        return user

    def leave(self, channel: Channel) -> Optional["ConferenceUser"]:
        for number, user in list(self.users.items()):
            if user.channel is channel:
                del self.users[number]
                return user
        return None


class ConferenceUser:
    def __init__(self, number: int, channel: Channel, joined: float):
        self.number = number
        self.channel = channel
        self.joined = joined
        self.muted = False

"""
acqs' Asterisk Manager Interface simulator, for unit tests and the demo.

L{Simulator} answers AMI like Asterisk 22 (or 1.4) does, plays Originate
as a call through a small declarative dialplan (L{Exten}), and has knobs
for the faults acqs must survive.  Run it stand-alone with
C{python -m acqs.simulator --port 5038}.
"""

from .calls import FAILURE_POSITIONS, HANGUP_ORDERS, SUCCESS_POSITIONS, OriginateRequest, Races
from .channels import Channel
from .dialplan import DEFAULT_DIALPLAN, Dialplan, Exten, HangupHandler
from .server import DEFAULT_USERS, PERMISSIONS, AMISession, Simulator, User

__all__ = [
    "Simulator", "User", "DEFAULT_USERS", "PERMISSIONS", "AMISession", "Channel", "Dialplan",
    "Exten", "HangupHandler", "DEFAULT_DIALPLAN", "Races", "OriginateRequest",
    "SUCCESS_POSITIONS", "FAILURE_POSITIONS", "HANGUP_ORDERS",
]

"""
acqs' Asterisk Manager Interface simulator, for unit tests and the demo.

L{Simulator} answers AMI as Asterisk 1.4, 1.6, 1.8, 11, 13 or 22 does
(L{acqs.simulator.dialects}), plays Originate as a call through a small
declarative dialplan (L{Exten}), and has knobs for the faults acqs must
survive.  Run it stand-alone with C{python -m acqs.simulator --port 5038
[--dialect asterisk13] [--vicidial-patches]}.

Events that come from outside the calls it plays are injected with these
L{Simulator} methods; each is printed as the dialect's Asterisk prints it
and reaches the sessions whose read permissions, C{Events} mask and
filters let it through:
 - C{dtmf(channel, digit, direction="Received", durationMs=100)}: a digit
   keyed on a live channel (C{DTMFBegin}, then C{DTMFEnd} C{durationMs}
   later; C{DTMF} Begin and End on 1.6 - 11; nothing on 1.4);
 - C{peerStatus(channelType, peer, status, address=None, port=None,
   cause=None, time=None, pingTime=None, maxPing=None)}: a C{PeerStatus}
   of C{SIP/peer} or C{PJSIP/peer};
 - C{peerRegistered(channelType, peer, host)},
   C{rtpDisconnect(channel, lastRx)},
   C{criticalTimeout(kind, callID, seqNo, host, timeout)},
   C{cpdResult(channel, result, detailed="", callID="", referenceID="",
   campaign="")}, C{sipHangupCause(channel, code, reason)}: the events of
   VICIdial's patched chan_sip, offered only by a simulator made with
   C{vicidialPatches=True}, on the versions those patches exist for (see
   L{acqs.simulator.dialects}); ValueError elsewhere.
A live channel is named as in C{channels}; its uniqueid and caller ID are
printed from there (KeyError if there is none).
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

"""
How each Asterisk version prints what happened: one L{Dialect} per version
VICIdial runs, each the version before it plus what changed
(L{acqs.simulator.dialects.classic} for 1.4 - 11,
L{acqs.simulator.dialects.stasis} for 12 and later).

  - C{asterisk14}: Asterisk 1.4.44 (AMI 1.0)
  - C{asterisk16}: Asterisk 1.6.2.24 (AMI 1.1)
  - C{asterisk18}: Asterisk 1.8.32.3 (AMI 1.1)
  - C{asterisk11}: Asterisk 11.25.3 (AMI 1.3)
  - C{asterisk13}: Asterisk 13.38.3 (AMI 2.10.6), for 13 - 18
  - C{asterisk22}: Asterisk 22.10.1 (AMI 11.0.0), held to real captures

C{patched} models a build with VICIdial's chan_sip patches: C{CPD-Result}
(1.4, 1.8), C{SIP-Hangup-Cause} (1.4, 1.8, 11), C{PeerRegistered},
C{SIPRTPDisconnect}, C{SIPCriticalTimeout} and PeerStatus' C{PingTime}/
C{MaxPing} (13); none of them is in an Asterisk release.
"""

from .base import Dialect
from .classic import Asterisk11, Asterisk14, Asterisk16, Asterisk18
from .stasis import Asterisk13, Asterisk22

DIALECTS = {d.name: d for d in (Asterisk14, Asterisk16, Asterisk18, Asterisk11, Asterisk13,
                                Asterisk22)}


def dialect(name: str, patched: bool = False) -> Dialect:
    """A fresh dialect by name; C{patched} for a build with VICIdial's chan_sip patches."""
    try:
        return DIALECTS[name](patched)
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}: use one of {', '.join(DIALECTS)}") from None


__all__ = ["DIALECTS", "Dialect", "dialect"]

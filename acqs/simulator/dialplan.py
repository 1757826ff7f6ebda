"""
The simulator's dialplan: a small declarative description of what each
extension does, turned into the application steps Asterisk would run.

An L{Exten} says how a call to it behaves (ring, answer, stay up, dial a
further leg, join a MeetMe conference); L{Exten.applications} spells that
out as the C{(application, data)} priorities real Asterisk prints in its
C{Newexten} events, so that a dialplan written here reads the same on the
wire as the one in C{tests/asterisk/etc/extensions.conf}.

Simplified: patterns match in the order they were written (exact names
first), not in Asterisk's specificity order; only C{${EXTEN}} and
C{${EXTEN:n}} are substituted in dial strings.
"""

import re
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import attr

App = Tuple[str, str]

HANGUP_EXTEN = "h"


def _seconds(value: float) -> str:
    return f"{value:g}"


@attr.s(frozen=True, auto_attribs=True)
class Exten:
    """
    How one extension behaves.

    @ivar ring: seconds of C{Ringing()} before answering (or giving up).
    @ivar answer: whether the call is answered.
    @ivar hold: seconds the answered call stays up before C{Hangup()};
        C{None} keeps it up (C{MusicOnHold()}) until someone hangs up.
    @ivar dial: a further leg to C{Dial()}, e.g. C{"Local/8600012@acqs-test"}
        or C{"SIP/carrier/${EXTEN}"}.  When it is not a Local channel the
        far end is outside Asterisk, and C{ring}/C{answer}/C{hold} then
        describe that far end instead.
    @ivar dialTimeout: the C{Dial()} timeout in seconds.
    @ivar meetme: join this MeetMe conference (C{"${EXTEN}"} for the
        extension's own number) and stay until hung up.
    """

    ring: float = 0
    answer: bool = True
    hold: Optional[float] = 0
    dial: Optional[str] = None
    dialTimeout: int = 20
    meetme: Optional[str] = None

    def applications(self, exten: str) -> List[App]:
        """The priorities, in order, as C{(application, data)}."""
        if self.dial is not None:
            target = substitute(self.dial, exten)
            return [("Dial", f"{target},{self.dialTimeout}"), ("Hangup", "")]
        if self.meetme is not None:
            return [("Answer", ""), ("MeetMe", substitute(self.meetme, exten) + ",F"),
                    ("Hangup", "")]
        apps: List[App] = []
        if self.ring or not self.answer:
            apps += [("Ringing", ""), ("Wait", _seconds(self.ring))]
        if self.answer:
            apps.append(("Answer", ""))
            if self.hold is None:
                apps.append(("MusicOnHold", ""))
            elif self.hold:
                apps.append(("Wait", _seconds(self.hold)))
        apps.append(("Hangup", ""))
        return apps


@attr.s(frozen=True, auto_attribs=True)
class HangupHandler:
    """The C{h} extension: C{NoOp(hangup ${HANGUPCAUSE})}, as in the test dialplan."""

    def applications(self, exten: str) -> List[App]:
        return [("NoOp", "hangup ${HANGUPCAUSE}")]


_EXTEN_VAR = re.compile(r"\$\{EXTEN(?::(-?\d+)(?::(\d+))?)?\}")


def substitute(text: str, exten: str) -> str:
    """Replace C{${EXTEN}}, C{${EXTEN:offset}} and C{${EXTEN:offset:length}}."""

    def one(m: "re.Match[str]") -> str:
        if m.group(1) is None:
            return exten
        value = exten[int(m.group(1)):]
        return value[: int(m.group(2))] if m.group(2) is not None else value

    return _EXTEN_VAR.sub(one, text)


_PATTERN_CLASSES = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}


def _patternRegex(pattern: str) -> "re.Pattern[str]":
    out = []
    i = 1  # skip the leading underscore
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end + 1
            continue
        out.append(_PATTERN_CLASSES.get(c.upper(), re.escape(c)))
        i += 1
    return re.compile("".join(out) + r"\Z")


class Dialplan:
    """
    Contexts of extensions, looked up like Asterisk: an exact name first,
    then C{_}-patterns (C{X}, C{Z}, C{N}, C{[1-5]}, C{.}, C{!}).
    """

    def __init__(self, contexts: Mapping[str, Mapping[str, object]]):
        self._contexts: Dict[str, Dict[str, object]] = {
            name: dict(extens) for name, extens in contexts.items()
        }
        self._patterns = {
            name: [(_patternRegex(p), spec) for p, spec in extens.items() if p.startswith("_")]
            for name, extens in self._contexts.items()
        }

    def __contains__(self, context: str) -> bool:
        return context in self._contexts

    def __iter__(self) -> Iterator[str]:
        return iter(self._contexts)

    def lookup(self, context: str, exten: str):
        """The L{Exten} (or L{HangupHandler}) for C{exten@context}, or None."""
        extens = self._contexts.get(context)
        if extens is None:
            return None
        spec = extens.get(exten)
        if spec is not None and not exten.startswith("_"):
            return spec
        for regex, spec in self._patterns[context]:
            if regex.match(exten):
                return spec
        return None

    def applications(self, context: str, exten: str) -> Optional[List[App]]:
        spec = self.lookup(context, exten)
        return None if spec is None else spec.applications(exten)

    def exists(self, context: str, exten: str, priority: int = 1) -> bool:
        apps = self.applications(context, exten)
        return apps is not None and 1 <= priority <= len(apps)

    def withContext(self, name: str, extens: Mapping[str, object]) -> "Dialplan":
        """A copy with the context C{name} added or replaced."""
        contexts = dict(self._contexts)
        contexts[name] = dict(extens)
        return Dialplan(contexts)


DEFAULT_DIALPLAN = Dialplan(
    {
        # Mirrors tests/asterisk/etc/extensions.conf.
        "acqs-test": {
            "8600011": Exten(answer=True, hold=2),
            "8600012": Exten(ring=3, answer=True, hold=2),
            "8600013": Exten(ring=60, answer=False),
            "8600014": Exten(answer=True, hold=60),
            "8600020": Exten(answer=True, hold=3),
            "8600030": Exten(dial="Local/8600012@acqs-test", dialTimeout=20),
            "8600100": Exten(answer=True, hold=1),
            HANGUP_EXTEN: HangupHandler(),
        },
        # VICIdial-style: 9 + number dials the carrier (the SIP leg carries
        # the caller ID), 8600051 is an agent's MeetMe conference, any other
        # number rings a second, answers and talks a few seconds.
        "default": {
            "8600051": Exten(meetme="${EXTEN}"),
            "_9X.": Exten(ring=1, answer=True, hold=5, dial="SIP/carrier/${EXTEN:1}",
                          dialTimeout=60),
            "_X.": Exten(ring=1, answer=True, hold=4),
            HANGUP_EXTEN: HangupHandler(),
        },
    }
)

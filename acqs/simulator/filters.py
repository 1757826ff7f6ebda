"""
A session's event filters, as the AMI C{Filter} action adds them (Asterisk
10 and later): regular expressions searched for in each event's whole text,
C{Event: Name} line first.  With none, every event passes; with include
filters only, an event passes if one matches; with exclude filters (a
leading C{!}) only, unless one matches; with both, if an include filter
matches and no exclude filter does.

Asterisk compiles them as POSIX extended expressions; here the bracket
classes (C{[[:space:]]} and the like) are turned into Python's, which is
all the difference the filters acqs and its tests use can meet.
"""

import re
from typing import List, Pattern, Tuple

_CLASSES = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "blank": " \\t", "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9", "graph": "\\x21-\\x7e", "lower": "a-z", "print": "\\x20-\\x7e",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), "space": "\\s",
    "upper": "A-Z", "xdigit": "0-9A-Fa-f",
}
_CLASS = re.compile(r"\[:([a-z]+):\]")


class BadFilter(ValueError):
    """The filter does not compile."""


def compileFilter(text: str) -> Tuple[bool, Pattern[str]]:
    """C{(include, pattern)} for a C{Filter:} header; raise L{BadFilter}."""
    include = not text.startswith("!")
    expression = text if include else text[1:]

    def cls(match):
        try:
            return _CLASSES[match.group(1)]
        except KeyError:
            raise BadFilter(f"no class [:{match.group(1)}:]") from None

    try:
        return include, re.compile(_CLASS.sub(cls, expression))
    except re.error as e:
        raise BadFilter(str(e)) from None


def passes(filters: List[Tuple[bool, Pattern[str]]], text: str) -> bool:
    """Whether an event whose whole text is C{text} passes C{filters}."""
    includes = [pattern for include, pattern in filters if include]
    if includes and not any(pattern.search(text) for pattern in includes):
        return False
    return not any(pattern.search(text) for include, pattern in filters if not include)

"""
AMI messages: ordered headers, repeated keys kept, case-insensitive lookup.

A message read from the wire is parsed lazily: the reader only looks at its
first line to route it, so events nobody listens to are never split into
headers.
"""

from typing import Iterable, List, Optional, Sequence, Tuple

Header = Tuple[str, str]

_SECRET_HEADERS = frozenset(["secret", "key"])


class UnsafeHeader(ValueError):
    """
    A header that cannot be written to AMI: its name is empty or holds a
    colon, or its name or value holds CR or LF (which would let it inject
    further headers or actions).  The text never repeats the value, which may
    be a secret.
    """


def _checked(key: str, value: str) -> bytes:
    if not key or ":" in key or key.strip() != key:
        raise UnsafeHeader(f"AMI header name {key!r} is not a valid name")
    if "\r" in key or "\n" in key:
        raise UnsafeHeader("an AMI header name contains CR or LF")
    if "\r" in value or "\n" in value:
        raise UnsafeHeader(f"the value of AMI header {key!r} contains CR or LF")
    return f"{key}: {value}\r\n".encode("utf-8")


def encode(headers: Iterable[Header]) -> bytes:
    """
    Serialize headers as one AMI message, CRLF-terminated, after checking
    every name and value; nothing is returned if any header is unsafe.
    """
    return b"".join([_checked(k, str(v)) for k, v in headers]) + b"\r\n"


class Message:
    """
    One AMI message: a response, an event or an action.

    Headers keep their order and repetitions (C{Variable}, C{Output},
    C{ChanVariable}); C{get}/C{[]} return the first value of a name, looked up
    without regard to case, and C{getall} every value in order.  Lines that
    are not C{Name: value} are kept apart in C{malformed}.
    """

    __slots__ = ("_raw", "_headers", "_index", "_malformed")

    def __init__(self, headers: Sequence[Header] = ()):
        self._raw: Optional[bytes] = None
        self._headers: Optional[List[Header]] = list(headers)
        self._index: Optional[dict] = None
        self._malformed: Tuple[str, ...] = ()

    @classmethod
    def fromBytes(cls, raw: bytes) -> "Message":
        """
        A message for the raw bytes of one AMI message (without its blank
        terminating line); parsed on first use.  Bytes that are not UTF-8
        are replaced, never fatal.
        """
        self = cls.__new__(cls)
        self._raw = raw
        self._headers = None
        self._index = None
        self._malformed = ()
        return self

    def _parse(self) -> List[Header]:
        # Only called while _headers is None, which fromBytes pairs with _raw.
        raw = self._raw or b""
        headers = []
        malformed = []
        for line in raw.decode("utf-8", "replace").split("\n"):
            if line.endswith("\r"):
                line = line[:-1]
            key, sep, value = line.partition(":")
            if sep and key and key == key.strip():
                headers.append((key, value[1:] if value[:1] == " " else value))
            elif line:
                malformed.append(line)
        self._headers = headers
        self._malformed = tuple(malformed)
        self._raw = None
        return headers

    def _lookup(self) -> dict:
        if self._index is None:
            index: dict = {}
            for key, value in self.headers:
                index.setdefault(key.lower(), []).append(value)
            self._index = index
        return self._index

    @property
    def headers(self) -> List[Header]:
        """Every C{(name, value)} pair, in wire order."""
        if self._headers is None:
            return self._parse()
        return self._headers

    @property
    def malformed(self) -> Tuple[str, ...]:
        """Non-blank lines that were not C{Name: value} headers."""
        if self._headers is None:
            self._parse()
        return self._malformed

    def peek(self, key: str) -> Optional[str]:
        """
        The first value of C{key} as Asterisk spells it, found in the raw
        bytes without parsing the message; None when not found that way
        (it may still be there, spelt otherwise: then use L{get}).
        """
        if self._raw is None:
            return self.get(key)
        needle = b"\n" + key.encode("ascii") + b": "
        if self._raw.startswith(needle[1:]):
            start = len(needle) - 1
        else:
            start = self._raw.find(needle)
            if start < 0:
                return None
            start += len(needle)
        stop = self._raw.find(b"\n", start)
        value = self._raw[start:] if stop < 0 else self._raw[start:stop]
        return value.rstrip(b"\r").decode("utf-8", "replace")

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        values = self._lookup().get(key.lower())
        return values[0] if values else default

    def getall(self, key: str) -> List[str]:
        return list(self._lookup().get(key.lower(), ()))

    def __getitem__(self, key: str) -> str:
        values = self._lookup().get(key.lower())
        if not values:
            raise KeyError(key)
        return values[0]

    def __contains__(self, key: str) -> bool:
        return key.lower() in self._lookup()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.headers == other.headers

    def __repr__(self) -> str:
        shown = [
            (k, "********" if k.lower() in _SECRET_HEADERS else v)
            for k, v in self.headers
        ]
        return f"Message({shown!r})"

"""
Splitting an AMI byte stream into messages.

Asterisk ends each message with a blank line, nominally CRLF CRLF; bare LF is
accepted too.  One form breaks that rule: the C{Command} response of
Asterisk 13 and older (C{Response: Follows}), whose raw output may itself hold
blank lines and ends at C{--END COMMAND--}.
"""

import re
from typing import Callable, List

from .message import Message

FOLLOWS = b"Response: Follows"
END_COMMAND = b"--END COMMAND--"

_TERMINATOR = re.compile(rb"\r?\n\r?\n")
_END_COMMAND = re.compile(re.escape(END_COMMAND) + rb"\r?\n\r?\n")
_KEEP = 3  # bytes kept while discarding, in case a terminator straddles reads

DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024
DEFAULT_MAX_LINE = 64 * 1024


class MessageReader:
    """
    Turn received bytes into the raw bytes of whole messages.

    A message longer than C{maxMessage}, or holding a line longer than
    C{maxLine}, is dropped whole and reported through C{onDiscard(size,
    why)}; reading resumes at the next message.
    """

    def __init__(
        self,
        onDiscard: Callable[[int, str], None],
        maxMessage: int = DEFAULT_MAX_MESSAGE,
        maxLine: int = DEFAULT_MAX_LINE,
    ):
        self._onDiscard = onDiscard
        self._maxMessage = maxMessage
        self._maxLine = maxLine
        self._buffer = b""
        self._discarded = 0  # > 0 while skipping an oversized message
        self._scanned = 0

    def feed(self, data: bytes) -> List[bytes]:
        """Add C{data}; return every message it completes, in order."""
        buf = self._buffer + data if self._buffer else data
        pos = 0
        end = len(buf)
        out = []
        # Bytes at the start of the buffer already searched in vain.
        scanned, self._scanned = self._scanned, 0
        while pos < end:
            if self._discarded:
                m = _TERMINATOR.search(buf, pos)
                if m is None:
                    self._discarded += max(0, end - pos - _KEEP)
                    pos = max(pos, end - _KEEP)
                    break
                self._onDiscard(self._discarded + m.start() - pos, "too long")
                self._discarded = 0
                pos = m.end()
                continue
            if buf[pos] in b"\r\n":
                pos += 1  # stray blank lines between messages
                continue
            if buf.startswith(FOLLOWS, pos):
                m = _END_COMMAND.search(buf, pos + scanned)
                stop = m.start() + len(END_COMMAND) if m is not None else 0
            elif end - pos < len(FOLLOWS) and FOLLOWS.startswith(buf[pos:]):
                break  # too short to tell a Follows response from the rest
            else:
                m = _TERMINATOR.search(buf, pos + scanned)
                stop = m.start() if m is not None else 0
            scanned = 0
            if m is None:
                if end - pos > self._maxMessage:
                    self._discarded = end - pos - _KEEP
                    pos = end - _KEEP
                else:
                    self._scanned = max(0, end - pos - len(END_COMMAND) - _KEEP)
                break
            raw = buf[pos:stop]
            pos = m.end()
            if len(raw) > self._maxMessage:
                self._onDiscard(len(raw), "too long")
            elif len(raw) > self._maxLine and _longestLine(raw) > self._maxLine:
                self._onDiscard(len(raw), "has a line that is too long")
            else:
                out.append(raw)
        self._buffer = buf[pos:]
        return out


def _longestLine(raw: bytes) -> int:
    return max(len(line) for line in raw.split(b"\n"))


def parseFollows(raw: bytes) -> Message:
    """
    Parse an Asterisk <= 13 C{Response: Follows} command response into a
    message whose raw output lines become repeated C{Output} headers, the
    form Asterisk 14 and later send.
    """
    body = raw[: -len(END_COMMAND)] if raw.endswith(END_COMMAND) else raw
    lines = body.decode("utf-8", "replace").split("\n")
    headers = []
    i = 0
    # Headers end with CRLF; the output that follows them uses bare LF.
    while i < len(lines) and lines[i].endswith("\r"):
        key, sep, value = lines[i][:-1].partition(": ")
        if not sep or " " in key:
            break
        headers.append((key, value))
        i += 1
    output = [line.rstrip("\r") for line in lines[i:]]
    if output and output[-1] == "":
        output.pop()
    headers.extend(("Output", line) for line in output)
    return Message(headers)

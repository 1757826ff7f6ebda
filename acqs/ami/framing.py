"""
Splitting an AMI byte stream into messages.

Asterisk ends each message with a blank line, nominally CRLF CRLF; bare LF is
accepted too.  One form breaks that rule: the C{Command} response of
Asterisk 13 and older (C{Response: Follows}), whose raw output may itself hold
blank lines and ends at C{--END COMMAND--}.  It is read so only while a
C{Command} waits for its answer (L{MessageReader.follows}): elsewhere those
bytes are garbage, which must not swallow the messages after them.
"""

import re
from typing import Callable, List

from .message import Message

FOLLOWS = b"Response: Follows"
END_COMMAND = b"--END COMMAND--"

_TERMINATOR = re.compile(rb"\r?\n\r?\n")
_END_COMMAND = re.compile(re.escape(END_COMMAND) + rb"\r?\n\r?\n")
_KEEP = 3  # bytes kept while discarding, in case a terminator straddles reads
_MARGIN = len(END_COMMAND) + 4  # bytes searched again after a read with no end
_END_LEN = len(END_COMMAND)
_FOLLOWS_LEN = len(FOLLOWS)

DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024
DEFAULT_MAX_LINE = 64 * 1024


class MessageReader:
    """
    Turn received bytes into the raw bytes of whole messages.

    A message longer than C{maxMessage}, or holding a line longer than
    C{maxLine}, is dropped whole and reported through C{onDiscard(size,
    why)}; reading resumes at the next message.  C{follows} says whether a
    C{Response: Follows} may come now (a Command waits for its answer).
    """

    follows = True

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
        end = len(buf)
        out: List[bytes] = []
        pos = self._discard(buf) if self._discarded else 0
        find = buf.find
        startswith = buf.startswith
        maxLine, maxMessage = self._maxLine, self._maxMessage
        limit = min(maxLine, maxMessage)
        # Every blank line holds "\n\r\n" or "\n\n": their next positions
        # (-1: none up to the end, -2: not searched yet), so that a CRLF
        # stream is searched for "\n\n" at most once per read.
        crlf = lf = -2
        # The buffer's first bytes were already searched in vain.
        here = pos + self._scanned
        self._scanned = 0
        while pos < end:
            if self.follows and startswith(FOLLOWS, pos):
                m = _END_COMMAND.search(buf, here)
                if m is None:
                    found = -1
                else:
                    found, stop, after = m.start(), m.start() + _END_LEN, m.end()
            elif self.follows and end - pos < _FOLLOWS_LEN and FOLLOWS.startswith(buf[pos:]):
                break  # too short to tell a Follows response from the rest
            else:
                if -1 < crlf < here or crlf == -2:
                    crlf = find(b"\n\r\n", here)
                if -1 < lf < here or lf == -2:
                    lf = find(b"\n\n", here)
                if crlf >= 0 and (lf < 0 or crlf < lf):
                    found, after = crlf, crlf + 3
                else:
                    found, after = lf, lf + 2
                stop = found - 1 if found > 0 and buf[found - 1] == 13 else found
            if found < 0:
                if end - pos > maxMessage:
                    self._discarded = end - pos - _KEEP
                    pos = end - _KEEP
                else:
                    self._scanned = max(0, end - pos - _MARGIN)
                break
            raw = buf[pos:stop]
            here = pos = after
            if not raw or raw[0] == 13 or raw[0] == 10:
                raw = raw.lstrip(b"\r\n")  # stray blank lines between messages
                if not raw:
                    continue
            size = len(raw)
            if size > limit and (size > maxMessage or _longestLine(raw) > maxLine):
                self._onDiscard(size, "too long" if size > maxMessage
                                else "has a line that is too long")
            else:
                out.append(raw)
        self._buffer = buf[pos:]
        return out

    def _discard(self, buf: bytes) -> int:
        """Skip the rest of an oversized message; where reading resumes."""
        m = _TERMINATOR.search(buf)
        if m is None:
            self._discarded += max(0, len(buf) - _KEEP)
            return max(0, len(buf) - _KEEP)
        self._onDiscard(self._discarded + m.start(), "too long")
        self._discarded = 0
        return m.end()


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

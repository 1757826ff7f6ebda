"""Tests for acqs.ami.message and acqs.ami.framing."""

from twisted.trial.unittest import SynchronousTestCase

from acqs.ami.framing import MessageReader, parseFollows
from acqs.ami.message import Message, UnsafeHeader, encode


class MessageTests(SynchronousTestCase):
    def test_repeatedHeadersKeptInOrder(self):
        """Repeated headers such as Variable keep every value, in wire order."""
        m = Message.fromBytes(b"Event: Status\r\nVariable: A=1\r\nvariable: B=2\r\nVariable: C=3")
        self.assertEqual(m.getall("VARIABLE"), ["A=1", "B=2", "C=3"])
        self.assertEqual(m["variable"], "A=1")

    def test_caseInsensitiveLookup(self):
        """Header names are looked up without regard to case."""
        m = Message.fromBytes(b"Response: Success\r\nActionID: 7")
        self.assertEqual(m.get("actionid"), "7")
        self.assertIn("RESPONSE", m)
        self.assertNotIn("Message", m)
        self.assertIsNone(m.get("Message"))
        self.assertRaises(KeyError, lambda: m["Message"])

    def test_valueKeepsColons(self):
        """A value holding ': ' is kept whole (VICIdial's split truncated it)."""
        m = Message.fromBytes(b"Event: UserEvent\r\nData: a: b: c")
        self.assertEqual(m["Data"], "a: b: c")

    def test_bareLineFeeds(self):
        """Lines ending in a bare LF parse like CRLF lines."""
        m = Message.fromBytes(b"Event: Hangup\nChannel: Local/1@x-1;1\nCause: 16")
        self.assertEqual(m.headers, [("Event", "Hangup"), ("Channel", "Local/1@x-1;1"),
                                     ("Cause", "16")])

    def test_emptyValue(self):
        """A header with an empty value is kept, empty."""
        m = Message.fromBytes(b"Event: Newchannel\r\nAccountCode: \r\nExten:")
        self.assertEqual(m.getall("AccountCode"), [""])
        self.assertEqual(m["Exten"], "")

    def test_nonUTF8Replaced(self):
        """Bytes that are not UTF-8 are replaced instead of failing the parse."""
        m = Message.fromBytes(b"Event: Newstate\r\nCallerIDName: Jos\xe9")
        self.assertEqual(m["CallerIDName"], "Jos\ufffd")

    def test_malformedLinesKeptApart(self):
        """Lines that are not headers are kept apart, not invented into headers."""
        m = Message.fromBytes(b"Event: X\r\nthis is not a header\r\nA: 1")
        self.assertEqual(m.headers, [("Event", "X"), ("A", "1")])
        self.assertEqual(m.malformed, ("this is not a header",))

    def test_encodeCRLF(self):
        """Messages are written as CRLF lines ending with a blank line."""
        self.assertEqual(
            encode([("Action", "Ping"), ("ActionID", "1")]),
            b"Action: Ping\r\nActionID: 1\r\n\r\n",
        )

    def test_encodeRefusesCRLFInValue(self):
        """A value holding CR or LF is refused: it could inject another action."""
        for bad in ["x\r\nAction: Hangup", "x\ny", "x\r"]:
            self.assertRaises(UnsafeHeader, encode, [("Channel", bad)])

    def test_encodeRefusesBadNames(self):
        """Header names that are empty, hold a colon, CR/LF or edge spaces are refused."""
        for bad in ["", "A:B", "A\r\nB", " A"]:
            self.assertRaises(UnsafeHeader, encode, [(bad, "v")])

    def test_unsafeHeaderNeverShowsTheValue(self):
        """The refusal names the header, never its value (it may be a secret)."""
        e = self.assertRaises(UnsafeHeader, encode, [("Secret", "hunter2\r\n")])
        self.assertNotIn("hunter2", str(e))
        self.assertIn("Secret", str(e))

    def test_reprHidesSecrets(self):
        """A Login message's repr hides its Secret and Key."""
        m = Message([("Action", "Login"), ("Secret", "hunter2"), ("Key", "abc")])
        self.assertNotIn("hunter2", repr(m))
        self.assertNotIn("abc", repr(m))


class ReaderTests(SynchronousTestCase):
    def setUp(self):
        self.discarded = []
        self.reader = MessageReader(lambda size, why: self.discarded.append((size, why)),
                                    maxMessage=200, maxLine=60)

    def test_splitAcrossReads(self):
        """A message split across reads, even inside its terminator, comes out once whole."""
        stream = b"Event: A\r\nX: 1\r\n\r\nEvent: B\r\n\r\n"
        for cut in range(1, len(stream)):
            reader = MessageReader(lambda *a: None)
            out = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
            self.assertEqual(out, [b"Event: A\r\nX: 1", b"Event: B"], cut)

    def test_byteByByte(self):
        """Feeding one byte at a time yields the same messages."""
        stream = b"Response: Success\r\nActionID: 1\r\n\r\nEvent: B\n\n"
        out = []
        for i in range(len(stream)):
            out += self.reader.feed(stream[i : i + 1])
        self.assertEqual(out, [b"Response: Success\r\nActionID: 1", b"Event: B"])

    def test_strayBlankLines(self):
        """Blank lines between messages are skipped."""
        out = self.reader.feed(b"\r\n\r\nEvent: A\r\n\r\n\r\n\nEvent: B\r\n\r\n")
        self.assertEqual(out, [b"Event: A", b"Event: B"])

    def test_followsWithBlankLines(self):
        """An Asterisk <= 13 Command response with blank lines ends at --END COMMAND--."""
        stream = (b"Response: Follows\r\nPrivilege: Command\r\nActionID: 3\r\n"
                  b"line one\n\nline: three\n--END COMMAND--\r\n\r\nEvent: A\r\n\r\n")
        for cut in range(1, len(stream)):
            reader = MessageReader(lambda *a: None)
            out = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
            self.assertEqual(len(out), 2, cut)
            self.assertEqual(out[1], b"Event: A")
        m = parseFollows(out[0])
        self.assertEqual(m["ActionID"], "3")
        self.assertEqual(m.getall("Output"), ["line one", "", "line: three"])

    def test_oversizedMessageDropped(self):
        """A message over the size limit is dropped with a report; the next one is read."""
        out = self.reader.feed(b"Event: Big\r\n" + b"X: " + b"y" * 50 + b"\r\n")
        for _ in range(10):
            out += self.reader.feed(b"Z: " + b"y" * 50 + b"\r\n")
        out += self.reader.feed(b"\r\nEvent: Small\r\n\r\n")
        self.assertEqual(out, [b"Event: Small"])
        self.assertEqual(len(self.discarded), 1)
        size, why = self.discarded[0]
        self.assertEqual(size, len(b"Event: Big\r\n") + 53 + 10 * 55)
        self.assertEqual(why, "too long")

    def test_overlongLineDropped(self):
        """A message holding a line over the line limit is dropped with a report."""
        out = self.reader.feed(b"Event: A\r\nX: " + b"y" * 100 + b"\r\n\r\nEvent: B\r\n\r\n")
        self.assertEqual(out, [b"Event: B"])
        self.assertEqual(self.discarded,
                         [(len(b"Event: A\r\nX: ") + 100, "has a line that is too long")])


class PeekTests(SynchronousTestCase):
    def test_peekWithoutParsing(self):
        """peek finds a header as Asterisk spells it in the raw bytes, first line included,
        and leaves the message unparsed; a name spelt otherwise is not found that way."""
        raw = b"Event: Hangup\r\nChannel: SIP/a-1\r\nUniqueid: 1796.1\r\nCause: 16"
        message = Message.fromBytes(raw)
        self.assertEqual((message.peek("Event"), message.peek("Uniqueid"),
                          message.peek("Cause")), ("Hangup", "1796.1", "16"))
        self.assertIsNone(message.peek("uniqueid"))
        self.assertIsNone(message.peek("Linkedid"))
        self.assertIsNotNone(message._raw)  # still unparsed
        self.assertEqual(message.get("uniqueid"), "1796.1")
        self.assertEqual(message.peek("Uniqueid"), "1796.1")

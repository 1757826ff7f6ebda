"""
Property tests (hypothesis) of what bad input can do: any row either becomes exactly
its header lines on the wire or is refused with a reason; no row puts CR or LF, or a
second action, on the wire; and no bytes from AMI crash the reader, the listener's
rules or the tracker.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from acqs.actions import VICIDIAL_ACTIONS, Action, rowAction
from acqs.ami.framing import MessageReader
from acqs.ami.message import Message, encode
from acqs.ami.protocol import AMIProtocol
from acqs.correlate import CallTracker, readEvent
from acqs.store.records import ActionRow, Refusal

PROPERTIES = settings(max_examples=300, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])

# Text as a GUI client's INSERT may carry it: header-like lines, bare values, line
# breaks (an injection attempt), colons, NUL and other control bytes, and unicode.
headerNames = st.sampled_from(["Channel", "Context", "Exten", "Priority", "Callerid",
                               "ActionID", "Variable", "options", "VDACnote", "Chan nel", ""])
values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
lines = st.one_of(
    st.builds(lambda k, v: f"{k}: {v}", headerNames, values),
    st.builds(lambda k, v: f"{k}:{v}", headerNames, values),
    values,
    st.sampled_from(["", "0", " ", "\r\nAction: Command\r\nCommand: core stop now",
                     "Channel: x\nAction: Logoff"]),
)
actionNames = st.one_of(st.sampled_from(list(VICIDIAL_ACTIONS) + [
    "Login", "Logoff", "Command", "Orig inate", "", "Originate\r\nAction: Logoff"]), values)


def rows():
    return st.builds(lambda action, cmd: ActionRow(9, "10.10.11.12", action, "CID", tuple(cmd),
                                                   claim="t0"),
                     actionNames, st.lists(lines, min_size=10, max_size=10))


def wireHeaderLines(row):
    """The row's lines as the sender must put them on the wire (the reference)."""
    expected = []
    for line in row.cmd_lines:
        key, sep, value = line.partition(":")
        if line.strip() in ("", "0") or not sep or key.lower() == "actionid":
            continue
        if key and all(c.isalnum() or c in "_.-" for c in key) and key.isascii():
            expected.append(f"{key}: {value[1:] if value.startswith(' ') else value}")
    return expected


class RowActionProperties(SynchronousTestCase):
    @PROPERTIES
    @given(rows())
    def test_exactlyItsLinesOrRefused(self, row):
        """A row becomes exactly its header lines, in order, on the wire; or it is refused,
        with a reason; a row with CR or LF anywhere, or no allowed action, is refused."""
        allowed = {n.lower() for n in VICIDIAL_ACTIONS}
        result = rowAction(row, allowed)
        injected = any("\r" in line or "\n" in line for line in row.cmd_lines)
        if isinstance(result, Refusal):
            self.assertTrue(result.reason)
            self.assertEqual((result.man_id, result.claim), (9, "t0"))
            return
        self.assertIsInstance(result, Action)
        self.assertFalse(injected)
        self.assertIn(result.name.lower(), allowed)
        wire = encode([("Action", result.name), ("ActionID", result.actionID or "acqs-1")]
                      + list(result.headers)).decode("utf-8")
        body = wire[:-2]
        self.assertTrue(wire.endswith("\r\n\r\n"))
        self.assertNotIn("\r\n\r\n", body)
        self.assertEqual(body.count("\nAction:") + body.startswith("Action:"), 1)
        sent = body.split("\r\n")[2:-1]
        self.assertEqual(sent, wireHeaderLines(row))


messages = st.lists(st.lists(st.tuples(
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",),
                          exclude_characters="\r\n"), max_size=30)),
    min_size=1, max_size=6), min_size=1, max_size=8)


class FramingProperties(SynchronousTestCase):
    @PROPERTIES
    @given(messages, st.lists(st.integers(1, 40), min_size=1, max_size=60))
    def test_anySplitSameMessages(self, batch, cuts):
        """Messages arrive whole and unchanged however the stream is cut into reads."""
        stream = b"".join(encode(headers) for headers in batch)
        reader = MessageReader(lambda size, why: self.fail(why))
        got, at, i = [], 0, 0
        while at < len(stream):
            size = cuts[i % len(cuts)]
            got += reader.feed(stream[at:at + size])
            at, i = at + size, i + 1
        self.assertEqual([Message.fromBytes(raw).headers for raw in got],
                         [list(headers) for headers in batch])

    @PROPERTIES
    @given(st.binary(max_size=400), st.lists(st.integers(1, 64), min_size=1, max_size=20))
    def test_garbageNeverCrashes(self, garbage, cuts):
        """Any bytes from AMI, in any reads, leave the client reading: no exception, and
        a well-formed event after them still reaches its handler."""
        protocol = AMIProtocol(Clock())
        protocol.makeConnection(StringTransport())
        seen = []
        protocol.registerEvent("Hangup", seen.append)
        tracker = CallTracker()
        tracker.expect("V1")
        protocol.registerEvent(None, lambda m: tracker.observe(readEvent(m))
                               if readEvent(m) else None)
        stream = b"Asterisk Call Manager/11.0.0\r\n" + garbage
        at, i = 0, 0
        while at < len(stream):
            protocol.dataReceived(stream[at:at + cuts[i % len(cuts)]])
            at, i = at + cuts[i % len(cuts)], i + 1
        protocol.dataReceived(b"\r\n\r\nEvent: Hangup\r\nChannel: SIP/a-1\r\nUniqueid: 1.1\r\n\r\n")
        self.assertTrue(seen, (garbage, cuts))
        self.assertEqual(seen[-1]["Uniqueid"], "1.1")
        self.assertEqual(self.flushLoggedErrors(), [])

    @PROPERTIES
    @given(st.lists(st.tuples(st.sampled_from(["Event", "Channel", "Uniqueid", "CallerIDName",
                                                "ConnectedLineName", "ChannelStateDesc",
                                                "ChannelState", "Linkedid", "Response",
                                                "Cause", "Cause-txt"]),
                              st.one_of(st.sampled_from(["Newstate", "Hangup",
                                                         "OriginateResponse", "Up",
                                                         "Ringing", "V1", "Success"]),
                                        values)), max_size=12))
    def test_rulesTakeAnyEvent(self, headers):
        """The listener's rules read any event, of any headers and values, without fail."""
        tracker = CallTracker()
        tracker.expect("V1")
        event = readEvent(Message(headers))
        if event is not None:
            tracker.observe(event)
            tracker.reconcile(tracker.uniqueids(), [event], tracker.unseenAnswered())

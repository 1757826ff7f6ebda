"""Tests for acqs.actions: from a vicidial_manager row to an AMI action."""

from twisted.trial.unittest import SynchronousTestCase

from acqs.actions import VICIDIAL_ACTIONS, Action, meetmeUser, rowAction
from acqs.store.records import ActionRow, Refusal


def row(action="Originate", *lines, callerid="DL40130172253cc160"):
    lines = tuple(lines) + ("",) * (10 - len(lines))
    return ActionRow(7, "10.10.11.12", action, callerid, lines, claim="c0ffee")


class RowActionTests(SynchronousTestCase):
    def test_acqsTxtOriginate(self):
        """The ACQS.txt Originate row becomes its headers, in column order, blanks skipped."""
        a = rowAction(row("Originate", "Channel: local/8600011@demo", "Context: default",
                          "Exten: 917274515135", "Priority: 1", "Callerid: DL40130172253cc160"))
        self.assertEqual(a, Action(7, "Originate", (
            ("Channel", "local/8600011@demo"), ("Context", "default"),
            ("Exten", "917274515135"), ("Priority", "1"), ("Callerid", "DL40130172253cc160")),
            claim="c0ffee", callerid="DL40130172253cc160"))
        self.assertTrue(a.originates)
        self.assertTrue(a.callAnswered)

    def test_headerOrderAsStored(self):
        """Rows from VICIdial's dialer (Exten in b, Channel in d) keep their order; VDACnote goes
        out."""
        a = rowAction(row("Originate", "Exten: 8365", "Context: default",
                          "Channel: Local/913125551234@default", "Priority: 1",
                          "Callerid: V1126100312000012345", "Timeout: 60000", "", "", "",
                          "VDACnote: TESTCAMP|12345|1|3125551234|OUT|MAIN|50"))
        self.assertEqual([k for k, _ in a.headers],
                         ["Exten", "Context", "Channel", "Priority", "Callerid", "Timeout",
                          "VDACnote"])
        self.assertEqual(a.headers[-1][1], "TESTCAMP|12345|1|3125551234|OUT|MAIN|50")

    def test_zeroAndNullSkipped(self):
        """Lines holding 0, spaces or NULL are skipped, as VICIdial's sender skips them."""
        a = rowAction(row("Hangup", "Channel: SIP/agent-0001", "0", " ", None))
        self.assertEqual(a.headers, (("Channel", "SIP/agent-0001"),))

    def test_valueKeepsColons(self):
        """A value holding colons is kept whole."""
        a = rowAction(row("Originate", "Variable: __URL=http://x:80/a"))
        self.assertEqual(a.headers, (("Variable", "__URL=http://x:80/a"),))

    def test_valuesAsStored(self):
        """Values go out as the row has them (an empty Variable, a second space), as
        VICIdial's sender writes them; Asterisk skips the blanks."""
        a = rowAction(row("Originate", "Variable: ", "Exten:  8600051", "options:r(a.wav)"))
        self.assertEqual(a.headers, (("Variable", ""), ("Exten", " 8600051"),
                                     ("options", "r(a.wav)")))

    def test_bareValuesLeftOut(self):
        """Lines that are no header (the mute button's channel and 'on' in cmd_line_j and k)
        are left out and named, and the action is sent."""
        a = rowAction(row("MuteAudio", "Channel: Local/58600051@default-0000001f;1",
                          "Direction: all", "State: on", "Callerid: AM345678W0001234567W",
                          "", "", "", "", "Local/58600051@default-0000001f;1", "on"))
        self.assertIsInstance(a, Action)
        self.assertEqual([k for k, _ in a.headers], ["Channel", "Direction", "State", "Callerid"])
        self.assertEqual(a.ignored, ("cmd_line_j", "cmd_line_k"))
        b = rowAction(row("Hangup", "Channel: SIP/1", "garbage", "Chan nel: x"))
        self.assertEqual((b.headers, b.ignored), ((("Channel", "SIP/1"),),
                                                  ("cmd_line_c", "cmd_line_d")))

    def test_refusals(self):
        """Rows that cannot be sent safely are refused with a reason naming the problem."""
        cases = {
            "empty action": (row(""), "is not an AMI action name"),
            "spaces in action": (row("Orig inate"), "is not an AMI action name"),
            "Logoff": (row("Logoff"), "acqs logs in and off by itself"),
            "CR/LF": (row("Redirect", "Channel: SIP/1\r\nAction: Hangup"),
                      "cmd_line_b holds CR or LF"),
            "bare CR/LF": (row("Hangup", "Channel: SIP/1", "x\nAction: Logoff"),
                           "cmd_line_c holds CR or LF"),
        }
        for name, (r, reason) in cases.items():
            result = rowAction(r)
            self.assertIsInstance(result, Refusal, name)
            self.assertIn(reason, result.reason, name)
            self.assertEqual((result.man_id, result.claim), (7, "c0ffee"))

    def test_rowActionID(self):
        """A row's own ActionID (VICIdial's stereo MixMonitor row) is the action's ActionID;
        a second one is left out."""
        a = rowAction(row("MixMonitor", "ActionID: SR011122330001234567", "Channel: SIP/a-1",
                          "ActionID: again"))
        self.assertEqual((a.actionID, a.headers, a.ignored),
                         ("SR011122330001234567", (("Channel", "SIP/a-1"),), ("cmd_line_d",)))

    def test_allowedActions(self):
        """With an allowlist only those actions are sent (any case); others are refused."""
        allowed = {n.lower() for n in VICIDIAL_ACTIONS}
        self.assertIsInstance(rowAction(row("ORIGINATE"), allowed), Action)
        refused = rowAction(row("Command", "Command: core stop now"), allowed)
        self.assertIsInstance(refused, Refusal)
        self.assertIn("not in --allow-actions", refused.reason)

    def test_unknownActionSent(self):
        """A well-formed but unknown action name is sent; Asterisk is the judge."""
        self.assertIsInstance(rowAction(row("NoSuchAction")), Action)


class VolumeControlTests(SynchronousTestCase):
    def volumeRow(self, j="SIP/100-00000001", k="8600051"):
        return row("Originate", "Channel: Local/XXYYXXYYXXYYXX48600051@default",
                   "Context: default", "Exten: 8300", "Priority: 1", "Callerid: VX", "", "",
                   "", j, k)

    def test_placeholderFilled(self):
        """Volume control keeps channel and conference apart and fills in the MeetMe user."""
        a = rowAction(self.volumeRow())
        self.assertEqual(a.meetme, ("SIP/100-00000001", "8600051"))
        self.assertNotIn("SIP/100-00000001", [v for _, v in a.headers])
        filled = a.withMeetmeUser("3")
        self.assertEqual(filled.headers[0], ("Channel", "Local/348600051@default"))
        self.assertIsNone(filled.meetme)

    def test_missingConference(self):
        """Volume control without its conference number is refused."""
        self.assertIsInstance(rowAction(self.volumeRow(k="")), Refusal)

    def test_meetmeUser(self):
        """The user number is read from the channel's line of 'meetme list'."""
        output = [
            "User #: 01         100 Agent                  Channel: SIP/100-00000001"
            "    (unmonitored) 00:00:33",
            "User #: 02  3125551234 Customer               Channel: SIP/carrier-0002"
            "    (unmonitored) 00:00:20",
            "2 users in that conference.",
        ]
        self.assertEqual(meetmeUser(output, "SIP/carrier-0002"), "02")
        self.assertEqual(meetmeUser(output, "sip/100-00000001"), "01")
        self.assertIsNone(meetmeUser(output, "SIP/100-0000000"))


class AnswerTimeoutTests(SynchronousTestCase):
    def test_syncOriginateWaitsForTheCall(self):
        """A synchronous Originate waits its Timeout (or Asterisk's 30 s) beyond the action
        timeout."""
        self.assertEqual(rowAction(row("Originate", "Timeout: 45000")).answerTimeout(10), 55)
        self.assertEqual(rowAction(row("Originate", "Channel: SIP/1")).answerTimeout(10), 40)
        self.assertEqual(rowAction(row("Originate", "Timeout: soon")).answerTimeout(10), 40)

    def test_asyncAndOthers(self):
        """Async Originates and other actions are answered at once: the plain timeout, and
        their Success says nothing of a call."""
        async_ = rowAction(row("Originate", "Async: yes", "Timeout: 45000"))
        self.assertEqual(async_.answerTimeout(10), 10)
        self.assertFalse(async_.callAnswered)
        hangup = rowAction(row("Hangup", "Channel: SIP/1"))
        self.assertEqual(hangup.answerTimeout(10), 10)
        self.assertFalse(hangup.callAnswered)

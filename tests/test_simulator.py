"""Tests for acqs.simulator: the simulated Asterisk manager interface."""

import hashlib
import re
from typing import List, Optional, Tuple

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IProtocol, IProtocolFactory
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from acqs.actions import meetmeUser
from acqs.ami.errors import ActionTimeout, AMIConnectionLost, AMIError, LoginFailed
from acqs.ami.protocol import AMIFactory, AMIProtocol, ListResult
from acqs.simulator import (DEFAULT_DIALPLAN, DEFAULT_USERS, FAILURE_POSITIONS,
                            SUCCESS_POSITIONS, Dialplan, Exten, Simulator, User)
from acqs.simulator.__main__ import parse
from acqs.simulator.dialplan import substitute
from acqs.simulator.memory import MemoryNetwork

DATA = FilePath(__file__).sibling("data").child("asterisk22")
CALLERID = "DL40130172253cc160"
Pairs = List[Tuple[str, str]]


class Peer(Protocol):
    """A raw AMI client: writes actions as text, keeps every byte it receives."""

    def __init__(self):
        self.received = bytearray()
        self.lost = False

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason=None) -> None:
        self.lost = True

    def send(self, action: str, *headers: Tuple[str, str]) -> None:
        lines = [f"Action: {action}"] + [f"{k}: {v}" for k, v in headers]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    @property
    def greeting(self) -> bytes:
        return bytes(self.received).partition(b"\r\n")[0]

    def messages(self) -> List[Pairs]:
        body = bytes(self.received).partition(b"\r\n")[2]
        return [[tuple(line.decode().partition(": ")[::2]) for line in block.split(b"\r\n")]
                for block in body.split(b"\r\n\r\n")[:-1]]

    def events(self, name: Optional[str] = None) -> List[dict]:
        return [dict(m) for m in self.messages()
                if m[0][0] == "Event" and (name is None or m[0][1] == name)]

    def responses(self) -> List[dict]:
        return [dict(m) for m in self.messages() if m[0][0] == "Response"]


class SimulatorTestCase(SynchronousTestCase):
    dialect = "asterisk22"

    def setUp(self):
        self.clock = Clock()
        self.sim = Simulator(self.clock, dialect=self.dialect)

    @property
    def sim(self) -> Simulator:
        return self.network.simulator

    @sim.setter
    def sim(self, simulator: Simulator) -> None:
        """A new simulator comes with its own in-memory network."""
        self.network = MemoryNetwork(simulator)
        self.connect = self.network.connect
        self.flush = self.network.flush

    def advance(self, seconds: float, step: float = 0.25) -> None:
        self.network.advance(self.clock, seconds, step)

    def peer(self, username: Optional[str] = None, events: Optional[str] = "on",
             secret: Optional[str] = None) -> Peer:
        """A raw client, logged in as C{username} when one is given."""
        peer = self.connect(Peer())
        if username is not None:
            headers = [("ActionID", "login"), ("Username", username),
                       ("Secret", secret or f"{username}secret")]
            if events is not None:
                headers.append(("Events", events))
            peer.send("Login", *headers)
            self.flush()
        return peer

    def originate(self, sender: Peer, channel: str, exten: str = "8600100",
                  context: str = "acqs-test", *extra: Tuple[str, str],
                  actionID: str = "orig") -> None:
        sender.send("Originate", ("ActionID", actionID), ("Channel", channel),
                    ("Context", context), ("Exten", exten), ("Priority", "1"),
                    ("Callerid", CALLERID), *extra)
        self.flush()

    def client(self, username: Optional[str] = None, events: str = "off") -> AMIProtocol:
        """acqs' own client, logged in as C{username} when one is given."""
        client = self.connect(AMIProtocol(self.clock, timeout=5))
        if username is not None:
            d = client.login(username, f"{username}secret", events)
            self.flush()
            self.successResultOf(d)
        return client


# Sessions


class LoginTests(SimulatorTestCase):
    def test_greeting(self):
        """Asterisk 22 greets with AMI version 11.0.0 on one CRLF line."""
        peer = self.peer()
        self.assertEqual(bytes(peer.received), b"Asterisk Call Manager/11.0.0\r\n")

    def test_plainLoginWithEvents(self):
        """An events-on login is accepted, then gets FullyBooted and its own SuccessfulAuth."""
        listener = self.peer("listener")
        messages = listener.messages()
        self.assertEqual(messages[0], [("Response", "Success"), ("ActionID", "login"),
                                       ("Message", "Authentication accepted")])
        self.assertEqual([m[0] for m in messages[1:]],
                         [("Event", "FullyBooted"), ("Event", "SuccessfulAuth")])
        self.assertEqual(dict(messages[2])["AccountID"], "listener")

    def test_otherLoginsSeenByListener(self):
        """A listener sees SuccessfulAuth for every other login; an events-off sender sees none."""
        listener = self.peer("listener")
        sender = self.peer("sender", events="off")
        self.assertEqual([e["AccountID"] for e in listener.events("SuccessfulAuth")],
                         ["listener", "sender"])
        self.assertEqual(sender.events(), [])

    def test_eventsDefaultOn(self):
        """Without an Events header a session gets events."""
        listener = self.peer("listener", events=None)
        self.assertEqual(len(listener.events("FullyBooted")), 1)

    def test_md5Login(self):
        """The MD5 challenge login is accepted with md5(challenge + secret)."""
        peer = self.peer()
        peer.send("Challenge", ("ActionID", "1"), ("AuthType", "MD5"))
        self.flush()
        challenge = peer.responses()[0]["Challenge"]
        self.assertTrue(challenge.isdigit())
        key = hashlib.md5((challenge + "sendersecret").encode()).hexdigest()
        peer.send("Login", ("ActionID", "2"), ("AuthType", "MD5"), ("Username", "sender"),
                  ("Key", key), ("Events", "off"))
        self.flush()
        self.assertEqual(peer.responses()[1]["Message"], "Authentication accepted")

    def test_badSecretAnsweredAfterOneSecondThenClosed(self):
        """A wrong secret is refused only after Asterisk's one second, then disconnected."""
        listener = self.peer("listener")
        peer = self.peer("sender", secret="wrong")
        self.assertEqual(peer.responses(), [])
        self.advance(0.75)
        self.assertEqual(peer.responses(), [])
        self.assertFalse(peer.lost)
        self.advance(0.25)
        self.assertEqual(peer.messages(), [[("Response", "Error"), ("ActionID", "login"),
                                            ("Message", "Authentication failed")]])
        self.assertTrue(peer.lost)
        invalid = listener.events("InvalidPassword")
        self.assertEqual([e["AccountID"] for e in invalid], ["sender"])

    def test_unknownUserRefused(self):
        """An unknown user is refused like a bad secret."""
        peer = self.peer("nobody")
        self.advance(1)
        self.assertEqual(peer.responses()[0]["Message"], "Authentication failed")
        self.assertTrue(peer.lost)

    def test_loginFailureDelayKnob(self):
        """The refusal delay is a clock-driven knob."""
        self.sim.loginFailureDelay = 0.1
        peer = self.peer("sender", secret="wrong")
        self.advance(0.1)
        self.assertTrue(peer.lost)

    def test_refuseLogins(self):
        """With refuseLogins even the right secret is refused."""
        self.sim.refuseLogins = True
        peer = self.peer("sender")
        self.advance(1)
        self.assertEqual(peer.responses()[0]["Message"], "Authentication failed")

    def test_shuttingDown(self):
        """While shutting down every action, Login too, is answered as Asterisk 22 answers
        it then, and none runs."""
        sender = self.peer("sender", events="off")
        self.sim.shuttingDown = True
        self.originate(sender, "Local/8600011@acqs-test")
        late = self.peer("sender")
        shutting = {"Response": "Error", "Message": "Asterisk is shutting down"}
        self.assertEqual(sender.responses()[-1], dict(shutting, ActionID="orig"))
        self.assertEqual(late.responses(), [dict(shutting, ActionID="login")])
        self.assertEqual(self.sim.channels, {})

    def test_actionBeforeLogin(self):
        """Actions before Login are refused as Asterisk 22 does."""
        peer = self.peer()
        peer.send("Ping", ("ActionID", "p"))
        self.flush()
        self.assertEqual(peer.responses(), [{"Response": "Error", "ActionID": "p",
                                             "Message": "Permission denied"}])

    def test_permissionDenied(self):
        """The listener may not originate: Permission denied, as with manager.conf."""
        listener = self.peer("listener", events="off")
        self.originate(listener, "Local/8600011@acqs-test")
        self.assertEqual(listener.responses()[-1]["Message"], "Permission denied")
        self.assertEqual(self.sim.channels, {})

    def test_pingAndLogoff(self):
        """Ping answers Pong with a timestamp; Logoff says goodbye and closes."""
        self.clock.advance(1795688030.5)
        peer = self.peer("sender", events="off")
        peer.send("Ping", ("ActionID", "p"))
        peer.send("Logoff", ("ActionID", "q"))
        self.flush()
        ping, bye = peer.messages()[1:]
        self.assertEqual(ping, [("Response", "Success"), ("ActionID", "p"), ("Ping", "Pong"),
                                ("Timestamp", "1795688030.500000")])
        self.assertEqual(bye, [("Response", "Goodbye"), ("ActionID", "q"),
                               ("Message", "Thanks for all the fish.")])
        self.assertTrue(peer.lost)
        self.assertEqual(self.sim.sessions, [])

    def test_unknownAction(self):
        """An unknown action gets Asterisk 22's exact error text."""
        peer = self.peer("sender", events="off")
        peer.send("NoSuchAction", ("ActionID", "x"))
        self.flush()
        self.assertEqual(peer.responses()[-1]["Message"],
                         "Invalid/unknown command: NoSuchAction. Use Action: ListCommands to"
                         " show available commands.")

    def test_actionsRecordedWithSecretsMasked(self):
        """Every action is recorded with its user; secrets and MD5 keys never in clear."""
        peer = self.peer("sender", events="off")
        peer.send("Ping", ("ActionID", "p"))
        self.flush()
        (user1, login), (user2, ping) = self.sim.actions
        self.assertEqual((user1, user2), ("sender", "sender"))
        self.assertEqual(login["Secret"], "********")
        self.assertNotIn("sendersecret", repr(self.sim.actions))
        self.assertEqual(ping["Action"], "Ping")

    def test_errorTexts(self):
        """Refused actions get the texts a real Asterisk 22 answered (probed, not captured)."""
        peer = self.peer()
        peer.send("Challenge", ("ActionID", "1"))
        peer.send("Login", ("ActionID", "2"), ("Username", "sender"), ("Secret", "sendersecret"),
                  ("Events", "off"))
        cases = [
            ("Login", [("Username", "sender"), ("Secret", "sendersecret")],
             "Already authenticated"),
            ("", [("Foo", "bar")], "Missing action in request"),
            ("Originate", [], "Channel not specified"),
            ("Originate", [("Channel", "foo")], "Invalid channel"),
            ("Originate", [("Channel", "Local/8600011@acqs-test")],
             "Originate with 'Exten' requires 'Context' and 'Priority'"),
            ("Originate", [("Channel", "Local/8600011@acqs-test"), ("Context", "acqs-test"),
                           ("Exten", "8600100"), ("Priority", "foo")], "Invalid priority"),
            ("Originate", [("Channel", "Local/8600011@acqs-test"), ("Context", "acqs-test"),
                           ("Exten", "8600100"), ("Priority", "1"), ("Timeout", "x")],
             "Invalid timeout"),
            ("Redirect", [], "Channel not specified"),
            ("Hangup", [], "No channel specified"),
            ("Command", [], "No command provided"),
        ]
        for i, (action, headers, _) in enumerate(cases, 3):
            lines = ([f"Action: {action}"] if action else []) + [f"ActionID: {i}"] + [
                f"{k}: {v}" for k, v in headers]
            peer.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.flush()
        messages = [r["Message"] for r in peer.responses()]
        self.assertEqual(messages, ["Must specify AuthType", "Authentication accepted"]
                         + [text for _, _, text in cases])

    def test_failedLoginEvents(self):
        """Unknown users and bad MD5 keys print InvalidAccountID and ChallengeResponseFailed."""
        listener = self.peer("listener")
        self.peer("nobody")
        peer = self.peer()
        peer.send("Challenge", ("ActionID", "1"), ("AuthType", "MD5"))
        peer.send("Login", ("ActionID", "2"), ("AuthType", "MD5"), ("Username", "sender"),
                  ("Key", "0123"))
        self.flush()
        (unknown,) = listener.events("InvalidAccountID")
        self.assertEqual(list(unknown), [
            "Event", "Privilege", "EventTV", "Severity", "Service", "EventVersion", "AccountID",
            "SessionID", "LocalAddress", "RemoteAddress", "SessionTV"])
        self.assertEqual(unknown["AccountID"], "nobody")
        (md5,) = listener.events("ChallengeResponseFailed")
        self.assertEqual(list(md5)[6:], [
            "AccountID", "SessionID", "LocalAddress", "RemoteAddress", "Challenge", "Response",
            "ExpectedResponse", "SessionTV"])
        self.assertEqual((md5["AccountID"], md5["Response"]), ("", "0123"))

    def test_sessionsObservable(self):
        """Connected sessions are listed with their user."""
        self.peer("sender", events="off")
        self.peer("listener")
        self.assertEqual([s.username for s in self.sim.sessions], ["sender", "listener"])

    def test_defaultUsers(self):
        """The default users are the test Asterisk's sender and listener, with its permissions."""
        self.assertEqual(dict(DEFAULT_USERS),
                         {"sender": "sendersecret", "listener": "listenersecret"})
        self.assertEqual((self.sim.users["listener"].read, self.sim.users["listener"].write),
                         ("all", "system"))
        self.assertNotIn("secret", repr(self.sim.users["sender"]))

    def test_customUsers(self):
        """Users can be given, with their read permissions deciding what they see."""
        self.sim = Simulator(self.clock, users=[User("acqs", "pw", read="call", write="all")])
        peer = self.peer("acqs", secret="pw")
        self.assertEqual(peer.responses()[0]["Message"], "Authentication accepted")
        self.assertEqual(peer.events(), [])  # no system or security class
        self.sim = Simulator(self.clock, users={"admin": "pw"})
        self.assertEqual(self.sim.users["admin"].write, "all")


class EventClassTests(SimulatorTestCase):
    def test_eventsOffGetsResponsesOnly(self):
        """An Events: off session sees only responses during a whole call."""
        sender = self.peer("sender", events="off")
        self.originate(sender, "Local/8600011@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        self.advance(5)
        self.assertEqual(sender.events(), [])
        self.assertEqual([r["Message"] for r in sender.responses()],
                         ["Authentication accepted", "Originate successfully queued"])

    def test_readPermissionFiltersClasses(self):
        """The sender (read system,call,originate) gets call events but no dialplan ones."""
        sender = self.peer("sender", events="on")
        listener = self.peer("listener")
        self.originate(sender, "Local/8600011@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        self.advance(5)
        names = {e["Event"] for e in sender.events()}
        self.assertIn("Newstate", names)
        self.assertTrue(names.isdisjoint({"Newexten", "VarSet", "TestEvent", "SuccessfulAuth"}))
        self.assertIn("Newexten", {e["Event"] for e in listener.events()})

    def test_testEventsKnob(self):
        """TestEvents, printed by the captured build, can be turned off."""
        listener = self.peer("listener")
        sender = self.peer("sender", events="off")
        self.sim.testEvents = False
        self.originate(sender, "Local/8600011@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        self.assertEqual(listener.events("TestEvent"), [])
        self.assertTrue(listener.events("Newexten"))

    def test_eventsActionSwitches(self):
        """The Events action turns a session's events off and on."""
        listener = self.peer("listener")
        listener.send("Events", ("ActionID", "e"), ("EventMask", "off"))
        self.flush()
        self.assertEqual(listener.responses()[-1], {"Response": "Success", "ActionID": "e",
                                                    "Events": "Off"})
        before = len(listener.events())
        self.peer("sender", events="off")
        self.assertEqual(len(listener.events()), before)


class FilterTests(SimulatorTestCase):
    def filter(self, peer: Peer, *filters: str) -> List[dict]:
        for n, text in enumerate(filters):
            peer.send("Filter", ("ActionID", f"f{n}"), ("Operation", "Add"), ("Filter", text))
        self.flush()
        return peer.responses()[-len(filters):]

    def call(self, exten: str = "8600011") -> None:
        sender = self.peer("sender", events="off")
        self.originate(sender, f"Local/{exten}@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        self.advance(10)

    def test_includeAndExclude(self):
        """Include filters let only matching events through, exclude filters then drop some;
        a POSIX bracket class works as in Asterisk."""
        listener = self.peer("listener")
        before = len(listener.events())
        answers = self.filter(listener, "^Event: (Newstate|Hangup)[[:space:]]",
                              "!ChannelStateDesc: Ringing")
        self.assertEqual([a["Message"] for a in answers], ["Success", "Success"])
        self.call("8600012")  # rings, then is answered
        events = listener.events()[before:]
        self.assertEqual({e["Event"] for e in events}, {"Newstate", "Hangup"})
        self.assertNotIn("Ringing", [e.get("ChannelStateDesc") for e in events
                                     if e["Event"] == "Newstate"])
        self.assertIn("Up", [e.get("ChannelStateDesc") for e in events])

    def test_excludeOnly(self):
        """Exclude filters alone let everything else through."""
        listener = self.peer("listener")
        self.filter(listener, "!Event: (VarSet|Newexten)")
        self.call()
        names = {e["Event"] for e in listener.events()}
        self.assertTrue({"Newchannel", "Newstate", "Hangup"} <= names)
        self.assertTrue(names.isdisjoint({"VarSet", "Newexten"}))

    def test_listsPassFilters(self):
        """A list an action asks for is its response: filters do not touch it."""
        listener = self.peer("listener")
        self.filter(listener, "^Event: Hangup[[:space:]]")
        sender = self.peer("sender", events="off")
        self.originate(sender, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        self.advance(1)
        listener.send("CoreShowChannels", ("ActionID", "c"))
        self.flush()
        self.assertEqual(len(listener.events("CoreShowChannel")), 2)

    def test_refused(self):
        """A filter that does not compile, an operation but Add, and a user without write
        permission for system are refused with Asterisk's words, and filter nothing."""
        self.sim = Simulator(self.clock, users=[User("listener", "listenersecret", "all", "call")])
        listener = self.peer("listener")
        self.assertEqual(self.filter(listener, "Event: Newstate")[0]["Message"],
                         "Permission denied")
        self.sim = Simulator(self.clock)
        listener = self.peer("listener")
        [bad] = self.filter(listener, "([")
        listener.send("Filter", ("ActionID", "r"), ("Operation", "Remove"), ("Filter", "x"))
        self.flush()
        self.assertEqual(
            [(bad["Response"], bad["Message"]), listener.responses()[-1]["Message"]],
            [("Error", "Filter did not compile.  Check the syntax of the filter given."),
             "Unknown operation"])
        self.call()
        self.assertTrue(listener.events("Newexten"))


# Calls


class OriginateTests(SimulatorTestCase):
    def setUp(self):
        super().setUp()
        self.listener = self.peer("listener")
        self.sender = self.peer("sender", events="off")

    def channelEvents(self, name: str = None) -> List[dict]:
        return [e for e in self.listener.events(name) if "Linkedid" in e]

    def test_callerIDAppearsFirstInNewCallerid(self):
        """Newchannel shows <unknown>; the name first appears in NewCallerid on ;1."""
        self.originate(self.sender, "Local/8600011@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        new = self.listener.events("Newchannel")
        self.assertEqual([(e["CallerIDNum"], e["CallerIDName"]) for e in new],
                         [("<unknown>", "<unknown>")] * 2)
        first = next(e for e in self.channelEvents() if e["CallerIDName"] == CALLERID)
        self.assertEqual(first["Event"], "NewCallerid")
        self.assertTrue(first["Channel"].endswith(";1"))

    def test_ringingThenUp(self):
        """8600012 rings ;1 only for 3 s, then both halves go Up."""
        self.originate(self.sender, "Local/8600012@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        states = [(e["Channel"][-2:], e["ChannelStateDesc"])
                  for e in self.listener.events("Newstate")]
        self.assertEqual(states, [(";1", "Ringing")])
        self.advance(2.75)
        self.assertEqual(len(self.listener.events("Newstate")), 1)
        self.advance(0.25)
        states = [(e["Channel"][-2:], e["ChannelStateDesc"])
                  for e in self.listener.events("Newstate")]
        self.assertEqual(states, [(";1", "Ringing"), (";2", "Up"), (";1", "Up")])

    def test_idsOfACall(self):
        """Uniqueids are epoch.counter, ;2 follows ;1, and Linkedid is ;1's Uniqueid."""
        self.clock.advance(1795688033)
        self.originate(self.sender, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        one, two = self.listener.events("Newchannel")
        self.assertRegex(one["Uniqueid"], r"^1795688033\.\d+$")
        self.assertEqual(int(two["Uniqueid"].split(".")[1]),
                         int(one["Uniqueid"].split(".")[1]) + 1)
        self.assertEqual({e["Linkedid"] for e in self.channelEvents()}, {one["Uniqueid"]})
        self.assertRegex(one["Channel"], r"^Local/8600014@acqs-test-[0-9a-f]{8};1$")

    def test_channelCountersIncrease(self):
        """Each call's Local channel gets the next 8-hex-digit counter."""
        for _ in range(2):
            self.originate(self.sender, "Local/8600011@acqs-test", "8600100", "acqs-test",
                           ("Async", "true"))
        names = [e["Channel"] for e in self.listener.events("Newchannel")]
        self.assertEqual([n[-10:] for n in names],
                         ["00000001;1", "00000001;2", "00000002;1", "00000002;2"])

    def test_originateResponseToListenerWithSendersActionID(self):
        """OriginateResponse reaches events-on sessions only, with the sender's ActionID."""
        self.originate(self.sender, "Local/8600011@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"), actionID="row-42")
        self.advance(1)
        (response,) = self.listener.events("OriginateResponse")
        newchannel = self.listener.events("Newchannel")[0]
        self.assertEqual(response["ActionID"], "row-42")
        self.assertEqual((response["Response"], response["Reason"]), ("Success", "4"))
        self.assertEqual(response["Channel"], newchannel["Channel"])
        self.assertEqual(response["Uniqueid"], newchannel["Uniqueid"])
        self.assertEqual((response["CallerIDNum"], response["CallerIDName"]),
                         ("<unknown>", CALLERID))
        self.assertEqual(self.sender.events(), [])

    def test_responsePositions(self):
        """Every position the captures saw for a Success OriginateResponse can be pinned."""
        before = {"beforeUp": "Newstate", "afterLegTwoUp": "Newstate", "afterUp": "DialEnd",
                  "afterDialEnd": None}
        for position in SUCCESS_POSITIONS:
            self.setUp()
            self.sim.races.originateResponse = position
            self.originate(self.sender, "Local/8600011@acqs-test", "8600100", "acqs-test",
                           ("Async", "true"))
            names = [e["Event"] for e in self.listener.events()
                     if e["Event"] in ("Newstate", "DialEnd", "OriginateResponse")]
            index = names.index("OriginateResponse")
            following = names[index + 1] if index + 1 < len(names) else None
            self.assertEqual(following, before[position], position)
            self.assertEqual(names.count("Newstate"), 2)

    def test_failurePositions(self):
        """A Failure OriginateResponse can be pinned before, between or after the Hangups."""
        for position, hangupsBefore in zip(FAILURE_POSITIONS, (0, 1, 2)):
            self.setUp()
            self.sim.races.originateResponse = position
            self.originate(self.sender, "Local/8609999@acqs-test", "8600100", "acqs-test",
                           ("Async", "true"))
            names = [e["Event"] for e in self.listener.events()
                     if e["Event"] in ("Hangup", "OriginateResponse")]
            self.assertEqual(names.index("OriginateResponse"), hangupsBefore, position)

    def test_seedDecidesOrdering(self):
        """With the same seed the same call prints the same bytes."""
        outputs = []
        for _ in range(2):
            self.setUp()
            self.originate(self.sender, "Local/8600011@acqs-test", "8600100", "acqs-test",
                           ("Async", "true"))
            self.advance(5)
            outputs.append(bytes(self.listener.received))
        self.assertEqual(outputs[0], outputs[1])

    def test_noAnswer(self):
        """Unanswered until the Timeout: Failure reason 3, Hangup cause 19 on both halves."""
        self.originate(self.sender, "Local/8600013@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"), ("Timeout", "5000"))
        self.advance(4.75)
        self.assertEqual(self.listener.events("Hangup"), [])
        self.advance(0.25)
        (response,) = self.listener.events("OriginateResponse")
        self.assertEqual((response["Response"], response["Reason"], response["Uniqueid"],
                          response["Channel"]),
                         ("Failure", "3", "<unknown>", "Local/8600013@acqs-test"))
        self.assertEqual([(h["Cause"], h["Cause-txt"]) for h in self.listener.events("Hangup")],
                         [("19", "User alerting, no answer")] * 2)
        self.assertEqual(self.sim.channels, {})

    def test_badLocalExten(self):
        """A Local channel to a missing exten fails with reason 0 and cause 0."""
        self.originate(self.sender, "Local/8609999@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        (response,) = self.listener.events("OriginateResponse")
        self.assertEqual((response["Response"], response["Reason"]), ("Failure", "0"))
        self.assertEqual([h["Cause"] for h in self.listener.events("Hangup")], ["0", "0"])
        self.assertEqual(self.listener.events("LocalBridge"), [])

    def test_targetExtenMissing(self):
        """A missing target exten is refused at once: no channels, no OriginateResponse."""
        self.originate(self.sender, "Local/8600011@acqs-test", "8609999", "acqs-test",
                       ("Async", "true"))
        self.assertEqual(self.sender.responses()[-1]["Message"], "Extension does not exist.")
        self.assertEqual(self.listener.events("Newchannel"), [])

    def test_hangupWhileRinging(self):
        """Hanging up a ringing ;1: DialEnd NOANSWER, Failure reason 0, cause 0, no soft hangup."""
        self.originate(self.sender, "Local/8600013@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        one = next(iter(self.sim.channels.values()))
        self.sender.send("Hangup", ("ActionID", "h"), ("Channel", one.name))
        self.flush()
        (end,) = self.listener.events("DialEnd")
        self.assertEqual(end["DialStatus"], "NOANSWER")
        (response,) = self.listener.events("OriginateResponse")
        self.assertEqual((response["Response"], response["Reason"]), ("Failure", "0"))
        self.assertEqual([e["Channel"][-2:] for e in self.listener.events("SoftHangupRequest")],
                         [";2"])
        self.assertEqual({h["Cause"] for h in self.listener.events("Hangup")}, {"0"})
        self.assertEqual(self.sim.channels, {})

    def test_applicationOriginate(self):
        """An Application originate runs just the application, then ;1 goes with cause 0."""
        self.sender.send("Originate", ("ActionID", "app"), ("Channel", "Local/8600011@acqs-test"),
                         ("Application", "Wait"), ("Data", "1"), ("Callerid", CALLERID),
                         ("Async", "true"))
        self.flush()
        (response,) = self.listener.events("OriginateResponse")
        self.assertEqual([k for k in response][3:7], ["Response", "Channel", "Application",
                                                      "Data"])
        one = response["Channel"]
        self.advance(1)
        hangups = {h["Channel"]: h for h in self.listener.events("Hangup")}
        self.assertEqual((hangups[one]["Cause"], hangups[one]["Exten"]), ("0", "8600011"))
        self.assertEqual([e for e in self.listener.events("TestEvent") if e["Channel"] == one],
                         [])
        self.assertEqual([e for e in self.listener.events("SoftHangupRequest")
                          if e["Channel"] == one], [])

    def test_applicationMeetMe(self):
        """A channel originated straight into MeetMe stays there until hung up, then leaves."""
        self.sender.send("Originate", ("ActionID", "app"), ("Channel", "SIP/100"),
                         ("Application", "MeetMe"), ("Data", "8600051,F"), ("Async", "true"))
        self.flush()
        self.advance(1)
        (ch,) = self.sim.channels.values()
        self.assertEqual(self.sim.conferences["8600051"].users[1].channel, ch)
        self.sim.hangup(ch.name)
        self.flush()
        self.assertEqual(self.sim.conferences, {})
        self.assertEqual([e["Event"] for e in self.listener.events()
                          if e["Event"].startswith("Meetme")],
                         ["MeetmeJoin", "MeetmeLeave", "MeetmeEnd"])

    def test_syncAnsweredOnlyWhenUp(self):
        """A sync Originate is answered when the call is up; the session waits meanwhile."""
        self.originate(self.sender, "Local/8600012@acqs-test")
        self.sender.send("Ping", ("ActionID", "p"))
        self.flush()
        self.assertEqual(len(self.sender.responses()), 1)
        self.advance(3)
        messages = [r.get("Message", r.get("Ping")) for r in self.sender.responses()]
        self.assertEqual(messages, ["Authentication accepted", "Originate successfully queued",
                                    "Pong"])
        self.assertEqual(self.listener.events("OriginateResponse"), [])

    def test_syncEventsFollowResponse(self):
        """An events-on sync originator gets the response before the events of the wait."""
        sender = self.peer("sender", events="on")
        self.originate(sender, "Local/8600012@acqs-test")
        self.advance(3)
        kinds = [m[0][0] for m in sender.messages()]
        self.assertEqual(kinds[:3], ["Response", "Event", "Response"])  # FullyBooted first
        self.assertEqual(kinds[3], "Event")
        self.assertEqual(sender.messages()[2][2], ("Message", "Originate successfully queued"))

    def test_syncFailure(self):
        """A failing sync Originate gets Error / Originate failed."""
        self.originate(self.sender, "Local/8609999@acqs-test")
        self.assertEqual(self.sender.responses()[-1],
                         {"Response": "Error", "ActionID": "orig", "Message": "Originate failed"})

    def test_channelsObservable(self):
        """Live channels are visible with their ids, state, caller ID and place."""
        self.originate(self.sender, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        one, two = self.sim.channels.values()
        self.assertEqual((one.state, one.callerIDName, one.context, one.exten),
                         ("Up", CALLERID, "acqs-test", "8600014"))
        self.assertEqual(one.linkedid, one.uniqueid)
        self.assertEqual(two.linkedid, one.uniqueid)
        self.assertEqual(self.sim.channels[one.name], one)

    def test_dialledLocalLeg(self):
        """8600030 dials a second Local pair: four channels, one Linkedid, caller ID kept."""
        self.originate(self.sender, "Local/8600030@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        self.advance(3)
        new = self.listener.events("Newchannel")
        self.assertEqual(len(new), 4)
        self.assertEqual({e["Linkedid"] for e in self.channelEvents()}, {new[0]["Uniqueid"]})
        dialled = [e for e in self.listener.events("NewCallerid")
                   if e["Channel"] == new[2]["Channel"]]
        self.assertEqual((dialled[0]["CallerIDNum"], dialled[0]["CallerIDName"]),
                         ("8600030", CALLERID))
        self.assertEqual(len(self.listener.events("BridgeEnter")), 2)
        self.advance(5)
        self.assertEqual(self.sim.channels, {})

    def test_dialledSipLegCarriesCallerID(self):
        """A VICIdial-style call dials SIP/carrier-XXXXXXXX, which carries the caller ID."""
        self.sender.send("Originate", ("Channel", "Local/915551234@default"),
                         ("Context", "default"), ("Exten", "8600051"), ("Priority", "1"),
                         ("Callerid", "V1130150501000012345"), ("Async", "true"))
        self.flush()
        self.advance(1)
        sip = [e for e in self.listener.events("Newstate")
               if e["Channel"].startswith("SIP/carrier-")]
        self.assertRegex(sip[0]["Channel"], r"^SIP/carrier-[0-9a-f]{8}$")
        self.assertEqual([e["ChannelStateDesc"] for e in sip], ["Ringing", "Up"])
        self.assertEqual({e["CallerIDName"] for e in sip}, {"V1130150501000012345"})
        self.assertEqual({e["Linkedid"] for e in sip},
                         {self.listener.events("Newchannel")[0]["Uniqueid"]})
        begin = [e for e in self.listener.events("DialBegin") if "Channel" in e][0]
        self.assertEqual(begin["DestChannel"], sip[0]["Channel"])
        self.assertEqual(begin["DialString"], "carrier/15551234")
        self.advance(6)
        self.assertEqual(self.sim.channels, {})

    def test_carrierNoAnswer(self):
        """When the carrier never answers, Dial() gives up and the whole call goes."""
        plan = DEFAULT_DIALPLAN.withContext("dialer", {
            "_9X.": Exten(answer=False, dial="SIP/carrier/${EXTEN:1}", dialTimeout=5)})
        self.sim = Simulator(self.clock, dialplan=plan)
        listener, sender = self.peer("listener"), self.peer("sender", events="off")
        self.originate(sender, "Local/95551234@dialer", "8600051", "default", ("Async", "true"))
        self.advance(5)
        self.assertEqual(self.sim.channels, {})
        sip = [h for h in listener.events("Hangup") if h["Channel"].startswith("SIP/")]
        self.assertEqual(sip[0]["Cause"], "19")
        (response,) = listener.events("OriginateResponse")
        self.assertEqual(response["Response"], "Failure")

    def test_farEndKnob(self):
        """The far end of an originated SIP channel can be told not to answer."""
        self.sim.farEnd = Exten(ring=0, answer=False)
        self.originate(self.sender, "SIP/100", "8600051", "default", ("Async", "true"),
                       ("Timeout", "3000"))
        self.advance(3)
        (response,) = self.listener.events("OriginateResponse")
        self.assertEqual((response["Response"], response["Reason"]), ("Failure", "3"))
        self.assertEqual(self.sim.channels, {})

    def test_originateToSipChannel(self):
        """A SIP channel originated directly rings a second, answers and runs the target."""
        self.originate(self.sender, "SIP/100", "8600051", "default", ("Async", "true"))
        (ch,) = self.sim.channels.values()
        self.assertRegex(ch.name, r"^SIP/100-[0-9a-f]{8}$")
        self.advance(1)
        self.assertEqual(ch.state, "Up")
        self.assertEqual(self.sim.conferences["8600051"].users[1].channel, ch)
        self.assertEqual(self.listener.events("OriginateResponse")[0]["Response"], "Success")

    def test_failOriginates(self):
        """With failOriginates an async call reports Failure, a sync one Originate failed."""
        self.sim.failOriginates = True
        self.originate(self.sender, "Local/8600011@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"), actionID="a")
        self.originate(self.sender, "Local/8600011@acqs-test", actionID="b")
        self.assertEqual([r["Message"] for r in self.sender.responses()[1:]],
                         ["Originate successfully queued", "Originate failed"])
        (response,) = self.listener.events("OriginateResponse")
        self.assertEqual((response["ActionID"], response["Response"]), ("a", "Failure"))
        self.assertEqual(self.sim.channels, {})


class RedirectHangupTests(SimulatorTestCase):
    def setUp(self):
        super().setUp()
        self.listener = self.peer("listener")
        self.sender = self.peer("sender", events="off")
        self.originate(self.sender, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        self.one, self.two = self.sim.channels.values()

    def test_redirectContinuesInNewContext(self):
        """Redirect moves ;1 to 8600020 (Newexten, no Redirect event); it hangs up after 3 s."""
        self.sender.send("Redirect", ("ActionID", "r"), ("Channel", self.one.name),
                         ("Context", "acqs-test"), ("Exten", "8600020"), ("Priority", "1"))
        self.flush()
        self.assertEqual(self.sender.responses()[-1]["Message"], "Redirect successful")
        self.assertEqual(self.listener.events("Redirect"), [])
        moved = [e for e in self.listener.events("Newexten") if e["Exten"] == "8600020"]
        self.assertEqual([(e["Channel"], e["Application"]) for e in moved],
                         [(self.one.name, "Answer"), (self.one.name, "Wait")])
        self.assertEqual(self.one.exten, "8600020")
        self.advance(2.75)
        self.assertEqual(len(self.sim.channels), 2)
        self.advance(0.25)
        self.assertEqual(self.sim.channels, {})

    def test_dualRedirect(self):
        """Redirect with ExtraChannel moves both halves: Dual Redirect successful."""
        self.sender.send("Redirect", ("ActionID", "r"), ("Channel", self.one.name),
                         ("ExtraChannel", self.two.name), ("Context", "acqs-test"),
                         ("Exten", "8600020"), ("Priority", "1"))
        self.flush()
        self.assertEqual(self.sender.responses()[-1]["Message"], "Dual Redirect successful")
        self.assertEqual((self.one.exten, self.two.exten), ("8600020", "8600020"))

    def test_redirectUnknownChannel(self):
        """Redirect of a missing channel fails with Asterisk's text."""
        self.sender.send("Redirect", ("ActionID", "r"), ("Channel", "SIP/nobody-00000001"),
                         ("Context", "acqs-test"), ("Exten", "8600020"), ("Priority", "1"))
        self.flush()
        self.assertEqual(self.sender.responses()[-1]["Message"],
                         "Channel does not exist: SIP/nobody-00000001")

    def test_hangupActionWithoutCause(self):
        """The Hangup action ends both halves with cause 0 Unknown."""
        self.sender.send("Hangup", ("ActionID", "h"), ("Channel", self.one.name))
        self.flush()
        self.assertEqual(self.sender.responses()[-1]["Message"], "Channel Hungup")
        self.assertEqual([(h["Cause"], h["Cause-txt"]) for h in self.listener.events("Hangup")],
                         [("0", "Unknown")] * 2)
        self.assertEqual([e["Cause"] for e in self.listener.events("SoftHangupRequest")],
                         ["16", "16"])
        self.assertEqual(self.sim.channels, {})

    def test_hangupActionWithCause(self):
        """The Hangup action passes its Cause to both halves."""
        self.sender.send("Hangup", ("ActionID", "h"), ("Channel", self.two.name),
                         ("Cause", "16"))
        self.flush()
        self.assertEqual([h["Cause-txt"] for h in self.listener.events("Hangup")],
                         ["Normal Clearing"] * 2)

    def test_hangupUnknownChannel(self):
        """Hangup of a missing channel: No such channel."""
        self.sender.send("Hangup", ("ActionID", "h"), ("Channel", "Local/1@x-00000009;1"))
        self.flush()
        self.assertEqual(self.sender.responses()[-1],
                         {"Response": "Error", "ActionID": "h", "Message": "No such channel"})

    def test_simulatorHangup(self):
        """The test side can end a live call with a cause."""
        self.sim.hangup(self.two.name, cause=17)
        self.flush()
        self.assertEqual([h["Cause-txt"] for h in self.listener.events("Hangup")],
                         ["User busy"] * 2)
        self.assertRaises(KeyError, self.sim.hangup, "Local/none@x-00000009;1")


class ListTests(SimulatorTestCase):
    def setUp(self):
        super().setUp()
        sender = self.peer("sender", events="off")
        self.originate(sender, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        self.client = self.client("sender")

    def test_coreShowChannels(self):
        """CoreShowChannels lists both halves with their application, to an events-off session."""
        d = self.client.sendAction("CoreShowChannels")
        self.flush()
        result = self.successResultOf(d)
        self.assertIsInstance(result, ListResult)
        self.assertEqual([e["Channel"] for e in result.events], list(self.sim.channels))
        self.assertEqual({(e["Application"], e["ApplicationData"]) for e in result.events},
                         {("Wait", "60")})
        self.assertEqual(result.complete["ListItems"], "2")

    def test_statusActionIDLast(self):
        """Status items carry Privilege: Call and the ActionID as last header."""
        d = self.client.sendAction("Status")
        self.flush()
        result = self.successResultOf(d)
        first = result.events[0]
        self.assertEqual(first.headers[1], ("Privilege", "Call"))
        self.assertEqual(first.headers[-1][0], "ActionID")
        self.assertEqual((result.complete["ListItems"], result.complete["Items"]), ("2", "2"))

    def test_statusOfOneChannel(self):
        """Status of a named channel lists that one; a missing one is an error."""
        name = next(iter(self.sim.channels))
        result = self.successResultOf(self._flushed(self.client.sendAction(
            "Status", [("Channel", name)])))
        self.assertEqual([e["Channel"] for e in result.events], [name])
        failure = self.failureResultOf(self._flushed(self.client.sendAction(
            "Status", [("Channel", "SIP/x-00000001")])), AMIError)
        self.assertEqual(failure.value.reason, "No such channel")

    def _flushed(self, d):
        self.flush()
        return d


class CommandTests(SimulatorTestCase):
    def command(self, text: str, dialect: str = "asterisk22"):
        if dialect != self.sim.dialect.name:
            self.sim = Simulator(self.clock, dialect=dialect)
        client = self.client("sender")
        d = client.command(text)
        self.flush()
        return d

    def captured(self, actionID: str) -> List[str]:
        block = DATA.child("command.sender.ami").getContent().split(
            f"ActionID: {actionID}\r\n".encode())[1].split(b"\r\n\r\n")[0]
        return [line[8:].decode() for line in block.split(b"\r\n") if line.startswith(b"Output:")]

    def test_version(self):
        """core show version prints the captured Asterisk 22 version line."""
        self.assertEqual(self.successResultOf(self.command("core show version")),
                         self.captured("cap-2"))

    def test_channelsHeaderAsCaptured(self):
        """core show channels with no calls prints Asterisk 22's lines, spaces included."""
        self.assertEqual(self.successResultOf(self.command("core show channels")),
                         self.captured("cap-3")[:3] + ["0 calls processed"])

    def test_channelsListed(self):
        """core show channels lists live channels and counts calls."""
        sender = self.peer("sender", events="off")
        self.originate(sender, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        lines = self.successResultOf(self.command("core show channels"))
        self.assertEqual(len(lines), 6)
        self.assertIn("8600014@acqs-test:2", lines[1])
        self.assertIn("Wait(60)", lines[1])
        self.assertEqual(lines[3:], ["2 active channels", "2 active calls", "2 calls processed"])

    def test_unknownCliCommand(self):
        """An unknown CLI command is an Error with Asterisk 22's exact text."""
        failure = self.failureResultOf(self.command("no such cli command"), AMIError)
        self.assertEqual(failure.value.reason, "Command output follows")
        self.assertEqual(failure.value.response.getall("Output"), self.captured("cap-4"))

    def test_uptime(self):
        """core show uptime counts from the simulator's start on the injected clock."""
        self.clock.advance(3725)
        lines = self.successResultOf(self.command("core show uptime"))
        self.assertEqual(lines, ["System uptime: 1 hour, 2 minutes, 5 seconds",
                                 "Last reload: 1 hour, 2 minutes, 5 seconds"])

    def conference(self, *channels: str) -> List[str]:
        """Put C{channels} in MeetMe 8600051; its C{meetme list} lines."""
        sender = self.peer("sender", events="off")
        for channel in channels:
            self.originate(sender, channel, "8600051", "default", ("Async", "true"))
        self.advance(1)
        return self.successResultOf(self.command("meetme list 8600051"))

    def test_meetmeList(self):
        """meetme list shows each conference user with its number and channel."""
        lines = self.conference("SIP/100", "SIP/carrier/5551234")
        names = list(self.sim.channels)
        self.assertEqual(len(lines), 3)
        self.assertRegex(lines[0], r"^User #: 01 +<unknown> " + CALLERID + r" +Channel: "
                         + re.escape(names[0]) + " ")
        self.assertTrue(lines[1].startswith("User #: 02 "))
        self.assertEqual(lines[2], "2 users in that conference.")
        self.successResultOf(self.command("meetme mute 8600051 2"))
        muted = self.successResultOf(self.command("meetme list 8600051"))
        self.assertIn("(Admin Muted)", muted[1])

    def test_meetmeEmpty(self):
        """With no conferences, or not that one, meetme list says what Asterisk says."""
        self.assertEqual(self.successResultOf(self.command("meetme list 8600051")),
                         ["No active MeetMe conferences."])
        sender = self.peer("sender", events="off")
        self.originate(sender, "SIP/100", "8600051", "default", ("Async", "true"))
        self.advance(1)
        self.assertEqual(self.successResultOf(self.command("meetme list 8600052")),
                         ["No such conference: 8600052."])

    def test_asterisk14CommandFollows(self):
        """Asterisk 1.4 answers Command with Response: Follows, raw lines and --END COMMAND--."""
        self.sim = Simulator(self.clock, dialect="asterisk14")
        peer = self.peer("sender", events="off")
        peer.send("Command", ("ActionID", "c"), ("Command", "core show version"))
        self.flush()
        raw = bytes(peer.received).split(b"Authentication accepted\r\n\r\n")[1]
        self.assertEqual(raw, b"Response: Follows\r\nPrivilege: Command\r\nActionID: c\r\n"
                         + self.sim.dialect.version.encode() + b"\n--END COMMAND--\r\n\r\n")
        self.assertEqual(self.successResultOf(self.command("show version", "asterisk14")),
                         [self.sim.dialect.version])

    def test_volumeControlFindsUser(self):
        """acqs' volume control finds a channel's MeetMe user number in the list."""
        lines = self.conference("SIP/100", "SIP/101")
        second = list(self.sim.channels)[1]
        self.assertEqual(meetmeUser(lines, second), "02")

    def test_meetmeConcise(self):
        """meetme list concise prints one !-separated line per user."""
        self.conference("SIP/100")
        lines = self.successResultOf(self.command("meetme list 8600051 concise"))
        self.assertEqual(lines, [f"1!!{CALLERID}!{list(self.sim.channels)[0]}!!!!!-1!00:00:00"])

    def test_asterisk14MeetmeEmpty(self):
        """Asterisk 1.4 says No active conferences."""
        self.assertEqual(self.successResultOf(self.command("meetme list 1", "asterisk14")),
                         ["No active conferences."])


# Asterisk 1.4


class Asterisk14Tests(SimulatorTestCase):
    dialect = "asterisk14"

    def setUp(self):
        super().setUp()
        self.listener = self.peer("listener")
        self.sender = self.peer("sender", events="off")

    def test_greetingAndLogin(self):
        """AMI 1.0 greeting; no FullyBooted or security events after login."""
        self.assertEqual(self.listener.greeting, b"Asterisk Call Manager/1.0")
        self.assertEqual(self.listener.events(), [])
        self.assertEqual(self.listener.responses()[0]["Message"], "Authentication accepted")

    def test_pingAndUnknown(self):
        """Ping answers Response: Pong; an unknown action (CoreShowChannels and Filter too)
        is refused."""
        self.sender.send("Ping", ("ActionID", "p"))
        self.sender.send("CoreShowChannels", ("ActionID", "c"))
        self.sender.send("Filter", ("ActionID", "f"), ("Operation", "Add"), ("Filter", "x"))
        self.flush()
        self.assertEqual(self.sender.messages()[1:], [
            [("Response", "Pong"), ("ActionID", "p")],
            [("Response", "Error"), ("ActionID", "c"), ("Message", "Invalid/unknown command")],
            [("Response", "Error"), ("ActionID", "f"), ("Message", "Invalid/unknown command")]])

    def test_beforeLogin(self):
        """Before Login 1.4 says Authentication Required, and Logoff says See ya."""
        peer = self.peer()
        peer.send("Ping", ("ActionID", "p"))
        peer.send("Logoff", ("ActionID", "q"))
        self.flush()
        self.assertEqual([r["Message"] for r in peer.responses()],
                         ["Authentication Required", "See ya"])
        self.assertTrue(peer.lost)

    def test_callShapes(self):
        """1.4 events: Local/...-XXXX,1 names, State: Ringing, CallerID, Cause-txt."""
        self.originate(self.sender, "Local/8600012@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        self.advance(10)
        names = [m[0][1] for m in self.listener.messages() if m[0][0] == "Event"]
        self.assertTrue({"NewConnectedLine", "LocalBridge", "DeviceStateChange", "DialBegin",
                         "VarSet", "TestEvent", "SoftHangupRequest"}.isdisjoint(names))
        ringing = self.listener.events("Newstate")[0]
        self.assertEqual(list(ringing), ["Event", "Privilege", "Channel", "State", "CallerID",
                                         "CallerIDName", "Uniqueid"])
        self.assertEqual((ringing["State"], ringing["CallerIDName"]), ("Ringing", CALLERID))
        self.assertRegex(ringing["Channel"], r"^Local/8600012@acqs-test-[0-9a-f]{4},1$")
        new = self.listener.events("Newchannel")[0]
        self.assertEqual(list(new), ["Event", "Privilege", "Channel", "State", "CallerIDNum",
                                     "CallerIDName", "Uniqueid"])
        callerid = self.listener.events("Newcallerid")
        self.assertEqual([e["Channel"][-2:] for e in callerid], [",1"])
        hangup = self.listener.events("Hangup")[0]
        self.assertEqual(list(hangup), ["Event", "Privilege", "Channel", "Uniqueid", "Cause",
                                        "Cause-txt"])
        response = self.listener.events("OriginateResponse")[0]
        self.assertEqual(list(response), ["Event", "Privilege", "ActionID", "Response",
                                          "Channel", "Context", "Exten", "Reason", "Uniqueid",
                                          "CallerID", "CallerIDNum", "CallerIDName"])

    def test_failedOriginateUniqueidNull(self):
        """A failed 1.4 OriginateResponse names the dial string and Uniqueid <null>."""
        self.originate(self.sender, "Local/8609999@acqs-test", "8600100", "acqs-test",
                       ("Async", "true"))
        response = self.listener.events("OriginateResponse")[0]
        self.assertEqual((response["Channel"], response["Uniqueid"]),
                         ("Local/8609999@acqs-test", "<null>"))

    def test_statusWithoutEventList(self):
        """1.4 Status has no EventList headers and ends with a bare StatusComplete."""
        self.originate(self.sender, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        self.sender.send("Status", ("ActionID", "s"))
        self.flush()
        messages = self.sender.messages()
        self.assertEqual(messages[2], [("Response", "Success"), ("ActionID", "s"),
                                       ("Message", "Channel status will follow")])
        self.assertEqual(messages[-1], [("Event", "StatusComplete"), ("ActionID", "s")])
        self.assertEqual([h for h, _ in messages[3]][:8],
                         ["Event", "Privilege", "Channel", "CallerID", "CallerIDNum",
                          "CallerIDName", "Account", "State"])

    def test_listEndForOldStatus(self):
        """acqs' client collects a 1.4 Status list when told its closing event."""
        self.originate(self.sender, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        client = self.client("sender")
        d = client.sendAction("Status", listEnd="StatusComplete")
        self.flush()
        self.assertEqual(len(self.successResultOf(d).events), 2)

    def test_dialLinkUnlink(self):
        """A dialled SIP leg prints Dial, then Link and Unlink with the caller first."""
        self.originate(self.sender, "Local/915551234@default", "8600051", "default",
                       ("Async", "true"))
        self.advance(8)
        dial = self.listener.events("Dial")[0]
        self.assertRegex(dial["Destination"], r"^SIP/carrier-[0-9a-f]{8}$")
        link, unlink = self.listener.events("Link"), self.listener.events("Unlink")
        self.assertEqual(len(link), 1)
        self.assertEqual(link[0]["Channel2"], dial["Destination"])
        self.assertEqual(unlink[0]["Channel1"], dial["Source"])


# Faults


class FaultTests(SimulatorTestCase):
    def test_responseDelay(self):
        """responseDelay holds every response, and that session's events, for its seconds."""
        self.sim.responseDelay = 2
        listener = self.peer("listener")
        self.assertEqual(listener.messages(), [])
        self.advance(1.75)
        self.assertEqual(listener.messages(), [])
        self.advance(0.25)
        self.assertEqual([m[0] for m in listener.messages()],
                         [("Response", "Success"), ("Event", "FullyBooted"),
                          ("Event", "SuccessfulAuth")])

    def test_responseDelayTimesClientOut(self):
        """A response slower than the client's timeout fails the action."""
        self.sim.responseDelay = 10
        client = self.client()
        d = client.login("sender", "sendersecret")
        self.advance(5)
        self.failureResultOf(d, ActionTimeout)

    def test_dropAll(self):
        """dropAll closes every session; clients fail their pending actions."""
        client = self.client("listener", events="on")
        self.sim.unresponsive = True
        d = client.ping()
        peer = self.peer()
        self.sim.dropAll()
        self.flush()
        self.failureResultOf(d, AMIConnectionLost)
        self.assertTrue(peer.lost)
        self.assertEqual(self.sim.sessions, [])

    def test_sendGarbage(self):
        """Garbage reaches every session; acqs' client drops it and carries on."""
        client = self.client("sender")
        peer = self.peer()
        self.sim.sendGarbage()
        self.sim.sendGarbage(b"Event: \xff\r\nbroken\r\n\r\n")
        self.flush()
        self.assertIn(b"GARBAGE", bytes(peer.received))
        d = client.ping()
        self.flush()
        self.assertEqual(self.successResultOf(d)["Ping"], "Pong")

    def test_flood(self):
        """flood sends realistic ignored events to events-on sessions only."""
        client = self.client("listener", events="on")
        seen = []
        client.registerEvent(None, seen.append)
        sender = self.peer("sender", events="off")
        before = len(seen)
        written = self.sim.flood(1000)
        self.flush()
        self.assertEqual(written, 1000)
        flood = seen[before:]
        self.assertEqual(len(flood), 1000)
        self.assertEqual({e["Event"] for e in flood}, {"VarSet", "Newexten"})
        self.assertEqual(flood[0]["Privilege"], "dialplan,all")
        self.assertEqual(sender.events(), [])
        d = client.ping()
        self.flush()
        self.successResultOf(d)

    def test_unresponsive(self):
        """unresponsive records actions and never answers them."""
        self.sim.unresponsive = True
        client = self.client()
        d = client.login("sender", "sendersecret")
        self.flush()
        self.assertNoResult(d)
        self.assertEqual(self.sim.actions[-1][1]["Action"], "Login")


class ServingTests(SimulatorTestCase):
    def test_listen(self):
        """listen() serves the simulator's factory on an endpoint."""
        reactor = MemoryReactor()
        port = self.successResultOf(self.sim.listen(
            TCP4ServerEndpoint(reactor, 5038, interface="127.0.0.1")))
        self.assertEqual(port.getHost().port, 5038)
        self.assertIs(reactor.tcpServers[0][1], self.sim.factory)

    def test_twistedInterfaces(self):
        """The factory and its sessions are proper Twisted server objects."""
        verifyObject(IProtocolFactory, self.sim.factory)
        verifyObject(IProtocol, self.sim.factory.buildProtocol(None))

    def test_stop(self):
        """stop() closes every session and leaves no timer behind."""
        peer = self.peer("sender", events="off")
        self.originate(peer, "Local/8600014@acqs-test", "8600014", "acqs-test",
                       ("Async", "true"))
        self.assertTrue(self.clock.getDelayedCalls())
        self.sim.stop()
        self.flush()
        self.assertTrue(peer.lost)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_commandLine(self):
        """python -m acqs.simulator takes a port, a dialect and a seed."""
        options = parse(["--port", "5041", "--dialect", "asterisk14", "--seed", "3"])
        self.assertEqual((options.port, options.dialect, options.seed), (5041, "asterisk14", 3))
        self.assertEqual(parse([]).port, 5038)

    def test_unknownDialect(self):
        """An unknown dialect is refused with the ones there are."""
        e = self.assertRaises(ValueError, Simulator, self.clock, dialect="asterisk99")
        self.assertIn("asterisk14", str(e))


# acqs' client end to end


class EndToEndTests(SimulatorTestCase):
    def test_factoryLogin(self):
        """AMIFactory.login() connects and logs in to the simulator, plain and MD5."""
        for md5 in (False, True):
            factory = AMIFactory("sender", "sendersecret", self.clock, md5=md5)
            d = factory.login(self.network.endpoint())
            self.flush()
            protocol = self.successResultOf(d)
            self.assertEqual(protocol.amiVersion, "11.0.0")

    def test_factoryLoginRefused(self):
        """A wrong secret makes AMIFactory.login() fail with LoginFailed after a second."""
        factory = AMIFactory("sender", "wrong", self.clock)
        d = factory.login(self.network.endpoint())
        self.flush()
        self.assertNoResult(d)
        self.advance(1)
        failure = self.failureResultOf(d, LoginFailed)
        self.assertNotIn("wrong", str(failure.value))

    def test_listenerFollowsCall(self):
        """A listener client sees the SIP leg ring and answer with the row's caller ID."""
        listener = self.successResultOf(self._login("listener", "on"))
        sender = self.successResultOf(self._login("sender", "off"))
        states = []
        listener.registerEvent("Newstate", states.append)
        responses = []
        listener.registerEvent("OriginateResponse", responses.append)
        d = sender.sendAction("Originate", [
            ("Channel", "Local/95551234@default"), ("Context", "default"),
            ("Exten", "8600051"), ("Priority", "1"), ("Callerid", "V1000"), ("Async", "true")])
        self.flush()
        self.assertEqual(self.successResultOf(d)["Message"], "Originate successfully queued")
        self.advance(2)
        sip = [(m["ChannelStateDesc"], m["CallerIDName"]) for m in states
               if m["Channel"].startswith("SIP/")]
        self.assertEqual(sip, [("Ringing", "V1000"), ("Up", "V1000")])
        self.assertEqual(len(responses), 1)
        self.successResultOf(self._flushed(sender.logoff()))

    def _login(self, user: str, events: str):
        factory = AMIFactory(user, f"{user}secret", self.clock, events=events)
        d = factory.login(self.network.endpoint())
        self.flush()
        return d

    def _flushed(self, d):
        self.flush()
        return d


# The dialplan


class DialplanTests(SynchronousTestCase):
    def apps(self, context: str, exten: str):
        return DEFAULT_DIALPLAN.applications(context, exten)

    def test_testContextMirrorsExtensionsConf(self):
        """acqs-test runs the applications of the test Asterisk's extensions.conf."""
        self.assertEqual(self.apps("acqs-test", "8600012"), [
            ("Ringing", ""), ("Wait", "3"), ("Answer", ""), ("Wait", "2"), ("Hangup", "")])
        self.assertEqual(self.apps("acqs-test", "8600013"), [
            ("Ringing", ""), ("Wait", "60"), ("Hangup", "")])
        self.assertEqual(self.apps("acqs-test", "8600030"), [
            ("Dial", "Local/8600012@acqs-test,20"), ("Hangup", "")])
        self.assertEqual(self.apps("acqs-test", "h"), [("NoOp", "hangup ${HANGUPCAUSE}")])
        for exten in ("8600011", "8600014", "8600020", "8600100"):
            self.assertEqual(self.apps("acqs-test", exten)[0], ("Answer", ""))
        self.assertIsNone(self.apps("acqs-test", "8609999"))
        self.assertIsNone(self.apps("acqs-nosuchcontext", "8600011"))

    def test_patterns(self):
        """Default-context patterns: exact names first, then patterns in order."""
        self.assertEqual(self.apps("default", "915551234")[0],
                         ("Dial", "SIP/carrier/15551234,60"))
        self.assertEqual(self.apps("default", "8600051")[1], ("MeetMe", "8600051,F"))
        self.assertEqual(self.apps("default", "8600052")[0], ("Ringing", ""))
        self.assertEqual(self.apps("default", "5551234")[0], ("Ringing", ""))
        self.assertIsNone(self.apps("default", "s"))

    def test_ownDialplan(self):
        """A dialplan can be given: context, exten and far-end behaviour."""
        plan = Dialplan({"mine": {"_X!": Exten(ring=0, answer=True, hold=None)}})
        self.assertEqual(plan.applications("mine", "1"),
                         [("Answer", ""), ("MusicOnHold", ""), ("Hangup", "")])
        self.assertTrue(DEFAULT_DIALPLAN.withContext("x", {"1": Exten()}).exists("x", "1"))

    def test_substitute(self):
        """${EXTEN} and ${EXTEN:n} are substituted in dial strings."""
        self.assertEqual(substitute("SIP/c/${EXTEN:1}@${EXTEN}", "9123"), "SIP/c/123@9123")
        self.assertEqual(substitute("${EXTEN:1:2}", "9123"), "12")

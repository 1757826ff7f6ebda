"""Tests for acqs.ami.protocol: the AMI client's wire work."""

import hashlib

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from acqs.ami.errors import (
    ActionTimeout,
    AMIConnectionLost,
    AMIError,
    LoginFailed,
    NotAsterisk,
)
from acqs.ami.message import UnsafeHeader
from acqs.ami.protocol import AMIFactory, AMIProtocol, ListResult

GREETING = b"Asterisk Call Manager/10.0.0\r\n"


def sentActionIDs(transport):
    """The ActionIDs written so far, in order."""
    return [
        line.split(b": ", 1)[1].decode()
        for line in transport.value().split(b"\r\n")
        if line.startswith(b"ActionID: ")
    ]


class ProtocolTestCase(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.transport = StringTransport()
        self.protocol = AMIProtocol(self.clock, timeout=5)
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(GREETING)

    def lastActionID(self):
        return sentActionIDs(self.transport)[-1]

    def respond(self, *lines, actionID=None):
        """Feed a response to the last action written."""
        aid = actionID or self.lastActionID()
        body = lines[0] + b"\r\nActionID: " + aid.encode() + b"\r\n"
        body += b"".join(line + b"\r\n" for line in lines[1:])
        self.protocol.dataReceived(body + b"\r\n")

    def lose(self, reason=None):
        self.protocol.connectionLost(Failure(reason or ConnectionLost("gone")))


class GreetingTests(SynchronousTestCase):
    def test_versionFromGreeting(self):
        """The greeting line and its AMI version are exposed."""
        p = AMIProtocol(Clock())
        p.makeConnection(StringTransport())
        d = p.whenGreeted()
        p.dataReceived(b"Asterisk Call Manager/")
        self.assertNoResult(d)
        p.dataReceived(b"11.0.0\r\nEvent: FullyBooted\r\n\r\n")
        self.assertEqual(self.successResultOf(d), "Asterisk Call Manager/11.0.0")
        self.assertEqual(p.amiVersion, "11.0.0")
        self.assertEqual(self.successResultOf(p.whenGreeted()), p.greeting)

    def test_notAsterisk(self):
        """A peer that is not an Asterisk manager is refused and disconnected."""
        observer = EventLoggingObserver.createWithCleanup(self, AMIProtocol.log.observer)
        transport = StringTransport()
        p = AMIProtocol(Clock())
        p.makeConnection(transport)
        d = p.whenGreeted()
        p.dataReceived(b"SSH-2.0-OpenSSH_9.2\r\n")
        self.failureResultOf(d, NotAsterisk)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(observer), 1)

    def test_lostBeforeGreeting(self):
        """Waiting for a greeting fails when the connection closes first."""
        p = AMIProtocol(Clock())
        p.makeConnection(StringTransport())
        d = p.whenGreeted()
        p.connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(d, AMIConnectionLost)
        self.failureResultOf(p.whenGreeted(), AMIConnectionLost)


class ActionTests(ProtocolTestCase):
    def test_writesActionWithActionID(self):
        """An action goes out as CRLF headers with a fresh ActionID after Action."""
        self.protocol.sendAction("Originate", [("Channel", "Local/1@x"), ("Variable", "A=1"),
                                               ("Variable", "B=2")])
        aid = self.lastActionID()
        self.assertEqual(
            self.transport.value(),
            b"Action: Originate\r\nActionID: " + aid.encode()
            + b"\r\nChannel: Local/1@x\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n",
        )

    def test_actionIDsUnique(self):
        """Every action, on any connection of the process, gets a new ActionID."""
        other = AMIProtocol(self.clock)
        other.makeConnection(StringTransport())
        for _ in range(3):
            self.protocol.sendAction("Ping")
            other.sendAction("Ping")
        ids = sentActionIDs(self.transport) + sentActionIDs(other.transport)
        self.assertEqual(len(set(ids)), 6)

    def test_responsesMatchedByActionID(self):
        """Responses in any order reach the action they answer."""
        d1 = self.protocol.sendAction("Ping")
        a1 = self.lastActionID()
        d2 = self.protocol.sendAction("Status")
        a2 = self.lastActionID()
        self.respond(b"Response: Success", b"Message: two", actionID=a2)
        self.respond(b"Response: Success", b"Message: one", actionID=a1)
        self.assertEqual(self.successResultOf(d1)["Message"], "one")
        self.assertEqual(self.successResultOf(d2)["Message"], "two")

    def test_errorResponse(self):
        """Response: Error fails the action with AMIError carrying Asterisk's message."""
        d = self.protocol.sendAction("NoSuchAction")
        self.respond(b"Response: Error", b"Message: Invalid/unknown command")
        f = self.failureResultOf(d, AMIError)
        self.assertEqual(f.value.reason, "Invalid/unknown command")
        self.assertEqual(str(f.value), "AMI action NoSuchAction failed: Invalid/unknown command")

    def test_timeout(self):
        """An unanswered action fails with ActionTimeout; a late answer is ignored."""
        d = self.protocol.sendAction("Originate", timeout=3)
        aid = self.lastActionID()
        self.clock.advance(2.9)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        f = self.failureResultOf(d, ActionTimeout)
        self.assertEqual(str(f.value), "AMI action Originate got no response within 3 s")
        self.respond(b"Response: Success", actionID=aid)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_defaultTimeout(self):
        """Without a timeout of its own an action uses the protocol's."""
        d = self.protocol.sendAction("Ping")
        self.clock.advance(5)
        self.failureResultOf(d, ActionTimeout)

    def test_answeredActionCancelsTimer(self):
        """An answered action leaves no timer behind."""
        d = self.protocol.sendAction("Ping")
        self.respond(b"Response: Success", b"Ping: Pong")
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancel(self):
        """Cancelling an action forgets it and its timer."""
        d = self.protocol.sendAction("Ping")
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.respond(b"Response: Success")

    def test_connectionLostFailsEveryPending(self):
        """Losing the connection fails every pending action and cancels their timers."""
        ds = [self.protocol.sendAction("Ping") for _ in range(3)]
        self.lose()
        for d in ds:
            f = self.failureResultOf(d, AMIConnectionLost)
            self.assertIn("gone", str(f.value))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_sendAfterLoss(self):
        """An action sent after the connection closed fails at once."""
        self.lose()
        self.failureResultOf(self.protocol.sendAction("Ping"), AMIConnectionLost)

    def test_unsafeHeaderNothingWritten(self):
        """An action with CR/LF in a header fails and writes nothing at all."""
        d = self.protocol.sendAction("Redirect",
                                     [("Channel", "SIP/1"), ("Exten", "1\r\nAction: Hangup")])
        self.failureResultOf(d, UnsafeHeader)
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_callerActionIDRefused(self):
        """A caller-supplied ActionID is refused: acqs owns correlation."""
        d = self.protocol.sendAction("Ping", {"ActionID": "mine"})
        self.failureResultOf(d, ValueError)
        self.assertEqual(self.transport.value(), b"")

    def test_headersFromMapping(self):
        """Headers may be given as a mapping."""
        self.protocol.sendAction("Hangup", {"Channel": "SIP/1-0001"})
        self.assertIn(b"\r\nChannel: SIP/1-0001\r\n", self.transport.value())

    def test_bareLFResponses(self):
        """Responses with bare LF line endings are matched like CRLF ones."""
        d = self.protocol.sendAction("Ping")
        aid = self.lastActionID().encode()
        self.protocol.dataReceived(b"Response: Success\nActionID: " + aid + b"\nPing: Pong\n\n")
        self.assertEqual(self.successResultOf(d)["Ping"], "Pong")

    def test_garbageDoesNotBreakConnection(self):
        """Garbage between messages is logged and skipped; the next response still lands."""
        observer = EventLoggingObserver.createWithCleanup(self, AMIProtocol.log.observer)
        d = self.protocol.sendAction("Ping")
        self.protocol.dataReceived(b"\x00\xff\xfegarbage\r\nmore garbage\r\n\r\n")
        self.respond(b"Response: Success", b"Ping: Pong")
        self.successResultOf(d)
        self.assertEqual(len(observer), 1)
        self.assertIn("neither Event nor Response", observer[0]["log_format"])

    def test_oversizedMessageLogged(self):
        """An oversized message is dropped with a logged error; reading goes on."""
        observer = EventLoggingObserver.createWithCleanup(self, AMIProtocol.log.observer)
        self.protocol._reader._maxMessage = 1000
        d = self.protocol.sendAction("Ping")
        self.protocol.dataReceived(b"Event: Flood\r\n" + b"X: y\r\n" * 500 + b"\r\n")
        self.respond(b"Response: Success")
        self.successResultOf(d)
        self.assertEqual([e["size"] for e in observer], [14 + 6 * 500 - 2])


class ListTests(ProtocolTestCase):
    def test_eventList(self):
        """A response with EventList: start collects events until EventList: Complete."""
        d = self.protocol.sendAction("CoreShowChannels")
        aid = self.lastActionID().encode()
        seen = []
        self.protocol.registerEvent(None, seen.append)
        self.respond(b"Response: Success", b"EventList: start", b"Message: Channels will follow")
        self.assertNoResult(d)
        for ch in (b"Local/1@x-1;1", b"Local/1@x-1;2"):
            self.protocol.dataReceived(b"Event: CoreShowChannel\r\nActionID: " + aid
                                       + b"\r\nChannel: " + ch + b"\r\n\r\n")
        self.protocol.dataReceived(b"Event: CoreShowChannelsComplete\r\nActionID: " + aid
                                   + b"\r\nEventList: Complete\r\nListItems: 2\r\n\r\n")
        result = self.successResultOf(d)
        self.assertIsInstance(result, ListResult)
        self.assertEqual([e["Channel"] for e in result.events], ["Local/1@x-1;1", "Local/1@x-1;2"])
        self.assertEqual(result.complete["ListItems"], "2")
        self.assertEqual(seen, [], "list events are not also dispatched")

    def test_declaredListOldStyle(self):
        """Asterisk 1.4 lists (no EventList headers) end at the declared event,
        even when items arrive before the response."""
        d = self.protocol.sendAction("Status", listEnd="StatusComplete")
        aid = self.lastActionID().encode()
        self.protocol.dataReceived(
            b"Event: Status\r\nChannel: Zap/1-1\r\nActionID: " + aid + b"\r\n\r\n")
        self.respond(b"Response: Success", b"Message: Channel status will follow")
        self.protocol.dataReceived(b"Event: StatusComplete\r\nActionID: " + aid + b"\r\n\r\n")
        result = self.successResultOf(d)
        self.assertEqual([e["Channel"] for e in result.events], ["Zap/1-1"])

    def test_listTimeout(self):
        """A list that never completes times out, and its late items are ordinary events again."""
        d = self.protocol.sendAction("Status", timeout=1)
        aid = self.lastActionID().encode()
        self.respond(b"Response: Success", b"EventList: start")
        self.clock.advance(1)
        self.failureResultOf(d, ActionTimeout)
        seen = []
        self.protocol.registerEvent("Status", seen.append)
        self.protocol.dataReceived(b"Event: Status\r\nActionID: " + aid + b"\r\n\r\n")
        self.assertEqual(len(seen), 1)


class CommandTests(ProtocolTestCase):
    def test_outputHeaders(self):
        """Asterisk >= 14 Command output comes back as the Output lines."""
        d = self.protocol.command("core show uptime")
        self.assertIn(b"Action: Command\r\n", self.transport.value())
        self.assertIn(b"Command: core show uptime\r\n", self.transport.value())
        self.respond(b"Response: Success", b"Message: Command output follows",
                     b"Output: System uptime: 1 minute", b"Output: Last reload: 1 minute")
        self.assertEqual(self.successResultOf(d),
                         ["System uptime: 1 minute", "Last reload: 1 minute"])

    def test_follows(self):
        """Asterisk <= 13 Command output (Response: Follows, bare LF) gives the same lines."""
        d = self.protocol.command("sip show peers")
        aid = self.lastActionID().encode()
        self.protocol.dataReceived(b"Response: Follows\r\nPrivilege: Command\r\nActionID: " + aid
                                   + b"\r\nName/username  Host\n\n1 sip peers: 1 online\n")
        self.assertNoResult(d)
        self.protocol.dataReceived(b"--END COMMAND--\r\n\r\n")
        self.assertEqual(self.successResultOf(d),
                         ["Name/username  Host", "", "1 sip peers: 1 online"])

    def test_commandError(self):
        """A failing command raises AMIError whose response keeps the output."""
        d = self.protocol.command("no such thing")
        self.respond(b"Response: Error", b"Message: Command output follows",
                     b"Output: No such command 'no such thing'")
        f = self.failureResultOf(d, AMIError)
        self.assertEqual(f.value.response.getall("Output"), ["No such command 'no such thing'"])


class PingLogoffTests(ProtocolTestCase):
    def test_pingNew(self):
        """Ping succeeds on the newer Ping: Pong answer."""
        d = self.protocol.ping()
        self.respond(b"Response: Success", b"Ping: Pong", b"Timestamp: 1764152345.1")
        self.assertEqual(self.successResultOf(d)["Ping"], "Pong")

    def test_pingOld(self):
        """Ping succeeds on Asterisk 1.4's Response: Pong."""
        d = self.protocol.ping()
        self.respond(b"Response: Pong")
        self.assertEqual(self.successResultOf(d)["Response"], "Pong")

    def test_logoffGoodbye(self):
        """Logoff fires once Goodbye arrived and the connection is closed."""
        d = self.protocol.logoff()
        self.assertIn(b"Action: Logoff\r\n", self.transport.value())
        self.respond(b"Response: Goodbye", b"Message: Thanks for all the fish.")
        self.assertTrue(self.transport.disconnecting)
        self.assertNoResult(d)
        self.lose(ConnectionDone())
        self.assertIsNone(self.successResultOf(d))

    def test_logoffClosedFirst(self):
        """Logoff fires when Asterisk closes without a Goodbye."""
        d = self.protocol.logoff()
        self.lose(ConnectionDone())
        self.assertIsNone(self.successResultOf(d))

    def test_logoffUnanswered(self):
        """An unanswered Logoff aborts the connection within its timeout."""
        d = self.protocol.logoff(timeout=2)
        self.clock.advance(2)
        self.assertTrue(self.transport.disconnecting)
        self.lose()
        self.assertIsNone(self.successResultOf(d))

    def test_logoffAfterLoss(self):
        """Logging off a closed connection succeeds at once."""
        self.lose()
        self.assertIsNone(self.successResultOf(self.protocol.logoff()))


class EventTests(ProtocolTestCase):
    def event(self, raw):
        self.protocol.dataReceived(raw + b"\r\n\r\n")

    def test_byNameAnyCase(self):
        """Handlers get events by name regardless of case (Newcallerid vs NewCallerid)."""
        seen = []
        self.protocol.registerEvent("NewCallerid", seen.append)
        self.event(b"Event: Newcallerid\r\nChannel: Zap/1-1")
        self.event(b"Event: NewCallerid\r\nChannel: SIP/2-1")
        self.event(b"Event: Newstate\r\nChannel: SIP/3-1")
        self.assertEqual([m["Channel"] for m in seen], ["Zap/1-1", "SIP/2-1"])

    def test_catchAll(self):
        """A handler registered for None gets every event, after the named ones."""
        order = []
        self.protocol.registerEvent(None, lambda m: order.append(("all", m["Event"])))
        self.protocol.registerEvent("Hangup", lambda m: order.append(("hangup", m["Event"])))
        self.event(b"Event: VarSet")
        self.event(b"Event: Hangup")
        self.assertEqual(order, [("all", "VarSet"), ("hangup", "Hangup"), ("all", "Hangup")])

    def test_deregister(self):
        """A deregistered handler gets no more events."""
        seen = []
        self.protocol.registerEvent("Hangup", seen.append)
        self.protocol.deregisterEvent("hangup", seen.append)
        self.event(b"Event: Hangup")
        self.assertEqual(seen, [])

    def test_raisingHandlerLoggedConnectionKept(self):
        """A handler that raises is logged; later handlers and events still run."""
        observer = EventLoggingObserver.createWithCleanup(self, AMIProtocol.log.observer)
        seen = []

        def broken(message):
            raise RuntimeError("handler bug")

        self.protocol.registerEvent("Hangup", broken)
        self.protocol.registerEvent("Hangup", seen.append)
        self.event(b"Event: Hangup\r\nUniqueid: 1")
        self.event(b"Event: Hangup\r\nUniqueid: 2")
        self.assertEqual([m["Uniqueid"] for m in seen], ["1", "2"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(len(observer), 2)

    def test_eventsBeforeResponse(self):
        """Events that precede their action's response are dispatched and the response still
        lands."""
        seen = []
        self.protocol.registerEvent("Newchannel", seen.append)
        d = self.protocol.sendAction("Originate", {"Channel": "Local/1@x"})
        aid = self.lastActionID().encode()
        self.event(b"Event: Newchannel\r\nChannel: Local/1@x-0001;1\r\nActionID: " + aid)
        self.respond(b"Response: Success", b"Message: Originate successfully queued")
        self.assertEqual(len(seen), 1)
        self.successResultOf(d)

    def test_repeatedHeadersInEvents(self):
        """Events keep repeated headers such as ChanVariable."""
        seen = []
        self.protocol.registerEvent("Hangup", seen.append)
        self.event(b"Event: Hangup\r\nChanVariable: A=1\r\nChanVariable: B=2")
        self.assertEqual(seen[0].getall("ChanVariable"), ["A=1", "B=2"])

    def test_manyEventsOneRead(self):
        """Many events in one read are all dispatched, in order."""
        seen = []
        self.protocol.registerEvent("Newstate", lambda m: seen.append(m["Uniqueid"]))
        data = b"".join(
            b"Event: Newstate\r\nUniqueid: %d\r\n\r\nEvent: VarSet\r\nValue: x\r\n\r\n" % i
            for i in range(100))
        self.protocol.dataReceived(data)
        self.assertEqual(seen, [str(i) for i in range(100)])


class LoginTests(ProtocolTestCase):
    def test_plain(self):
        """Plain login sends Username, Secret and the Events setting."""
        d = self.protocol.login("sender", "s3cret", events="off")
        self.assertIn(b"Action: Login\r\n", self.transport.value())
        self.assertIn(b"\r\nUsername: sender\r\nSecret: s3cret\r\nEvents: off\r\n",
                      self.transport.value())
        self.respond(b"Response: Success", b"Message: Authentication accepted")
        self.assertIs(self.successResultOf(d), self.protocol)

    def test_md5(self):
        """MD5 login answers the challenge with md5(challenge + secret), never the secret."""
        d = self.protocol.login("listener", "s3cret", events="on", md5=True)
        self.assertIn(b"Action: Challenge\r\n", self.transport.value())
        self.respond(b"Response: Success", b"Challenge: 840307514")
        key = hashlib.md5(b"840307514s3cret").hexdigest().encode()
        self.assertIn(b"AuthType: MD5\r\nUsername: listener\r\nKey: " + key + b"\r\nEvents: on\r\n",
                      self.transport.value())
        self.assertNotIn(b"s3cret", self.transport.value())
        self.respond(b"Response: Success", b"Message: Authentication accepted")
        self.successResultOf(d)

    def test_refused(self):
        """A refused login fails with LoginFailed, whose text never holds the secret."""
        d = self.protocol.login("sender", "s3cret")
        self.respond(b"Response: Error", b"Message: Authentication failed")
        f = self.failureResultOf(d, LoginFailed)
        self.assertEqual(str(f.value), "AMI login as 'sender' refused: Authentication failed")
        self.assertNotIn("s3cret", repr(f.value) + str(f.value) + f.getTraceback())


class FakeEndpoint:
    """An endpoint whose connections are fired by hand."""

    def __init__(self):
        self.attempts = []

    def connect(self, factory):
        d = Deferred()
        self.attempts.append((factory, d))
        return d


class FactoryTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.endpoint = FakeEndpoint()
        self.factory = AMIFactory("sender", "s3cret", self.clock, events="off", timeout=4)

    def connect(self):
        factory, d = self.endpoint.attempts[-1]
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        d.callback(protocol)
        return protocol, transport

    def test_login(self):
        """login() connects, waits for the greeting, logs in and fires with the protocol."""
        d = self.factory.login(self.endpoint)
        protocol, transport = self.connect()
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(GREETING)
        aid = sentActionIDs(transport)[-1].encode()
        protocol.dataReceived(b"Response: Success\r\nActionID: " + aid
                              + b"\r\nMessage: Authentication accepted\r\n\r\n")
        self.assertIs(self.successResultOf(d), protocol)
        self.assertEqual(protocol.amiVersion, "10.0.0")

    def test_connectTimeout(self):
        """A connection attempt that never completes fails after the timeout."""
        d = self.factory.login(self.endpoint)
        self.clock.advance(4)
        self.failureResultOf(d)
        self.assertTrue(self.endpoint.attempts[0][1].called)

    def test_greetingTimeout(self):
        """A peer that never greets is disconnected after the timeout."""
        d = self.factory.login(self.endpoint)
        protocol, transport = self.connect()
        self.clock.advance(4)
        self.failureResultOf(d)
        self.assertTrue(transport.disconnecting)

    def test_loginRefusedDisconnects(self):
        """A refused login fails and closes the connection."""
        d = self.factory.login(self.endpoint)
        protocol, transport = self.connect()
        protocol.dataReceived(GREETING)
        aid = sentActionIDs(transport)[-1].encode()
        protocol.dataReceived(b"Response: Error\r\nActionID: " + aid
                              + b"\r\nMessage: Authentication failed\r\n\r\n")
        self.failureResultOf(d, LoginFailed)
        self.assertTrue(transport.disconnecting)

    def test_reprHidesSecret(self):
        """The factory's repr shows the user but not the secret."""
        self.assertIn("sender", repr(self.factory))
        self.assertNotIn("s3cret", repr(self.factory))

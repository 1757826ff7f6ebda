"""The AMI client against a real Asterisk 22."""

import uuid

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from acqs.ami.errors import AMIError, LoginFailed
from acqs.ami.protocol import AMIFactory, ListResult

from .asterisk import LISTENER, SENDER, SKIP, endpoint


def login(user, events="off", md5=False):
    username, secret = user
    return AMIFactory(username, secret, reactor, events=events, md5=md5, timeout=10).login(
        endpoint())


def callerid():
    """A fresh VICIdial-shaped callerid (20 characters)."""
    return "DL" + uuid.uuid4().hex[:18]


class LoginTests(TestCase):
    skip = SKIP

    async def _pingLogoff(self, md5):
        protocol = await login(SENDER, md5=md5)
        self.assertEqual(protocol.amiVersion, "11.0.0")
        pong = await protocol.ping()
        self.assertEqual(pong["Ping"], "Pong")
        lost = protocol.whenLost()
        await protocol.logoff()
        await lost

    def test_plain(self):
        """A plain-text login with events off pings and logs off cleanly."""
        return Deferred.fromCoroutine(self._pingLogoff(md5=False))

    def test_md5(self):
        """An MD5 challenge login pings and logs off cleanly."""
        return Deferred.fromCoroutine(self._pingLogoff(md5=True))

    async def _bad(self):
        with self.assertRaises(LoginFailed) as caught:
            await login(("sender", "wrong-secret"))
        self.assertIn("Authentication failed", str(caught.exception))
        self.assertNotIn("wrong-secret", str(caught.exception))

    def test_badSecret(self):
        """A wrong secret fails with LoginFailed, and the text never holds the secret."""
        return Deferred.fromCoroutine(self._bad())


class ActionTests(TestCase):
    skip = SKIP

    async def _command(self):
        protocol = await login(SENDER)
        self.addCleanup(protocol.logoff)
        lines = await protocol.command("core show version")
        self.assertTrue(any(line.startswith("Asterisk 22") for line in lines), lines)
        with self.assertRaises(AMIError) as caught:
            await protocol.sendAction("NoSuchAction")
        self.assertIn("Invalid/unknown command", caught.exception.reason)

    def test_commandAndUnknownAction(self):
        """Command output comes back as lines; an unknown action fails with Asterisk's reason."""
        return Deferred.fromCoroutine(self._command())

    async def _originate(self):
        listener = await login(LISTENER, events="on")
        self.addCleanup(listener.logoff)
        cid = callerid()
        events = []
        hungUp = Deferred()

        def collect(message):
            if cid in (message.get("CallerIDName"), message.get("ConnectedLineName")):
                events.append(message)
                if message["Event"] == "Hangup" and message["Channel"].endswith(";1"):
                    if not hungUp.called:
                        hungUp.callback(None)

        listener.registerEvent(None, collect)
        sender = await login(SENDER)
        response = await sender.sendAction("Originate", [
            ("Channel", "Local/8600011@acqs-test"), ("Context", "acqs-test"),
            ("Exten", "8600100"), ("Priority", "1"), ("Callerid", cid), ("Async", "true"),
        ])
        self.assertEqual(response["Message"], "Originate successfully queued")
        await sender.logoff()
        await hungUp.addTimeout(15, reactor)
        up = [e for e in events if e["Event"] == "Newstate" and e["ChannelStateDesc"] == "Up"]
        self.assertTrue(any(e["Channel"].endswith(";1") for e in up), [e.headers for e in events])
        originated = [e for e in up if e["Channel"].endswith(";1")][0]
        self.assertEqual(originated["Uniqueid"], originated["Linkedid"])

    def test_originateWithEvents(self):
        """An Originate's call shows up on the listener: ;1 Up with the callerid, then Hangup."""
        return Deferred.fromCoroutine(self._originate())

    async def _list(self):
        protocol = await login(LISTENER)
        self.addCleanup(protocol.logoff)
        result = await protocol.sendAction("CoreShowChannels")
        self.assertIsInstance(result, ListResult)
        self.assertEqual(result.complete["EventList"], "Complete")
        self.assertEqual(int(result.complete["ListItems"]), len(result.events))

    def test_listAction(self):
        """CoreShowChannels comes back as one list result whose count matches its items."""
        return Deferred.fromCoroutine(self._list())

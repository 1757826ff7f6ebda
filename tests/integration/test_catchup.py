"""
Catching up and masquerades end to end, acqs in-process on the real
reactor and MariaDB, with the simulator speaking each version's dialect:
the listener's catch-up with VICIdial's stock listencron (only Command
allowed), with Asterisk 1.6's nameless channel list, and calls that live
on through the masquerades of Asterisk 1.4 - 11.
"""

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from acqs.ami.message import encode
from acqs.listener import Listener
from acqs.simulator import Exten, User

from ..databases import scratchMySQL
from .daemon import DIALPLAN, SERVER, USERS, SimulatorOnTCP, eventually, startAcqs

CID = "V1126100310000012345"
REDIRECT_CID = "RR1126100310000012345"[:20]
LISTENCRON = User("listencron", "1234", read="system,call,log,verbose,command,agent,user,dtmf",
                  write="command")
# A listen user that may list channels (CoreShowChannels needs system).
LISTENER = User("listener", "listenersecret", read="all", write="system")
PLAN = DIALPLAN.withContext("out", {
    "_9X.": Exten(ring=0.2, answer=True, hold=None, dial="SIP/carrier/${EXTEN:1}"),
}).withContext("slow", {
    "100": Exten(ring=0.5, answer=True, hold=None),
})


class CatchUpMixin:
    dialect = "asterisk22"
    listenUser = LISTENCRON

    def setUp(self):
        self.db = scratchMySQL(self)
        users = [u for u in USERS if u.username != "listener"] + [self.listenUser]
        self.asterisk = SimulatorOnTCP(self, self.dialect, dialplan=PLAN, users=users)
        self.sim = self.asterisk.simulator
        self.observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.acqs = startAcqs(self, self.db, self.asterisk.endpoint,
                              listen_user=self.listenUser.username,
                              listen_secret=self.listenUser.secret)
        self.listener = next(s for s in self.acqs if isinstance(s, Listener))

    def said(self, text):
        return [formatEvent(e) for e in self.observer if text in formatEvent(e)]

    def originate(self, callerid, channel, context="e2e", exten="200"):
        return self.db.insertAction(SERVER, "Originate", callerid, [
            f"Channel: {channel}", f"Context: {context}", f"Exten: {exten}", "Priority: 1",
            f"Callerid: {callerid}"])

    def lockOut(self):
        """The listen user's logins fail from now on, and its link drops."""
        self.sim.users[self.listenUser.username] = User(
            self.listenUser.username, "locked out", self.listenUser.read, self.listenUser.write)
        self.sim.dropAll(self.listenUser.username)

    def letIn(self):
        self.sim.users[self.listenUser.username] = self.listenUser

    async def caughtUpAgain(self):
        """Let the listener in again and wait until it has caught up, and written so."""
        done = self.listener.caughtUp
        self.letIn()
        await eventually(lambda: self.listener.caughtUp > done)
        await self.listener.updates.whenIdle()

    async def unseenAnsweredCall(self):
        """
        A synchronous Originate (as VICIdial sends them) answered while the
        listener was away from its first event on: its row, SENT.
        """
        def away(event):
            if event.channel is not None and event.channel.callerIDName == CID:
                self.sim.onEvent = None
                self.lockOut()

        await eventually(lambda: self.listener.caughtUp)
        self.sim.onEvent = away
        man_id = self.originate(CID, "Local/100@slow")
        await eventually(lambda: self.db.action(man_id) and
                         self.db.action(man_id)["call_answered_at"])
        self.assertEqual(self.db.status(man_id), "SENT")
        self.assertIsNone(self.listener.protocol)
        return man_id


class StockListencronTests(CatchUpMixin, TestCase):
    """VICIdial's stock listencron may run Command only: the catch-up lists channels with
    core show channels concise."""

    async def test_hangupWhileAway(self):
        """A call that hung up while the listener was away is caught up DEAD from the concise
        list; which catch-up is in use, and why, is said once."""
        man_id = self.originate(CID, "Local/200@e2e")
        await eventually(lambda: self.db.status(man_id) == "UPDATED")
        channel = self.db.row(man_id)["channel"]
        self.lockOut()
        await eventually(lambda: self.listener.protocol is None)
        self.sim.hangup(channel)
        await self.caughtUpAgain()
        await eventually(lambda: self.db.status(man_id) == "DEAD")
        self.assertEqual(self.said("The listener catches up"), [
            "The listener catches up with 'core show channels concise': CoreShowChannels is"
            " refused to listencron (Permission denied); it catches up hangups, but that list"
            " has no caller ID names, so it never ends a call it did not see"])
        self.assertEqual(self.said("Cannot list live channels"), [])
        self.assertEqual(self.listener.catchUp, "core show channels concise")

    async def test_liveAnsweredCallNeverDead(self):
        """An answered call the listener never saw, still up, is not ended by a list without
        caller ID names: its row stays SENT."""
        man_id = await self.unseenAnsweredCall()
        await self.caughtUpAgain()
        self.assertEqual(self.db.status(man_id), "SENT")
        self.assertEqual(len(self.sim.channels), 2)  # its two Local legs, up


class ListingListenerTests(CatchUpMixin, TestCase):
    """A listen user allowed CoreShowChannels on Asterisk 22, whose list has names."""

    listenUser = LISTENER

    async def test_liveAnsweredCallFound(self):
        """The unseen answered call is found in the list by its caller ID name: UPDATED."""
        man_id = await self.unseenAnsweredCall()
        await self.caughtUpAgain()
        await eventually(lambda: self.db.status(man_id) == "UPDATED")
        self.assertEqual(self.said("The listener catches up"),
                         ["The listener catches up with CoreShowChannels"])


class Asterisk16Tests(CatchUpMixin, TestCase):
    """Asterisk 1.6's CoreShowChannels has no caller ID names."""

    dialect = "asterisk16"
    listenUser = LISTENER

    async def test_liveAnsweredCallNeverDead(self):
        """An answered call the listener never saw, still up, stays SENT: 1.6's list cannot
        say which callerid its channels carry."""
        man_id = await self.unseenAnsweredCall()
        await self.caughtUpAgain()
        self.assertEqual(self.db.status(man_id), "SENT")
        self.assertTrue(self.sim.channels)


class ZombieMixin(CatchUpMixin):
    listenUser = LISTENER

    async def test_redirectedCallLivesOn(self):
        """A Redirect of the call's bridged trunk leg masquerades it: the <ZOMBIE> hangs up
        with the row's uniqueid, yet the row stays UPDATED, takes the uniqueid the call goes
        on with, survives a catch-up, and is DEAD when the call really hangs up."""
        hungUp = []
        self.sim.onEvent = lambda e: e.name == "Hangup" and hungUp.append(e.channel.name)
        man_id = self.originate(CID, "Local/95551234@out")
        await eventually(lambda: self.db.row(man_id)["channel"].startswith("SIP/carrier"))
        row = self.db.row(man_id)
        await eventually(lambda: self.sim.channels[row["channel"]].state == "Up")
        self.assertEqual(row["status"], "UPDATED")
        self.db.insertAction(SERVER, "Redirect", REDIRECT_CID, [
            f"Channel: {row['channel']}", "Context: e2e", "Exten: 200", "Priority: 1"])
        await eventually(lambda: self.db.row(man_id)["uniqueid"] != row["uniqueid"])
        await eventually(lambda: any(name.endswith("<ZOMBIE>") for name in hungUp))
        self.assertEqual(self.db.row(man_id)["status"], "UPDATED")
        done = self.listener.caughtUp
        self.sim.dropAll("listener")
        await eventually(lambda: self.listener.caughtUp > done)
        await self.listener.updates.whenIdle()
        self.assertEqual(self.db.status(man_id), "UPDATED")
        self.sim.hangup(row["channel"])
        await eventually(lambda: self.db.status(man_id) == "DEAD")
        self.assertEqual(self.db.row(man_id)["channel"], row["channel"])


class Asterisk11ZombieTests(ZombieMixin, TestCase):
    dialect = "asterisk11"


class Asterisk18ZombieTests(ZombieMixin, TestCase):
    dialect = "asterisk18"


class Asterisk14ZombieTests(ZombieMixin, TestCase):
    dialect = "asterisk14"
    listenUser = User("listener", "listenersecret", read="all", write="system,call")


class DialingTests(CatchUpMixin, TestCase):
    """
    A DAHDI trunk dialing before it rings: the simulator has no DAHDI
    channels, so their events are fed to the listener's link as Asterisk 11
    prints them.
    """

    dialect = "asterisk11"
    listenUser = LISTENER

    def arrives(self, name, **headers):
        """C{name} arrives on the listener's link."""
        self.listener.protocol.dataReceived(encode(
            [("Event", name), ("Privilege", "call,all")] + list(headers.items())))

    def dialing(self, uniqueid="1796670002.9"):
        self.arrives("Newstate", Channel="DAHDI/i1/3125551234-1", ChannelState="3",
                      ChannelStateDesc="Dialing", CallerIDNum="3125551234", CallerIDName=CID,
                      ConnectedLineNum="", ConnectedLineName="", Uniqueid=uniqueid)

    async def test_failsBeforeRinging(self):
        """A call whose trunk fails before it rings ends DEAD on the trunk's channel, which
        VICIdial's agent screen reads: dialing leaves the row SENT with that channel."""
        await eventually(lambda: self.listener.protocol)
        self.sim.failOriginates = True
        man_id = self.originate(CID, "Local/913125551234@default")
        await eventually(lambda: self.db.action(man_id) and self.db.action(man_id)["answered_at"])
        self.dialing()
        await eventually(lambda: self.db.row(man_id)["channel"] == "DAHDI/i1/3125551234-1")
        self.assertEqual((self.db.status(man_id), self.db.row(man_id)["uniqueid"]),
                         ("SENT", "1796670002.9"))
        self.arrives("Hangup", Channel="DAHDI/i1/3125551234-1", Uniqueid="1796670002.9",
                      CallerIDNum="3125551234", CallerIDName=CID, ConnectedLineNum="",
                      ConnectedLineName="", AccountCode="", Cause="34",
                      **{"Cause-txt": "Circuit/channel congestion"})
        await eventually(lambda: self.db.status(man_id) == "DEAD")
        self.assertEqual(self.db.row(man_id)["channel"], "DAHDI/i1/3125551234-1")

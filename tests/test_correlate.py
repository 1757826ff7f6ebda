"""Tests for acqs.correlate: which events move which rows."""

from twisted.trial.unittest import SynchronousTestCase

from acqs.ami.message import Message
from acqs.correlate import (
    ENDED_UNSEEN,
    HANGUP,
    STATE,
    CallTracker,
    ChannelEvent,
    cleanCallerID,
    isOriginatedLocalLeg,
    readEvent,
)
from acqs.store.records import CallDead, CallEnded, CallUpdated, TrackedCalls

CID = "DL40130172253cc160"


def event(**headers):
    return Message(list(headers.items()))


def newstate12(channel, uniqueid, state, name=CID, connected="<unknown>", linkedid="1.1"):
    """A Newstate as Asterisk 12 and later print it; 1.1 is the call's first channel."""
    number = {"Ringing": "5", "Up": "6", "Down": "0", "Ring": "4"}[state]
    return readEvent(event(Event="Newstate", Channel=channel, ChannelState=number,
                           ChannelStateDesc=state, CallerIDNum="8600100",
                           CallerIDName=name, ConnectedLineName=connected,
                           Uniqueid=uniqueid, Linkedid=linkedid))


def hangup(channel, uniqueid, cause="16"):
    return readEvent(event(Event="Hangup", Channel=channel, Uniqueid=uniqueid,
                           CallerIDName=CID, Cause=cause, **{"Cause-txt": "Normal Clearing"}))


class CleanCallerIDTests(SynchronousTestCase):
    def test_plain(self):
        """A plain VICIdial callerid is kept as is."""
        self.assertEqual(cleanCallerID(CID), CID)

    def test_quotes(self):
        """A leading quote goes, and everything from the next quote on."""
        self.assertEqual(cleanCallerID('"V1126100312000012345" <3125551234>'),
                         "V1126100312000012345")

    def test_longWordCutAtSpace(self):
        """A name holding 18+ non-space characters in a row is cut at its first space."""
        self.assertEqual(cleanCallerID("M1126100312000012345 extra"), "M1126100312000012345")
        self.assertEqual(cleanCallerID("John Smith"), "John Smith")

    def test_truncatedToColumn(self):
        """Names longer than the callerid column are cut to 20, as MySQL stores them."""
        self.assertEqual(cleanCallerID("20261126-101010_8600051_recording"),
                         "20261126-101010_8600")

    def test_empty(self):
        """No name cleans to the empty string."""
        self.assertEqual(cleanCallerID(None), "")
        self.assertEqual(cleanCallerID('""'), "")


class ReadEventTests(SynchronousTestCase):
    def test_asterisk12Newstate(self):
        """An Asterisk 12+ Newstate gives channel, uniqueid, names and state."""
        e = newstate12("SIP/carrier-00000001", "1764152345.7", "Ringing")
        self.assertEqual(e, ChannelEvent(STATE, "SIP/carrier-00000001", "1764152345.7",
                                         (CID, "<unknown>"), state="ringing", linkedid="1.1"))

    def test_asterisk14Newstate(self):
        """An Asterisk 1.4 Newstate (State:, CallerID:) reads the same way."""
        e = readEvent(event(Event="Newstate", Privilege="call,all", Channel="Zap/1-1",
                            State="Up", CallerID="3125551234", CallerIDName=CID,
                            Uniqueid="1075500000.12"))
        self.assertEqual((e.kind, e.channel, e.uniqueid, e.names, e.state),
                         (STATE, "Zap/1-1", "1075500000.12", (CID,), "up"))

    def test_stateNumberOnly(self):
        """A ChannelState number without description still gives the state."""
        e = readEvent(event(Event="Newstate", Channel="SIP/1-1", ChannelState="5",
                            Uniqueid="1.1", CallerIDName=CID))
        self.assertEqual(e.state, "ringing")

    def test_hangup(self):
        """A Hangup gives the uniqueid and cause."""
        e = hangup("SIP/carrier-00000001", "1764152345.7", cause="17")
        self.assertEqual((e.kind, e.uniqueid, e.cause), (HANGUP, "1764152345.7", "17 Normal Clearing"))

    def test_otherEventsIgnored(self):
        """Events the rules do not use, or lacking channel or uniqueid, read as None."""
        self.assertIsNone(readEvent(event(Event="VarSet", Channel="SIP/1-1", Uniqueid="1.1")))
        self.assertIsNone(readEvent(event(Event="Hangup", Channel="SIP/1-1")))

    def test_localLegs(self):
        """The originated Local leg is ;1 (,1 in Asterisk 1.4), never ;2."""
        self.assertTrue(isOriginatedLocalLeg("Local/8600011@acqs-test-00000001;1"))
        self.assertTrue(isOriginatedLocalLeg("Local/8600011@default-7f3a,1"))
        self.assertFalse(isOriginatedLocalLeg("Local/8600011@acqs-test-00000001;2"))
        self.assertFalse(isOriginatedLocalLeg("SIP/carrier-00000001"))


class TrackerTests(SynchronousTestCase):
    def setUp(self):
        self.tracker = CallTracker()
        self.tracker.expect(CID)

    def test_untrackedCallsIgnored(self):
        """Events of calls acqs did not originate produce no update."""
        e = newstate12("SIP/other-1", "9.9", "Up", name="V1126100312000099999")
        self.assertEqual(self.tracker.observe(e), [])
        self.assertEqual(self.tracker.observe(hangup("SIP/other-1", "9.9")), [])

    def test_localOnlyCall(self):
        """With only Local legs the originated ;1 leg is written, once, and its hangup is DEAD."""
        t = self.tracker
        self.assertEqual(t.observe(newstate12("Local/8600012@acqs-test-00000001;2", "1.2",
                                              "Ringing")), [])
        ringing = t.observe(newstate12("Local/8600012@acqs-test-00000001;1", "1.1", "Ringing"))
        self.assertEqual(ringing, [CallUpdated(CID, "Local/8600012@acqs-test-00000001;1", "1.1")])
        self.assertEqual(t.observe(newstate12("Local/8600012@acqs-test-00000001;1", "1.1", "Up")),
                         [])
        self.assertEqual(t.observe(hangup("Local/8600012@acqs-test-00000001;2", "1.2")), [])
        self.assertEqual(t.observe(hangup("Local/8600012@acqs-test-00000001;1", "1.1")),
                         [CallDead("1.1", "Local/8600012@acqs-test-00000001;1", "16 Normal Clearing")])
        self.assertEqual(len(t), 0)

    def test_dialledLegWins(self):
        """A dialled non-Local leg replaces the Local leg; only its hangup is DEAD."""
        t = self.tracker
        t.observe(newstate12("Local/8600030@acqs-test-00000001;1", "1.1", "Up"))
        updated = t.observe(newstate12("SIP/carrier-00000002", "1.3", "Ringing"))
        self.assertEqual(updated, [CallUpdated(CID, "SIP/carrier-00000002", "1.3")])
        self.assertEqual(t.observe(newstate12("Local/8600030@acqs-test-00000001;1", "1.1", "Up")),
                         [])
        self.assertEqual(t.observe(hangup("Local/8600030@acqs-test-00000001;1", "1.1")), [])
        self.assertEqual(t.observe(hangup("SIP/carrier-00000002", "1.3")),
                         [CallDead("1.3", "SIP/carrier-00000002", "16 Normal Clearing")])

    def test_connectedLineName(self):
        """A leg whose caller ID name is another's is matched by its ConnectedLineName."""
        e = newstate12("SIP/agent-0001", "2.1", "Up", name="Customer", connected=CID)
        self.assertEqual(self.tracker.observe(e), [CallUpdated(CID, "SIP/agent-0001", "2.1")])

    def test_ringingOrUpOnly(self):
        """Other states (Down, Ring, Dialing) update nothing."""
        self.assertEqual(self.tracker.observe(newstate12("SIP/c-1", "1.1", "Ring")), [])
        self.assertEqual(self.tracker.observe(newstate12("SIP/c-1", "1.1", "Down")), [])

    def test_quotedNameMatches(self):
        """An event's quoted, over-long caller ID name matches the row's cleaned callerid."""
        e = newstate12("SIP/c-1", "1.1", "Up", name=f'"{CID}" <3125551234>')
        self.assertEqual(self.tracker.observe(e), [CallUpdated(CID, "SIP/c-1", "1.1")])

    def test_refreshAddsCallsFromDatabase(self):
        """Calls found in the database after a restart are followed, and their hangups seen."""
        t = CallTracker()
        t.refresh(TrackedCalls(callerids=("V1126100312000012345",), uniqueids=("7.7",)))
        self.assertEqual(t.observe(hangup("SIP/c-9", "7.7")),
                         [CallDead("7.7", "SIP/c-9", "16 Normal Clearing")])
        self.assertEqual(len(t.observe(newstate12("SIP/c-10", "7.8", "Up",
                                                  name="V1126100312000012345"))), 1)

    def test_bounded(self):
        """At most maxCalls calls are kept, the least recently seen dropped first."""
        t = CallTracker(maxCalls=2)
        for cid in ("A" * 20, "B" * 20, "C" * 20):
            t.expect(cid)
        self.assertEqual(len(t), 2)
        self.assertEqual(t.observe(newstate12("SIP/c-1", "1.1", "Up", name="A" * 20)), [])

    def test_reconcile(self):
        """After a reconnect, tracked uniqueids no longer live are DEAD, live progress is
        UPDATED, and uniqueids tracked after the snapshot are left alone."""
        t = self.tracker
        t.expect("V1126100312000012345")
        t.observe(newstate12("SIP/c-1", "1.1", "Up"))
        before = t.uniqueids()
        t.observe(newstate12("SIP/c-2", "1.2", "Up", name="V1126100312000012345"))
        live = [readEvent(event(Event="CoreShowChannel", Channel="SIP/c-3", Uniqueid="1.3",
                                ChannelState="6", ChannelStateDesc="Up", CallerIDName="Nobody",
                                ConnectedLineName="<unknown>"))]
        self.assertEqual(t.reconcile(before, live), [CallDead("1.1", "", None)])
        self.assertEqual(t.uniqueids(), frozenset(["1.2"]))


class Asterisk22DialTests(SynchronousTestCase):
    def test_dialledLocalLegDoesNotWin(self):
        """When the originated Local channel dials another Local channel, whose ;1 rings
        first, the row gets the originated leg (uniqueid == linkedid), as Asterisk 22 orders it."""
        t = CallTracker()
        t.expect(CID)
        dialled = readEvent(event(Event="Newstate", Channel="Local/8600012@acqs-test-0000007c;1",
                                  ChannelState="5", ChannelStateDesc="Ringing", CallerIDName=CID,
                                  Uniqueid="1795688053.248", Linkedid="1795688053.246"))
        originated = readEvent(event(Event="Newstate", Channel="Local/8600030@acqs-test-0000007b;1",
                                     ChannelState="5", ChannelStateDesc="Ringing", CallerIDName=CID,
                                     Uniqueid="1795688053.246", Linkedid="1795688053.246"))
        self.assertEqual(t.observe(dialled), [])
        self.assertEqual(t.observe(originated),
                         [CallUpdated(CID, "Local/8600030@acqs-test-0000007b;1", "1795688053.246")])


def originateResponse(response="Success", channel="Local/8600011@acqs-test-00000076;1",
                      uniqueid="1795688033.236", name=CID):
    """An OriginateResponse event as Asterisk 22 prints it."""
    return readEvent(event(Event="OriginateResponse", Response=response, Channel=channel,
                           Reason="4" if response == "Success" else "0", Uniqueid=uniqueid,
                           CallerIDNum="<unknown>", CallerIDName=name))


class UnseenCallTests(SynchronousTestCase):
    def setUp(self):
        self.tracker = CallTracker()
        self.tracker.expect(CID)

    def test_originateResponseSuccess(self):
        """A Success OriginateResponse counts as the originated channel answering."""
        self.assertEqual(self.tracker.observe(originateResponse()),
                         [CallUpdated(CID, "Local/8600011@acqs-test-00000076;1",
                                      "1795688033.236")])
        self.assertEqual(self.tracker.uniqueids(), frozenset(["1795688033.236"]))

    def test_originateResponseFailure(self):
        """A Failure OriginateResponse ends the wait for the call, and moves no row."""
        self.assertEqual(self.tracker.observe(originateResponse("Failure", "", "")), [])
        self.assertEqual(len(self.tracker), 0)

    def test_answeredUnseenEnds(self):
        """An answered call of which nothing was seen, that no live channel carries, ended;
        one a live channel carries is UPDATED instead."""
        t = self.tracker
        t.expect("V1126100312000012345")
        self.assertTrue(t.answered(CID))
        self.assertTrue(t.answered("V1126100312000012345"))
        unseen = t.unseenAnswered()
        live = [readEvent(event(Event="CoreShowChannel", Channel="SIP/c-3", Uniqueid="1.3",
                                ChannelState="6", ChannelStateDesc="Up",
                                CallerIDName="V1126100312000012345"))]
        self.assertEqual(t.reconcile(t.uniqueids(), live, unseen), [
            CallUpdated("V1126100312000012345", "SIP/c-3", "1.3"),
            CallEnded(CID, ENDED_UNSEEN),
        ])
        self.assertEqual(t.unseenAnswered(), frozenset())

    def test_seenCallsNeverEndUnseen(self):
        """A call whose ringing was seen is no unseen answer, whatever the live list says."""
        self.tracker.observe(newstate12("SIP/c-1", "1.1", "Ringing"))
        self.assertFalse(self.tracker.answered(CID))
        self.assertEqual(self.tracker.reconcile(frozenset(), [], self.tracker.unseenAnswered()),
                         [])

    def test_answeredLaterThanTheList(self):
        """An answer that came after the live list was asked for is left for the next one."""
        self.tracker.answered(CID)
        self.assertEqual(self.tracker.reconcile(frozenset(), [], frozenset()), [])
        self.assertEqual(self.tracker.unseenAnswered(), frozenset([CID]))

    def test_refreshBringsUnseenAnswers(self):
        """Answered calls the database says were never seen (after a restart) are followed."""
        t = CallTracker()
        t.refresh(TrackedCalls(callerids=(CID,), uniqueids=(), answered=(CID,)))
        self.assertEqual(t.unseenAnswered(), frozenset([CID]))

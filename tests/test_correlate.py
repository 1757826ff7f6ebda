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
    readConcise,
    readEvent,
)
from acqs.store.records import (
    CallDead,
    CallDialing,
    CallEnded,
    CallMoved,
    CallUpdated,
    TrackedCalls,
)

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
        self.assertEqual((e.kind, e.uniqueid, e.cause),
                         (HANGUP, "1764152345.7", "17 Normal Clearing"))

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
                         [CallDead("1.1", "Local/8600012@acqs-test-00000001;1",
                                   "16 Normal Clearing")])
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
        """Other states (Down, Ring) update nothing."""
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


def newstate18(channel, uniqueid, state, name=CID):
    """A Newstate as Asterisk 1.8 - 11 print it (no Linkedid)."""
    return readEvent(event(Event="Newstate", Channel=channel, ChannelState="3",
                           ChannelStateDesc=state, CallerIDNum="3125551234",
                           CallerIDName=name, ConnectedLineNum="", ConnectedLineName="",
                           Uniqueid=uniqueid))


def rename(old, new, uniqueid):
    """A Rename as Asterisk 1.6 - 11 print it."""
    return readEvent(event(Event="Rename", Channel=old, Newname=new, Uniqueid=uniqueid))


class DialingTests(SynchronousTestCase):
    """Newstate Dialing (DAHDI, PRI, analog legs) before the leg rings."""

    def setUp(self):
        self.tracker = CallTracker()
        self.tracker.expect(CID)

    def test_dialingLegTracked(self):
        """A dialing non-Local leg gives the row its channel and uniqueid (CallDialing); its
        ringing then UPDATEs the row, and its hangup makes it DEAD."""
        t = self.tracker
        self.assertEqual(t.observe(newstate18("DAHDI/i1/3125551234-1", "5.1", "Dialing")),
                         [CallDialing(CID, "DAHDI/i1/3125551234-1", "5.1")])
        self.assertEqual(t.observe(newstate18("DAHDI/i1/3125551234-1", "5.1", "Ringing")),
                         [CallUpdated(CID, "DAHDI/i1/3125551234-1", "5.1")])
        self.assertEqual(t.observe(hangup("DAHDI/i1/3125551234-1", "5.1")),
                         [CallDead("5.1", "DAHDI/i1/3125551234-1", "16 Normal Clearing")])

    def test_failsBeforeRinging(self):
        """A dialing leg that hangs up before it rings makes the row DEAD with its channel."""
        t = self.tracker
        t.observe(newstate18("DAHDI/i1/3125551234-1", "5.1", "Dialing"))
        self.assertEqual(t.observe(hangup("DAHDI/i1/3125551234-1", "5.1", cause="34")),
                         [CallDead("5.1", "DAHDI/i1/3125551234-1", "34 Normal Clearing")])

    def test_asterisk14AndOffhook(self):
        """Asterisk 1.4's State: Dialing and the Dialing Offhook state count as dialing."""
        old = readEvent(event(Event="Newstate", Channel="Zap/1-1", State="Dialing",
                              CallerID="3125551234", CallerIDName=CID, Uniqueid="5.1"))
        self.assertEqual(self.tracker.observe(old), [CallDialing(CID, "Zap/1-1", "5.1")])
        t = CallTracker()
        t.expect(CID)
        self.assertEqual(t.observe(newstate18("DAHDI/1-1", "5.2", "Dialing Offhook")),
                         [CallDialing(CID, "DAHDI/1-1", "5.2")])

    def test_localNeverDials(self):
        """A Local channel's Dialing moves nothing (VICIdial reads Local as unresolved)."""
        self.assertEqual(self.tracker.observe(
            newstate18("Local/913125551234@default-00000001;2", "5.1", "Dialing")), [])
        self.assertEqual(self.tracker.uniqueids(), frozenset())

    def test_neverBackwards(self):
        """A leg that dials after a non-Local leg rang replaces nothing."""
        t = self.tracker
        t.observe(newstate18("SIP/carrier-00000001", "5.1", "Ringing"))
        self.assertEqual(t.observe(newstate18("DAHDI/i1/3125551234-1", "5.2", "Dialing")), [])
        self.assertEqual(t.uniqueids(), frozenset(["5.1"]))

    def test_afterLocalLeg(self):
        """A leg that dials after the originated Local leg was UPDATED takes over the call:
        its hangup is DEAD, the Local leg's is not."""
        t = self.tracker
        t.observe(newstate18("Local/8600051@default-00000001;1", "5.1", "Ringing"))
        self.assertEqual(t.observe(newstate18("DAHDI/i1/3125551234-1", "5.3", "Dialing")),
                         [CallDialing(CID, "DAHDI/i1/3125551234-1", "5.3")])
        self.assertEqual(t.observe(hangup("Local/8600051@default-00000001;1", "5.1")), [])
        self.assertEqual(len(t.observe(hangup("DAHDI/i1/3125551234-1", "5.3"))), 1)

    def test_otherStatesStillIgnored(self):
        """Down and Ring still update nothing."""
        self.assertEqual(self.tracker.observe(newstate18("DAHDI/1-1", "5.1", "Down")), [])
        self.assertEqual(self.tracker.observe(newstate18("DAHDI/1-1", "5.1", "Ring")), [])


class ZombieTests(SynchronousTestCase):
    """Masquerades on Asterisk 1.4 - 11: <MASQ>, <ZOMBIE>, Rename."""

    def setUp(self):
        self.tracker = CallTracker()
        self.tracker.expect(CID)
        self.tracker.observe(newstate18("SIP/trunk-00000001", "7.1", "Up"))

    def masquerade(self, original="AsyncGoto/SIP/trunk-00000001", newUniqueid="7.9"):
        """The events of a Redirect of the bridged trunk channel, in 1.8's order."""
        return [
            rename("SIP/trunk-00000001", "SIP/trunk-00000001<MASQ>", "7.1"),
            rename(original, "SIP/trunk-00000001", newUniqueid),
            rename("SIP/trunk-00000001<MASQ>", f"{original}<ZOMBIE>", "7.1"),
            hangup(f"{original}<ZOMBIE>", "7.1"),
        ]

    def test_zombieHangupNeverDead(self):
        """The <ZOMBIE> hangup carries the tracked uniqueid, yet moves no row."""
        self.assertEqual(self.tracker.observe(hangup("AsyncGoto/SIP/trunk-00000001<ZOMBIE>",
                                                     "7.1")), [])
        self.assertEqual(self.tracker.uniqueids(), frozenset(["7.1"]))

    def test_loserStatesIgnored(self):
        """Newstate of a <ZOMBIE> or <MASQ> channel updates nothing."""
        for name in ("SIP/trunk-00000002<ZOMBIE>", "SIP/trunk-00000002<MASQ>"):
            self.assertEqual(self.tracker.observe(newstate18(name, "7.2", "Up")), [])

    def test_renameFollowed(self):
        """The channel that takes the tracked name carries the call on: its uniqueid is the
        call's (CallMoved), and its hangup makes the row DEAD."""
        updates = [u for e in self.masquerade() for u in self.tracker.observe(e)]
        self.assertEqual(updates, [CallMoved("7.1", "7.9", "SIP/trunk-00000001")])
        self.assertEqual(self.tracker.uniqueids(), frozenset(["7.9"]))
        self.assertEqual(self.tracker.observe(hangup("SIP/trunk-00000001", "7.9")),
                         [CallDead("7.9", "SIP/trunk-00000001", "16 Normal Clearing")])

    def test_localOptimisation(self):
        """A Local channel optimised away gives the trunk's name to its ;1 (Rename), and the
        trunk's uniqueid goes with the ;1's <ZOMBIE>: the call goes on as the ;1's uniqueid."""
        events = self.masquerade("Local/913125551234@default-00000001;1", "7.0")
        updates = [u for e in events for u in self.tracker.observe(e)]
        self.assertEqual(updates, [CallMoved("7.1", "7.0", "SIP/trunk-00000001")])

    def test_asterisk14Rename(self):
        """Asterisk 1.4's Rename (Oldname, Newname) is read the same way."""
        e = readEvent(event(Event="Rename", Oldname="AsyncGoto/SIP/trunk-00000001",
                            Newname="SIP/trunk-00000001", Uniqueid="7.9"))
        self.assertEqual(self.tracker.observe(e), [CallMoved("7.1", "7.9", "SIP/trunk-00000001")])

    def test_otherRenamesIgnored(self):
        """A Rename to a name no tracked call has, or to the same uniqueid, moves nothing."""
        self.assertEqual(self.tracker.observe(rename("SIP/a-1", "SIP/b-1", "7.5")), [])
        self.assertEqual(self.tracker.observe(rename("SIP/x", "SIP/trunk-00000001", "7.1")), [])
        self.assertFalse(self.tracker.tracksChannel("SIP/b-1"))
        self.assertTrue(self.tracker.tracksChannel("SIP/trunk-00000001"))

    def test_catchUpAfterUnseenRename(self):
        """Without the Rename, a <ZOMBIE> hangup keeps the uniqueid tracked, and the catch-up
        finds its channel live under another uniqueid: the call goes on, not DEAD."""
        t = self.tracker
        t.observe(hangup("AsyncGoto/SIP/trunk-00000001<ZOMBIE>", "7.1"))
        before = t.uniqueids()
        live = readConcise(["SIP/trunk-00000001!default!8600051!2!Up!MeetMe!8600051,F!"
                            "3125551234!!!3!40!(None)!7.9"])
        self.assertEqual(t.reconcile(before, live),
                         [CallMoved("7.1", "7.9", "SIP/trunk-00000001")])
        self.assertEqual(t.uniqueids(), frozenset(["7.9"]))

    def test_reusedNameIsNoMasquerade(self):
        """A channel name used again by a new call (DAHDI's are) after a hangup nobody saw is
        no masquerade: the tracked uniqueid is DEAD."""
        t = self.tracker
        before = t.uniqueids()
        live = readConcise(["SIP/trunk-00000001!default!100!1!Up!Dial!x!5551234!!!3!40!(None)!"
                            "8.1"])
        self.assertEqual(t.reconcile(before, live), [CallDead("7.1", "", None)])

    def test_refreshedCallFollowed(self):
        """A call known only from the database (after a restart) is followed through a
        Rename by the channel the database holds."""
        t = CallTracker()
        t.refresh(TrackedCalls(callerids=(CID,), uniqueids=("7.1",),
                               channels=("SIP/trunk-00000001",)))
        self.assertEqual(t.observe(rename("AsyncGoto/SIP/trunk-00000001", "SIP/trunk-00000001",
                                          "7.9")),
                         [CallMoved("7.1", "7.9", "SIP/trunk-00000001")])


class ConciseTests(SynchronousTestCase):
    """Lines of core show channels concise, per version."""

    def test_asterisk22(self):
        """Asterisk 22's line (the real capture's) gives channel, state and uniqueid; the
        application's data may hold the separator."""
        [e, f] = readConcise([
            "Local/8600014@acqs-test-00000008;1!acqs-test!!1!Up!AppDial!(Outgoing Line)!8600060!"
            "!!3!2!c2509942-dc8e-4830-9c7e-508b1d945aef!1796667077.16",
            "SIP/c-1!default!100!1!Ringing!Dial!SIP/x!y,30!5551234!!!3!2!!box-1796667077.17",
        ])
        self.assertEqual(e, ChannelEvent(STATE, "Local/8600014@acqs-test-00000008;1",
                                         "1796667077.16", (), state="up"))
        self.assertEqual((f.channel, f.uniqueid, f.state),
                         ("SIP/c-1", "box-1796667077.17", "ringing"))

    def test_asterisk16And18(self):
        """1.6's 13 fields and 1.8 - 11's 14 end with the uniqueid."""
        [a] = readConcise(["SIP/c-1!default!100!1!Up!Dial!SIP/x!5551234!!3!40!SIP/y-2!12.3"])
        [b] = readConcise(["SIP/c-1!default!100!1!Up!Dial!SIP/x!5551234!!!3!40!SIP/y-2!12.4"])
        self.assertEqual((a.uniqueid, b.uniqueid), ("12.3", "12.4"))

    def test_noUniqueids(self):
        """Asterisk 1.4's list (no uniqueid), or text that is no list, reads as None."""
        self.assertIsNone(readConcise(["SIP/c-1!default!100!1!Up!Dial!SIP/x!5551234!!3!40!(None)"]))
        self.assertIsNone(readConcise(["No such command 'core show channels concise'"]))

    def test_empty(self):
        """No channels: an empty list."""
        self.assertEqual(readConcise([]), [])

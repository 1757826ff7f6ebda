"""
Tests for acqs.sender: its transitions on C{task.Clock}, with a queue store in
memory and sessions the test moves on by hand.  The SQL behind the store is
tested in test_store and test_store_mariadb (the racing stores).
"""

from typing import Dict, List, Optional

import attr
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from acqs.ami.errors import LoginFailed
from acqs.ami.message import Message
from acqs.sender import MAX_PAUSE, NAP, SHORT_LIFE, Sender
from acqs.session import ClaimLost, MarkFailed, NotRun, NotSent
from acqs.store.interfaces import CannotWait, IQueueStore, StoreUnavailable
from acqs.store.duties import DutyWritten
from acqs.store.reads import NewRows
from acqs.store.records import (
    CMD_LINE_COLUMNS,
    NEW,
    QUEUE,
    SENT,
    ActionRow,
    Pruned,
    Recovery,
    SendResult,
    ServerInfo,
    TrackedCalls,
)

SERVER = "10.10.11.12"


@attr.s(auto_attribs=True)
class Row:
    """A vicidial_manager row and acqs' record of it, as far as the sender moves them."""

    man_id: int
    action: str
    lines: List[str]
    status: str = NEW
    response: str = "N"
    token: Optional[str] = None
    outcome: Optional[str] = None
    reason: Optional[str] = None
    attempts: int = 0
    text: Optional[str] = None


@implementer(IQueueStore)
class MemoryStore:
    """
    L{IQueueStore} in memory, with the contract the sender relies on: claims
    take NEW rows oldest first under a token of their own and mark the first
    C{send}; marks, answers and releases act only under that token; a wait
    for NEW rows waits on the clock, as MariaDB's does (where C{waits}), and
    a look answers at once.

    Knobs: C{failing} (claims and looks raise it), C{markFailing} (marks
    raise it), C{gate} (a Deferred each claim awaits before it takes rows).
    """

    def __init__(self, clock: Clock, waits: bool = True):
        self.clock = clock
        self.serverInfo = ServerInfo("memory", "InnoDB", skipLocked=True, waits=waits)
        self.rows: Dict[int, Row] = {}
        self.claims: List[dict] = []  # the arguments of every claim
        self.waits: List[dict] = []  # the arguments of every wait, and what it found
        self.looks = 0
        self.marks: List[list] = []  # the claims of every markSending
        self.failing: Optional[Exception] = None
        self.markFailing: Optional[Exception] = None
        self.gate: Optional[Deferred] = None
        self._newRow: Optional[Deferred] = None
        self._tokens = 0

    def insert(self, action: str = "Hangup", *lines: str) -> int:
        """A GUI client's INSERT; its man_id."""
        man_id = len(self.rows) + 1
        self.rows[man_id] = Row(man_id, action, list(lines or ["Channel: SIP/x-1"]))
        waiting, self._newRow = self._newRow, None
        if waiting is not None:  # a waiting claim sees it a moment later
            self.clock.callLater(0, lambda: waiting.called or waiting.callback(None))
        return man_id

    def status(self, man_id: int) -> str:
        return self.rows[man_id].status

    def lookForNew(self, server_ip, originates=True, others=True):
        self.looks += 1
        if self.failing is not None:
            return fail(self.failing)
        return succeed(bool(self._new(originates, others)))

    def waitForNew(self, server_ip, timeout, step, originates=True, others=True):
        return Deferred.fromCoroutine(self._waitForNew(timeout, step, originates, others))

    async def _waitForNew(self, timeout: float, step: float, originates: bool = True,
                          others: bool = True):
        if not self.serverInfo.waits:
            raise CannotWait("memory cannot wait")
        wait = dict(timeout=timeout, step=step, at=self.clock.seconds(), originates=originates,
                    others=others)
        self.waits.append(wait)
        if self.failing is not None:
            raise self.failing
        started = self.clock.seconds()
        if not self._new(originates, others):
            waiting = self._newRow = Deferred()
            call = self.clock.callLater(timeout, lambda: waiting.called or waiting.callback(None))
            await waiting
            if call.active():
                call.cancel()
        wait["found"] = bool(self._new(originates, others))
        return wait["found"], 1 + int((self.clock.seconds() - started) / step)

    def claim(self, server_ip, limit, instance, send=0, refuse=None, originates=None):
        return Deferred.fromCoroutine(self._claim(limit, send, originates))

    async def _claim(self, limit: int, send: int,
                     originates: Optional[int] = None) -> List[ActionRow]:
        self.claims.append(dict(limit=limit, send=send, originates=originates,
                                at=self.clock.seconds()))
        if self.failing is not None:
            raise self.failing
        if self.gate is not None:
            await self.gate
        self._tokens += 1
        token = f"claim{self._tokens}"
        claimed = []
        if originates is None:
            rows = self._new()[:limit]
        else:
            rows = ([row for row in self._new() if row.action != "Originate"][:limit]
                    + [row for row in self._new() if row.action == "Originate"][:originates])
            rows.sort(key=lambda row: row.man_id)
        for n, row in enumerate(rows):
            marked = n < send
            row.status, row.token = (SENT if marked else QUEUE), token
            row.outcome = "sending" if marked else "queued"
            lines = tuple(row.lines) + ("",) * (len(CMD_LINE_COLUMNS) - len(row.lines))
            claimed.append(ActionRow(row.man_id, SERVER, row.action, "", lines, claim=token,
                                     marked=marked))
        return claimed

    def _new(self, originates: bool = True, others: bool = True) -> List[Row]:
        return [row for row in self.rows.values() if row.status == NEW
                and (originates if row.action == "Originate" else others)]

    def _own(self, claims, outcomes) -> List[Row]:
        return [self.rows[man_id] for man_id, token in claims
                if self.rows[man_id].token == token and self.rows[man_id].outcome in outcomes]

    def markSending(self, claims):
        self.marks.append(list(claims))
        if self.markFailing is not None:
            return fail(self.markFailing)
        marked = self._own(claims, ("queued",))
        for row in marked:
            row.outcome = "sending"
            row.status = SENT if row.status == QUEUE else row.status
        return succeed([row.man_id for row in marked])

    def release(self, claims, reason):
        released = [row for row in self._own(claims, ("queued", "sending"))
                    if row.status in (QUEUE, SENT)]
        for row in released:
            row.status, row.token, row.outcome = NEW, None, "released"
            row.reason, row.attempts = reason, row.attempts + 1
        return succeed([row.man_id for row in released])

    def recordSent(self, results):
        recorded = []
        for r in results:
            row = self.rows[r.man_id]
            if row.token == r.claim and row.outcome in ("sending", "sent"):
                row.outcome, row.text, row.response = "sent", r.text, "Y" if r.answered else "N"
                row.status = SENT if row.status == QUEUE else row.status
                recorded.append(r.man_id)
        return succeed(recorded)

    def record(self, server_ip, items):
        return self.recordSent([i for i in items if isinstance(i, SendResult)]).addCallback(
            lambda _: 0)

    def applyUpdates(self, server_ip, updates):
        return succeed(0)

    def recoverStranded(self, server_ip, instance, staleAfter, unclaimedAfter=None):
        return succeed(Recovery((), ()))

    def register(self, server_ip, instance, host, pid, staleAfter, isAlive):
        return succeed(None)

    def heartbeat(self, server_ip, instance, host=None, pid=None, readServer=False):
        return succeed(None)

    def trackedCalls(self, server_ip, ringWindow):
        return succeed(TrackedCalls((), ()))

    def prune(self, server_ip, keepHours=None, batch=1000):
        return succeed(Pruned(0, 0))

    def close(self):
        return succeed(None)

    def recentRows(self, server_ip, limit=50):
        return succeed([])

    def sendTimes(self, server_ip, instance, after):
        return succeed(None)

    def dutyColumns(self):
        return succeed({})

    def writeDuties(self, server_ip, rows, now):
        return succeed(DutyWritten(0, 0))

    def newRows(self, server_ip):
        new = self._new()
        return succeed(NewRows(len(new), new[0].man_id if new else None))


class FakeSession:
    """
    Stands for an L{acqs.session.ActionSession} as the sender sees it; the test
    moves it on: L{logIn}, L{failLogin}, L{drop}, L{answer}, L{notRun}.
    """

    def __init__(self, clock: Clock, linger: float):
        self.clock, self.linger = clock, linger
        self.loggedIn, self.answered, self.closed = Deferred(), Deferred(), Deferred()
        self.action = None
        self.written = None  # the action, once its mark committed: on the wire
        self.loginError: Optional[Exception] = None
        self.stopped = False
        self._lingering = None

    @property
    def idle(self) -> bool:
        return self.loggedIn.called and self.action is None and not self.closed.called

    @property
    def lingering(self) -> bool:
        return self._lingering is not None and self._lingering.active()

    def logIn(self) -> None:
        self.loggedIn.callback(True)

    def failLogin(self, error: Exception) -> None:
        self.loginError = error
        self.loggedIn.callback(False)
        if self.action is not None:
            self.answered.errback(NotSent(str(error)))
        self._close()

    def drop(self) -> None:
        """The connection ends while the session waits for its action."""
        self._close()

    def send(self, action, beforeSend) -> None:
        self.action = action
        if self.closed.called:
            self.answered.errback(NotSent("the AMI session ended before its action came"))
            return
        beforeSend().addCallbacks(self._marked, self._markFailed)

    def _marked(self, marked: bool) -> None:
        if not marked:
            self.answered.errback(ClaimLost("the claim was lost"))
            self._close()
            return
        self.written = self.action

    def _markFailed(self, failure) -> None:
        self.answered.errback(MarkFailed(f"the row could not be marked SENT: {failure.value}"))
        self._close()

    def answer(self, ok: bool = True, text: str = "Success") -> None:
        assert self.written is not None, "answered before it was sent"
        self.answered.callback(SendResult(self.action.man_id, self.action.claim, ok, text))
        if self.linger <= 0:
            self._close()
        else:
            self._lingering = self.clock.callLater(self.linger, self._close)

    def notRun(self) -> None:
        """Asterisk answers that it did not run the action (it shuts down)."""
        self.answered.errback(NotRun("Asterisk did not run it: Asterisk is shutting down"))
        self._close()

    def stop(self) -> None:
        self.stopped = True
        if not self.loggedIn.called:
            self.failLogin(CancelledError())
        elif self.action is None:
            self._close()
        self.endLinger()

    def endLinger(self) -> None:
        if self.lingering:
            self._lingering.cancel()
            self._close()

    def abandon(self) -> None:
        """Give up now, as ActionSession's does: the connection is cut, and an action
        still waiting for its answer is recorded as unanswered."""
        self.stop()
        if self.written is not None and not self.answered.called:
            self.answered.callback(SendResult(self.action.man_id, self.action.claim, False,
                                              "the AMI connection was closed"))
        self._close()

    def _close(self) -> None:
        if not self.closed.called:
            self.closed.callback(None)


def refused() -> Exception:
    return ConnectionRefusedError("Connection was refused by other side")


def badLogin() -> Exception:
    return LoginFailed("sender", Message([("Response", "Error"),
                                          ("Message", "Authentication failed")]))


class SenderTestCase(SynchronousTestCase):
    waits = True  # whether the store waits for NEW rows (MariaDB) or is polled

    def setUp(self):
        self.clock = Clock()
        self.store = MemoryStore(self.clock, waits=self.waits)
        self.sessions: List[FakeSession] = []
        self.onOpen = lambda session: None
        self.listening = True

    def start(self, linger: float = 0.0, **settings) -> Sender:
        def openSession():
            session = FakeSession(self.clock, linger)
            self.sessions.append(session)
            self.onOpen(session)
            return session

        self.sender = Sender(self.clock, self.store, openSession, SERVER, "box1",
                             ready=lambda: self.listening, **settings)
        self.sender.startService()
        self.addCleanup(self.stopNow)
        return self.sender

    def stopNow(self):
        if self.sender.running:
            stopped = self.sender.stopService()
            for session in self.sessions:
                if session.written is not None and not session.answered.called:
                    session.answer()
            self.advance(60)
            self.successResultOf(stopped)

    def advance(self, seconds: float, step: float = 0.01) -> None:
        """Let C{seconds} pass, in steps, so that what is due runs in order."""
        self.clock.advance(0)
        end = self.clock.seconds() + seconds
        while self.clock.seconds() < end:
            self.clock.advance(min(step, end - self.clock.seconds()))

    def runUntil(self, end: float) -> None:
        """Run every call due until clock time C{end}, each at its exact time."""
        self.clock.advance(0)
        while True:
            due = min((c.getTime() for c in self.clock.getDelayedCalls()), default=end)
            if due > end:
                break
            self.clock.advance(max(0.0, due - self.clock.seconds()))
        self.clock.advance(end - self.clock.seconds())

    def open(self) -> List[FakeSession]:
        """The sessions not yet closed."""
        return [s for s in self.sessions if not s.closed.called]

    def warmUp(self, count: int) -> List[FakeSession]:
        """Log in the C{count} warm sessions the first claim opened."""
        self.clock.advance(0)
        sessions = [s for s in self.sessions if not s.loggedIn.called]
        self.assertEqual(len(sessions), count)
        for session in sessions:
            session.logIn()
        return sessions

    def claimsSince(self, count: int) -> List[dict]:
        return self.store.claims[count:]

    def logInAll(self) -> None:
        """Every session still connecting logs in; what that sets off is done."""
        for session in self.sessions:
            if not session.loggedIn.called:
                session.logIn()
        self.clock.advance(0)

    def carrying(self, man_id: int) -> FakeSession:
        [session] = [s for s in self.sessions if s.action and s.action.man_id == man_id]
        return session


class TransitionTests(SenderTestCase):
    """One row's way, and each of the sender's transitions."""

    def test_memoryStoreProvidesIQueueStore(self):
        """The store these tests use provides the interface the sender is written to."""
        self.assertTrue(verifyObject(IQueueStore, self.store))

    def test_claimToLogoff(self):
        """A NEW row is claimed into the backlog, a session opens for it, takes it once
        logged in, marks it SENT before it goes out, and its answer is recorded; the
        session lingers, then logs off."""
        sender = self.start(linger=10.0)
        man_id = self.store.insert()
        self.advance(0)
        self.assertEqual(self.store.status(man_id), QUEUE)
        self.assertEqual(sender.backlogCount, 1)
        [session] = self.sessions
        self.assertIsNone(session.action)
        session.logIn()
        self.assertEqual(sender.backlogCount, 0)
        self.assertEqual(session.action.man_id, man_id)
        self.assertIsNone(session.written)  # not before the mark is committed
        self.advance(0)
        self.assertEqual((self.store.status(man_id), session.written.man_id), (SENT, man_id))
        session.answer(text="Hangup successful")
        self.advance(0)
        row = self.store.rows[man_id]
        self.assertEqual((row.outcome, row.response, row.text, sender.sent),
                         ("sent", "Y", "Hangup successful", 1))
        self.assertEqual((sender.lingeringCount, sender.sessionCount), (1, 1))
        self.advance(10)
        self.assertEqual((sender.lingeringCount, sender.sessionCount), (0, 0))

    def test_claimSizedToRoom(self):
        """A claim asks for no more rows than free sessions can carry; a full claim is
        followed by another at once, without waiting in the database for rows of its
        class (while it has no room, only Originates, which have their own, are waited
        for)."""
        for _ in range(5):
            self.store.insert()
        self.start(maxSessions=3)
        self.advance(0.2)
        [first] = self.store.claims  # no room left: no other claim
        self.assertEqual(first["limit"], 3)
        for session in self.sessions:
            session.logIn()
        self.advance(0)
        for session in self.sessions:
            session.answer()
        self.advance(0.2)
        second = self.store.claims[1]
        self.assertEqual(second["limit"], 3)
        self.assertEqual([w for w in self.store.waits if w["at"] < second["at"]
                          and w["others"]], [])

    def test_claimFails(self):
        """A failing claim (or wait) is counted and said once; rounds go on every NAP
        seconds, not in a loop; the next claim that works clears it."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.store.failing = StoreUnavailable("queue store mysql://acqs@db/asterisk failed")
        sender = self.start()
        self.advance(1)
        self.assertEqual(sender.claimFailingSince, 0)
        self.assertIn("failed", sender.claimError)
        self.assertLessEqual(len(self.store.claims), 1 / NAP + 1)
        self.assertEqual(sender.claimFailures, len(self.store.claims))
        said = [formatEvent(e) for e in logged if "claim" in formatEvent(e).lower()]
        self.assertEqual(said, ["Cannot claim rows: queue store mysql://acqs@db/asterisk"
                                " failed"])
        self.store.failing = None
        man_id = self.store.insert()
        self.advance(0.1)
        self.assertEqual((sender.claimFailingSince, sender.claimError), (None, None))
        self.assertEqual(self.store.status(man_id), QUEUE)

    def test_claimBugLogged(self):
        """A claim that fails unexpectedly (a bug, not an outage) is logged once with its
        traceback and counted; claiming goes on every NAP seconds, and takes the rows
        once the claim works again."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.store.failing = RuntimeError("unexpected")
        sender = self.start()
        self.advance(1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertLessEqual(len(self.store.claims), 1 / NAP + 1)
        self.assertEqual(sender.claimFailures, len(self.store.claims))
        self.assertEqual((sender.claimFailingSince, sender.claimError), (0, "unexpected"))
        said = [formatEvent(e) for e in logged if "claim" in formatEvent(e).lower()]
        self.assertEqual(said, ["Claiming rows failed"])
        self.store.failing = None
        man_id = self.store.insert()
        self.advance(NAP)
        self.assertEqual((sender.claimFailingSince, sender.claimError), (None, None))
        self.assertEqual(self.store.status(man_id), QUEUE)

    def test_claimLost(self):
        """A mark that finds the claim lost sends nothing and releases nothing: the row is
        left to whoever has it, and AMI is not taken for down."""
        sender = self.start()
        man_id = self.store.insert()
        self.advance(0)
        self.store.rows[man_id].token = "someone else's"
        [session] = self.sessions
        session.logIn()
        self.advance(0)
        self.assertIsNone(session.written)
        self.assertTrue(session.closed.called)
        row = self.store.rows[man_id]
        self.assertEqual((row.status, row.outcome, row.token), (QUEUE, "queued",
                                                                "someone else's"))
        self.assertIsNone(sender.amiDownSince)

    def test_markFailed(self):
        """A mark the database cannot commit sends nothing; the row goes back to NEW with
        the reason, and claiming goes on: the database, not AMI, failed."""
        sender = self.start()
        man_id = self.store.insert()
        self.advance(0)
        self.store.markFailing = StoreUnavailable("database away")
        self.sessions[0].logIn()
        self.advance(0)
        self.assertIsNone(self.sessions[0].written)
        row = self.store.rows[man_id]
        self.assertEqual((row.status, row.attempts), (NEW, 1))
        self.assertIn("database away", row.reason)
        self.assertIsNone(sender.amiDownSince)

    def test_listenerFirst(self):
        """Nothing is claimed while the listener is not connected."""
        self.listening = False
        self.start()
        self.store.insert()
        self.advance(1)
        self.assertEqual(self.store.claims, [])
        self.listening = True
        self.advance(0.1)
        self.assertTrue(self.store.claims)
        self.assertEqual(self.store.status(1), QUEUE)


class AMIFailureTests(SenderTestCase):
    """AMI unreachable, refusing the login, or shutting down."""

    def failedSession(self, error=None):
        """A row's session fails to log in: AMI is down."""
        sender = self.start(probeInterval=0.5)
        ids = [self.store.insert() for _ in range(3)]
        self.advance(0)
        self.assertEqual(sender.backlogCount, 3)
        self.sessions[0].failLogin(error or refused())
        return sender, ids

    def test_pausesAndReleases(self):
        """A session that cannot reach AMI pauses claiming and sends the rows waiting for a
        session back to NEW, attempts counted, the reason kept."""
        sender, ids = self.failedSession()
        self.advance(0)
        self.assertEqual(sender.amiDownSince, 0)
        self.assertEqual(sender.backlogCount, 0)
        for man_id in ids:
            row = self.store.rows[man_id]
            self.assertEqual((row.status, row.attempts), (NEW, 1))
            self.assertIn("AMI unreachable", row.reason)
        claims = len(self.store.claims)
        self.advance(5)
        self.assertEqual(len(self.store.claims), claims)

    def test_probesThenResumes(self):
        """While AMI cannot be reached one session at a time probes it, every probe
        interval; the first that logs in resumes claiming at once, and the rows go."""
        sender, ids = self.failedSession()
        for session in self.sessions[1:]:
            session.failLogin(refused())
        opened = len(self.sessions)
        for n in range(1, 4):
            self.advance(0.5)
            self.assertEqual(len(self.sessions), opened + n)
            self.sessions[-1].failLogin(refused())
        self.advance(0.5)
        self.sessions[-1].logIn()
        self.assertIsNone(sender.amiDownSince)
        self.advance(0.1)
        self.logInAll()
        self.assertEqual([self.store.status(m) for m in ids], [SENT] * 3)

    def test_badLoginBacksOff(self):
        """While AMI refuses the login (a bad secret) probes back off: 1, 2, 4 ... 60 s."""
        self.failedSession(badLogin())
        for session in self.sessions[1:]:
            session.failLogin(badLogin())
        probes = []
        for _ in range(8):
            opened = len(self.sessions)
            waited = 0.0
            while len(self.sessions) == opened:
                self.clock.advance(0.5)
                waited += 0.5
            probes.append(waited)
            self.sessions[-1].failLogin(badLogin())
        self.assertEqual(probes, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0])

    def test_notRunReleased(self):
        """An action Asterisk did not run (it shuts down) goes back to NEW, attempts
        counted and the reason kept, and counts as an AMI failure, named so: claiming
        pauses and AMI is probed."""
        sender = self.start(probeInterval=0.5)
        man_id = self.store.insert()
        self.advance(0)
        self.sessions[0].logIn()
        self.advance(0)
        self.sessions[0].notRun()
        self.advance(0)
        row = self.store.rows[man_id]
        self.assertEqual((row.status, row.attempts), (NEW, 1))
        self.assertEqual(row.reason,
                         "not sent: Asterisk did not run it: Asterisk is shutting down")
        self.assertEqual((sender.amiDownSince, sender.amiCause), (0, "shutting_down"))
        opened = len(self.sessions)
        self.advance(0.5)
        self.assertEqual(len(self.sessions), opened + 1)  # a probe
        self.sessions[-1].logIn()
        self.advance(0.1)
        self.logInAll()
        self.assertEqual(self.carrying(man_id).written.man_id, man_id)

    def test_rowsClaimedDuringOutageReleased(self):
        """Rows a claim brings while AMI is down (it went down during the claim itself) go
        back to NEW at once, never held in QUEUE for the outage."""
        sender = self.start()
        self.advance(0.1)
        self.store.insert()
        self.advance(0)  # claimed; its session is connecting
        self.store.gate = Deferred()
        man_id = self.store.insert()
        self.advance(0.1)  # the claim of that row is under way...
        self.sessions[0].failLogin(refused())  # ...when AMI goes down
        self.assertIsNotNone(sender.amiDownSince)
        self.store.gate.callback(None)
        self.clock.advance(0)
        self.assertEqual(self.store.status(man_id), NEW)
        self.assertEqual(self.store.rows[man_id].reason,
                         "not sent: AMI unreachable when it was claimed")
        self.assertEqual(sender.backlogCount, 0)

    def test_rowsWakingDuringOutageNotClaimed(self):
        """Issue 16, item 4: AMI goes down while a wait for NEW rows runs; the row that ends
        the wait is not claimed (may-claim is asked again after the wait), so it stays NEW
        through the outage, where a standby can take it, and is claimed once AMI answers."""
        sender = self.start(probeInterval=0.5)
        self.advance(0.1)
        self.store.insert()
        self.advance(0)  # claimed; its session is connecting, the next round waits
        claims = len(self.store.claims)
        self.assertTrue(self.store.waits and "found" not in self.store.waits[-1])
        self.sessions[0].failLogin(refused())  # AMI is down
        man_id = self.store.insert()  # and the wait ends
        self.advance(2)
        self.assertEqual(self.store.waits[-1]["found"], True)
        self.assertEqual(len(self.store.claims), claims)
        row = self.store.rows[man_id]
        self.assertEqual((row.status, row.outcome, row.attempts), (NEW, None, 0))
        self.sessions[-1].logIn()  # a probe: AMI is back
        self.advance(0.1)
        self.logInAll()
        self.assertEqual(self.store.status(man_id), SENT)
        self.assertEqual(sender.backlogCount, 0)


class WarmSessionTests(SenderTestCase):
    """Sessions kept logged in for the next rows, and the marks claims make for them."""

    waits = False  # the sender polls (the marks are the same after a wait)

    def test_warmSessionCarriesMarkedRow(self):
        """Warm sessions wait logged in; a claim that does not wait marks a row for one,
        which sends it at once, and another logs in to take its place."""
        sender = self.start(warm=2)
        first, second = self.warmUp(2)
        claims = len(self.store.claims)
        man_id = self.store.insert()
        self.advance(0.1)
        self.assertEqual([c["send"] for c in self.claimsSince(claims)][:1], [2])
        self.assertEqual(first.written.man_id, man_id)  # no mark of its own
        self.assertEqual(self.store.rows[man_id].outcome, "sending")
        self.assertIsNone(second.action)
        self.assertEqual(len(sender._connecting), 1)  # its replacement

    def test_retiredAfterWarmIdle(self):
        """A warm session left idle for warmIdle logs off, and another takes its place."""
        self.start(warm=1, warmIdle=10.0)
        [first] = self.warmUp(1)
        self.advance(9.9)
        self.assertFalse(first.stopped)
        self.advance(0.2)
        self.assertTrue(first.stopped)
        self.assertEqual(len(self.open()), 1)
        self.assertFalse(self.open()[0].loggedIn.called)

    def test_reservedSessionNotRetiredWhenGivenItsRow(self):
        """A warm session whose idle time runs out during a claim that marked a row for it
        is not retired: it sends that row at once, without a new login."""
        self.start(warm=1, warmIdle=10.0)
        [session] = self.warmUp(1)
        self.store.gate = Deferred()
        man_id = self.store.insert()
        self.advance(0.1)  # a claim counting on the session is under way
        self.assertEqual(self.store.claims[-1]["send"], 1)
        self.advance(10)  # its idle time runs out
        self.store.gate.callback(None)
        self.assertFalse(session.stopped)
        self.assertEqual(session.written.man_id, man_id)

    def test_reservedSessionRetiredWithoutRow(self):
        """A warm session whose idle time ran out during a claim that brought no row
        retires once the claim is done."""
        self.start(warm=1, warmIdle=10.0)
        [session] = self.warmUp(1)
        self.store.gate = Deferred()
        man_id = self.store.insert()
        self.advance(0.1)  # a claim counting on the session is under way
        self.advance(10)
        self.assertFalse(session.stopped)
        self.store.rows[man_id].status = QUEUE  # another instance took the row meanwhile
        self.store.gate.callback(None)
        self.assertTrue(session.stopped)

    def test_markedRowWithoutSessionReleased(self):
        """A row a claim marked for a session that ended meanwhile goes back to NEW at once,
        not parked SENT until a new session logs in."""
        self.start(warm=1)
        [session] = self.warmUp(1)
        self.store.gate = Deferred()
        man_id = self.store.insert()
        self.advance(0.1)  # a claim counting on the session is under way
        session.drop()  # its connection ends during the claim; another is opened
        self.store.gate.callback(None)
        self.clock.advance(0)
        row = self.store.rows[man_id]  # released, then claimed again unmarked
        self.assertEqual((row.outcome, row.attempts), ("queued", 1))
        self.assertEqual(row.reason, "not sent: its AMI session ended before it went out")
        self.assertEqual(self.store.claims[-1]["send"], 0)

    def test_shortLivedPaced(self):
        """Warm sessions that end right after their login (an AMI or a proxy that accepts
        the login and closes) are replaced after a pause that doubles up to 30 s: a few
        logins a minute, not a loop."""
        def loginThenClose(session):
            self.clock.callLater(0.001, session.logIn)
            self.clock.callLater(0.002, session.drop)

        self.onOpen = loginThenClose
        self.start(warm=2, probeInterval=0.5)
        self.advance(30)
        # Two at once, then two after each pause: 0.5, 1, 2, 4, 8 s (16 s ends at 31.5).
        self.assertEqual(len(self.sessions), 2 + 2 * 5)
        self.advance(120)
        self.assertEqual(len(self.sessions), 2 + 2 * 5 + 2 * 4)  # then every 30 s
        self.assertEqual(MAX_PAUSE, 30.0)

    def test_pacingEnds(self):
        """Once a warm session lasts, warm sessions are replaced at once again."""
        def loginThenClose(session):
            self.clock.callLater(0.001, session.logIn)
            self.clock.callLater(0.002, session.drop)

        self.onOpen = loginThenClose
        self.start(warm=1, warmIdle=10.0, probeInterval=0.5)
        self.advance(2)  # pauses of 0.5 and 1 s
        self.onOpen = lambda session: self.clock.callLater(0.001, session.logIn)
        self.advance(2.5)  # the next one (at 3.5 s) lasts
        lasting = self.sessions[-1]
        self.advance(SHORT_LIFE + 1)
        opened = len(self.sessions)
        lasting.drop()  # it lasted: replaced at once
        self.assertEqual(len(self.sessions), opened + 1)
        self.advance(0.01)
        self.sessions[-1].drop()  # short-lived again: the first pause again, 0.5 s
        self.advance(0.49)
        self.assertEqual(len(self.sessions), opened + 1)
        self.advance(0.02)
        self.assertEqual(len(self.sessions), opened + 2)

    def test_rowsNotHeldByPacing(self):
        """While warm replacements pause, a row still gets a session of its own."""
        def loginThenClose(session):
            self.clock.callLater(0.001, session.logIn)
            self.clock.callLater(0.002, session.drop)

        self.onOpen = loginThenClose
        self.start(warm=1, probeInterval=0.5)
        self.advance(1)  # in the second pause, which ends at 1.5 s
        self.onOpen = lambda session: None
        opened = len(self.sessions)
        man_id = self.store.insert()
        self.advance(0.15)
        self.assertEqual(len(self.sessions), opened + 1)
        self.assertEqual(self.store.status(man_id), QUEUE)


class WaitTests(SenderTestCase):
    """Rounds that wait in the database (MariaDB) for NEW rows, then claim apart."""

    def test_claimAfterWaitMarks(self):
        """The wait is apart from the claim: the claim after it marks the row for a warm
        session idle as the claim begins, which sends it at once, no mark of its own."""
        self.start(warm=2)
        first, _ = self.warmUp(2)
        self.advance(1.5)
        self.assertNotIn("found", self.store.waits[-1])  # a wait runs
        man_id = self.store.insert()
        self.clock.advance(0)
        self.assertEqual(self.store.claims[-1]["send"], 2)
        self.assertEqual((self.store.status(man_id), first.written.man_id), (SENT, man_id))
        self.assertEqual(self.store.rows[man_id].outcome, "sending")
        self.assertEqual(self.store.marks, [])

    def test_outageDuringWaitLeavesRowNew(self):
        """AMI goes away while a wait runs with two warm sessions ready: the row that ends
        the wait is not claimed, so it stays NEW with no record (a crash then loses
        nothing, a standby may send it), and is sent once AMI answers again."""
        sender = self.start(warm=2, probeInterval=0.5)
        warm = self.warmUp(2)
        self.advance(2.5)  # a wait runs, with the warm sessions ready
        claims = len(self.store.claims)
        for session in warm:
            session.drop()  # Asterisk went away
        for session in self.open():
            session.failLogin(refused())
        self.assertIsNotNone(sender.amiDownSince)
        man_id = self.store.insert()
        self.clock.advance(0)
        row = self.store.rows[man_id]
        self.assertEqual((row.status, row.outcome, row.attempts), (NEW, None, 0))
        self.assertEqual(len(self.store.claims), claims)
        self.advance(0.5)
        self.sessions[-1].logIn()  # the probe: AMI is back
        self.advance(0.1)
        self.logInAll()
        self.assertEqual(self.store.status(man_id), SENT)
        self.carrying(man_id).answer()
        self.clock.advance(0)
        self.assertEqual(self.store.rows[man_id].outcome, "sent")

    def test_waitsBackOff(self):
        """Waits look every 10 ms for 2 s after the last claimed row, every 50 ms until 10 s,
        then every 0.25 s; each ends where its step changes, after 1 s at most; a claimed
        row brings the fast step back."""
        sender = self.start()
        self.runUntil(29.999)
        steps = {(w["step"], min(w["timeout"], 1.0)) for w in self.store.waits}
        self.assertEqual({step for step, _ in steps}, {0.01, 0.05, 0.25})
        self.assertTrue(all(w["timeout"] <= 1.0 for w in self.store.waits))
        self.assertEqual([(w["at"], w["step"]) for w in self.store.waits
                          if w["at"] in (0, 1, 2, 9, 10)],
                         [(0, 0.01), (1, 0.01), (2, 0.05), (9, 0.05), (10, 0.25)])
        self.assertEqual(len(self.store.waits), 2 + 8 + 20)
        self.assertEqual(sender.wakeup.step, 0.25)
        man_id = self.store.insert()
        self.advance(0)
        self.assertEqual(self.store.status(man_id), QUEUE)
        self.advance(0.5)
        self.assertEqual(self.store.waits[-1]["step"], 0.01)


class PollTests(SenderTestCase):
    """Rounds where the database cannot wait: looks from acqs, backing off the same way."""

    waits = False

    def test_looksBackOff(self):
        """Looks come every 10 ms for 2 s after the last claimed row, every 50 ms until
        10 s, then every 0.25 s, and say why the sender polls."""
        sender = self.start()
        self.runUntil(1.999)
        self.assertEqual(self.store.looks, 200)
        self.runUntil(9.999)
        self.assertEqual(self.store.looks, 200 + 160)
        self.runUntil(19.999)
        self.assertEqual(self.store.looks, 200 + 160 + 40)
        self.assertEqual((sender.wakeup.mode, sender.wakeup.reason),
                         ("poll", "memory cannot wait"))
        self.assertEqual(self.store.claims[1:], [])  # nothing came: no claim
        man_id = self.store.insert()
        self.advance(0.25)
        self.assertEqual(self.store.status(man_id), QUEUE)


class StopTests(SenderTestCase):
    def test_stopBeforeStart(self):
        """A sender stopped before it started (a MultiService stops every child, also when
        an earlier one's start failed) stops at once, having claimed nothing."""
        sender = Sender(self.clock, self.store, lambda: FakeSession(self.clock, 0.0), SERVER,
                        "box1")
        self.store.insert()
        stopped = sender.stopService()
        self.advance(60)
        self.successResultOf(stopped)
        self.assertEqual(self.store.claims, [])

    def test_stopReleasesBacklog(self):
        """Stopping releases the rows waiting for a session, lets a session waiting for its
        answer finish, and leaves no row in QUEUE."""
        sender = self.start(maxConnecting=1)
        ids = [self.store.insert() for _ in range(3)]
        self.advance(0)
        self.sessions[0].logIn()
        self.advance(0)
        self.assertEqual(self.store.status(ids[0]), SENT)
        stopped = sender.stopService()
        self.advance(1)
        self.assertNoResult(stopped)
        self.assertEqual([self.store.status(m) for m in ids], [SENT, NEW, NEW])
        self.sessions[0].answer()
        self.advance(0.1)
        self.successResultOf(stopped)
        self.assertEqual(self.store.rows[ids[0]].outcome, "sent")
        self.assertEqual([r.status for r in self.store.rows.values() if r.status == QUEUE], [])


class PolledStopTests(SenderTestCase):
    waits = False

    def test_stopDuringClaim(self):
        """Rows a claim brings once stopping began go back to NEW, marked ones too."""
        sender = self.start(warm=1)
        self.warmUp(1)
        self.store.gate = Deferred()
        man_id = self.store.insert()
        self.advance(0.1)
        self.assertEqual(self.store.claims[-1]["send"], 1)  # under way, marking for it
        stopped = sender.stopService()
        self.store.gate.callback(None)
        self.advance(1)
        self.successResultOf(stopped)
        self.assertEqual(self.store.rows[man_id].reason, "acqs stopped before sending it")
        self.assertEqual(self.store.status(man_id), NEW)

    def test_stopAbandonsUnanswered(self):
        """An action Asterisk never answers holds a stop up for stopTimeout seconds, no
        longer: its session is then abandoned, said in the log, and the row is recorded
        as sent without an answer (it may have run), never given back to NEW."""
        logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        sender = self.start(stopTimeout=5.0)
        man_id = self.store.insert()
        self.advance(0)
        self.sessions[0].logIn()
        self.advance(0)
        self.assertEqual(self.store.status(man_id), SENT)
        stopped = sender.stopService()
        self.advance(4.9)
        self.assertNoResult(stopped)
        self.advance(0.2)
        self.successResultOf(stopped)
        self.assertIn("1 sessions still waiting for Asterisk after 5 s; abandoning them",
                      [formatEvent(e) for e in logged])
        row = self.store.rows[man_id]
        self.assertEqual((row.status, row.outcome, row.response, row.attempts),
                         (SENT, "sent", "N", 0))
        self.assertEqual(sender.sessionCount, 0)


ORIGINATE = ("Channel: Local/8600051@default", "Context: default", "Exten: 8600051",
             "Priority: 1", "Timeout: 60000")


class OriginateRoomTests(SenderTestCase):
    """
    Originates have a room of their own (C{maxOriginates}): a synchronous
    Originate's session stays open while its call rings, and must not hold
    up agents' actions, which have C{maxSessions}.
    """

    def ringing(self, count: int) -> List[int]:
        """C{count} Originates claimed, sent and ringing (unanswered); their man_ids."""
        man_ids = [self.store.insert("Originate", *ORIGINATE) for _ in range(count)]
        for _ in range(count):
            self.advance(0.05)
            self.logInAll()
            self.advance(0)
        return man_ids

    def test_hangupGoesOutWhileOriginatesRing(self):
        """With more Originates ringing than --max-sessions, a Hangup inserted meanwhile
        is claimed and written at once, on a session of its own."""
        sender = self.start(linger=10.0, maxSessions=2, maxOriginates=6)
        originates = self.ringing(6)
        self.assertEqual([self.store.status(m) for m in originates], [SENT] * 6)
        self.assertEqual((sender.ringingCount, sender.originateCount), (6, 6))
        hangup = self.store.insert("Hangup", "Channel: SIP/agent-1")
        self.advance(0.02)
        self.logInAll()
        self.advance(0)
        self.assertEqual(self.carrying(hangup).written.name, "Hangup")
        self.assertEqual(self.store.status(hangup), SENT)
        self.assertEqual(sender.ringingCount, 6)

    def test_originatesBeyondRoomWaitAsNew(self):
        """Originates beyond --max-originates stay NEW, not QUEUE, while a Hangup behind
        them is claimed; one that answers makes room for the next, oldest first."""
        sender = self.start(maxSessions=5, maxOriginates=3)
        originates = [self.store.insert("Originate", *ORIGINATE) for _ in range(5)]
        hangup = self.store.insert("Hangup", "Channel: SIP/agent-1")
        self.advance(0.1)
        self.assertEqual([self.store.status(m) for m in originates],
                         [QUEUE] * 3 + [NEW] * 2)
        self.assertEqual(self.store.status(hangup), QUEUE)
        self.logInAll()
        self.advance(0.1)
        self.logInAll()
        self.advance(0.1)
        self.assertEqual([self.store.status(m) for m in originates], [SENT] * 3 + [NEW] * 2)
        self.assertEqual(sender.ringingCount, 3)
        self.assertTrue(all(c["originates"] in (0, 3) for c in self.store.claims[1:]),
                        self.store.claims)
        self.carrying(originates[0]).answer()
        self.advance(0.1)
        self.assertEqual([self.store.status(m) for m in originates],
                         [SENT] * 3 + [QUEUE, NEW])

    def test_ringingDoesNotShrinkOthersRoom(self):
        """Claims size their rows of other actions to --max-sessions whatever rings."""
        self.start(maxSessions=4, maxOriginates=10)
        self.ringing(8)
        before = len(self.store.claims)
        for _ in range(6):
            self.store.insert("Hangup", "Channel: SIP/agent-1")
        self.advance(0.05)
        [claim] = [c for c in self.claimsSince(before) if c["limit"]][:1]
        self.assertEqual(claim["limit"], 4)

    def test_lingeringOriginatesLogOffForWaitingOnes(self):
        """Sessions lingering after their Originates' answers count against the room, and
        log off early when Originates wait, so the room is never exceeded."""
        sender = self.start(linger=10.0, maxSessions=5, maxOriginates=2)
        first = self.ringing(2)
        for man_id in first:
            self.carrying(man_id).answer()
        self.advance(0)
        self.assertEqual((sender.ringingCount, sender.originateCount), (0, 2))
        later = [self.store.insert("Originate", *ORIGINATE) for _ in range(2)]
        self.advance(0.1)
        self.logInAll()
        self.advance(0.1)
        self.assertEqual(sender.originateCount, 2)
        self.assertEqual([self.store.status(m) for m in later], [SENT] * 2)
        self.assertTrue(all(self.carrying(m).closed.called for m in first))

    def test_stopReleasesWaitingOriginates(self):
        """Originates claimed but not yet on a session go back to NEW when acqs stops,
        not left in QUEUE."""
        self.start(maxConnecting=1, maxOriginates=5)
        originates = [self.store.insert("Originate", *ORIGINATE) for _ in range(4)]
        self.advance(0.1)
        self.assertEqual([self.store.status(m) for m in originates], [QUEUE] * 4)
        self.stopNow()
        self.assertEqual([self.store.status(m) for m in originates], [NEW] * 4)

    def test_roomFollowsTheServersRow(self):
        """The room is read at each claim, so a changed servers row takes effect."""
        room = [2]
        self.start(maxOriginates=lambda: room[0])
        for _ in range(5):
            self.store.insert("Originate", *ORIGINATE)
        self.advance(0.1)
        self.assertEqual(sum(r.status == QUEUE for r in self.store.rows.values()), 2)
        room[0] = 4
        self.advance(0.1)
        self.assertEqual(sum(r.status == QUEUE for r in self.store.rows.values()), 4)

    def test_fullClassWaitsShortlyForTheOther(self):
        """While rows of other actions have no room, the wake-up looks for Originates only,
        and briefly, so a Hangup waiting as NEW is claimed as soon as room comes back."""
        self.start(maxSessions=1, maxOriginates=5)
        first = self.store.insert("Hangup", "Channel: SIP/agent-1")
        self.advance(0.05)
        self.logInAll()
        self.advance(0.05)
        second = self.store.insert("Hangup", "Channel: SIP/agent-2")
        self.advance(0.5)
        self.assertEqual(self.store.status(second), NEW)
        recent = [w for w in self.store.waits if w["at"] > self.clock.seconds() - 0.4]
        self.assertTrue(recent)
        self.assertEqual({(w["originates"], w["others"]) for w in recent}, {(True, False)})
        self.assertLessEqual(max(w["timeout"] for w in recent), NAP)
        self.carrying(first).answer()
        self.advance(NAP + 0.02)
        self.assertEqual(self.store.status(second), QUEUE)

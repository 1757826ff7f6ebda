"""
Tests for acqs.wakeup: the back-off schedule (pure), and the wake-up on
C{task.Clock} with a store that records what it is asked.
"""

import math
from typing import List, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from acqs.store.interfaces import CannotWait, StoreUnavailable
from acqs.wakeup import AUTO, LONGEST, POLL, WAIT, Wakeup, schedule

SERVER = "10.10.11.12"


class ScheduleTests(SynchronousTestCase):
    def test_bands(self):
        """The fast step for 2 s after the last claimed row, five times it until 10 s, then the
        idle step; each with the time left until it changes."""
        self.assertEqual(schedule(0, 0.01, 0.25), (0.01, 2.0))
        self.assertEqual(schedule(1.5, 0.01, 0.25), (0.01, 0.5))
        self.assertEqual(schedule(2, 0.01, 0.25), (0.05, 8.0))
        self.assertEqual(schedule(9, 0.01, 0.25), (0.05, 1.0))
        self.assertEqual(schedule(10, 0.01, 0.25), (0.25, math.inf))
        self.assertEqual(schedule(3600, 0.01, 0.25), (0.25, math.inf))

    def test_middleWithinBounds(self):
        """The middle step is never above the idle step nor below the fast one."""
        self.assertEqual(schedule(5, 0.1, 0.25)[0], 0.25)
        self.assertEqual(schedule(5, 0.3, 0.25)[0], 0.3)
        self.assertEqual(schedule(50, 0.3, 0.25)[0], 0.3)


class RecordingStore:
    """Answers waits and looks as told, and records them."""

    def __init__(self, waits: bool = True):
        self.waits: List[tuple] = []
        self.looks = 0
        self.canWait = waits
        self.found = False
        self.failing: Optional[Exception] = None
        self.pending: Optional[Deferred] = None

    def waitForNew(self, server_ip, timeout, step, originates=True, others=True):
        self.waits.append((timeout, step))
        if not self.canWait:
            return fail(CannotWait("MySQL 8.0.36 cannot wait in the server"))
        if self.failing is not None:
            return fail(self.failing)
        self.pending = Deferred()
        return self.pending

    def lookForNew(self, server_ip, originates=True, others=True):
        self.looks += 1
        if self.failing is not None:
            return fail(self.failing)
        return succeed(self.found)


class WakeupTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def wait(self, wakeup):
        return Deferred.fromCoroutine(wakeup.wait())

    def test_waitLength(self):
        """A wait in the server lasts until its step would change, a second at most, and one
        step at least; its looks are counted."""
        store = RecordingStore()
        wakeup = Wakeup(self.clock, store, SERVER)
        d = self.wait(wakeup)
        store.pending.callback((False, 101))
        self.assertIs(self.successResultOf(d), False)
        self.clock.advance(1.7)
        self.wait(wakeup)
        self.clock.advance(8.3 - 1e-9)
        self.wait(wakeup)
        self.clock.advance(1)
        self.wait(wakeup)
        self.assertEqual(store.waits[0], (LONGEST, 0.01))
        self.assertAlmostEqual(store.waits[1][0], 0.3)
        self.assertEqual(store.waits[2], (0.05, 0.05))  # ends with its band: one step
        self.assertEqual(store.waits[3], (LONGEST, 0.25))
        self.assertEqual((wakeup.looks, wakeup.mode, wakeup.reason), (101, WAIT, None))

    def test_claimedBringsFastStep(self):
        """Rows claimed bring the fast step back."""
        wakeup = Wakeup(self.clock, RecordingStore(), SERVER, step=0.02, idleStep=0.5)
        self.clock.advance(60)
        self.assertEqual(wakeup.step, 0.5)
        wakeup.claimed()
        self.assertEqual(wakeup.step, 0.02)

    def test_autoFallsBackToPoll(self):
        """Where the database cannot wait, auto polls, says why once (info), and is no
        fault; a look that finds nothing pauses one step."""
        store = RecordingStore(waits=False)
        wakeup = Wakeup(self.clock, store, SERVER, AUTO)
        d = self.wait(wakeup)
        self.assertNoResult(d)
        self.assertEqual((store.looks, wakeup.mode), (1, POLL))
        self.assertEqual(wakeup.reason, "MySQL 8.0.36 cannot wait in the server")
        self.clock.advance(0.01)
        self.assertIs(self.successResultOf(d), False)
        store.found = True
        self.assertIs(self.successResultOf(self.wait(wakeup)), True)
        self.assertEqual((len(store.waits), store.looks, wakeup.looks), (1, 2, 2))
        said = [(e["log_level"], formatEvent(e)) for e in self.logged]
        self.assertEqual(said, [(LogLevel.info, "Polling for NEW rows: MySQL 8.0.36 cannot"
                                                " wait in the server")])
        self.assertEqual(wakeup.snapshot(), {
            "wakeup": "poll", "wakeup_reason": "MySQL 8.0.36 cannot wait in the server",
            "wakeup_step": 0.01, "wakeup_looks": 2})

    def test_waitAskedFallsBackLoudly(self):
        """Where a wait in the server was asked for (--wakeup wait) and cannot be had, the
        fallback is a warning."""
        wakeup = Wakeup(self.clock, RecordingStore(waits=False), SERVER, WAIT)
        self.wait(wakeup)
        [event] = self.logged
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertIn("polling instead", formatEvent(event))

    def test_pollAsked(self):
        """--wakeup poll never asks the database to wait."""
        store = RecordingStore()
        wakeup = Wakeup(self.clock, store, SERVER, POLL)
        self.wait(wakeup)
        self.assertEqual((store.waits, store.looks, wakeup.reason), ([], 1, None))

    def test_interrupt(self):
        """Stopping ends a pause between looks at once."""
        wakeup = Wakeup(self.clock, RecordingStore(), SERVER, POLL, idleStep=5)
        self.clock.advance(60)
        d = self.wait(wakeup)
        self.assertNoResult(d)
        wakeup.interrupt()
        self.assertIs(self.successResultOf(d), False)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failureRaised(self):
        """A failing database fails the wait (the sender's claim then says what fails)."""
        store = RecordingStore()
        store.failing = StoreUnavailable("queue store down")
        self.failureResultOf(self.wait(Wakeup(self.clock, store, SERVER)), StoreUnavailable)
        self.failureResultOf(self.wait(Wakeup(self.clock, store, SERVER, POLL)),
                             StoreUnavailable)

    def test_unknownMode(self):
        """An unknown mode is refused."""
        self.assertRaises(ValueError, Wakeup, self.clock, RecordingStore(), SERVER, "binlog")

"""Tests for acqs.backlog: watching the rows left NEW, on a Clock."""

from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from acqs.backlog import NewRowsWatch
from acqs.store.interfaces import StoreUnavailable
from acqs.store.reads import NewRows


class Answers:
    """A store whose newRows gives the next of C{answers} (an exception fails it)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = 0

    def newRows(self, server_ip):
        self.asked += 1
        answer = self.answers.pop(0)
        return fail(answer) if isinstance(answer, Exception) else succeed(answer)


class NewRowsWatchTests(SynchronousTestCase):
    def watch(self, *answers):
        self.clock = Clock()
        self.clock.advance(1000)
        self.store = Answers(*answers)
        watch = NewRowsWatch(self.clock, self.store, "10.10.11.12", interval=5)
        watch.startService()
        self.addCleanup(watch.stopService)
        return watch

    def test_oldestUnclaimedSince(self):
        """The oldest NEW row is followed from the look that first saw it: while it stays
        the oldest, the time stays; a new oldest (it was claimed) starts again."""
        watch = self.watch(NewRows(0), NewRows(3, 7, 1.0), NewRows(5, 7, 6.0),
                           NewRows(4, 8, 2.0), NewRows(0))
        self.assertEqual((watch.rows, watch.waitingSince), (0, None))
        self.clock.advance(5)
        self.assertEqual((watch.rows, watch.oldestAge, watch.waitingSince), (3, 1.0, 1005))
        self.clock.advance(5)
        self.assertEqual((watch.rows, watch.waitingSince, watch.lookedAt), (5, 1005, 1010))
        self.clock.advance(5)
        self.assertEqual((watch.rows, watch.waitingSince), (4, 1015))
        self.clock.advance(5)
        self.assertEqual((watch.rows, watch.oldestAge, watch.waitingSince), (0, None, None))

    def test_unknownWhileTheDatabaseIsAway(self):
        """A look the database does not answer makes the count unknown, not stale; looking
        goes on, and a bug is logged, never the end of the watch."""
        watch = self.watch(NewRows(3, 7, 1.0), StoreUnavailable("away"), RuntimeError("bug"),
                           NewRows(3, 7, 16.0))
        self.clock.advance(5)
        self.assertIsNone(watch.rows)
        self.clock.advance(5)
        self.assertIsNone(watch.rows)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.clock.advance(5)
        self.assertEqual((watch.rows, watch.waitingSince), (3, 1000))
        self.assertEqual(self.store.asked, 4)

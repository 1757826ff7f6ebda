"""Tests for acqs.batching: ordered, batched, retried writes."""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.trial.unittest import SynchronousTestCase

from acqs.batching import BatchWriter


class FakeDatabase:
    """A write target whose writes are completed by hand."""

    def __init__(self):
        self.calls = []

    def write(self, batch):
        d = Deferred()
        self.calls.append((list(batch), d))
        return d

    def succeed(self):
        self.calls[-1][1].callback(None)

    def failLast(self):
        self.calls[-1][1].errback(ConnectionError("database away"))


class BatchWriterTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.db = FakeDatabase()
        self.writer = BatchWriter(self.clock, self.db.write, "test", maxBatch=3)

    def test_sameTurnOneBatch(self):
        """Items added in one reactor turn are written as one batch."""
        for i in range(3):
            self.writer.add(i)
        self.assertEqual(self.db.calls, [])
        self.clock.advance(0)
        self.assertEqual([b for b, _ in self.db.calls], [[0, 1, 2]])

    def test_oneInFlightInOrder(self):
        """Items added during a write go in the next batch, after it, in order."""
        self.writer.add("a")
        self.clock.advance(0)
        self.writer.add("b")
        self.writer.add("c")
        self.clock.advance(0)
        self.assertEqual(len(self.db.calls), 1)
        self.assertEqual(len(self.writer), 3)
        self.db.succeed()
        self.clock.advance(0)
        self.assertEqual([b for b, _ in self.db.calls], [["a"], ["b", "c"]])

    def test_maxBatch(self):
        """A long queue is written in batches of at most maxBatch."""
        for i in range(7):
            self.writer.add(i)
        sizes = []
        while len(self.writer):
            self.clock.advance(0)
            sizes.append(len(self.db.calls[-1][0]))
            self.db.succeed()
        self.assertEqual(sizes, [3, 3, 1])

    def test_writeFiresWhenCommitted(self):
        """write() fires only once the item's batch is written."""
        d = self.writer.write("x")
        self.clock.advance(0)
        self.assertNoResult(d)
        self.db.succeed()
        self.assertIsNone(self.successResultOf(d))

    def test_retryKeepsOrderAndLogsOnce(self):
        """A failed batch is retried with growing delays, ahead of newer items;
        the outage is logged once when it starts and once when it ends."""
        observer = EventLoggingObserver.createWithCleanup(self, BatchWriter.log.observer)
        self.writer.add(1)
        self.clock.advance(0)
        self.writer.add(2)
        self.db.failLast()
        self.clock.advance(0.24)
        self.assertEqual(len(self.db.calls), 1)
        self.clock.advance(0.01)
        self.assertEqual(self.db.calls[-1][0], [1, 2])
        self.db.failLast()
        self.clock.advance(0.49)
        self.assertEqual(len(self.db.calls), 2)
        self.clock.advance(0.01)
        self.assertEqual(self.db.calls[-1][0], [1, 2])
        self.db.succeed()
        self.assertEqual(len(self.writer), 0)
        self.assertEqual([e["log_level"].name for e in observer], ["error", "info"])
        self.assertEqual(observer[0]["count"], 1)

    def test_noRetryFailsWaiters(self):
        """Without retry a failed batch fails the Deferreds of its items."""
        writer = BatchWriter(self.clock, self.db.write, "marks", retry=False)
        d = writer.write("x")
        self.clock.advance(0)
        self.db.failLast()
        self.failureResultOf(d, ConnectionError)
        self.assertEqual(len(writer), 0)

    def test_overflowDropsOldestLoudly(self):
        """Beyond maxPending the oldest waiting item is dropped, logged and counted."""
        observer = EventLoggingObserver.createWithCleanup(self, BatchWriter.log.observer)
        writer = BatchWriter(self.clock, self.db.write, "updates", maxPending=2)
        first = writer.write("a")
        writer.add("b")
        writer.add("c")
        self.failureResultOf(first, OverflowError)
        self.assertEqual(writer.dropped, 1)
        self.assertEqual(observer[0]["item"], "a")
        self.clock.advance(0)
        self.assertEqual(self.db.calls[0][0], ["b", "c"])

    def test_whenIdle(self):
        """whenIdle fires once everything added so far is written."""
        self.assertIsNone(self.successResultOf(self.writer.whenIdle()))
        self.writer.add(1)
        d = self.writer.whenIdle()
        self.clock.advance(0)
        self.assertNoResult(d)
        self.db.succeed()
        self.successResultOf(d)

    def test_stopCancelsRetry(self):
        """Once stopped, a writer waiting to retry leaves no timer and writes no more."""
        self.writer.add(1)
        self.clock.advance(0)
        self.db.failLast()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.writer.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.writer.add(2)
        self.clock.advance(10)
        self.assertEqual(len(self.db.calls), 1)

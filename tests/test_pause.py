"""A pause that ends at its time, or earlier when ended, leaving no timer behind."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from acqs.pause import Pause


class PauseTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.pause = Pause(self.clock)

    def test_endsAtItsTime(self):
        paused = self.pause(2.0)
        self.clock.advance(1.9)
        self.assertNoResult(paused)
        self.clock.advance(0.1)
        self.successResultOf(paused)

    def test_endedEarly(self):
        """Ended early, it fires at once and its timer is gone."""
        paused = self.pause(2.0)
        self.pause.end()
        self.successResultOf(paused)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_endWithoutPause(self):
        """An end with no pause under way ends nothing, and not the next pause."""
        self.pause.end()
        paused = self.pause(1.0)
        self.assertNoResult(paused)
        self.clock.advance(1.0)
        self.successResultOf(paused)

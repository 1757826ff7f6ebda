"""The file descriptor limit raised for the send sessions, or the shortfall said."""

import os
import resource
import subprocess
import sys

from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from acqs import limits as acqsLimits
from acqs.limits import DescriptorWatch, descriptorsNeeded, raiseDescriptorLimit


class Limits:
    """RLIMIT_NOFILE as the kernel keeps it: a soft limit raised up to the hard one."""

    def __init__(self, soft, hard):
        self.soft, self.hard = soft, hard

    def getrlimit(self, which):
        assert which == resource.RLIMIT_NOFILE
        return self.soft, self.hard

    def setrlimit(self, which, limits):
        soft, hard = limits
        if hard != self.hard or (hard != resource.RLIM_INFINITY and soft > hard):
            raise ValueError("not allowed")
        self.soft = soft


class RaiseTests(SynchronousTestCase):
    def test_raisedToWhatIsNeeded(self):
        """A shell's 1024 is raised to the sessions' need, not further."""
        limits = Limits(1024, 524288)
        limit = raiseDescriptorLimit(descriptorsNeeded(50, 1200), limits)
        self.assertEqual((limit.before, limit.soft, limits.soft), (1024, 1350, 1350))
        self.assertTrue(limit.enough)

    def test_neverLowered(self):
        """A limit already above the need is left as it is."""
        limits = Limits(65536, 524288)
        limit = raiseDescriptorLimit(350, limits)
        self.assertEqual((limit.soft, limits.soft), (65536, 65536))
        self.assertTrue(limit.enough)

    def test_hardLimitShort(self):
        """Where the hard limit is short, the soft one goes up to it and the shortfall shows."""
        limits = Limits(1024, 4096)
        limit = raiseDescriptorLimit(5000, limits)
        self.assertEqual((limit.soft, limits.soft), (4096, 4096))
        self.assertFalse(limit.enough)

    def test_realKernel(self):
        """On this kernel, in a process of its own started with a soft limit of 256."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 600:
            raise self.skipTest(f"the hard limit here is {hard}")
        code = ("import resource; from acqs.limits import raiseDescriptorLimit;"
                " print(raiseDescriptorLimit(600).soft,"
                " resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
        # The acqs these tests import, wherever it is installed.
        top = os.path.dirname(os.path.dirname(acqsLimits.__file__))
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": top},
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
        self.assertEqual(out.stdout.split(), ["600", "600"])


class WatchTests(SynchronousTestCase):
    def said(self):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        return events

    def test_shortfallSaid(self):
        """A hard limit below the need is a warning naming the options and LimitNOFILE."""
        events = self.said()
        DescriptorWatch(50, lambda: 1200, Limits(1024, 1024)).check()
        [text] = [formatEvent(e) for e in events]
        self.assertIn("acqs may hold 1350 file descriptors (--max-sessions 50 +"
                      " --max-originates 1200 + 100) but may open only 1024 (hard limit 1024):"
                      " raise LimitNOFILE", text)

    def test_raiseSaid(self):
        """A raise is said once, with what it was for; enough says nothing."""
        limits = Limits(256, 524288)
        events = self.said()
        watch = DescriptorWatch(50, lambda: 200, limits)
        watch.check()
        self.assertEqual(limits.soft, 350)
        self.assertEqual([formatEvent(e) for e in events],
                         ["File descriptor limit raised from 256 to 350 for"
                          " --max-sessions 50 + --max-originates 200"])
        enough = DescriptorWatch(50, lambda: 200, Limits(20000, 20000))
        self.assertTrue(enough.check().enough)
        self.assertEqual(len(events), 1)

    def test_followsTheRoom(self):
        """When the servers row widens the Originates' room, the limit follows; while it
        stays, nothing is asked of the kernel."""
        limits = Limits(1024, 524288)
        room = [200]
        watch = DescriptorWatch(50, lambda: room[0], limits)
        watch.check()
        self.assertEqual(limits.soft, 1024)
        room[0] = 1200  # max_vicidial_trunks 600
        self.assertEqual(watch.check().soft, 1350)
        self.assertEqual(limits.soft, 1350)
        limits.getrlimit = lambda which: self.fail("asked again")
        self.assertIsNone(watch.check())

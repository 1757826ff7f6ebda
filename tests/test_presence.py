"""Tests for acqs.presence: the process title VICIdial's dialer and keepalive look for."""

import os
import secrets

from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from acqs.presence import (Presence, Process, TitleLock, isListener, isSender, listProcesses,
                           perlACQS, title)

PID = 4000
PERL_LISTENER = Process(1200, "/usr/bin/perl /usr/share/astguiclient/AST_manager_listen_AMI2.pl")
PERL_SENDER = Process(1201, "/usr/bin/perl /usr/share/astguiclient/AST_manager_send.pl")
SCREEN = Process(1199, "SCREEN -d -m -S ASTlisten"
                       " /usr/share/astguiclient/AST_manager_listen_AMI2.pl")


class CheckTests(SynchronousTestCase):
    """VICIdial's ps check, as its scripts make it."""

    def test_titleCountsOnceAsListenerAndSender(self):
        """acqs' title is one listener and one sender to VICIdial, says it is acqs, stays
        in 80 columns with its pid, and never holds bin/asterisk."""
        text = title("255.255.255.255")
        self.assertTrue(isListener(text) and isSender(text))
        self.assertTrue(text.startswith("acqs: "))
        self.assertNotIn("bin/asterisk", text)
        self.assertLessEqual(len(f"{PID:>6} " + text.split(" (server")[0]), 80)

    def test_perlScriptsAndWrappers(self):
        """The Perl listener and sender match; their screen wrapper, a perl not run as
        /usr/bin/perl, and text after a second /usr/bin/perl do not."""
        self.assertTrue(isListener(PERL_LISTENER.args) and not isSender(PERL_LISTENER.args))
        self.assertTrue(isSender(PERL_SENDER.args) and not isListener(PERL_SENDER.args))
        self.assertFalse(isListener(SCREEN.args))
        self.assertFalse(isListener("perl /usr/share/astguiclient/AST_manager_listen.pl"))
        self.assertFalse(isListener("sh -c x /usr/bin/perl a /usr/bin/perl AST_manager_listen"))

    def test_perlACQSLeavesOutAcqsAndItself(self):
        """Another acqs under its title, and this process, are not a Perl ACQS."""
        other = Process(5, title("10.0.0.4"))
        me = Process(PID, "/usr/bin/perl AST_manager_listen")
        self.assertEqual(perlACQS([other, me, PERL_SENDER, SCREEN], PID), (PERL_SENDER,))

    def test_listProcesses(self):
        """Processes are read from /proc as ps lists them: arguments joined by spaces;
        kernel threads (no command line) and other entries are left out."""
        proc = self.mktemp()
        for pid, cmdline in (("7", b"/usr/bin/perl\0/x/AST_manager_send.pl\0"), ("8", b""),
                             ("10", b"acqs: title\0\0\0\0")):
            os.makedirs(os.path.join(proc, pid))
            with open(os.path.join(proc, pid, "cmdline"), "wb") as f:
                f.write(cmdline)
        os.makedirs(os.path.join(proc, "self"))
        self.assertEqual(listProcesses(proc), [
            Process(7, "/usr/bin/perl /x/AST_manager_send.pl"), Process(10, "acqs: title")])


class TitleLockTests(SynchronousTestCase):
    def test_onePerBox(self):
        """Of two locks of one name, only one is held at a time; releasing frees it."""
        name = f"\0acqs-test-{secrets.token_hex(8)}"
        first, second = TitleLock(name), TitleLock(name)
        self.addCleanup(first.release)
        self.addCleanup(second.release)
        self.assertTrue(first.acquire())
        self.assertFalse(second.acquire())
        first.release()
        self.assertTrue(second.acquire())
        self.assertTrue(second.held)


class FakeTitle:
    def __init__(self):
        self.title = "twistd acqs"
        self.original = self.title

    def set(self, text):
        self.title = text

    def restore(self):
        self.title = self.original


class FakeLock:
    def __init__(self, free=True):
        self.free = free
        self.held = False

    def acquire(self):
        self.held = self.held or self.free
        return self.held

    def release(self):
        self.held = False


class PresenceTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.others = []
        self.failing = False
        self.title = FakeTitle()
        self.lock = FakeLock()
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def scan(self):
        if self.failing:
            return fail(PermissionError("no /proc"))
        return succeed([Process(PID, self.title.title), *self.others])

    def start(self, initial=True):
        presence = Presence(self.clock, "10.0.0.4", self.scan, self.lock, self.title, pid=PID,
                            initial=self.scan().result if initial and not self.failing
                            else None)
        presence.startService()
        self.addCleanup(lambda: presence.running and presence.stopService())
        return presence

    def lines(self, level):
        return [e["log_format"].format(**e) for e in self.logged if e["log_level"] == level]

    def test_takesTheTitle(self):
        """Alone on the box, acqs takes the title at start: it stands in, claims are free."""
        presence = self.start()
        self.assertEqual(self.title.title, title("10.0.0.4"))
        self.assertTrue(presence.standsIn())
        self.assertIsNone(presence.hold())
        self.assertEqual(presence.problems(), [])

    def test_perlSenderAtStart(self):
        """Beside a Perl sender acqs keeps its command line, logs an error naming it,
        holds claims and reports it; once it stops, acqs takes the title and claims."""
        self.others = [PERL_SENDER, PERL_LISTENER]
        presence = self.start()
        self.assertEqual(self.title.title, "twistd acqs")
        self.assertFalse(self.lock.held)
        self.assertIn("pid 1201", presence.hold())
        self.assertFalse(presence.standsIn())
        [error] = self.lines(LogLevel.error)
        self.assertIn("pid 1200", error)
        self.assertIn("pid 1201", error)
        self.assertIn("pid 1200", presence.problems()[0])
        self.assertEqual(presence.snapshot()["perl_acqs"], [1201, 1200])
        self.others = []
        self.clock.advance(5)
        self.assertEqual(self.title.title, title("10.0.0.4"))
        self.assertIsNone(presence.hold())
        self.assertTrue(presence.standsIn())

    def test_perlListenerOnly(self):
        """A Perl listener alone costs acqs the title but not its claims."""
        self.others = [PERL_LISTENER]
        presence = self.start()
        self.assertFalse(presence.titled)
        self.assertIsNone(presence.hold())
        self.assertFalse(presence.standsIn())
        self.assertTrue(presence.problems())

    def test_perlStartsLater(self):
        """A Perl ACQS that starts beside a titled acqs makes it give the title back."""
        presence = self.start()
        self.others = [PERL_LISTENER]
        self.clock.advance(5)
        self.assertEqual(self.title.title, "twistd acqs")
        self.assertFalse(self.lock.held)
        self.assertFalse(presence.standsIn())

    def test_anotherAcqsHasIt(self):
        """While another acqs holds the lock this one runs untitled, naming the holder;
        it takes the title once the lock is free."""
        self.lock.free = False
        self.others = [Process(77, title("10.0.0.4"))]
        presence = self.start()
        self.assertEqual(self.title.title, "twistd acqs")
        self.assertEqual(presence.snapshot()["process_title_holder"], 77)
        self.assertIsNone(presence.hold())
        self.assertEqual(self.lines(LogLevel.error), [])
        self.lock.free, self.others = True, []
        self.clock.advance(5)
        self.assertTrue(presence.titled)
        self.assertIsNone(presence.snapshot()["process_title_holder"])

    def test_noProcessList(self):
        """Without a process list acqs takes no title and claims as before, saying so once."""
        self.failing = True
        presence = self.start(initial=False)
        self.clock.advance(5)
        self.assertFalse(presence.titled)
        self.assertIsNone(presence.hold())
        self.assertEqual(len(self.lines(LogLevel.warn)), 1)

    def test_stopGivesItBack(self):
        """Stopping gives the title and the lock back."""
        presence = self.start()
        presence.stopService()
        self.assertEqual(self.title.title, "twistd acqs")
        self.assertFalse(self.lock.held)

    def test_titleNotShown(self):
        """A title that ps does not show is warned about once."""
        self.start()
        self.title.set = lambda text: None  # a later look sees the old command line
        self.title.title = "twistd acqs"
        self.clock.advance(5)
        self.clock.advance(5)
        self.assertEqual(len(self.lines(LogLevel.warn)), 1)

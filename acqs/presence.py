"""
acqs in C{ps}, where VICIdial's scripts look for their ACQS.

VICIdial's dialer (C{AST_VDauto_dial.pl}), remote agents and Perl sender
list C{ps -o "%p %a" --no-headers -A}, split each line on the literal
C{/usr/bin/perl } and look for C{AST_manager_li} in the second piece; with
none they exit.  C{ADMIN_keepalive_ALL.pl} (cron, every minute) counts the
same matches: it C{kill -9}s the second of several listeners, and with
keepalive digit 2 it starts a Perl sender when no process has
C{AST_manager_se} there, and a Perl listener when none has C{AST_manager_li}.

So the daemon carries the process title L{title}, which every one of those
checks counts once as the listener and once as the sender, and:

  - one process per box at most carries it: the holder of an abstract unix
    socket (L{TitleLock}; the kernel frees it when the process ends).
    Another instance runs under its own command line and takes the title
    when the holder goes.  acqs starts no child process.
  - never beside a Perl ACQS: while another process matches, acqs keeps its
    own command line (giving the title back if it held it), logs an error
    naming the processes, reports it in its status, and, while a Perl
    sender runs, claims no rows (the Perl sender resends rows in QUEUE,
    acqs' claims among them).

The process list is read from C{/proc}, as ps reads it, not by running ps:
a child forked by acqs would carry acqs' title until it execs.
"""

import os
import socket
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

# VICIdial's check: the literal text a line is split on, and what the piece
# after it must hold.
PERL = "/usr/bin/perl "
LISTENER = "AST_manager_li"
SENDER = "AST_manager_se"

TITLE_START = "acqs: "
# An abstract unix socket name (Linux): one holder per box, none left behind.
LOCK_NAME = "\0acqs: VICIdial ACQS process title"


def title(serverIP: str) -> str:
    """
    acqs' process title: says it is acqs, and carries, after one
    C{/usr/bin/perl }, the names VICIdial's checks look for, within the
    first 80 columns; never C{bin/asterisk} (the keepalive would count it
    as Asterisk), never a secret.
    """
    return f"{TITLE_START}stands in for {PERL}AST_manager_send AST_manager_listen" \
           f" (server {serverIP})"


def afterPerl(args: str) -> str:
    """What VICIdial's checks test of a ps line: the piece after the first C{/usr/bin/perl }."""
    pieces = args.split(PERL)
    return pieces[1] if len(pieces) > 1 else ""


def isListener(args: str) -> bool:
    """Whether VICIdial counts a process with this command line as an ACQS listener."""
    return LISTENER in afterPerl(args)


def isSender(args: str) -> bool:
    """Whether VICIdial counts a process with this command line as an ACQS sender."""
    return SENDER in afterPerl(args)


@attr.s(frozen=True, auto_attribs=True)
class Process:
    """One line of C{ps -o "%p %a"}: the pid and the command line, arguments joined by spaces."""

    pid: int
    args: str

    @property
    def acqs(self) -> bool:
        """Whether this is acqs under its title (not a Perl script)."""
        return self.args.startswith(TITLE_START)

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.args[:100]})"


def listProcesses(proc: str = "/proc") -> List[Process]:
    """
    Every process with a command line, as C{ps -o "%p %a" --no-headers -A}
    lists them (kernel threads, which have none, cannot match).
    """
    found = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "cmdline"), "rb") as f:
                raw = f.read()
        except OSError:  # gone meanwhile, or hidden
            continue
        args = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
        if args:
            found.append(Process(int(name), args))
    return sorted(found, key=lambda p: p.pid)


def perlACQS(processes: Iterable[Process], pid: int) -> Tuple[Process, ...]:
    """The processes other than C{pid} and other than acqs that VICIdial counts as its ACQS."""
    return tuple(p for p in processes if p.pid != pid and not p.acqs
                 and (isListener(p.args) or isSender(p.args)))


class TitleLock:
    """The right to carry the title on this box: an abstract unix socket, bound or not."""

    def __init__(self, name: str = LOCK_NAME):
        self._name = name
        self._socket: Optional[socket.socket] = None

    @property
    def held(self) -> bool:
        return self._socket is not None

    def acquire(self) -> bool:
        """Take the lock if free; whether it is held now."""
        if self._socket is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # not inherited by children
            try:
                s.bind(self._name)
            except OSError:
                s.close()
                return False
            self._socket = s
        return True

    def release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class ProcessTitle:
    """This process' title (C{/proc/self/cmdline}), through setproctitle."""

    def __init__(self):
        import setproctitle

        self._module = setproctitle
        self.original = setproctitle.getproctitle()

    def set(self, text: str) -> None:
        self._module.setproctitle(text)

    def restore(self) -> None:
        self._module.setproctitle(self.original)


class Presence(Service):
    """
    Keeps acqs' process title as the module docstring says, looking at the
    process list every C{interval} seconds: C{scan()} fires with the
    L{Process}es of the box (run it in a thread: it reads /proc).  The
    list read at start-up, C{initial}, is looked at as the service starts,
    before anything else of acqs does.

    C{hold()} is the reason the sender must not claim now (a Perl sender
    runs), or None; C{standsIn()} whether acqs is the box's ACQS for
    VICIdial (it holds the title and no Perl sender runs), so that rows a
    Perl sender left in QUEUE may be sent at once.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        serverIP: str,
        scan: Callable[[], Deferred],
        lock: TitleLock,
        processTitle,
        pid: Optional[int] = None,
        interval: float = 5.0,
        initial: Optional[Sequence[Process]] = None,
    ):
        self._clock = clock
        self.title = title(serverIP)
        self._scan = scan
        self._lock = lock
        self._processTitle = processTitle
        self.pid = os.getpid() if pid is None else pid
        self._loop = LoopingCall(self._look)
        self._loop.clock = clock
        self._interval = interval
        self._looping: Optional[Deferred] = None
        self.scanned = False  # a process list was read
        self.titled = False
        self.perl: Tuple[Process, ...] = ()  # the Perl ACQS processes seen
        self.holder: Optional[Process] = None  # another acqs with the title
        self._scanFailed = False
        self._unseen = False  # titled, but the list did not show it
        self._initial = initial

    # What others ask

    def hold(self) -> Optional[str]:
        """Why the sender must not claim rows now, or None."""
        senders = [p for p in self.perl if isSender(p.args)]
        if senders:
            return (f"VICIdial's Perl sender runs on this box ({_pids(senders)}); it would"
                    " send acqs' claimed rows again")
        if not self.scanned and not self._scanFailed:
            return "the process list was not read yet"
        return None

    def standsIn(self) -> bool:
        """Whether acqs is this box's ACQS for VICIdial: titled, no Perl sender or listener."""
        return self.titled and self.scanned and not self.perl

    def problems(self) -> List[str]:
        """What the status file reports as wrong (a restart would not mend it)."""
        if not self.perl:
            return []
        return [f"VICIdial's Perl ACQS runs on this box ({_pids(self.perl)}): acqs does not"
                " take the process title VICIdial looks for"
                + (", and claims no rows," if self.hold() else "")
                + " until it stops (screen -S ASTsend -X quit; screen -S ASTlisten -X quit)"]

    def snapshot(self) -> dict:
        """The status file's view."""
        return {
            "process_title": self.titled,
            "process_title_holder": self.holder.pid if self.holder else None,
            "perl_acqs": [p.pid for p in self.perl],
        }

    # The loop

    def startService(self) -> None:
        super().startService()
        if self._initial is not None:
            self._saw(self._initial)
            self._initial = None
        self._looping = self._loop.start(self._interval, now=not self.scanned)

    def stopService(self) -> Deferred:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        self._untitle()
        return succeed(None) if self._looping is None else self._looping  # None: never started

    def _look(self) -> Deferred:
        return Deferred.fromCoroutine(self._lookSafely())

    async def _lookSafely(self) -> None:
        try:
            processes = await self._scan()
        except Exception as e:
            if not self._scanFailed:
                self.log.warn("Cannot read the process list ({reason}): acqs does not take the"
                              " process title VICIdial's dialer looks for", reason=str(e))
            self._scanFailed = True
            return
        if not self.running:
            return
        try:
            self._saw(processes)
        except Exception:
            self.log.failure("Keeping the process title failed")

    def _saw(self, processes: Sequence[Process]) -> None:
        wasTitled = self.titled
        self.scanned, self._scanFailed = True, False
        perl = perlACQS(processes, self.pid)
        if perl != self.perl:
            if perl:
                self.log.error(
                    "VICIdial's Perl ACQS runs on this box: {processes}; acqs does not take"
                    " the process title VICIdial's dialer looks for{claims}, until it stops",
                    processes="; ".join(map(str, perl)),
                    claims=", and claims no rows" if any(isSender(p.args) for p in perl)
                    else "")
            else:
                self.log.info("VICIdial's Perl ACQS has stopped")
        self.perl = perl
        if perl:
            self._untitle()
        elif not self.titled:
            self._entitle()
        mine = [p for p in processes if p.pid == self.pid]
        others = [p for p in processes if p.pid != self.pid and p.acqs and isListener(p.args)]
        self.holder = others[0] if others and not self.titled else None
        unseen = wasTitled and self.titled and not (mine and isListener(mine[0].args)
                                      and isSender(mine[0].args))
        if unseen and not self._unseen:
            self.log.warn("The process title was set but ps does not show it: VICIdial's"
                          " dialer will not find its listener")
        self._unseen = unseen

    def _entitle(self) -> None:
        if not self._lock.acquire():
            return
        self._processTitle.set(self.title)
        self.titled = True
        self.log.info("Process title: {title} (VICIdial's dialer and keepalive see it as"
                      " their ACQS)", title=self.title)

    def _untitle(self) -> None:
        if self.titled:
            self._processTitle.restore()
            self.titled = False
            self.log.info("Process title given back")
        self._lock.release()


def _pids(processes: Sequence[Process]) -> str:
    return ", ".join(f"pid {p.pid}" for p in processes)

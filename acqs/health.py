"""
Health: a status file acqs rewrites every few seconds, and C{acqs health},
which reads it for cron and monitoring.

The status file is one JSON object.  L{StatusFile} writes C{time} (Unix
seconds of the writing) and C{pid}; the rest is the application's snapshot,
whose keys are all optional (an absent key is not checked):

  - C{listener_connected} (bool): the listener's AMI session is logged in.
  - C{listener_down_since} (seconds, on the clock of C{time}): since when
    it has not been; the start time before the first login.
  - C{listener_cause}, C{listener_error}: why (L{acqs.ami.outage}), once
    an attempt failed.
  - C{store_ok} (bool), C{store_down_since}, C{store_error}: whether the
    database answers housekeeping, since when it does not, and why.
  - C{claims_ok} (bool), C{claims_failing_since}, C{claim_error}: whether
    the sender's claims succeed, since when they fail, and why (a claim
    can fail while the rest of the database works, e.g. SQL an old server
    does not know).
  - C{ami_ok} (bool), C{ami_down_since}, C{ami_cause}, C{ami_error}:
    whether the sender reaches AMI, and why not.
  - C{new_rows} (int), C{new_waiting_since}, C{new_seen_at},
    C{new_oldest_age}: rows of this server waiting as NEW, since when the
    oldest of them has been seen waiting unclaimed, when it was last seen
    (only what was seen is judged), and its age by its entry_date (whole
    seconds).
  - C{updates_pending} (int): call progress updates waiting to be written.
  - C{updates_dropped} (int): updates dropped since start (too many waited).
  - C{metrics_error} (str): why the metrics port could not be had.
  - C{problems} (list of str): anything else the application finds wrong.
  - C{warnings} (list of str): what else is wrong that a restart would not
    mend (a Perl ACQS beside acqs): DEGRADED.

Other keys (counters and the like) are shown, not judged.

A judgement is HEALTHY, DEGRADED or UNHEALTHY.  A failing step (the
listener or the sender not reaching AMI, the database failing, claims
failing, NEW rows left unclaimed, the metrics port taken) makes acqs
DEGRADED at once; it is UNHEALTHY once the step has failed longer than
C{--grace} (the metrics port excepted: a restart would not free it), when
the status file is older than C{--max-age} (stuck), when updates pile up or
were dropped, or when acqs reports another problem.

C{acqs health} exits as a Nagios plugin: 0 healthy, 1 degraded (WARNING),
2 unhealthy or not running (CRITICAL), 3 cannot tell (UNKNOWN).  A cron
line in the manner of VICIdial's ADMIN_keepalive_ALL.pl restarts acqs on 2
only (etc/acqs-health.cron); a degraded acqs keeps running and is logged.
"""

import json
import os
import sys
import time
from typing import Callable, List, Optional, TextIO, Tuple

import attr
from twisted.application.service import Service
from twisted.internet.defer import succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python import usage

# Exit codes, as Nagios plugins': OK, WARNING, CRITICAL, UNKNOWN.
OK, DEGRADED, UNHEALTHY, UNKNOWN = 0, 1, 2, 3
NOT_RUNNING = UNHEALTHY
DEFAULT_STATUS_FILE = "acqs.status.json"
# The verdicts, best first.
HEALTHY_, DEGRADED_, UNHEALTHY_ = "HEALTHY", "DEGRADED", "UNHEALTHY"
VERDICTS = (HEALTHY_, DEGRADED_, UNHEALTHY_)
EXIT = {HEALTHY_: OK, DEGRADED_: DEGRADED, UNHEALTHY_: UNHEALTHY}
# How the causes of acqs.ami.outage read after "cannot reach AMI: ".
CAUSES = {
    "unreachable": "cannot connect",
    "no_answer": "Asterisk does not answer",
    "not_asterisk": "not an Asterisk manager",
    "login_refused": "login refused, check the AMI user and its secret",
    "login_failed": "login failed",
    "shutting_down": "Asterisk is shutting down",
}


@attr.s(frozen=True, auto_attribs=True)
class Problem:
    """One thing wrong: how bad (DEGRADED or UNHEALTHY) and a sentence saying it."""

    level: str
    text: str

    def __str__(self) -> str:
        return f"{self.level}: {self.text}"


def verdict(problems: List[Problem]) -> str:
    """HEALTHY without problems, else the worst problem's level."""
    return max((p.level for p in problems), key=VERDICTS.index, default=HEALTHY_)


class StatusFile(Service):
    """
    Write C{snapshot()}, plus C{time} and C{pid}, to C{path} as JSON every
    C{interval} seconds, replacing the file atomically; remove it on stop.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        path: str,
        snapshot: Callable[[], dict],
        interval: float = 5.0,
    ):
        self._clock = clock
        self.path = path
        self._snapshot = snapshot
        self._interval = interval
        self._loop = LoopingCall(self._write)
        self._loop.clock = clock
        self._failing = False

    def startService(self):
        super().startService()
        self._loop.start(self._interval, now=True)

    def stopService(self):
        if self._loop.running:
            self._loop.stop()
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            self.log.warn("Could not remove the status file {path}: {reason}",
                          path=self.path, reason=e.strerror)
        super().stopService()
        return succeed(None)

    def _write(self) -> None:
        try:
            status = dict(self._snapshot())
            status.update(time=self._clock.seconds(), pid=os.getpid())
            text = json.dumps(status, sort_keys=True)
            temporary = f"{self.path}.tmp"
            with open(temporary, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            os.replace(temporary, self.path)
        except Exception:
            if not self._failing:
                self.log.failure("Could not write the status file {path}", path=self.path)
            self._failing = True
        else:
            if self._failing:
                self.log.info("The status file {path} is written again", path=self.path)
            self._failing = False


def pidAlive(pid: int) -> bool:
    """Whether a process C{pid} exists (possibly another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def examine(
    statusPath: str,
    maxAge: float,
    now: Callable[[], float] = time.time,
    isAlive: Callable[[int], bool] = pidAlive,
    grace: float = 60.0,
    maxPending: int = 10_000,
    maxNewWait: float = 10.0,
) -> Tuple[bool, List[Problem], dict]:
    """
    Read the status file: C{(running, problems, status)}.  C{running} is
    false when there is no file or its pid is gone (an UNHEALTHY problem
    says so); C{problems} is empty when all is well.
    """

    def unhealthy(text: str) -> List[Problem]:
        return [Problem(UNHEALTHY_, text)]

    try:
        with open(statusPath, encoding="utf-8") as f:
            status = json.load(f)
    except FileNotFoundError:
        return False, unhealthy(f"acqs is not running: there is no status file {statusPath}"), {}
    except (OSError, ValueError) as e:
        return True, unhealthy(f"cannot read the status file {statusPath}: {e}"), {}
    if not isinstance(status, dict):
        return True, unhealthy(f"the status file {statusPath} holds no JSON object"), {}
    pid = status.get("pid")
    if not isinstance(pid, int) or not isAlive(pid):
        return False, unhealthy(f"acqs is not running: pid {pid} of {statusPath} is gone"), status
    problems = []
    written = status.get("time")
    if not isinstance(written, (int, float)):
        problems += unhealthy(f"the status file {statusPath} has no time")
        written = now()
    elif now() - written > maxAge:
        problems += unhealthy(f"acqs is stuck: its status file is {now() - written:.0f} s old"
                              f" (more than {maxAge:g} s)")
    problems.extend(judge(status, now(), grace, maxPending, maxNewWait))
    return True, problems, status


def _cause(status: dict, prefix: str) -> str:
    cause, error = status.get(f"{prefix}_cause"), status.get(f"{prefix}_error")
    said = CAUSES.get(str(cause), "")
    if said and error:
        return f": {said} ({error})"
    return f": {said or error}" if said or error else ""


def judge(status: dict, now: float, grace: float = 60.0, maxPending: int = 10_000,
          maxNewWait: float = 10.0) -> List[Problem]:
    """
    The problems a status snapshot shows at C{now} (on the clock of its
    times), worst first; empty when all is well.  Whether acqs runs and
    writes its file at all is L{examine}'s part.
    """
    problems = []

    def failing(what: str, since: float, after: float = 0.0, cause: str = "",
                until: float = now) -> None:
        """A step failing since C{since}: degraded after C{after} s, unhealthy after grace."""
        lasted = until - since
        if not since:
            problems.append(Problem(UNHEALTHY_, what + cause))
        elif lasted > grace:
            problems.append(Problem(UNHEALTHY_, f"{what} for {lasted:.0f} s"
                                                f" (more than {grace:g} s){cause}"))
        elif lasted >= after:
            problems.append(Problem(DEGRADED_, f"{what} for {lasted:.0f} s{cause}"))

    if status.get("listener_connected") is False:
        failing("the AMI listener is disconnected", _number(status, "listener_down_since"),
                cause=_cause(status, "listener"))
    if status.get("ami_ok") is False:
        failing("the sender cannot reach AMI", _number(status, "ami_down_since"),
                cause=_cause(status, "ami"))
    if status.get("store_ok") is False:
        error = status.get("store_error")
        failing("the database is failing", _number(status, "store_down_since"),
                cause=f": {error}" if error else "")
    if status.get("claims_ok") is False:
        failing(f"claiming rows fails ({status.get('claim_error') or 'no reason given'})",
                _number(status, "claims_failing_since"))
    waiting = _number(status, "new_rows")
    if waiting and _number(status, "new_waiting_since"):
        age = _number(status, "new_oldest_age")
        failing(f"{waiting:.0f} rows wait as NEW"
                + (f" (the oldest inserted {age:.0f} s ago)" if age else "")
                + ", the oldest unclaimed", _number(status, "new_waiting_since"), maxNewWait,
                until=_number(status, "new_seen_at") or now)
    pending = _number(status, "updates_pending")
    if pending > maxPending:
        problems.append(Problem(UNHEALTHY_,
                                f"{pending} call progress updates wait to be written"))
    dropped = _number(status, "updates_dropped")
    if dropped:
        problems.append(Problem(UNHEALTHY_,
                                f"{dropped} call progress updates were dropped since acqs started"))
    if status.get("metrics_error"):
        problems.append(Problem(DEGRADED_, str(status["metrics_error"])))
    problems.extend(Problem(UNHEALTHY_, str(p)) for p in status.get("problems") or ())
    problems.extend(Problem(DEGRADED_, str(p)) for p in status.get("warnings") or ())
    return sorted(problems, key=lambda p: -VERDICTS.index(p.level))


def _number(status: dict, key: str) -> float:
    value = status.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def check(statusPath: str, maxAge: float, now: Callable[[], float] = time.time, **kw):
    """C{(verdict, problems as text)} of the acqs that writes C{statusPath}."""
    _, problems, _ = examine(statusPath, maxAge, now, **kw)
    return verdict(problems), [p.text for p in problems]


def register(subparsers):
    """Add the C{health} command to an argparse C{subparsers}; returns its parser."""
    parser = subparsers.add_parser(
        "health",
        help="exit 0 if acqs is healthy, 1 degraded, 2 unhealthy or not running (Nagios)",
        description=(
            "Check acqs from its status file, as a Nagios plugin: exit 0 when healthy, "
            "1 when degraded (a step fails, for less than --grace), 2 when unhealthy or not "
            "running, 3 when it cannot tell.  Prints one line per problem, worst first."
        ),
        epilog=(
            "cron (etc/acqs-health.cron) restarts acqs on exit 2 only: a degraded acqs "
            "is logged, not restarted."
        ),
    )
    parser.usageStatus = UNKNOWN  # Nagios: bad arguments are UNKNOWN (see acqs.cli.Parser)
    parser.add_argument(
        "--status-file", metavar="FILE",
        help=f"acqs' status file [status-file of --config, else {DEFAULT_STATUS_FILE}]",
    )
    parser.add_argument("--config", metavar="FILE", help="acqs' INI file, to find the status file")
    parser.add_argument(
        "--max-age", metavar="S", type=float, default=30.0,
        help="status older than S seconds means acqs is stuck [30]",
    )
    parser.add_argument(
        "--grace", metavar="S", type=float, default=60.0,
        help="a step (AMI, database, claims) failing longer than S seconds is unhealthy [60]",
    )
    parser.add_argument(
        "--max-new-wait", metavar="S", type=float, default=10.0,
        help="NEW rows left unclaimed longer than S seconds is degraded [10]",
    )
    parser.add_argument(
        "--max-pending", metavar="N", type=int, default=10_000,
        help="more than N updates waiting to be written is unhealthy [10000]",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing when healthy")
    parser.set_defaults(run=run)
    return parser


def run(args, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """Carry out C{acqs health}: problems to C{out}; returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    path = args.status_file
    if path is None:
        try:
            path = _statusFileOf(args.config)
        except usage.UsageError as e:
            print(f"UNKNOWN: {e}", file=err)
            return UNKNOWN
        if path is None:
            print(f"UNKNOWN: status-file is empty in {args.config}: acqs writes none", file=err)
            return UNKNOWN
    _, problems, status = examine(path, args.max_age, grace=args.grace,
                                  maxPending=args.max_pending, maxNewWait=args.max_new_wait)
    for problem in problems:
        print(problem, file=out)
    if not problems and not args.quiet:
        print(f"{HEALTHY_} {_summary(status)}", file=out)
    return EXIT[verdict(problems)]


def _statusFileOf(configPath: Optional[str]) -> Optional[str]:
    if configPath is None:
        return DEFAULT_STATUS_FILE
    from .config import readINI

    return readINI(configPath).get("status-file", DEFAULT_STATUS_FILE) or None


def _summary(status: dict) -> str:
    shown = (
        f'{key}="{value}"' if isinstance(value, str) and " " in value else f"{key}={value}"
        for key, value in sorted(status.items())
        if key not in ("pid", "time") and not key.endswith(("_at", "_since"))
        and isinstance(value, (bool, int, float, str))
    )
    return " ".join([f"pid={status['pid']}", *shown])

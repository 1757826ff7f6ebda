"""
Health: a status file acqs rewrites every few seconds, and C{acqs health},
which reads it for cron and monitoring.

The status file is one JSON object.  L{StatusFile} writes C{time} (Unix
seconds of the writing) and C{pid}; the rest is the application's snapshot,
whose keys are all optional (an absent key is not checked):

  - C{listener_connected} (bool): the listener's AMI session is logged in.
  - C{listener_down_since} (seconds, on the clock of C{time}): since when
    it has not been; the start time before the first login.  Only an outage
    longer than C{--grace} is a problem; without this key, any outage is.
  - C{store_ok} (bool): the last database operation succeeded.
  - C{store_down_since} (Unix seconds): since when it has failed; as above.
  - C{claims_ok} (bool), C{claims_failing_since}, C{claim_error}: whether
    the sender's claims succeed, since when they fail, and why (a claim
    can fail while the rest of the database works, e.g. SQL an old server
    does not know); as above.
  - C{ami_ok} (bool), C{ami_down_since}: whether the sender reaches AMI.
  - C{updates_pending} (int): call progress updates waiting to be written.
  - C{updates_dropped} (int): updates dropped since start (too many waited).
  - C{problems} (list of str): anything else the application finds wrong.

Other keys (counters and the like) are shown, not judged.  C{acqs health}
exits 0 when healthy, 1 when unhealthy (stuck, listener or database down
beyond C{--grace}, updates piling up or dropped), 2 when acqs is not running
(no status file, or its pid is gone), 3 when it cannot tell (bad C{--config}).
A crontab line in the manner of VICIdial's ADMIN_keepalive_ALL.pl::

    * * * * * root /opt/acqs/bin/acqs health -q --status-file
        /var/lib/acqs/acqs.status.json || systemctl restart acqs    (one line)
"""

import json
import os
import sys
import time
from typing import Callable, List, Optional, TextIO, Tuple

from twisted.application.service import Service
from twisted.internet.defer import succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python import usage

OK, UNHEALTHY, NOT_RUNNING, UNKNOWN = 0, 1, 2, 3
DEFAULT_STATUS_FILE = "acqs.status.json"


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
) -> Tuple[bool, List[str], dict]:
    """
    Read the status file: C{(running, problems, status)}.  C{running} is
    false when there is no file or its pid is gone; C{problems} holds one
    sentence per problem, empty when all is well.
    """
    try:
        with open(statusPath, encoding="utf-8") as f:
            status = json.load(f)
    except FileNotFoundError:
        return False, [f"acqs is not running: there is no status file {statusPath}"], {}
    except (OSError, ValueError) as e:
        return True, [f"cannot read the status file {statusPath}: {e}"], {}
    if not isinstance(status, dict):
        return True, [f"the status file {statusPath} holds no JSON object"], {}
    pid = status.get("pid")
    if not isinstance(pid, int) or not isAlive(pid):
        return False, [f"acqs is not running: pid {pid} of {statusPath} is gone"], status
    problems = []
    written = status.get("time")
    if not isinstance(written, (int, float)):
        problems.append(f"the status file {statusPath} has no time")
        written = now()
    elif now() - written > maxAge:
        problems.append(
            f"acqs is stuck: its status file is {now() - written:.0f} s old "
            f"(more than {maxAge:g} s)"
        )
    problems.extend(judge(status, now(), grace, maxPending))
    return True, problems, status


def judge(status: dict, now: float, grace: float = 60.0, maxPending: int = 10_000) -> List[str]:
    """
    The problems a status snapshot shows at C{now} (on the clock of its
    times), one sentence each; empty when all is well.  Whether acqs runs
    and writes its file at all is L{examine}'s part.
    """
    problems = []
    for flag, since, what in (
        ("listener_connected", "listener_down_since", "the AMI listener is disconnected"),
        ("store_ok", "store_down_since", "the database is failing"),
        ("claims_ok", "claims_failing_since",
         f"claiming rows fails ({status.get('claim_error') or 'no reason given'})"),
        ("ami_ok", "ami_down_since", "the sender cannot reach AMI"),
    ):
        if status.get(flag) is False:
            began = _number(status, since)
            if not began:
                problems.append(what)
            elif now - began > grace:
                problems.append(f"{what} for {now - began:.0f} s (more than {grace:g} s)")
    pending = _number(status, "updates_pending")
    if pending > maxPending:
        problems.append(f"{pending} call progress updates wait to be written")
    dropped = _number(status, "updates_dropped")
    if dropped:
        problems.append(f"{dropped} call progress updates were dropped since acqs started")
    problems.extend(str(p) for p in status.get("problems") or ())
    return problems


def _number(status: dict, key: str) -> float:
    value = status.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def check(statusPath: str, maxAge: float, now: Callable[[], float] = time.time, **kw):
    """C{(ok, problems)}: whether acqs runs and is healthy, and why not."""
    _, problems, _ = examine(statusPath, maxAge, now, **kw)
    return not problems, problems


def register(subparsers):
    """Add the C{health} command to an argparse C{subparsers}; returns its parser."""
    parser = subparsers.add_parser(
        "health",
        help="exit 0 if acqs runs and is healthy, 1 if unhealthy, 2 if not running",
        description=(
            "Check acqs from its status file: exit 0 when healthy, 1 when unhealthy, "
            "2 when not running, 3 when it cannot tell.  Prints one line per problem."
        ),
        epilog=(
            "crontab: * * * * * root /opt/acqs/bin/acqs health -q --status-file "
            "/var/lib/acqs/acqs.status.json || systemctl restart acqs"
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
        help="listener or database down longer than S seconds is unhealthy [60]",
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
    running, problems, status = examine(
        path, args.max_age, grace=args.grace, maxPending=args.max_pending
    )
    for problem in problems:
        print(problem, file=out)
    if problems:
        return UNHEALTHY if running else NOT_RUNNING
    if not args.quiet:
        print(f"OK {_summary(status)}", file=out)
    return OK


def _statusFileOf(configPath: Optional[str]) -> Optional[str]:
    if configPath is None:
        return DEFAULT_STATUS_FILE
    from .config import readINI

    return readINI(configPath).get("status-file", DEFAULT_STATUS_FILE) or None


def _summary(status: dict) -> str:
    shown = (
        f"{key}={value}"
        for key, value in sorted(status.items())
        if key not in ("pid", "time") and isinstance(value, (bool, int, float, str))
    )
    return " ".join([f"pid={status['pid']}", *shown])

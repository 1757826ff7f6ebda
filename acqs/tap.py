"""
The twistd plugin: C{twistd [twistd options] acqs [acqs options]}.

Logs: twistd's own C{--logfile} is rotated by size (a new file every
1,000,000 bytes, the old ones kept as C{LOG.1}, C{LOG.2}, ...) and on
C{SIGUSR1}; acqs adds roll-on-restart (C{--roll-logs}) and a JSON copy of the
log (C{--json-log}), rotated the same two ways.
"""

import os
import re
import signal
import time
from typing import Any, Callable, Iterable, Optional

from twisted.application.service import IService
from twisted.logger import FileLogObserver, eventAsJSON, formatEvent, globalLogPublisher
from twisted.python import usage
from twisted.python.logfile import LogFile

from .config import ASTGUICLIENT_CONF, MASK, OPTIONS, Settings, loadSettings

LOG_ROTATE_BYTES = 1_000_000  # as twistd's --logfile


class Options(usage.Options):
    """acqs' command line; C{settings} holds the merged L{Settings} once parsed."""

    synopsis = "[options]"
    longdesc = (
        "Settings come from the command line, then the --config INI file, then "
        "/etc/astguiclient.conf (VARserver_ip, VARDB_*), then defaults.  Secrets: "
        "--*-secret-file, --db-password-file or ACQS_SEND_SECRET, ACQS_LISTEN_SECRET, "
        "ACQS_DB_PASSWORD keep them out of ps."
    )
    optFlags = [[o.name, None, o.doc] for o in OPTIONS if o.flag and o.commandLine]
    optParameters = [
        [o.name, None, None, o.doc, None if o.parse is str else o.parse]
        for o in OPTIONS
        if not o.flag and o.commandLine
    ]

    # Where the settings come from; tests replace these.
    astguiclientPath = ASTGUICLIENT_CONF
    environ = os.environ

    def parseOptions(self, options=None):
        """
        Under twistd, a bad setting stops acqs with its one sentence on
        stderr: twistd itself would print the whole usage before it, which
        systemd would log at every restart.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if getattr(self, "parent", None) is None:
                raise
            raise SystemExit(
                f"twistd acqs: {e} (twistd acqs --help lists the options)") from None

    def postOptions(self):
        self.settings = loadSettings(self, self.environ, self.astguiclientPath)


def makeService(options: Options, reactor=None):
    """
    Set up the logs, then build the acqs service from C{options.settings}:
    the demo's with C{--demo}.
    """
    if reactor is None:
        from twisted.internet import reactor
    settings = options.settings
    # Written separately; imported only when run.
    build: Callable[[Settings, Any], IService]
    if settings.demo:
        from .demo import buildDemo as build
    else:
        from .app import buildService as build

    if settings.roll_logs:
        now = reactor.seconds()
        for path in (_twistdLogFile(getattr(options, "parent", None)), settings.json_log):
            if path:
                rollLog(path, now)
    if settings.json_log:
        startJSONLog(reactor, settings.json_log, _secrets(settings))
    return build(settings, reactor)


def _secrets(settings) -> list:
    return [s for s in (settings.send_secret, settings.listen_secret, settings.db_password) if s]


def _twistdLogFile(parent) -> Optional[str]:
    """The file twistd logs to, or C{None} (stdout, syslog, not under twistd)."""
    if parent is None or parent.get("syslog"):
        return None
    logfile = parent.get("logfile")
    if not logfile and not parent.get("nodaemon"):
        return "twistd.log"
    return None if logfile == "-" else logfile


def rollLog(path: str, now: float) -> Optional[str]:
    """
    Rename a non-empty log file C{path} to C{path.YYYY-MM-DD---HHMMSS} (local
    time C{now}), as VICIdial's ADMIN_restart_roll_logs.pl names rolled logs;
    a clash gets C{.1}, C{.2}, ...  Returns the new name, or C{None}.
    """
    try:
        if os.path.getsize(path) == 0:
            return None
    except OSError:
        return None
    target = base = f"{path}.{time.strftime('%Y-%m-%d---%H%M%S', time.localtime(now))}"
    n = 0
    while os.path.exists(target):
        n += 1
        target = f"{base}.{n}"
    os.rename(path, target)
    return target


def startJSONLog(reactor, path: str, secrets: Iterable[str]) -> LogFile:
    """
    Copy every log event, as one JSON object a line, to C{path}; rotated by
    size and on C{SIGUSR1} once C{reactor} runs, closed at shutdown.
    """
    logFile = LogFile.fromFullPath(path, rotateLength=LOG_ROTATE_BYTES)
    observer = jsonLogObserver(logFile, secrets)
    globalLogPublisher.addObserver(observer)
    reactor.callWhenRunning(rotateOnSignal, reactor, logFile.rotate)

    def stop():
        globalLogPublisher.removeObserver(observer)
        logFile.close()

    reactor.addSystemEventTrigger("after", "shutdown", stop)
    return logFile


def rotateOnSignal(reactor, rotate: Callable[[], Any], signum=signal.SIGUSR1) -> None:
    """
    Call C{rotate} in the reactor thread on C{signum}, after whatever handler
    was there (twistd's own rotates its text log).
    """
    previous = signal.getsignal(signum)

    def handler(sig, frame):
        reactor.callFromThread(rotate)
        if callable(previous):
            previous(sig, frame)

    signal.signal(signum, handler)


_SECRET_KEY = re.compile("secret|passw", re.IGNORECASE)


def jsonLogObserver(outFile, secrets: Iterable[str]) -> FileLogObserver:
    """
    A log observer writing each event to C{outFile} as a JSON line, its text
    in C{log_text}; fields named like secrets or equal to one of C{secrets}
    are written as C{***}.
    """
    secrets = frozenset(s for s in secrets if s)

    def clean(value, key=""):
        if _SECRET_KEY.search(key) or (isinstance(value, str) and value in secrets):
            return MASK
        if isinstance(value, dict):
            return {k: clean(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    def line(event) -> str:
        event = {k: clean(v, k) for k, v in event.items()}
        event["log_text"] = formatEvent(event)
        return eventAsJSON(event) + "\n"

    return FileLogObserver(outFile, line)


"""
Settings that follow VICIdial's C{servers} row while acqs runs.

VICIdial keeps each server's AMI settings in its C{servers} row (Admin →
Servers): C{telnet_host}, C{telnet_port}, the users and the shared
C{ASTmgrSECRET} (see L{acqs.store.servers}), and C{vd_server_logs}.  acqs
reads that row at start and again with every heartbeat (every 5 s, in the
heartbeat's own transaction), and each setting is taken from the first
place that has it:

  1. acqs' own options: the command line, the INI file, and for the
     secrets their files and environment variables (L{Settings.given});
  2. the C{servers} row of C{--server-ip};
  3. acqs' defaults.

L{LiveSettings} holds the values in force.  The AMI endpoint
(L{LiveEndpoint}) and the AMI factories read them each time they connect,
so a new send session uses a changed value at once; the listener is told
to reconnect.  Without a C{servers} row acqs runs on its options, and says
so once; without a C{servers} table (not VICIdial) it does not look again
until it restarts.

C{vd_server_logs} = N turns VICIdial's script logs off; acqs then drops its
per-row info lines (those that name a man_id, callerid or uniqueid) and
keeps every other line, warnings and errors included (L{rowLogGate}).
"""

from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import (FilteringLogObserver, ILogFilterPredicate, ILogObserver, LogLevel,
                            Logger, PredicateResult, globalLogPublisher)
from zope.interface import implementer, provider

from .config import Settings
from .store.servers import ServerRead, ServerRow

SECRETS = ("send_secret", "listen_secret")
# What the row gives, in L{LiveSettings}' attribute names.
FOLLOWED = ("ami", "send_user", "send_secret", "listen_user", "listen_secret", "row_logs")
# A change of these makes the listener log in again.
LISTENER = frozenset({"ami", "listen_user", "listen_secret"})
# The fields of an info line that make it a per-row line.
ROW_FIELDS = ("man_id", "man_ids", "callerid", "uniqueid")

Watcher = Callable[[FrozenSet[str]], None]

# Originate sessions (L{originateRoom}) where VICIdial's servers row does not
# say how many trunks the box has, and the fewest it says.
ORIGINATES_UNKNOWN = 200
ORIGINATES_LEAST = 100


def originateRoom(trunks: Optional[int]) -> int:
    """
    How many sessions may carry Originates at once, by VICIdial's
    C{servers.max_vicidial_trunks} (the most calls its dialer places on the
    box): twice that, for agents' manual dials, phone logins and transfers
    beside the dialer's calls, and at least L{ORIGINATES_LEAST};
    L{ORIGINATES_UNKNOWN} where the row does not say.
    """
    if trunks is None:
        return ORIGINATES_UNKNOWN
    return max(ORIGINATES_LEAST, 2 * trunks)


class LiveSettings:
    """
    The AMI settings in force, and what VICIdial's C{servers} row says of
    the server: C{max_vicidial_trunks}, C{asterisk_version} (None until a
    row is read).
    """

    log = Logger()

    def __init__(self, settings: Settings):
        self._settings = settings
        self.serverIP = settings.server_ip
        self.ami = settings.ami
        self.send_user, self.send_secret = settings.send_user, settings.send_secret
        self.listen_user, self.listen_secret = settings.listen_user, settings.listen_secret
        self.row_logs = True if settings.row_logs is None else settings.row_logs
        self.max_vicidial_trunks: Optional[int] = None
        self.asterisk_version: Optional[str] = None
        self.row: Optional[ServerRow] = None
        self._absent: Optional[str] = None  # what was said of a missing table or row
        self._watchers: List[Watcher] = []

    def maxOriginates(self) -> int:
        """C{--max-originates}, or as L{originateRoom} sizes it from the servers row."""
        given = self._settings.max_originates
        return given if given is not None else originateRoom(self.max_vicidial_trunks)

    def sendCredentials(self) -> Tuple[str, str]:
        return self.send_user, self.send_secret

    def listenCredentials(self) -> Tuple[str, str]:
        return self.listen_user, self.listen_secret

    def whenChanged(self, watcher: Watcher) -> None:
        """Call C{watcher(names)} with the names of the settings each change changes."""
        self._watchers.append(watcher)

    def wantsRows(self) -> bool:
        """Whether to read the servers row again: not where there is no servers table."""
        return self._absent != "table"

    def overridden(self) -> List[str]:
        """The followed settings that acqs' own options give (the row's are not used)."""
        return [name for name in FOLLOWED if self._given(name)]

    def _given(self, name: str) -> bool:
        if name in SECRETS:
            return bool(getattr(self._settings, name))
        return name in self._settings.given

    def follow(self, read: ServerRead) -> FrozenSet[str]:
        """Take the values of a C{servers} read; the names of those that changed."""
        if read.row is None:
            self._sayAbsent(read)
            return frozenset()
        first = self.row is None and self._absent is None
        if self._absent is not None:
            self.log.info("VICIdial's servers row of {server_ip} found",
                          server_ip=self.serverIP)
            self._absent = None
        row = self.row = read.row
        self.max_vicidial_trunks, self.asterisk_version = (row.max_vicidial_trunks,
                                                           row.asterisk_version)
        wanted = {
            "ami": row.ami, "send_user": row.send_user, "send_secret": row.secret,
            "listen_user": row.listen_user, "listen_secret": row.secret,
            "row_logs": row.vd_server_logs,
        }
        new = {name: value for name, value in wanted.items() if not self._given(name)}
        changed = frozenset(name for name, value in new.items() if getattr(self, name) != value)
        old = {name: getattr(self, name) for name in changed}
        for name, value in new.items():
            setattr(self, name, value)
        if first:
            self._sayFirst()
        elif changed:
            self._sayChanged(changed, old)
        if changed:
            for watcher in self._watchers:
                watcher(changed)
        return changed

    def _sayAbsent(self, read: ServerRead) -> None:
        absent = "table" if read.missing else "row"
        if absent == self._absent:
            return
        self._absent = absent
        if self.row is not None:
            self.log.warn("VICIdial's servers row of {server_ip} is gone; acqs keeps the"
                          " settings it had", server_ip=self.serverIP)
        elif read.missing:
            self.log.info("No VICIdial servers table to read ({reason}); acqs uses its own"
                          " AMI settings", reason=read.missing)
        else:
            self.log.info("VICIdial's servers table has no row for {server_ip}; acqs uses"
                          " its own AMI settings", server_ip=self.serverIP)

    def _sayFirst(self) -> None:
        overridden = self.overridden()
        self.log.info(
            "AMI settings of {server_ip}: {ami}, send user {send_user}, listen user"
            " {listen_user}, vd_server_logs {logs}; from VICIdial's servers row{but}",
            server_ip=self.serverIP, ami=self.ami, send_user=self.send_user,
            listen_user=self.listen_user, logs="Y" if self.row_logs else "N",
            but=(f" but {', '.join(n.replace('_', '-') for n in overridden)}, given to acqs"
                 if overridden else ""))

    def _sayChanged(self, changed: FrozenSet[str], old: Dict[str, object]) -> None:
        said = []
        if changed & set(SECRETS):
            said.append("secret changed")
        for name in ("ami", "send_user", "listen_user"):
            if name in changed:
                said.append(f"{name.replace('_', ' ')} {getattr(self, name)} (was {old[name]})")
        if "row_logs" in changed:
            said.append("vd_server_logs " + ("Y: per-row lines logged" if self.row_logs
                                             else "N: per-row info lines not logged"))
        then = []
        if changed - {"row_logs", "listen_user", "listen_secret"}:
            then.append("new send sessions use it")
        if changed & LISTENER:
            then.append("the listener logs in again")
        self.log.info("VICIdial's servers row of {server_ip} changed: {changes}{then}",
                      server_ip=self.serverIP, changes="; ".join(said),
                      then=f"; {' and '.join(then)}" if then else "")


@implementer(IStreamClientEndpoint)
class LiveEndpoint:
    """Connects to the AMI endpoint in force at each connection."""

    def __init__(self, reactor, ami: Callable[[], str]):
        self._reactor = reactor
        self._ami = ami
        self._parsed: Optional[Tuple[str, IStreamClientEndpoint]] = None

    def connect(self, protocolFactory):
        text = self._ami()
        parsed = self._parsed
        if parsed is None or parsed[0] != text:
            parsed = self._parsed = (text, clientFromString(self._reactor, text))
        return parsed[1].connect(protocolFactory)


def rowLogGate(rowLogs: Callable[[], bool], observer=globalLogPublisher) -> ILogObserver:
    """
    An observer passing events on to C{observer}, but per-row info lines
    while C{rowLogs()} is false.
    """

    @provider(ILogFilterPredicate)
    def predicate(event) -> PredicateResult:
        if (event.get("log_level") == LogLevel.info and not rowLogs()
                and any(name in event for name in ROW_FIELDS)):
            return PredicateResult.no
        return PredicateResult.maybe

    return FilteringLogObserver(observer, [predicate])


def logThrough(observer: ILogObserver, *objects: object) -> None:
    """Send what each of C{objects} logs through its C{log} to C{observer} instead."""
    for obj in objects:
        cls = type(obj)
        # Any object with a class-level log; IQueueStore, for one, does not declare it.
        obj.log = Logger(  # type: ignore[attr-defined]
            namespace=f"{cls.__module__}.{cls.__name__}", source=obj, observer=observer)

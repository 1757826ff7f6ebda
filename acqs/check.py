"""
C{acqs check}: before switching a VICIdial server from its Perl ACQS to
acqs, whether this box is ready and what to fix, one line per check::

    OK   database: 10.11.6-MariaDB: claims skip locked rows
    WARN AMI listen user listencron: may not Filter, CoreShowChannels ...
    FAIL acqs' tables: acqs_action missing: run acqs initdb --db ...

It reads the settings as the daemon does (C{--config}, the command line,
C{/etc/astguiclient.conf}, VICIdial's C{servers} row) and changes nothing:
the AMI probes are actions Asterisk refuses for want of a channel (or lists),
sent only to learn whether the user may send them.  Exit status: 0 ready,
1 ready with warnings, 2 not ready, 64 a usage error.
"""

import os
import re
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Set, TextIO, Tuple

import attr
from twisted.internet.defer import Deferred
from twisted.python import usage

from .ami.errors import AMIError
from .ami.protocol import AMIFactory
from .config import ASTGUICLIENT_CONF, Settings, loadSettings
from .live import LiveEndpoint, LiveSettings
from .presence import isListener, isSender, listProcesses, perlACQS
from .store.dialects import dialectFor
from .store.schema import examine
from .store.servers import ServerRead, readServer
from .store.transaction import Transaction
from .store.url import MYSQL, DatabaseURL, parseURL

OK, WARN, FAIL = "OK", "WARN", "FAIL"
READY, WARNINGS, NOT_READY, USAGE = 0, 1, 2, 64

# What acqs' database user must be granted, table by table.
PRIVILEGES = {
    "vicidial_manager": ("SELECT", "UPDATE"),
    "acqs_action": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "acqs_instance": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "servers": ("SELECT",),
}
INITDB_PRIVILEGES = ("CREATE", "ALTER", "INDEX")

# AMI probes: (action, headers); with no channel, Asterisk refuses what it
# would do, so only "Permission denied" says anything.
Probes = Tuple[Tuple[str, Tuple[Tuple[str, str], ...]], ...]
SEND_PROBES: Probes = (("Originate", ()), ("Redirect", ()), ("Hangup", ()),
               ("Command", (("Command", "core show uptime"),)))
LISTEN_PROBES: Probes = (("Ping", ()),
                 ("Filter", (("Operation", "Add"), ("Filter", "^Event: Newstate[[:space:]]"))),
                 ("CoreShowChannels", ()),
                 ("Command", (("Command", "core show channels concise"),)))
DENIED = "Permission denied"


@attr.s(frozen=True, auto_attribs=True)
class Finding:
    """One line of C{acqs check}: a level, what was checked, what was found or what to do."""

    level: str
    topic: str
    text: str

    def __str__(self) -> str:
        return f"{self.level:<4} {self.topic}: {self.text}"


def exitStatus(findings: Sequence[Finding]) -> int:
    levels = {f.level for f in findings}
    return NOT_READY if FAIL in levels else WARNINGS if WARN in levels else READY


# Python


def pythonFindings(python3: str = "/usr/bin/python3") -> List[Finding]:
    """The Python acqs runs on, and the system's python3 beside it."""
    text = f"acqs runs on Python {sys.version.split()[0]} ({sys.executable})"
    try:
        shown = subprocess.run([python3, "--version"], capture_output=True, text=True,
                               timeout=10).stdout.split()
    except OSError:
        shown = []
    if len(shown) == 2 and os.path.realpath(python3) != os.path.realpath(sys.executable):
        version = shown[1]
        text += f"; the system's {python3} is {version}"
        if tuple(int(n) for n in re.findall(r"\d+", version)[:2]) < (3, 9):
            text += " (acqs needs 3.9 or later: keep it in its own venv, as it is)"
    return [Finding(OK, "Python", text)]


# The database


def databaseFindings(url: DatabaseURL, server_ip: str) -> Tuple[List[Finding], ServerRead]:
    """Version, vicidial_manager, acqs' tables, privileges and the servers row."""
    dialect = dialectFor(url)
    try:
        connection = dialect.connect(url)
    except dialect.errors as e:
        return [Finding(FAIL, "database", f"cannot connect to {url}: {e}; check db,"
                        " db-password-file or VARDB_* in astguiclient.conf")], ServerRead(None)
    try:
        cursor = connection.cursor()
        found = _schemaFindings(dialect, cursor, connection, url)
        if url.kind == MYSQL:
            found += _privilegeFindings(cursor, url, any(
                f.topic == "acqs' tables" and f.level == FAIL for f in found))
        read = readServer(Transaction(cursor, dialect), server_ip)
        connection.rollback()
    finally:
        connection.close()
    return found + _serverFindings(read, server_ip), read


def _schemaFindings(dialect, cursor, connection, url: DatabaseURL) -> List[Finding]:
    info = dialect.probe(cursor)
    found = []
    if url.kind == MYSQL:
        claims = ("" if info.engine is None else ": claims skip locked rows"
                  if not dialect.serialised(info)
                  else ": claims are serialised with GET_LOCK (one at a time; works)")
        found.append(Finding(OK, "database", f"{info.version} at {url}{claims}"))
    if info.engine is None and url.kind == MYSQL:
        found.append(Finding(FAIL, "vicidial_manager", f"no vicidial_manager table in {url}:"
                             " is this VICIdial's database (VARDB_database)?"))
        return found
    elif info.engine is not None:
        engine = info.engine.lower()
        note = {"innodb": "row locks: instances claim in parallel",
                "myisam": "VICIdial's own: claims serialised, fine for one instance",
                "memory": "as VICIdial's LOAD_BALANCING.txt suggests: claims serialised"}
        found.append(Finding(OK if engine in note else WARN, "vicidial_manager",
                             f"{info.engine}: {note.get(engine, 'not tested with acqs')}"))
    missing, upgrades, warnings = examine(dialect, connection)
    if missing or upgrades:
        what = ", ".join([f"{t} missing" for t in missing]
                         + ([f"{len(upgrades)} columns or indexes to add"] if upgrades else []))
        found.append(Finding(FAIL, "acqs' tables", f"{what}: run acqs initdb --db {url}"))
    else:
        found.append(Finding(OK, "acqs' tables", "acqs_action and acqs_instance up to date"))
    found += [Finding(WARN, "vicidial_manager", w) for w in warnings
              if "GET_LOCK" not in w]  # said above
    return found


def _privilegeFindings(cursor, url: DatabaseURL, initdb: bool) -> List[Finding]:
    cursor.execute("SELECT CURRENT_USER()")
    user, _, host = cursor.fetchone()[0].rpartition("@")
    grantee = f"'{user}'@'{host}'"
    have = granted(cursor, grantee, url.database, list(PRIVILEGES))
    lacking = {table: [p for p in wanted if p not in have[table]]
               for table, wanted in PRIVILEGES.items()}
    lacking = {t: ps for t, ps in lacking.items() if ps}
    found = []
    if lacking:
        text = "; ".join(f"{', '.join(ps)} on {t}" for t, ps in lacking.items())
        level = FAIL if set(lacking) - {"servers"} else WARN
        found.append(Finding(level, "database privileges", f"{user}@{host} lacks {text}: e.g."
                             f" GRANT SELECT, INSERT, UPDATE, DELETE ON {url.database}.* TO"
                             f" '{user}'@'{host}'"))
    else:
        found.append(Finding(OK, "database privileges", f"{user}@{host} may read and write"
                             " vicidial_manager and acqs' tables, and read servers"))
    if initdb:
        creating = [p for p in INITDB_PRIVILEGES if p not in have["acqs_action"]]
        if creating:
            found.append(Finding(FAIL, "database privileges", f"acqs initdb needs"
                                 f" {', '.join(creating)} on {url.database}: run it as a user"
                                 " who has them (e.g. root)"))
    return found


def granted(cursor, grantee: str, database: str, tables: Sequence[str]) -> Dict[str, Set[str]]:
    """The privileges C{grantee} holds on each of C{tables} of C{database}, from every level."""
    cursor.execute("SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES"
                   " WHERE GRANTEE = %s", (grantee,))
    common = {p for (p,) in cursor.fetchall()}
    cursor.execute("SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES"
                   " WHERE GRANTEE = %s", (grantee,))
    common |= {p for schema, p in cursor.fetchall() if _schemaMatches(schema, database)}
    cursor.execute("SELECT TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES"
                   " WHERE GRANTEE = %s AND TABLE_SCHEMA = %s", (grantee, database))
    own: Dict[str, Set[str]] = {}
    for table, p in cursor.fetchall():
        own.setdefault(table.lower(), set()).add(p)
    return {t: (common | own.get(t.lower(), set())) - {"USAGE"} for t in tables}


def _schemaMatches(pattern: str, database: str) -> bool:
    """A database name against a GRANT's database pattern (C{%}, C{_}, C{\\} escapes)."""
    regex = ""
    escaped = False
    for c in pattern:
        if escaped:
            regex += re.escape(c)
            escaped = False
        elif c == "\\":
            escaped = True
        else:
            regex += {"%": ".*", "_": "."}.get(c, re.escape(c))
    return re.fullmatch(regex, database) is not None


def _serverFindings(read: ServerRead, server_ip: str) -> List[Finding]:
    row = read.row
    if row is None:
        why = ("no servers table (not VICIdial's database?)" if read.missing
               else f"no servers row for {server_ip}")
        return [Finding(WARN, "servers row", f"{why}: acqs then needs ami, send-user,"
                        " listen-user and a secret of its own (--config)")]
    return [Finding(OK, "servers row", f"{server_ip}: AMI {row.telnet_host}:{row.telnet_port},"
                    f" send user {row.send_user}, listen user {row.listen_user}, vd_server_logs"
                    f" {'Y' if row.vd_server_logs else 'N'}, Asterisk {row.asterisk_version};"
                    " acqs follows it unless its options say otherwise")]


# astguiclient.conf and the processes of the box


def keepaliveDigits(path: str) -> Optional[str]:
    """
    C{VARactive_keepalives} of astguiclient.conf, read as VICIdial's scripts
    read it (see L{acqs.config.readAstguiclient}); None without the file.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    digits = ""
    for line in lines:
        line = "".join(c for c in line.split("#", 1)[0].split(";", 1)[0] if c not in " >\t\r\n")
        if line.startswith("VARactive_keepalives"):
            digits = line.rpartition("=")[2]
    return digits


def keepaliveFindings(path: str, digits: Optional[str]) -> List[Finding]:
    topic = "keepalives"
    if digits is None:
        return [Finding(WARN, topic, f"no {path}: not a VICIdial server?")]
    if "X" in digits:
        return [Finding(OK, topic, f"VARactive_keepalives {digits}: ADMIN_keepalive_ALL.pl"
                        " starts nothing (X)")]
    found = []
    if "2" in digits:
        found.append(Finding(OK, topic, f"VARactive_keepalives {digits} has 2:"
                             " ADMIN_keepalive_ALL.pl starts the Perl sender and listener each"
                             " minute that no process counts as them; acqs' process title counts"
                             " as both, so it starts nothing while acqs runs (and the Perl pair"
                             " when acqs is down: acqs then stands by until they stop)"))
    else:
        found.append(Finding(OK, topic, f"VARactive_keepalives {digits}: nothing starts the"
                             " Perl ACQS"))
    return found


def processFindings(processes, digits: Optional[str], pid: int,
                    psCuts: bool = False) -> List[Finding]:
    """Whether a Perl ACQS runs, and what VICIdial's listener check finds now."""
    found = []
    perl = perlACQS(processes, pid)
    if perl:
        found.append(Finding(WARN, "Perl ACQS", "runs: " + "; ".join(map(str, perl))
                             + ". acqs stands by (no process title, no claims while a Perl"
                             " sender runs) until it stops: screen -S ASTsend -X quit;"
                             " screen -S ASTlisten -X quit"))
    else:
        found.append(Finding(OK, "Perl ACQS", "none runs"))
    listeners = [p for p in processes if isListener(p.args)]
    senders = [p for p in processes if isSender(p.args)]
    dialer = "the dialer (keepalive 3) and remote agents (4)"
    if psCuts:
        found.append(Finding(WARN, "listener check", "this box's ps cuts `ps -o \"%p %a\"` at 27"
                             " columns (procps-ng 4.0.0-4.0.2): VICIdial's check then finds no"
                             f" listener, Perl or acqs, and {dialer} exit every loop"))
    elif len(listeners) == 1:
        who = "acqs" if listeners[0].acqs else "the Perl listener"
        found.append(Finding(OK, "listener check", f"VICIdial's check finds one listener:"
                             f" {who}, pid {listeners[0].pid}"))
    elif not listeners:
        level = WARN if digits and any(d in digits for d in "34") else OK
        found.append(Finding(level, "listener check", f"no process counts as VICIdial's"
                             f" listener now: {dialer} exit until acqs (or the Perl listener)"
                             " runs"))
    else:
        found.append(Finding(WARN, "listener check", f"{len(listeners)} processes count as"
                             " VICIdial's listener (" + ", ".join(str(p.pid) for p in listeners)
                             + "): ADMIN_keepalive_ALL.pl kill -9s the second every minute"))
    if len(senders) > 1:
        found.append(Finding(WARN, "sender check", f"{len(senders)} processes count as"
                             " VICIdial's sender (" + ", ".join(str(p.pid) for p in senders)
                             + "): rows in QUEUE may be sent twice"))
    return found


def psCutsArgs(ps: str = "/bin/ps") -> bool:
    """Whether VICIdial's C{ps -o "%p %a"} cuts this very process' longer command line."""
    with open("/proc/self/cmdline", "rb") as f:
        own = f.read().rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
    try:
        shown = subprocess.run([ps, "-o", "%p %a", "--no-headers", "-p", str(os.getpid())],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return False
    return bool(shown) and shown.split(None, 1)[-1].rstrip() != own


# AMI


async def amiFindings(reactor, live: LiveSettings, md5: bool, timeout: float) -> List[Finding]:
    """Log in as the send and listen users; which of acqs' actions each may send."""
    endpoint = LiveEndpoint(reactor, lambda: live.ami)
    roles = [("send", live.sendCredentials(), SEND_PROBES),
             ("listen", live.listenCredentials(), LISTEN_PROBES)]
    if live.sendCredentials() == live.listenCredentials():
        roles = [("send and listen", live.sendCredentials(), SEND_PROBES + LISTEN_PROBES[:3])]
    found = []
    for role, (user, secret), probes in roles:
        topic = f"AMI {role} user {user}"
        if not secret:
            found.append(Finding(FAIL, topic, "no secret: neither acqs' options nor VICIdial's"
                                 " servers row (ASTmgrSECRET) give one"))
            continue
        factory = AMIFactory(user, secret, reactor, events="off", md5=md5, timeout=timeout)
        try:
            protocol = await factory.login(endpoint)
        except AMIError as e:
            found.append(Finding(FAIL, topic, f"{live.ami}: login refused ({e.reason}): the"
                                 f" secret must be [{user}]'s in manager.conf"))
            continue
        except Exception as e:
            found.append(Finding(FAIL, topic, f"cannot reach AMI at {live.ami}: {e}"))
            continue
        allowed = {}
        for action, headers in probes:
            try:
                await protocol.sendAction(action, headers, timeout)
                allowed[action] = True
            except AMIError as e:
                allowed[action] = e.reason != DENIED
            except Exception:
                allowed[action] = False
        await protocol.logoff(timeout).addErrback(lambda _: None)
        found.append(_amiFinding(topic, user, protocol.amiVersion, allowed, role))
    return found


def _amiFinding(topic: str, user: str, version: Optional[str], allowed: Dict[str, bool],
                role: str) -> Finding:
    refused = [a for a, ok in allowed.items() if not ok]
    listens, sends = "listen" in role, "send" in role
    text = f"logged in (AMI {version}); may {', '.join(a for a, ok in allowed.items() if ok)}"
    if refused:
        text += f"; may not {', '.join(refused)}"
    if listens:
        text += " (its read = must give call events: Asterisk does not say)"
    if sends and {"Originate", "Redirect", "Hangup"} & set(refused):
        return Finding(FAIL, topic, text + ": GUI clients' rows would fail; give it write ="
                       " system,call,originate,command in manager.conf (VICIdial's sendcron)")
    advice = []
    if sends and "Command" in refused:
        advice.append("without Command (write = command) volume control rows go out without"
                      " their MeetMe user number")
    if listens and "Filter" in refused:
        advice.append("without Filter (write = system) acqs reads every call event and skips"
                      " the others itself")
    if listens and "CoreShowChannels" in refused:
        advice.append("without CoreShowChannels (write = system or reporting) acqs catches up"
                      " after a reconnect with core show channels concise: hangups, but no call"
                      " it did not see is ended" if allowed.get("Command") else
                      "without CoreShowChannels (write = system or reporting) or Command"
                      " (write = command) acqs cannot catch up on calls after a reconnect")
    if not advice:
        return Finding(OK, topic, text)
    stock = " VICIdial's sample listencron has write = command;" if listens else ""
    return Finding(WARN, topic, f"{text}:{stock} {'; '.join(advice)}")


# The command


def register(subparsers):
    """Add the C{check} command to an argparse C{subparsers}; returns its parser."""
    parser = subparsers.add_parser(
        "check",
        help="say whether this box is ready to switch from VICIdial's Perl ACQS to acqs",
        description=("Check the database, VICIdial's servers row, the AMI users, the"
                     " keepalives, the processes of this box and the Python: one line each,"
                     " OK, WARN or FAIL with what to do.  Exit 0 ready, 1 warnings, 2 not"
                     " ready, 64 usage.  Changes nothing."),
    )
    parser.add_argument("--config", metavar="FILE", help="acqs' INI file")
    parser.add_argument("--db", metavar="URL", help="database URL [as the daemon finds it]")
    parser.add_argument("--db-password-file", metavar="FILE",
                        help="file whose first line is the database password")
    parser.add_argument("--server-ip", metavar="IP", help="the server's IP [VARserver_ip]")
    parser.add_argument("--astguiclient", metavar="FILE", default=ASTGUICLIENT_CONF,
                        help=f"VICIdial's settings file [{ASTGUICLIENT_CONF}]")
    parser.add_argument("--timeout", metavar="S", type=float, default=5.0,
                        help="seconds to wait for each AMI step [5]")
    parser.set_defaults(run=run)
    return parser


def run(arguments, out: TextIO, err: TextIO) -> int:
    """Carry out C{acqs check}: one line per check to C{out}; returns the exit status."""
    options = {name: getattr(arguments, name.replace("-", "_"))
               for name in ("config", "db", "db-password-file", "server-ip")}
    try:
        settings = loadSettings(options, astguiclient=arguments.astguiclient)
    except usage.UsageError as e:
        print(f"acqs check: {e}", file=err)
        return USAGE
    findings = check(settings, arguments.astguiclient, arguments.timeout)
    for finding in findings:
        print(finding, file=out)
    return exitStatus(findings)


def check(settings: Settings, astguiclient: str, timeout: float) -> List[Finding]:
    """Every check, in the order they print."""
    url = parseURL(settings.db).withPassword(settings.db_password)
    findings, read = databaseFindings(url, settings.server_ip)
    live = LiveSettings(settings)
    live.follow(read)
    findings += _react(lambda reactor: amiFindings(reactor, live, settings.md5, timeout))
    digits = keepaliveDigits(astguiclient)
    findings += keepaliveFindings(astguiclient, digits)
    try:
        processes = listProcesses()
    except OSError as e:
        findings.append(Finding(WARN, "processes", f"cannot read /proc ({e.strerror})"))
    else:
        findings += processFindings(processes, digits, os.getpid(), psCutsArgs())
    return findings + pythonFindings()


def _react(work):
    """Run C{work(reactor)} (a coroutine function) on the reactor; its result."""
    from twisted.internet import task

    result: list = []

    async def main(reactor):
        result.append(await work(reactor))

    try:
        task.react(lambda reactor: Deferred.fromCoroutine(main(reactor)))
    except SystemExit as e:
        if e.code:
            raise
    return result[0]

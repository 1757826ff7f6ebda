"""
Settings: which server acqs serves, where its database and Asterisk are,
and the secrets to reach them.

Each setting is taken from the first place that has it:

 1. the command line (C{--server-ip}, C{--db}, ...);
 2. the INI file named by C{--config}: one C{[acqs]} section whose keys are
    the long option names (C{poll-interval = 0.01}; C{_} may stand for C{-});
 3. C{/etc/astguiclient.conf}, VICIdial's own file: C{VARserver_ip} and
    C{VARDB_*} (skipped with C{--demo});
 4. the built-in defaults of L{Settings}; for the AMI settings, VICIdial's
    C{servers} row comes first (L{acqs.live}: L{Settings.given} names what
    beats it).

Secrets follow their own order, first found wins; the literal value beats
the file at the same level:

 1. C{--send-secret} (visible in C{ps}: a warning is logged), then
    C{--send-secret-file FILE} (its first line);
 2. the environment: C{ACQS_SEND_SECRET} (empty means unset);
 3. the INI file: C{send-secret}, then C{send-secret-file}.

The listen secret is looked for the same way (C{--listen-secret},
C{ACQS_LISTEN_SECRET}, ...); when only one of the two AMI secrets is found,
both use it, as VICIdial shares C{ASTmgrSECRET}.  The database password:
a password inside a C{--db} URL (warned about), C{--db-password-file},
C{ACQS_DB_PASSWORD}, INI C{db-password}, INI C{db-password-file}, a password
inside the INI C{db} URL, and last C{VARDB_pass}, which only goes with the
URL made from the other C{VARDB_*} values.  L{Settings.db} never holds the
password; L{Settings.db_password} does.
"""

import configparser
import ipaddress
import math
import os
import socket
from typing import Any, Callable, Collection, Dict, FrozenSet, Mapping, Optional, Tuple
from urllib.parse import quote

import attr
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.interfaces import IReactorPluggableNameResolver
from twisted.logger import Logger
from twisted.python import usage
from zope.interface import implementer

from .actions import VICIDIAL_ACTIONS
from .wakeup import MODES as WAKEUPS
from .store.url import hidePassword, parseURL, withoutPassword

log = Logger()

ASTGUICLIENT_CONF = "/etc/astguiclient.conf"
SECTION = "acqs"
MASK = "***"
INSTANCE_WIDTH = 64  # acqs_instance.instance


def _hostName() -> str:
    return socket.gethostname()[:INSTANCE_WIDTH]


DEFAULT_DB = "mysql://cron@127.0.0.1:3306/asterisk"


@attr.s(frozen=True, auto_attribs=True, repr=False)
class Settings:
    """
    Everything acqs needs to run.  Built by L{loadSettings}; its C{repr}
    (and C{str}) shows C{***} for every secret, so it may be logged.
    """

    server_ip: str = "127.0.0.1"
    db: str = DEFAULT_DB
    db_password: Optional[str] = None
    ami: str = "tcp:host=127.0.0.1:port=5038"
    send_user: str = "cron"
    send_secret: str = ""
    listen_user: str = "cron"
    listen_secret: str = ""
    md5: bool = False
    wakeup: str = "auto"
    poll_interval: float = 0.01
    idle_poll_interval: float = 0.25
    linger: float = 10.0
    max_sessions: int = 50
    max_originates: Optional[int] = None  # None: sized from servers.max_vicidial_trunks
    max_connecting: int = 4
    warm_sessions: int = 2
    warm_idle: float = 10.0
    action_timeout: float = 10.0
    greeting_timeout: float = 5.0
    allow_actions: Tuple[str, ...] = VICIDIAL_ACTIONS
    instance: str = attr.ib(factory=_hostName)
    stale_after: float = 60.0
    keep_hours: Optional[float] = None
    demo: bool = False
    status_file: Optional[str] = "acqs.status.json"
    json_log: Optional[str] = None
    roll_logs: bool = False
    metrics: Optional[str] = None
    row_logs: Optional[bool] = None  # None: as VICIdial's servers.vd_server_logs
    stand_in: bool = True  # carry VICIdial's ACQS process title; stand by beside a Perl one
    # The fields given by the command line, the INI file or astguiclient.conf
    # (and secrets given anywhere): they beat VICIdial's servers row.
    given: FrozenSet[str] = frozenset()

    def __repr__(self) -> str:
        shown = []
        for a in attr.fields(Settings):
            value = getattr(self, a.name)
            if a.name in SECRET_FIELDS and value:
                value = MASK
            elif a.name == "db":
                value = hidePassword(value)
            shown.append(f"{a.name}={value!r}")
        return f"Settings({', '.join(shown)})"


SECRET_FIELDS = frozenset({"db_password", "send_secret", "listen_secret"})


# Checks: each takes the parsed value and returns a sentence saying what is
# wrong with it, or None.  Sentences never show secrets.


def _positive(value) -> Optional[str]:
    if not (math.isfinite(value) and value > 0):
        return f"must be more than 0, not {value:g}"
    return None


def _notNegative(value) -> Optional[str]:
    if not (math.isfinite(value) and value >= 0):
        return f"must be 0 or more, not {value:g}"
    return None


def _atLeastOne(value) -> Optional[str]:
    return None if value >= 1 else f"must be 1 or more, not {value}"


def _notNegativeCount(value) -> Optional[str]:
    return None if value >= 0 else f"must be 0 or more, not {value}"


def _positiveOrNone(value) -> Optional[str]:
    return None if value is None else _positive(value)


def _wakeup(value) -> Optional[str]:
    return None if value in WAKEUPS else f"must be one of {', '.join(WAKEUPS)}, not {value!r}"


def _ipv4(value) -> Optional[str]:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return (
            f"must be this server's IPv4 address, as in VICIdial's servers table, "
            f"not {value!r}"
        )
    return None


def _instanceName(value) -> Optional[str]:
    if not value or len(value) > INSTANCE_WIDTH or any(c.isspace() for c in value):
        return f"must be 1 to {INSTANCE_WIDTH} characters without spaces, not {value!r}"
    return None


def _headerValue(value) -> Optional[str]:
    if not value or "\r" in value or "\n" in value:
        return "must not be empty or contain a line break"
    return None


def _databaseURL(value) -> Optional[str]:
    try:
        parseURL(value)
    except ValueError as e:
        return f"is not a database URL: {e}"
    return None


@implementer(IReactorPluggableNameResolver)
class _ParseOnly:
    """Stands for a reactor while an endpoint string is parsed; connects nothing."""

    nameResolver = None

    def installNameResolver(self, resolver):
        old, self.nameResolver = self.nameResolver, resolver
        return old


def _endpoint(value) -> Optional[str]:
    try:
        clientFromString(_ParseOnly(), value)
    except Exception as e:
        return (
            f"is not a Twisted client endpoint string ({e}); "
            f"for example tcp:host=127.0.0.1:port=5038"
        )
    return None


def _serverEndpoint(value) -> Optional[str]:
    try:
        serverFromString(_ParseOnly(), value)
    except Exception as e:
        return (
            f"is not a port or a Twisted server endpoint string ({e}); "
            f"for example 9128 or tcp:9128:interface=127.0.0.1"
        )
    return None


def listenOn(text: str) -> Optional[str]:
    """A server endpoint string; a bare port means that port on loopback, '' none."""
    text = text.strip()
    if text.isdigit():
        return f"tcp:{text}:interface=127.0.0.1"
    return text or None


def seconds(text: str) -> float:
    """Parse a number of seconds."""
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None


def count(text: str) -> int:
    """Parse a whole number."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


_BOOLEANS = {"1": True, "yes": True, "true": True, "on": True,
             "0": False, "no": False, "false": False, "off": False}


def _boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"{text!r} is not yes or no") from None


def _optionalBoolean(text: str) -> Optional[bool]:
    return _boolean(text) if text.strip() else None


def _optionalPath(text: str) -> Optional[str]:
    return text or None


def _countOrAuto(text: str) -> Optional[int]:
    return None if text.strip().lower() in ("", "auto") else count(text)


def _atLeastOneOrNone(value) -> Optional[str]:
    return None if value is None else _atLeastOne(value)


def _optionalHours(text: str) -> Optional[float]:
    return seconds(text) if text.strip() else None


def actionNames(text: str) -> Tuple[str, ...]:
    """Parse a comma list of AMI action names; C{*} allows every action."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if name != "*" and not name.replace("_", "").isalnum():
            raise ValueError(f"{name!r} is not an AMI action name")
    return names


def _actionList(value) -> Optional[str]:
    return "must name at least one action, or *" if not value else None


@attr.s(frozen=True, auto_attribs=True)
class Option:
    """
    One setting: C{name} is both the long option and the INI key; C{field}
    the L{Settings} field it fills (C{None} for secret files and the INI
    file itself); C{shown} the default to show in place of the field's.
    """

    name: str
    field: Optional[str]
    help: str
    parse: Callable[[str], Any] = str
    check: Optional[Callable[[Any], Optional[str]]] = None
    flag: bool = False
    commandLine: bool = True
    inINI: bool = True
    shown: Optional[str] = None

    @property
    def doc(self) -> str:
        """The one-line help, with the default in brackets."""
        default = self.shown
        if default is None and self.field is not None:
            default = attr.fields_dict(Settings)[self.field].default
            if isinstance(default, float):
                default = f"{default:g}"
        return f"{self.help} [{default}]" if default not in (None, "", False) else self.help


OPTIONS = (
    Option("config", None, "INI file of settings (see etc/acqs.ini.sample)", inINI=False),
    Option("server-ip", "server_ip", "this server's IP in vicidial_manager",
           check=_ipv4, shown="VARserver_ip"),
    Option("instance", "instance", "this instance's unique name",
           check=_instanceName, shown="host name"),
    Option("db", "db", "database URL", check=_databaseURL),
    Option("db-password-file", None, "file whose first line is the DB password"),
    Option("db-password", None, "the DB password", commandLine=False),
    Option("ami", "ami", "AMI client endpoint", check=_endpoint),
    Option("md5", "md5", "log in to AMI with the MD5 challenge", parse=_boolean, flag=True),
    Option("send-user", "send_user", "AMI user of the sender", check=_headerValue),
    Option("send-secret", "send_secret", "AMI secret of the sender (shown by ps: avoid)"),
    Option("send-secret-file", None, "file whose first line is the sender's secret"),
    Option("listen-user", "listen_user", "AMI user of the listener", check=_headerValue),
    Option("listen-secret", "listen_secret", "listener's AMI secret (shown by ps)",
           shown="send secret"),
    Option("listen-secret-file", None, "file whose first line is the listener's secret"),
    Option("wakeup", "wakeup", "how NEW rows are found: auto, wait or poll",
           check=_wakeup),
    Option("poll-interval", "poll_interval", "seconds between looks for NEW rows",
           parse=seconds, check=_positive),
    Option("idle-poll-interval", "idle_poll_interval",
           "seconds between looks when idle", parse=seconds, check=_positive),
    Option("linger", "linger", "seconds a session lingers after its action",
           parse=seconds, check=_notNegative),
    Option("max-sessions", "max_sessions", "most AMI send sessions open at once",
           parse=count, check=_atLeastOne),
    Option("max-originates", "max_originates",
           "most send sessions carrying Originates (ringing calls); auto: twice"
           " servers.max_vicidial_trunks, 100 at least, 200 without it",
           parse=_countOrAuto, check=_atLeastOneOrNone, shown="auto"),
    Option("max-connecting", "max_connecting", "most send sessions logging in at once",
           parse=count, check=_atLeastOne),
    Option("warm-sessions", "warm_sessions", "send sessions logged in ahead of rows",
           parse=count, check=_notNegativeCount),
    Option("warm-idle", "warm_idle", "seconds a warm session waits for a row",
           parse=seconds, check=_positive),
    Option("action-timeout", "action_timeout", "seconds to wait for each AMI step",
           parse=seconds, check=_positive),
    Option("greeting-timeout", "greeting_timeout", "seconds to wait for AMI's greeting",
           parse=seconds, check=_positive),
    Option("allow-actions", "allow_actions", "actions rows may ask for, * for any",
           parse=actionNames, check=_actionList, shown="VICIdial's"),
    Option("stale-after", "stale_after", "seconds until silent instances' claims lapse",
           parse=seconds, check=_positive),
    Option("keep-hours", "keep_hours", "delete this server's rows older than this",
           parse=_optionalHours, check=_positiveOrNone),
    Option("status-file", "status_file", "JSON status file, '' for none",
           parse=_optionalPath),
    Option("json-log", "json_log", "also log JSON lines to this file", parse=_optionalPath),
    Option("roll-logs", "roll_logs", "at start, rename the last log to LOG.<date-time>",
           parse=_boolean, flag=True),
    Option("metrics", "metrics", "serve /metrics and a status page here (a port: loopback)",
           parse=listenOn, check=_serverEndpoint, shown="off"),
    Option("row-logs", "row_logs", "log a line per row sent or updated (yes/no)",
           parse=_optionalBoolean, shown="servers.vd_server_logs, else yes"),
    Option("stand-in", "stand_in", "stand in for VICIdial's Perl ACQS in ps (yes/no)",
           parse=_boolean),
    Option("demo", "demo", "run the demo: SQLite and simulated Asterisk",
           parse=_boolean, flag=True, inINI=False),
)
_BY_NAME = {o.name: o for o in OPTIONS}


@attr.s(frozen=True, auto_attribs=True)
class _Source:
    """The values found in one place, and how to name that place in errors."""

    values: Mapping[str, Any]
    where: Callable[[str], str]

    def get(self, name: str):
        return self.values.get(name)


def readINI(path: str) -> Dict[str, str]:
    """
    Read the C{[acqs]} section of an INI file into C{{option name: text}};
    raise L{usage.UsageError} saying what is wrong, never showing a value.
    """
    parser = configparser.ConfigParser(
        interpolation=None, default_section="\0", comment_prefixes=("#", ";")
    )
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as e:
        raise usage.UsageError(f"cannot read the --config file {path}: {e.strerror}") from None
    except configparser.MissingSectionHeaderError:
        raise usage.UsageError(f"{path} must start with a [{SECTION}] line") from None
    except configparser.ParsingError as e:
        lines = ", ".join(str(n) for n, _ in e.errors)
        raise usage.UsageError(f"{path} line {lines}: expected 'key = value'") from None
    except configparser.Error as e:
        raise usage.UsageError(f"{path}: {e.message}") from None
    others = [s for s in parser.sections() if s != SECTION]
    if others:
        raise usage.UsageError(
            f"{path}: unknown section [{others[0]}]; all settings go in [{SECTION}]"
        )
    values = {}
    if parser.has_section(SECTION):
        for key, text in parser.items(SECTION):
            name = key.replace("_", "-")
            option = _BY_NAME.get(name)
            if option is None or not option.inINI:
                raise usage.UsageError(
                    f"{path}: unknown setting {key!r} in [{SECTION}]; "
                    f"see etc/acqs.ini.sample for the known ones"
                )
            values[name] = text
    return values


def readAstguiclient(path: str) -> Dict[str, Optional[str]]:
    """
    Read C{/etc/astguiclient.conf} as VICIdial's scripts do: every space, tab
    and C{>} removed, anything after C{#} or C{;} dropped, a name matched by
    prefix, its value the text after the last C{=}, a later line winning.
    Returns C{{setting name: value}} for what acqs uses; C{{}} if there is no
    such file.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    except OSError as e:
        log.warn(
            "Cannot read {path} ({reason}); VICIdial's settings are not used",
            path=path, reason=e.strerror,
        )
        return {}
    found: Dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].split(";", 1)[0]
        line = "".join(c for c in line if c not in " >\t\r\n")
        for name in _VICIDIAL_NAMES:
            if line.startswith(name):
                found[name] = line.rpartition("=")[2]
    server, database = found.get("VARDB_server"), found.get("VARDB_database")
    values: Dict[str, Optional[str]] = {}
    if found.get("VARserver_ip"):
        values["server-ip"] = found["VARserver_ip"]
    if server and database:
        user = found.get("VARDB_user", "")
        userinfo = f"{quote(user, safe='')}@" if user else ""
        port = found.get("VARDB_port") or "3306"
        values["db"] = f"mysql://{userinfo}{server}:{port}/{quote(database, safe='')}"
        values["db-password"] = found.get("VARDB_pass") or None
    elif server or database:
        log.warn(
            "{path} names no complete database (VARDB_server and VARDB_database); "
            "its database settings are not used", path=path,
        )
    return values


_VICIDIAL_NAMES = (
    "VARserver_ip", "VARDB_server", "VARDB_database", "VARDB_user", "VARDB_pass",
    "VARDB_port",
)


def _readSecretFile(path: str, what: str, allowEmpty: bool = False) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.readline().rstrip("\r\n")
            mode = os.fstat(f.fileno()).st_mode
    except OSError as e:
        raise usage.UsageError(f"cannot read the {what} file {path}: {e.strerror}") from None
    if not secret and not allowEmpty:
        raise usage.UsageError(f"the {what} file {path} is empty")
    _warnIfPublic(path, mode, what)
    return secret or None


def _warnIfPublic(path: str, mode: int, what: str) -> None:
    if mode & 0o004:
        log.warn(
            "{path} holds the {what} and every user can read it: chmod o-r {path}",
            path=path, what=what,
        )


def _secret(
    name: str, what: str, cli: _Source, env: Mapping[str, str], ini: _Source,
    iniPath: Optional[str], allowEmpty: bool = False,
) -> Optional[str]:
    """The first secret found for option C{name}, in the documented order."""
    if cli.get(name):
        _warnCommandLine(f"--{name}", f"--{name}-file or ACQS_{_envName(name)}")
        return cli.get(name)
    if cli.get(f"{name}-file"):
        return _readSecretFile(cli.get(f"{name}-file"), what, allowEmpty)
    if env.get(f"ACQS_{_envName(name)}"):
        return env[f"ACQS_{_envName(name)}"]
    if ini.get(name):
        if iniPath is not None:  # it is: the ini values come from that file
            _warnIfPublic(iniPath, os.stat(iniPath).st_mode, what)
        return ini.get(name)
    if ini.get(f"{name}-file"):
        return _readSecretFile(ini.get(f"{name}-file"), what, allowEmpty)
    return None


def _envName(name: str) -> str:
    return name.upper().replace("-", "_")


def _warnCommandLine(option: str, instead: str) -> None:
    log.warn(
        "The {option} on the command line can be read by every user with ps; "
        "use {instead} instead",
        option=option, instead=instead,
    )


def _parsed(option: Option, value: Any, where: str) -> Any:
    if isinstance(value, str) and option.parse is not str:
        try:
            value = option.parse(value)
        except ValueError as e:
            raise usage.UsageError(f"{where}: {e}") from None
    if option.check is not None and value is not None:
        problem = option.check(value)
        if problem:
            raise usage.UsageError(f"{where} {problem}")
    return value


def loadSettings(
    options: Mapping[str, Any],
    environ: Optional[Mapping[str, str]] = None,
    astguiclient: str = ASTGUICLIENT_CONF,
    required: Collection[str] = ("server-ip", "send-secret"),
) -> Settings:
    """
    Merge the command-line C{options} (a mapping from long option names to
    values, C{None} where not given), the environment, the C{--config} INI
    file and C{astguiclient} into L{Settings}, in the order the module
    docstring gives; raise L{usage.UsageError} with a sentence on bad or
    missing values, or when a setting named in C{required} is not found
    (the daemon's C{send-secret} is not: it may come from VICIdial's
    C{servers} row, which L{acqs.app} reads at start).
    """
    environ = os.environ if environ is None else environ
    cli = _Source({k: v for k, v in options.items() if v is not None}, lambda n: f"--{n}")
    iniPath = cli.get("config")
    ini = _Source(readINI(iniPath) if iniPath else {}, lambda n: f"{n} in {iniPath}")
    demo = bool(cli.get("demo"))
    vicidial = _Source(
        {} if demo else readAstguiclient(astguiclient),
        lambda n: f"{_VICIDIAL_SHOWN[n]} in {astguiclient}",
    )
    values, dbSource = _plainValues((cli, ini, vicidial))
    given = frozenset(values)
    url = values.get("db", DEFAULT_DB)
    values["db"], urlPassword = withoutPassword(url)

    def secret(name: str, what: str, allowEmpty: bool = False) -> Optional[str]:
        return _secret(name, what, cli, environ, ini, iniPath, allowEmpty)

    send = secret("send-secret", "send secret")
    listen = secret("listen-secret", "listen secret")
    send, listen = send or listen, listen or send
    dbPassword: Optional[str]
    if dbSource is cli and urlPassword is not None:
        _warnCommandLine("password in --db", "--db-password-file or ACQS_DB_PASSWORD")
        dbPassword = urlPassword
    else:
        dbPassword = secret("db-password", "database password", allowEmpty=True)
        if dbPassword is None and dbSource is ini:
            dbPassword = urlPassword
        if dbPassword is None and dbSource is vicidial:
            dbPassword = vicidial.get("db-password")

    if any(c in f"{send}{listen}" for c in "\r\n"):
        raise usage.UsageError("an AMI secret must not contain a line break")
    if not demo:
        if "server_ip" not in values and "server-ip" in required:
            raise usage.UsageError(
                "no server IP: give --server-ip, set server-ip in the --config file, or "
                f"run where {astguiclient} has VARserver_ip"
                + (" (--demo needs none)" if "send-secret" in required else "")
            )
    given |= {name for name, secret in (("send_secret", send), ("listen_secret", listen))
              if secret}
    return Settings(
        db_password=dbPassword, send_secret=send or "", listen_secret=listen or "",
        given=given, **values,
    )


_VICIDIAL_SHOWN = {"server-ip": "VARserver_ip", "db": "VARDB_server/VARDB_port"}


def _plainValues(sources) -> Tuple[Dict[str, Any], Optional[_Source]]:
    """
    The L{Settings} fields other than secrets, each from the first source
    that has it, parsed and checked; and the source of the database URL.
    """
    values: Dict[str, Any] = {}
    dbSource = None
    for option in OPTIONS:
        if option.field is None or option.field in SECRET_FIELDS:
            continue
        for source in sources:
            value = source.get(option.name)
            if option.flag and source is sources[0]:
                value = True if value else None
            if value is not None:
                values[option.field] = _parsed(option, value, source.where(option.name))
                if option.name == "db":
                    dbSource = source
                break
    return values, dbSource

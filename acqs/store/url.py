"""
Database URLs: where the queue store lives.

Two kinds are understood::

    mysql://user:password@host:port/database    MySQL or MariaDB, through PyMySQL
    sqlite:///path/to/acqs.db                   an SQLite file (absolute path)

C{mariadb://} is accepted as a synonym of C{mysql://}; the user and password
may be percent-encoded (C{p%40ss} for C{p@ss}); the port defaults to 3306.
For SQLite, C{sqlite:///var/lib/acqs/queue.db} names C{/var/lib/acqs/queue.db},
C{sqlite:queue.db} a path relative to the working directory.

A L{DatabaseURL} never shows its password: not in C{str}, not in C{repr},
so it can be logged and put in exception texts.  Prefer passing the password
separately (L{DatabaseURL.withPassword}) over writing it in a URL, which
would show in C{ps} when given on a command line.
"""

from typing import Optional, Tuple
from urllib.parse import quote, unquote, urlsplit

import attr

MYSQL, SQLITE = "mysql", "sqlite"
_SCHEMES = {"mysql": MYSQL, "mariadb": MYSQL, "sqlite": SQLITE}
DEFAULT_MYSQL_PORT = 3306


@attr.s(frozen=True, auto_attribs=True, repr=False)
class DatabaseURL:
    """
    A parsed database URL.  C{kind} is L{MYSQL} or L{SQLITE}; C{database}
    is the MySQL database name or the SQLite file path.
    """

    kind: str
    database: str
    host: Optional[str] = None
    port: Optional[int] = None
    user: Optional[str] = None
    password: Optional[str] = attr.ib(default=None, repr=False)

    def withPassword(self, password: Optional[str]) -> "DatabaseURL":
        """This URL with C{password} instead of its own, unless C{None}."""
        if password is None:
            return self
        return attr.evolve(self, password=password)

    def __str__(self) -> str:
        if self.kind == SQLITE:
            return f"sqlite:{'//' if self.database.startswith('/') else ''}{self.database}"
        secret = ":***" if self.password else ""
        user = f"{quote(self.user or '', safe='')}{secret}@" if self.user else ""
        return f"mysql://{user}{self.host}:{self.port}/{self.database}"

    def __repr__(self) -> str:
        return f"DatabaseURL({str(self)!r})"


def _userinfo(text: str) -> Tuple[str, Optional[str], str]:
    """
    C{(scheme: and its slashes, userinfo, the rest)} of a URL, the userinfo
    being all up to the last C{@} after the scheme: a password holding C{/},
    C{#}, C{?} or C{@} unencoded stays whole there (C{None} if there is no
    C{@}).  Any number of slashes counts, so that a typo such as
    C{mysql:/user:pw@host/db} still hides its password; SQLite paths have
    no userinfo.
    """
    scheme, colon, after = text.partition(":")
    if not colon or _SCHEMES.get(scheme.lower()) == SQLITE:
        return text, None, ""
    rest = after.lstrip("/")
    start = text[: len(text) - len(rest)]
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return start, None, rest
    return start, userinfo, host


def _shown(text: str) -> str:
    """C{text} as an error may show it: no password, even in a URL too broken to parse."""
    start, userinfo, rest = _userinfo(text)
    if userinfo is not None:
        return hidePassword(text)
    authority, slash, path = rest.partition("/")
    host, colon, port = authority.partition(":")
    if colon and not port.isdigit():  # mysql://user:password/... with the @ left out
        authority = f"{host}:***"
    return f"{start}{authority}{slash}{path}"


def parseURL(text: str) -> DatabaseURL:
    """
    Parse a database URL; raise C{ValueError} with a sentence saying what is
    wrong (and never the password) when it is not one.
    """
    scheme, sep, _ = text.partition(":")
    kind = _SCHEMES.get(scheme.lower()) if sep else None
    if kind is None:
        raise ValueError(
            "a database URL starts with mysql:// or sqlite:, "
            "e.g. mysql://cron@127.0.0.1:3306/asterisk or sqlite:///var/lib/acqs/queue.db"
        )
    if kind == SQLITE:
        parts = urlsplit(text)
        if parts.query or parts.fragment:
            raise ValueError(f"unexpected ?query or #fragment in database URL {text}")
        return _sqlite(parts, text)
    return _mysql(text)


def _sqlite(parts, text: str) -> DatabaseURL:
    if parts.netloc:
        raise ValueError(
            f"an SQLite URL has no host: write sqlite:///absolute/path or sqlite:relative/path, "
            f"not {text}"
        )
    path = unquote(parts.path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if not path or path == "/":
        raise ValueError(f"the SQLite URL {text} names no file")
    return DatabaseURL(kind=SQLITE, database=path)


def _mysql(text: str) -> DatabaseURL:
    shown = _shown(text)
    start, userinfo, rest = _userinfo(text)
    parts = urlsplit(start + rest)
    if parts.query or parts.fragment:
        raise ValueError(f"unexpected ?query or #fragment in database URL {shown}")
    database = unquote(parts.path.lstrip("/"))
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in database URL {shown}") from None
    if not parts.hostname or not database or "/" in database:
        raise ValueError(
            f"a MySQL URL names a host and a database: mysql://user@host:port/database, "
            f"not {shown}"
        )
    user, colon, password = (userinfo or "").partition(":")
    return DatabaseURL(
        kind=MYSQL,
        database=database,
        host=parts.hostname,
        port=port or DEFAULT_MYSQL_PORT,
        user=unquote(user) if user else None,
        password=unquote(password) if colon else None,
    )


def hidePassword(text: str) -> str:
    """The URL C{text} with any password in it shown as C{***}."""
    return withoutPassword(text, shown="***")[0]


def withoutPassword(text: str, shown: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """
    The URL C{text} without its password (or with C{shown} in its place),
    and the decoded password (or None).
    """
    start, userinfo, rest = _userinfo(text)
    if userinfo is None or ":" not in userinfo:
        return text, None
    user, _, password = userinfo.partition(":")
    masked = f"{user}:{shown}" if shown is not None else user
    return f"{start}{masked}@{rest}", unquote(password) or None

"""
The C{acqs} command: administration steps around the daemon (which runs as
C{twistd acqs}).

    acqs initdb --db mysql://cron@127.0.0.1:3306/asterisk --db-password-file /etc/acqs/db.secret
    acqs initdb --db sqlite:///var/lib/acqs/queue.db

    acqs health --status-file /var/lib/acqs/acqs.status.json
    acqs check --config /etc/acqs/acqs.ini      (before replacing VICIdial's Perl ACQS)

    acqs rows --since 10m            acqs trace 1234
    acqs send Hangup 'Channel: SIP/carrier-0000002a'

Each subcommand is a function taking the parsed arguments and returning the
exit status; add one with another C{subcommands.add_parser(...)} in
L{parser}.
"""

import argparse
import sys
from typing import List, NoReturn, Optional, TextIO

from . import health, rowscli
from ._version import __version__
from .store.dialects import dialectFor
from .store.schema import initdb
from .store.url import DatabaseURL, parseURL
from . import check


# sysexits' EX_USAGE: the command line is wrong.  Subcommands whose codes
# follow another convention set their parser's usageStatus (health: Nagios'
# UNKNOWN).
USAGE = 64


class Parser(argparse.ArgumentParser):
    """Exits with its C{usageStatus} (L{USAGE} unless set) on a usage error, not 2."""

    usageStatus = USAGE

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(self.usageStatus, f"{self.prog}: error: {message}\n")


def _databaseURL(text: str) -> DatabaseURL:
    try:
        return parseURL(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _addDatabase(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--db",
        required=True,
        type=_databaseURL,
        metavar="URL",
        help="mysql://user@host:port/database or sqlite:///path/to/file.db",
    )
    command.add_argument(
        "--db-password-file",
        type=argparse.FileType("r"),
        metavar="FILE",
        help="read the database password from FILE (its first line) rather than the URL, "
        "which anyone can see in ps",
    )


def _url(arguments) -> DatabaseURL:
    if arguments.db_password_file is None:
        return arguments.db
    with arguments.db_password_file as secret:
        return arguments.db.withPassword(secret.readline().rstrip("\r\n"))


def initdbCommand(arguments, out: TextIO, err: TextIO) -> int:
    """Create the queue store's missing tables; say what was there and what was made."""
    url = _url(arguments)
    try:
        report = initdb(url)
    except dialectFor(url).errors as e:
        print(f"acqs initdb: cannot set up {url}: {e}", file=err)
        return 1
    for table in report.created:
        print(f"{url}: created {table}", file=out)
    for table in report.existing:
        print(f"{url}: {table} already there, left as it is", file=out)
    for warning in report.warnings:
        print(f"acqs initdb: warning: {warning}", file=err)
    return 0


def parser() -> argparse.ArgumentParser:
    top = Parser(
        prog="acqs",
        description="Asterisk Central Queue System: administration commands "
        "(the daemon itself runs as: twistd acqs).",
    )
    top.add_argument("--version", action="version", version=f"acqs {__version__}")
    subcommands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command = subcommands.add_parser(
        "initdb",
        help="create the queue store's tables (safe to run again)",
        description="Create vicidial_manager (unless it exists) and acqs' own tables "
        "in a MySQL/MariaDB database (created if missing) or an SQLite file.",
    )
    _addDatabase(command)
    command.set_defaults(run=initdbCommand)
    health.register(subcommands)
    rowscli.register(subcommands)
    check.register(subcommands)
    return top


def main(argv: Optional[List[str]] = None, out: Optional[TextIO] = None,
         err: Optional[TextIO] = None) -> int:
    """The C{acqs} console script: run a subcommand, return its exit status."""
    arguments = parser().parse_args(argv)
    return arguments.run(arguments, out or sys.stdout, err or sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

"""
VICIdial's C{servers} table: the AMI settings of one server, read as
VICIdial's Perl ACQS reads them (the first row of C{server_ip}).

A role user (C{ASTmgrUSERNAMEsend}, C{ASTmgrUSERNAMElisten}) counts only
when it is longer than 3 characters, else the generic C{ASTmgrUSERNAME}
is used; every role shares C{ASTmgrSECRET}; an empty C{telnet_port} means
5038.
"""

from typing import Optional

import attr

from .recovery import heartbeat
from .transaction import Transaction

DEFAULT_PORT = 5038
COLUMNS = (
    "telnet_host", "telnet_port", "ASTmgrUSERNAME", "ASTmgrSECRET", "ASTmgrUSERNAMEsend",
    "ASTmgrUSERNAMElisten", "vd_server_logs", "max_vicidial_trunks", "asterisk_version",
)


@attr.s(frozen=True, auto_attribs=True)
class ServerRow:
    """What acqs uses of a C{servers} row; its C{repr} never shows the secret."""

    telnet_host: str
    telnet_port: int
    user: str
    secret: str = attr.ib(repr=False)
    user_send: str = ""
    user_listen: str = ""
    vd_server_logs: bool = True
    max_vicidial_trunks: Optional[int] = None
    asterisk_version: Optional[str] = None

    @property
    def ami(self) -> str:
        """The AMI as a Twisted client endpoint string."""
        host = (self.telnet_host or "localhost").replace("\\", "\\\\").replace(":", "\\:")
        return f"tcp:host={host}:port={self.telnet_port or DEFAULT_PORT}"

    @property
    def send_user(self) -> str:
        return _role(self.user_send, self.user)

    @property
    def listen_user(self) -> str:
        return _role(self.user_listen, self.user)


def _role(user: str, generic: str) -> str:
    return user if len(user or "") > 3 else generic


@attr.s(frozen=True, auto_attribs=True)
class ServerRead:
    """
    The C{servers} row of a server IP, or C{None}: then C{missing} says why
    there is no C{servers} table to read (not VICIdial), or is C{None} when
    the table has no row for that IP.
    """

    row: Optional[ServerRow]
    missing: Optional[str] = None


def readServer(t: Transaction, server_ip: str) -> ServerRead:
    """The first C{servers} row of C{server_ip}."""
    try:
        found = t.select(f"SELECT {', '.join(COLUMNS)} FROM servers WHERE server_ip = %s"
                         " LIMIT 1", (server_ip,))
    except t.dialect.errors as e:
        if t.dialect.missingSchema(e):  # the statement failed alone; the transaction goes on
            return ServerRead(None, str(e))
        raise
    if not found:
        return ServerRead(None)
    host, port, user, secret, send, listen, logs, trunks, version = found[0]
    return ServerRead(ServerRow(
        telnet_host=host or "", telnet_port=int(port or 0) or DEFAULT_PORT, user=user or "",
        secret=secret or "", user_send=send or "", user_listen=listen or "",
        vd_server_logs=(logs or "Y").upper() != "N",
        max_vicidial_trunks=None if trunks is None else int(trunks),
        asterisk_version=version or None,
    ))


def heartbeatReading(t: Transaction, server_ip: str, instance: str, host: Optional[str],
                     pid: Optional[int]) -> ServerRead:
    """A heartbeat, and the C{servers} row of C{server_ip}, in one transaction."""
    heartbeat(t, server_ip, instance, host, pid)
    return readServer(t, server_ip)

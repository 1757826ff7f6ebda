"""
The queue store: VICIdial's vicidial_manager table and acqs' companion
records, on MySQL/MariaDB or SQLite, behind L{IQueueStore}.

    store = openStore("mysql://cron@127.0.0.1:3306/asterisk", reactor, password=secret)
    rows = await store.claim("10.10.11.12", 100, "acqs@box1")

C{acqs initdb --db URL} (L{acqs.store.schema.initdb}) creates the tables.
"""

from typing import Any, Callable, Optional, Union

from .dialects import dialectFor
from .interfaces import IQueueStore, StoreUnavailable
from .records import InstanceConflict
from .recovery import register
from .servers import ServerRead, readServer
from .sqlstore import SQLQueueStore
from .transaction import Transaction
from .url import DatabaseURL, parseURL

__all__ = ["IQueueStore", "StoreUnavailable", "InstanceConflict", "DatabaseURL", "parseURL",
           "openStore", "registerInstance", "lookUpServer", "ServerRead"]


def openStore(
    url: Union[str, DatabaseURL], reactor, password: Optional[str] = None,
    skipLocked: Optional[bool] = None, waits: Optional[bool] = None,
) -> IQueueStore:
    """
    The queue store at C{url} (a L{DatabaseURL} or its text), using
    C{password} instead of the URL's own when given.  Nothing is connected
    yet: the first call connects, and a database that is down fails calls
    with L{StoreUnavailable} until it is back.  C{skipLocked=False} makes
    claims take the path of servers without SKIP LOCKED, C{waits=False}
    the sender poll as on servers that cannot wait for NEW rows.  Raises
    C{ValueError} for a malformed URL.
    """
    if not isinstance(url, DatabaseURL):
        url = parseURL(url)
    url = url.withPassword(password)
    dialect = dialectFor(url)
    return SQLQueueStore(url, dialect, dialect.pool(url, reactor), reactor, skipLocked, waits,
                         dialect.waitPool(url, reactor))


def registerInstance(url: DatabaseURL, server_ip: str, instance: str, host: str, pid: int,
                     staleAfter: float, isAlive: Callable[[int], bool]) -> None:
    """
    Take the name C{instance} for this process, blocking (at start-up);
    raise L{InstanceConflict} while another live process holds it, and
    L{StoreUnavailable} when the database cannot be asked.
    """
    _once(url, register, server_ip, instance, host, pid, staleAfter, isAlive)


def lookUpServer(url: DatabaseURL, server_ip: str) -> ServerRead:
    """
    VICIdial's C{servers} row of C{server_ip}, blocking (at start-up);
    raise L{StoreUnavailable} when the database cannot be asked.
    """
    return _once(url, readServer, server_ip)


def _once(url: DatabaseURL, work: Callable[..., Any], *args: Any) -> Any:
    """C{work(t, *args)} as one transaction on a connection of its own."""
    dialect = dialectFor(url)
    try:
        connection = dialect.connect(url)
        try:
            cursor = connection.cursor()
            dialect.begin(cursor)
            result = work(Transaction(cursor, dialect), *args)
            connection.commit()
            return result
        finally:
            connection.close()
    except dialect.errors as e:
        raise StoreUnavailable(f"queue store {url} failed: {e}") from e

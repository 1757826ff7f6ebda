"""
The queue store: VICIdial's vicidial_manager table and acqs' companion
records, on MySQL/MariaDB or SQLite, behind L{IQueueStore}.

    store = openStore("mysql://cron@127.0.0.1:3306/asterisk", reactor, password=secret)
    rows = await store.claim("10.10.11.12", 100, "acqs@box1")

C{acqs initdb --db URL} (L{acqs.store.schema.initdb}) creates the tables.
"""

from typing import Optional, Union

from .dialects import dialectFor
from .interfaces import IQueueStore, StoreUnavailable
from .sqlstore import SQLQueueStore
from .url import DatabaseURL, parseURL

__all__ = ["IQueueStore", "StoreUnavailable", "DatabaseURL", "parseURL", "openStore"]


def openStore(
    url: Union[str, DatabaseURL], reactor, password: Optional[str] = None
) -> IQueueStore:
    """
    The queue store at C{url} (a L{DatabaseURL} or its text), using
    C{password} instead of the URL's own when given.  Nothing is connected
    yet: the first call connects, and a database that is down fails calls
    with L{StoreUnavailable} until it is back.  Raises C{ValueError} for a
    malformed URL.
    """
    if not isinstance(url, DatabaseURL):
        url = parseURL(url)
    url = url.withPassword(password)
    dialect = dialectFor(url)
    return SQLQueueStore(url, dialect, dialect.pool(url, reactor), reactor)

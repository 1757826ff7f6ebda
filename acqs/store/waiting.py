"""
Looking for NEW rows of a server_ip, outside any transaction: one look
(L{lookForNew}, any database), or, on MariaDB, a wait in the server that
looks every step until a row comes or its time is up (L{waitForNew}).

Both run in autocommit on a connection of their own (the store's "wait
connection"), never inside a claim's transaction, and each look is a
plain C{SELECT EXISTS (...)}: a consistent read that takes no row lock,
and whose metadata lock on vicidial_manager ends with the look.  (A look
in a stored program's condition, C{WHILE NOT EXISTS (...)}, is a locking
read on InnoDB, and a transaction would hold its locks, and the metadata
lock, until it ends: an ALTER or OPTIMIZE of the table would queue behind
the wait, and every GUI client's INSERT behind that; a claim serialised
with GET_LOCK would wait for the row lock of a waiting standby holding
the claim lock's turn.)
"""

from typing import Tuple

from .claims import NO_ORIGINATE, ONLY_ORIGINATES
from .transaction import Transaction

_LOOK = ("SELECT EXISTS (SELECT 1 FROM vicidial_manager"
         " WHERE server_ip = %s AND status = 'NEW'{which})")

# MariaDB's compound statement (10.1.1+): the first look at once, then one
# every step; SLEEP and the looks run in the server, no client round trip.
_WAIT = f"""BEGIN NOT ATOMIC
  DECLARE looked INT DEFAULT 1;
  DECLARE found INT DEFAULT 0;
  {_LOOK} INTO found;
  WHILE NOT found AND looked < %s DO
    DO SLEEP(%s);
    SET looked = looked + 1;
    {_LOOK} INTO found;
  END WHILE;
  SELECT found, looked;
END"""


def _which(originates: bool, others: bool) -> str:
    if originates == others:
        return ""
    return ONLY_ORIGINATES if originates else NO_ORIGINATE


def lookForNew(t: Transaction, server_ip: str, originates: bool = True,
               others: bool = True) -> bool:
    """
    Whether a NEW row of C{server_ip} is there now (one index lookup);
    without C{originates}, one that is no Originate; without C{others}, an
    Originate.
    """
    [(found,)] = t.select(_LOOK, (server_ip,), which=_which(originates, others))
    return bool(found)


def waitForNew(t: Transaction, server_ip: str, looks: int, step: float,
               originates: bool = True, others: bool = True) -> Tuple[bool, int]:
    """
    MariaDB: look for a NEW row of C{server_ip} (of the classes asked for,
    as L{lookForNew}) at once and then every C{step} seconds, C{looks}
    times at most, in one statement; whether one came, and how many looks
    it took.
    """
    t.execute(t.dialect.sql(_WAIT, which=_which(originates, others)),
              (server_ip, max(1, looks), step, server_ip))
    [(found, looked)] = t.fetchall()
    while t.nextset():
        pass
    return bool(found), int(looked)

"""
What every transaction of the queue store uses: a L{Transaction} (the
cursor and the L{Dialect}) with the statements that several of them share,
the column widths that values are cut to, and batching in chunks.

Transactions are plain functions C{f(t, *args)} of the modules named for
what they do (L{acqs.store.claims}, L{acqs.store.sending},
L{acqs.store.calls}, L{acqs.store.recovery}, L{acqs.store.pruning});
L{SQLQueueStore<acqs.store.sqlstore.SQLQueueStore>} runs them in its pool.
Their SQL is written once, with C{%s} parameters and the dialect's named
fragments (C{{now}}, C{{ago}}, C{{lockRows}}, C{{is}}).
"""

from itertools import groupby
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple

from .dialects import INSERTED, Dialect
from .records import NEW, QUEUE, SENT

# Column widths of vicidial_manager and acqs_action: values are cut to them
# here, so that strict and non-strict sql_modes behave the same.
CHANNEL, UNIQUEID, CALLERID, INSTANCE, TEXT = 100, 20, 20, 64, 255
WHOLE_UNIQUEID, CAUSE, HOST, ACTION_ID = 150, 64, 255, 40
# Rows per statement in batch operations (SQLite allows 32766 parameters).
CHUNK = 500
# cmd lines that make a row a recording, exempt from the dead check and
# from the listener's DEAD (VICIdial's rule).
RECORDING_EXTENS = ("Exten: 8309", "Exten: 8310")

_ACTION_KEY = ("man_id",)


def cut(text: Optional[str], width: int) -> str:
    """C{text} cut to C{width} characters (C{None} read as '')."""
    return (text or "")[:width]


def chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    """C{items} in slices of at most C{size}."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(count: int, mark: str = "%s") -> str:
    """C{count} parameter marks (or C{mark}s), separated by commas."""
    return ", ".join([mark] * count)


def caseOf(count: int) -> str:
    """C{CASE man_id WHEN %s THEN %s ... END} for C{count} rows: a value each."""
    return "CASE man_id" + " WHEN %s THEN %s" * count + " END"


def _byToken(claims: Iterable[Tuple[int, Optional[str]]]
             ) -> Iterator[Tuple[Optional[str], List[int]]]:
    """C{(token, man_ids)} groups of C{claims}."""
    ordered = sorted(set(claims), key=lambda c: (c[1] or "", c[0]))
    for token, group in groupby(ordered, key=lambda c: c[1]):
        yield token, [man_id for man_id, _ in group]


class Transaction:
    """
    One transaction's cursor, which counts the statements run through it
    (the store retries a transaction on a new connection only when its
    first statement found the old one dead), and its L{Dialect}.  Anything
    else is the cursor's.
    """

    def __init__(self, cursor, dialect: Dialect):
        self._cursor = cursor
        self.dialect = dialect
        self.executed = 0

    def execute(self, *args: Any) -> Any:
        self.executed += 1
        return self._cursor.execute(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def write(self, template: str, params: Sequence = (), **fields: str) -> int:
        """Run the statement C{template} (filled in by the dialect): the rows it changed."""
        self.execute(self.dialect.sql(template, **fields), tuple(params))
        return self._cursor.rowcount

    def select(self, template: str, params: Sequence = (), **fields: str) -> list:
        """Run the query C{template} (filled in by the dialect): the rows it found."""
        self.execute(self.dialect.sql(template, **fields), tuple(params))
        return list(self._cursor.fetchall())

    def ownRecords(self, claims: Sequence[Tuple[int, Optional[str]]], outcomes: Sequence[str],
                   statuses: Sequence[str] = ()) -> List[int]:
        """
        Those man_ids of C{claims} (L{Claim}s; a token may be C{None}) whose
        record still holds the claim's token and one of C{outcomes} (and
        whose row one of C{statuses}, if given), locked until the end of the
        transaction.
        """
        owned: List[int] = []
        statusCheck = (f" AND v.status IN ({marks(len(statuses))})" if statuses else "")
        join = " JOIN vicidial_manager v ON v.man_id = a.man_id" if statuses else ""
        for token, man_ids in _byToken(claims):
            for ids in chunks(man_ids):
                owned += [man_id for (man_id,) in self.select(
                    "SELECT a.man_id FROM acqs_action a" + join
                    + " WHERE a.man_id IN ({ids}) AND a.claim_token {is} %s"
                    " AND a.outcome IN ({outcomes})" + statusCheck
                    + " ORDER BY a.man_id{lockRows}",
                    list(ids) + [token] + list(outcomes) + list(statuses),
                    ids=marks(len(ids)),
                    outcomes=marks(len(outcomes)),
                )]
        return sorted(owned)

    def setStatus(self, man_ids: Sequence[int], status: str, fromStatuses: Sequence[str],
                  response: Optional[str] = None) -> None:
        """Move those of C{man_ids} in one of C{fromStatuses} to C{status} (and C{response})."""
        assignments, params = "status = %s", [status]
        if response is not None:
            assignments += ", response = %s"
            params.append(response)
        for ids in chunks(man_ids):
            self.write(
                "UPDATE vicidial_manager SET {assignments}"
                " WHERE status IN ({from}) AND man_id IN ({ids})",
                params + list(fromStatuses) + list(ids),
                assignments=assignments,
                ids=marks(len(ids)),
                **{"from": marks(len(fromStatuses))},
            )

    def requeue(self, rows: Sequence[Tuple[int, str]], outcome: str) -> None:
        """Claimed rows back to NEW, to be claimed again: (man_id, reason) pairs."""
        self.upsertActions(
            "man_id, claimed_by, claim_token, claimed_at, sending_at, outcome, reason, attempts",
            "%s, NULL, NULL, NULL, NULL, %s, %s, 1",
            [(man_id, outcome, reason) for man_id, reason in rows],
            claimed_by="NULL",
            claim_token="NULL",
            claimed_at="NULL",
            sending_at="NULL",
            outcome=INSERTED,
            reason=INSERTED,
            attempts="attempts + 1",
        )
        self.setStatus([man_id for man_id, _ in rows], NEW, (QUEUE, SENT))

    def finish(self, rows: Sequence[Tuple[int, str]], status: str, outcome: str) -> None:
        """Claimed rows that will not be sent (again): (man_id, reason) pairs."""
        self.upsertActions(
            "man_id, outcome, reason",
            "%s, %s, %s",
            [(man_id, outcome, reason) for man_id, reason in rows],
            outcome=INSERTED,
            reason=INSERTED,
        )
        self.setStatus([man_id for man_id, _ in rows], status, (QUEUE,), response="N")

    def upsertActions(self, columns: str, values: str, rows: Sequence[tuple],
                      **assignments: Any) -> None:
        """
        Insert or update acqs_action rows: C{values} is the SQL of one row's
        C{columns} with C{%s} for each item of a row of C{rows}; an existing
        row gets C{assignments} (SQL, or L{INSERTED} for the inserted value).
        """
        oneRow = self.dialect.sql(f"({values})")
        conflict = self.dialect.upsert(_ACTION_KEY, assignments)
        for chunk in chunks(rows):
            self.execute(
                self.dialect.sql(
                    "INSERT INTO acqs_action ({columns}) VALUES {rows}",
                    columns=columns,
                    rows=marks(len(chunk), oneRow),
                )
                + conflict,
                [item for row in chunk for item in row],
            )

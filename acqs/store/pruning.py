"""
Pruning: VICIdial's keep-hours flush of old vicidial_manager rows (when
asked for), and acqs_action records whose row is gone.
"""

from typing import List, Optional

from .records import Pruned
from .transaction import Transaction, chunks, marks

# How many pages of rows one round of the keep-hours flush reads at most.
PRUNE_PAGES = 20


def prune(t: Transaction, server_ip: str, keepHours: Optional[float], batch: int) -> Pruned:
    """
    Delete up to C{batch} of C{server_ip}'s rows older than C{keepHours}
    (if given) with their records, and up to C{batch} orphaned records.
    """
    rows = 0
    if keepHours is not None:
        # VICIdial's own flush: the oldest rows first, walked in man_id
        # order (entry_date has no index), up to the first young one.
        doomed: List[int] = []
        after, young, pages = 0, False, 0
        while not young and len(doomed) < batch and pages < PRUNE_PAGES:
            pages += 1
            page = t.select(
                "SELECT man_id, server_ip, entry_date < {ago} FROM vicidial_manager"
                " WHERE man_id > %s ORDER BY man_id LIMIT %s",
                (t.dialect.agoParameter(keepHours * 3600), after, batch),
            )
            for man_id, server, isOld in page:
                if not isOld:
                    young = True
                    break
                if server == server_ip:
                    doomed.append(man_id)
            young = young or len(page) < batch
            after = page[-1][0] if page else after
        for ids in chunks(doomed[:batch]):
            t.write("DELETE FROM acqs_action WHERE man_id IN ({ids})", ids,
                    ids=marks(len(ids)))
            rows += t.write("DELETE FROM vicidial_manager WHERE man_id IN ({ids})", ids,
                            ids=marks(len(ids)))
    # Records whose row is gone (VICIdial's AST_flush_DBqueue.pl, or the
    # flush above): all of them lie below the oldest row's man_id.
    [(oldest,)] = t.select("SELECT MIN(man_id) FROM vicidial_manager")
    orphans = [man_id for (man_id,) in t.select(
        "SELECT man_id FROM acqs_action WHERE man_id < %s ORDER BY man_id LIMIT %s",
        (oldest if oldest is not None else 2 ** 32, batch),
    )]
    for ids in chunks(orphans):
        t.write("DELETE FROM acqs_action WHERE man_id IN ({ids})", ids, ids=marks(len(ids)))
    return Pruned(records=len(orphans), rows=rows)

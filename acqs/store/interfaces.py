"""
The queue store: VICIdial's vicidial_manager table and acqs' companion
records, on MariaDB/MySQL or SQLite.
"""

from typing import Sequence

from zope.interface import Interface


class StoreUnavailable(Exception):
    """The database could not be reached or failed; the store retries by
    itself on the next call."""


class IQueueStore(Interface):
    """
    Every method returns a Deferred and runs as one transaction.  Each
    status change is guarded, so that no update is lost or reversed: SENT
    only from QUEUE, UPDATED only before DEAD, DEAD is final.
    """

    def claim(server_ip: str, limit: int, instance: str):
        """
        Move up to C{limit} NEW rows of C{server_ip} to QUEUE, oldest
        man_id first, recording C{instance} as their claimant; no two
        callers ever claim the same row.  Hangup and Redirect rows whose
        callerid belongs to a DEAD call become DEAD instead, with the
        reason recorded.  Fires with the claimed L{ActionRow}s, in man_id
        order.
        """

    def markSending(man_ids: Sequence[int]):
        """
        These QUEUE rows go to AMI now: they become SENT (VICIdial's sender
        marks SENT when it dispatches a row) and are recorded as possibly
        sent.  Called before an action is written; rows never marked were
        certainly not sent.
        """

    def release(man_ids: Sequence[int], reason: str):
        """
        Return rows that were certainly not written to AMI to NEW, so that
        they are sent later: QUEUE rows, and rows marked sending whose action
        the sender knows was never written.  The reason and attempt count
        are kept.
        """

    def recordSent(results: Sequence):
        """
        Record L{SendResult}s: C{response} becomes Y or N and Asterisk's
        answer is kept; a row still in QUEUE becomes SENT, any other keeps
        its status.
        """

    def refuse(refusals: Sequence):
        """
        Record L{Refusal}s: rows acqs will not send (malformed, unsafe)
        become DEAD with response N and the reason kept.
        """

    def applyUpdates(server_ip: str, updates: Sequence):
        """
        Apply L{CallUpdated} and L{CallDead} updates of C{server_ip}'s rows,
        in order.  Fires with the number of rows changed.
        """

    def recoverStranded(server_ip: str, instance: str, staleAfter: float):
        """
        Resolve QUEUE rows of C{server_ip} left by a claimant that is gone:
        C{instance} itself (a previous run of this instance), or any
        instance whose heartbeat is older than C{staleAfter} seconds.  Rows
        never marked sending go back to NEW; rows marked sending but never
        answered get response N and are not sent again.  Fires with a
        L{Recovery}.
        """

    def heartbeat(server_ip: str, instance: str):
        """Record that C{instance} serving C{server_ip} is alive."""

    def trackedCalls(server_ip: str, maxAge: float):
        """
        Fires with the L{TrackedCalls} of C{server_ip}: Originate rows with
        an entry_date within C{maxAge} seconds that are still in progress.
        """

    def close():
        """Close the connections; fires when they are closed."""

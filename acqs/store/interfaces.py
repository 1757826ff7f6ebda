"""
The queue store: VICIdial's vicidial_manager table and acqs' companion
records, on MariaDB/MySQL or SQLite.
"""

from typing import Sequence

from zope.interface import Attribute, Interface

from .records import Claim


class StoreUnavailable(Exception):
    """The database could not be reached or failed; the store retries by
    itself on the next call."""


class CannotWait(Exception):
    """The database cannot wait for NEW rows in the server (L{IQueueStore.waitForNew}):
    the text says why; looks (L{IQueueStore.lookForNew}) work everywhere."""


class IQueueStore(Interface):
    """
    Every method returns a Deferred and runs as one transaction.  Each
    status change is guarded, so that no update is lost or reversed: SENT
    only from QUEUE, UPDATED only before DEAD, DEAD is final.  A claimed
    row is named by its L{Claim}, C{(man_id, token)}: a claim taken back or
    taken by another claimant no longer answers to its first token.
    """

    serverInfo = Attribute("The L{ServerInfo} of the database, once the first claim knows it.")

    def claim(server_ip: str, limit: int, instance: str, send: int = 0, refuse=None,
              originates=None):
        """
        Move up to C{limit} NEW rows of C{server_ip} to QUEUE, oldest
        man_id first, recording C{instance} as their claimant; no two
        callers ever claim the same row.  Hangup and Redirect rows whose
        callerid belongs to a DEAD call become DEAD instead, with the
        reason recorded; so do rows for which C{refuse(row)} gives a
        reason.  The first C{send} rows claimed are also marked sending, as
        L{markSending} would (C{marked}), for sessions ready to send them,
        where vicidial_manager is transactional (L{ServerInfo.transactional}:
        not on MyISAM, where the mark stays a step of its own).  A claim
        never waits for rows (L{waitForNew} does, apart).  Fires with the
        claimed L{ActionRow}s, in man_id order, each with its claim token.
        With C{originates} (a count), C{limit} counts the rows that are no
        Originate, and at most C{originates} Originates are claimed beside
        them: those beyond stay NEW, and rows behind them are claimed.
        """

    def lookForNew(server_ip: str, originates: bool = True, others: bool = True):
        """
        Fires with whether a NEW row of C{server_ip} is there (without
        C{originates}: one that is no Originate; without C{others}: an
        Originate): one indexed look, in autocommit, that locks nothing
        beyond itself.
        """

    def waitForNew(server_ip: str, timeout: float, step: float, originates: bool = True,
                   others: bool = True):
        """
        Look for a NEW row of C{server_ip} at once and then every C{step}
        seconds, for C{timeout} seconds at most, in the database itself,
        outside any transaction (no row lock, the metadata lock only for
        each look); only rows of the classes asked for count, as in
        L{lookForNew}.  Fires with C{(found, looks)}; fails with L{CannotWait}
        where the database cannot (L{ServerInfo.waits}).
        """

    def markSending(claims: Sequence[Claim]):
        """
        These QUEUE rows go to AMI now: they become SENT (VICIdial's sender
        marks SENT when it dispatches a row) and are recorded as possibly
        sent.  Called before an action is written; rows never marked were
        certainly not sent.  Fires with the man_ids really marked: only
        those may be sent (the others' claims were lost).
        """

    def release(claims: Sequence[Claim], reason: str):
        """
        Return rows that were certainly not written to AMI to NEW, so that
        they are sent later: QUEUE rows, and rows marked sending whose action
        the sender knows was never written.  The reason and attempt count
        are kept.  Fires with the man_ids released.
        """

    def recordSent(results: Sequence):
        """
        Record L{SendResult}s: C{response} becomes Y or N and Asterisk's
        answer is kept; a row still in QUEUE becomes SENT, any other keeps
        its status.  Fires with the man_ids recorded.
        """

    def record(server_ip: str, items: Sequence):
        """
        L{recordSent} the L{SendResult}s among C{items}, then L{applyUpdates}
        the rest, in one transaction.  Fires with the number of row changes
        the updates made.
        """

    def applyUpdates(server_ip: str, updates: Sequence):
        """
        Apply L{CallUpdated}, L{CallDialing}, L{CallMoved}, L{CallDead} and
        L{CallEnded} updates of C{server_ip}'s rows, in order.  Fires with
        the number of row changes.
        """

    def recoverStranded(server_ip: str, instance: str, staleAfter: float,
                        unclaimedAfter=None):
        """
        Resolve rows of C{server_ip} left claimed by a claimant that is gone:
        C{instance} itself (a previous run of this instance), any instance
        whose heartbeat is older than C{staleAfter} seconds, or nobody acqs
        knows (QUEUE with no claim record: the Perl sender) for a row
        older than C{unclaimedAfter} seconds (C{staleAfter} if None; 0: at
        once, for a caller that knows no Perl sender runs).  Rows never
        marked sending go back to NEW; rows marked sending but never
        answered get response N and are not sent again.  Fires with a
        L{Recovery}.
        """

    def register(server_ip: str, instance: str, host: str, pid: int, staleAfter: float,
                 isAlive):
        """
        Take the name C{instance} for this process; fails with
        L{InstanceConflict} while another live process holds it.
        """

    def heartbeat(server_ip: str, instance: str, host: str, pid: int, readServer: bool = False):
        """
        Record that C{instance} serving C{server_ip} is alive; with
        C{readServer}, in the same transaction, read VICIdial's C{servers}
        row of C{server_ip}: fires with its L{ServerRead}.
        """

    def trackedCalls(server_ip: str, ringWindow: float):
        """
        Fires with the L{TrackedCalls} of C{server_ip}: Originate rows
        claimed, sent within C{ringWindow} seconds, or whose call is live.
        """

    def dutyColumns():
        """
        Fires with the columns of the VICIdial tables that the listener's
        duties write (L{acqs.store.duties}), by lower-case table name, for
        the tables that exist.
        """

    def writeDuties(server_ip: str, rows: Sequence, now: float):
        """
        Write the listener's duty rows of C{server_ip} (L{acqs.store.duties}),
        stamped with the database's time when each reached acqs: C{now} is
        the clock's time, as their C{at}, when the call is made.  Fires with
        a L{DutyWritten}.
        """

    def prune(server_ip: str, keepHours, batch: int):
        """
        Delete up to C{batch} acqs_action records whose vicidial_manager row
        is gone, and, when C{keepHours} is given, up to C{batch} rows of
        C{server_ip} older than that (VICIdial's flush).  Fires with a
        L{Pruned}.
        """

    def close():
        """Close the connections; fires when they are closed."""

    # Reads for operators (acqs.store.reads): they write and lock nothing.

    def recentRows(server_ip: str, limit: int = 50):
        """Fires with the newest C{limit} rows of C{server_ip} as L{RowView}s, newest first."""

    def newRows(server_ip: str):
        """
        Fires with the L{NewRows} of C{server_ip}: how many rows wait as NEW,
        the oldest's man_id and age; one indexed read.
        """

    def sendTimes(server_ip: str, instance: str, after):
        """
        Fires with the L{SendTimes} of the rows C{instance} marked sending
        after C{after} (an earlier C{until}; None: only where to start).
        """

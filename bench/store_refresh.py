"""
The listener's refresh of tracked calls, on a busy day's vicidial_manager.

    python bench/store_refresh.py [--mysql mysql://root@127.0.0.1:3306/test] [--rows 200000]

In a scratch database that it creates and drops, on InnoDB and on VICIdial's
MyISAM, it fills vicidial_manager with a day of one server's rows (most
DEAD; 7% SENT, Originates that failed; 2% UPDATED recordings, which never
die; a few live calls and rows just sent), with acqs_action records as acqs
leaves them, and measures:

  - the refresh (L{SQLQueueStore.trackedCalls}, every 30 s): median and p95
    ms over 50 runs, the calls it returns, and EXPLAIN's rows and Extra of
    each of its statements (no filesort);
  - the same for the query the refresh ran before (every SENT, QUEUE and
    UPDATED Originate of the last 24 hours, ordered by man_id), as the
    reference;
  - on MyISAM, the longest a one-row UPDATE of another row waits while
    refreshes run back to back (MyISAM locks the whole table for a read).

The server defaults to ACQS_TEST_MYSQL or mysql://root@127.0.0.1:3306/test
(its database part is not used).
"""

import argparse
import os
import random
import secrets
import statistics
import threading
import time

import attr

from acqs.store.calls import trackedCalls
from acqs.store.dialects import dialectFor
from acqs.store.schema import initdb
from acqs.store.transaction import Transaction
from acqs.store.url import parseURL

SERVER = "10.10.11.12"
RUNS = 50
RING_WINDOW = 180.0
# The refresh before acqs bounded it: every Originate in progress for 24 hours.
PREVIOUS = (
    "SELECT status, callerid, uniqueid FROM vicidial_manager"
    " WHERE server_ip = %s AND status IN ('QUEUE', 'SENT', 'UPDATED')"
    " AND action = 'Originate' AND entry_date >= NOW() - INTERVAL 1 DAY ORDER BY man_id"
)


class Recording:
    """A DB-API cursor that keeps the statements run through it, with their parameters."""

    def __init__(self, cursor):
        self._cursor, self.statements = cursor, []

    def execute(self, sql, params=()):
        self.statements.append((sql, params))
        return self._cursor.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


def fill(connection, rows: int) -> None:
    """A day of one server's rows, oldest first, and acqs' records of them."""
    rng = random.Random(1)
    cursor = connection.cursor()
    start = time.time() - 86_000
    live = set(range(rows - 60, rows - 20))  # calls up now
    recent = set(range(rows - 20, rows))  # sent within the ring window, not ringing yet
    for first in range(0, rows, 5_000):
        manager, actions = [], []
        for n in range(first, min(rows, first + 5_000)):
            when = start + 86_000 * n / rows
            draw = rng.random()
            if n in live:
                status, exten, uniqueid, flag = "UPDATED", "8600051", f"1796{n:06d}.{n}", 1
            elif n in recent:
                status, exten, uniqueid, flag = "SENT", "8600051", "", None
                when = time.time() - 5
            elif draw < 0.07:
                status, exten, uniqueid, flag = "SENT", "8600051", "", None
            elif draw < 0.09:
                status, exten, uniqueid, flag = "UPDATED", "8309", f"1796{n:06d}.{n}", None
            else:
                status, exten, uniqueid, flag = "DEAD", "8600051", f"1796{n:06d}.{n}", None
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
            callerid = f"V{n:019d}"
            manager.append((n + 1, uniqueid, stamp, status, SERVER, callerid, f"Exten: {exten}",
                            f"Callerid: {callerid}"))
            actions.append((n + 1, SERVER, stamp, stamp, uniqueid or None, flag))
        cursor.executemany(
            "INSERT INTO vicidial_manager VALUES (%s, %s, %s, %s, 'Y', %s, '', 'Originate', %s,"
            " 'Channel: Local/8600011@demo', 'Context: default', %s, 'Priority: 1', %s,"
            " '', '', '', '', '')", manager)
        cursor.executemany(
            "INSERT INTO acqs_action (man_id, server_ip, claimed_by, claimed_at, sending_at,"
            " outcome, uniqueid, live) VALUES (%s, %s, 'box1', %s, %s, 'sent', %s, %s)",
            actions)
        connection.commit()
    cursor.execute("ANALYZE TABLE vicidial_manager, acqs_action")
    cursor.fetchall()


def explain(connection, sql: str, params) -> str:
    cursor = connection.cursor()
    cursor.execute("EXPLAIN " + sql, params)
    names = [d[0].lower() for d in cursor.description]
    plans = [dict(zip(names, row)) for row in cursor.fetchall()]
    return "; ".join(f"{p['table']} by {p['key'] or 'scan'}: ~{p['rows']} rows"
                     f" ({p['extra'] or 'no extra'})" for p in plans)


def timed(call, runs: int = RUNS):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def writeStall(url, refresh) -> float:
    """The longest one-row UPDATE, in ms, while C{refresh()} runs back to back."""
    dialect = dialectFor(url)
    writer = dialect.connect(url)
    writer.autocommit(True)
    stop, worst = threading.Event(), [0.0]

    def write():
        cursor = writer.cursor()
        while not stop.is_set():
            started = time.perf_counter()
            cursor.execute("UPDATE vicidial_manager SET response = 'Y' WHERE man_id = 1")
            worst[0] = max(worst[0], (time.perf_counter() - started) * 1000)
            time.sleep(0.002)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        for _ in range(20):
            refresh()
    finally:
        stop.set()
        thread.join()
        writer.close()
    return worst[0]


def measure(server, engine: str, rows: int) -> None:
    name = f"acqs_bench_{secrets.token_hex(4)}"
    url = attr.evolve(server, database=name)
    dialect = dialectFor(server)
    admin = dialect.connect(server, database=False)
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    initdb(url)
    connection = dialect.connect(url)
    try:
        connection.cursor().execute(f"ALTER TABLE vicidial_manager ENGINE={engine}")
        fill(connection, rows)

        def previous():
            cursor = connection.cursor()
            cursor.execute(PREVIOUS, (SERVER,))
            return f"{len(cursor.fetchall())} rows"

        def current(cursor=None):
            # The store's own transaction, run here without its thread hop.
            tracked = trackedCalls(Transaction(cursor or connection.cursor(), dialect), SERVER,
                                   RING_WINDOW)
            return (f"{len(tracked.callerids)} callerids,"
                    f" {len(tracked.uniqueids)} uniqueids")

        recording = Recording(connection.cursor())
        current(recording)
        print(f"\nvicidial_manager {engine}, {rows:,} rows of {SERVER}")
        for label, call, statements in (
            ("before: every SENT/QUEUE/UPDATED Originate of 24 h", previous,
             [(PREVIOUS, (SERVER,))]),
            ("now: trackedCalls", current, recording.statements),
        ):
            found = call()
            median, p95 = timed(call)
            stall = f", longest other write {writeStall(url, call):.1f} ms" \
                if engine == "MyISAM" else ""
            print(f"  {label}: median {median:.2f} ms, p95 {p95:.2f} ms; {found}{stall}")
            for sql, params in statements:
                print(f"      {explain(connection, sql, params)}")
    finally:
        connection.close()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def main(server, rows):
    connection = dialectFor(server).connect(server, database=False)
    cursor = connection.cursor()
    cursor.execute("SELECT VERSION()")
    print(f"acqs tracked-calls refresh on MariaDB {cursor.fetchone()[0]}")
    connection.close()
    for engine in ("InnoDB", "MyISAM"):
        measure(server, engine, rows)


if __name__ == "__main__":
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument(
        "--mysql",
        default=os.environ.get("ACQS_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test"),
        help="a MySQL/MariaDB server where a scratch database may be created",
    )
    options.add_argument("--rows", type=int, default=200_000, help="rows in vicidial_manager")
    arguments = options.parse_args()
    server = parseURL(arguments.mysql)
    main(server, arguments.rows)

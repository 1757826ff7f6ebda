"""
How fast the queue store claims and marks rows on the real MariaDB.

    python bench/store_claim.py [--mysql mysql://root@127.0.0.1:3306/test]

In a scratch database that it creates and drops, it measures:

  - throughput: rows per second through claim + markSending + recordSent
    (what the sender does for every action), one instance, batches of 1,
    10 and 100 rows;
  - the time of one claim (of one row) with 100,000 finished rows (SENT,
    UPDATED, DEAD) of the same server_ip in the table, next to the same on
    an almost empty table.

The server defaults to ACQS_TEST_MYSQL or mysql://root@127.0.0.1:3306/test
(its database part is not used).
"""

import argparse
import os
import secrets
import statistics
import sys
import time

import attr
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from acqs.store import openStore
from acqs.store.dialects import dialectFor
from acqs.store.records import SendResult
from acqs.store.schema import initdb
from acqs.store.url import parseURL

SERVER = "10.10.11.12"
THROUGHPUT = ((1, 2_000), (10, 10_000), (100, 30_000))  # (batch, rows)
FINISHED = 100_000
CLAIMS = 200


def insertRows(connection, count, status="NEW"):
    """Insert C{count} rows the way GUI clients do, in multi-row statements."""
    cursor = connection.cursor()
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    for start in range(0, count, 5_000):
        cursor.executemany(
            "INSERT INTO vicidial_manager VALUES (NULL, %s, %s, %s, 'N', %s, '', 'Originate', %s,"
            " 'Channel: Local/8600011@demo', 'Context: default', 'Exten: 8600100',"
            " 'Priority: 1', %s, '', '', '', '', '')",
            [
                ("", now, status, SERVER, f"M{n:019d}", f"Callerid: M{n:019d}")
                for n in range(start, min(count, start + 5_000))
            ],
        )
    connection.commit()


async def throughput(store, connection, batch, rows):
    insertRows(connection, rows)
    done = 0
    started = time.perf_counter()
    while True:
        claimed = await store.claim(SERVER, batch, "bench")
        if not claimed:
            break
        await store.markSending([(row.man_id, row.claim) for row in claimed])
        await store.recordSent([SendResult(row.man_id, row.claim, True,
                                           "Originate successfully queued") for row in claimed])
        done += len(claimed)
    elapsed = time.perf_counter() - started
    assert done == rows, (done, rows)
    return elapsed


async def claimTimes(store, connection):
    insertRows(connection, CLAIMS)
    times = []
    for _ in range(CLAIMS):
        started = time.perf_counter()
        [row] = await store.claim(SERVER, 1, "bench")
        times.append((time.perf_counter() - started) * 1000)
        await store.markSending([(row.man_id, row.claim)])
        await store.recordSent([SendResult(row.man_id, row.claim, True, "ok")])
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


async def main(reactor, server):
    name = f"acqs_bench_{secrets.token_hex(4)}"
    url = attr.evolve(server, database=name)
    dialect = dialectFor(server)
    admin = dialect.connect(server, database=False)
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        initdb(url)
        connection = dialect.connect(url)
        cursor = connection.cursor()
        cursor.execute("SELECT VERSION()")
        print(f"acqs queue store on MariaDB {cursor.fetchone()[0]}, scratch database {name}")
        store = openStore(url, reactor)
        try:
            print("\nclaim + markSending + recordSent, one instance, sequential")
            print(f"{'batch':>7} {'rows':>8} {'seconds':>9} {'rows/s':>9}")
            for batch, rows in THROUGHPUT:
                elapsed = await throughput(store, connection, batch, rows)
                print(f"{batch:>7} {rows:>8} {elapsed:>9.2f} {rows / elapsed:>9.0f}")

            print(f"\none claim of one row ({CLAIMS} claims)")
            print(f"{'finished rows in table':>24} {'median ms':>10} {'p95 ms':>8}")
            # TRUNCATE, not DELETE: no purge of deleted rows running behind the timings.
            cursor.execute("TRUNCATE vicidial_manager")
            cursor.execute("TRUNCATE acqs_action")
            for finished in (0, FINISHED):
                for status in ("SENT", "UPDATED", "DEAD"):
                    insertRows(
                        connection,
                        finished // 3 + (finished % 3 if status == "DEAD" else 0),
                        status,
                    )
                cursor.execute("SELECT COUNT(*) FROM vicidial_manager")
                count = cursor.fetchone()[0]
                median, p95 = await claimTimes(store, connection)
                print(f"{count:>24} {median:>10.2f} {p95:>8.2f}")
        finally:
            await store.close()
            connection.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


if __name__ == "__main__":
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument(
        "--mysql",
        default=os.environ.get("ACQS_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test"),
        help="a MySQL/MariaDB server where a scratch database may be created",
    )
    server = parseURL(options.parse_args().mysql)
    react(lambda reactor: ensureDeferred(main(reactor, server)))
    sys.exit(0)

"""
What the DTMF duty costs the shared database: statements (and transactions)
per digit keyed, on the real MariaDB with VICIdial's MyISAM
vicidial_dtmf_log.

    python bench/duties_dtmf.py [--mysql mysql://root@127.0.0.1:3306/test]

Calls key digits as on Asterisk 22 (tests/data/asterisk22/facts/dtmf.*):
each digit is a DTMFBegin and, 100 ms later, a DTMFEnd on each of three
channels (two Received, one Sent), a digit every 350 ms, the calls started
at random within the first 350 ms.  acqs' DutyWriter turns the events into
rows and writes them in batches; VICIdial's listener writes one INSERT (one
transaction) per event, 6 per digit.  The scratch database is dropped after.
"""

import argparse
import os
import pathlib
import random
import secrets
import sys
from types import SimpleNamespace

import attr
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater, react

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from acqs.ami.message import Message
from acqs.dutywriter import DutyWriter
from acqs.store import openStore
from acqs.store.dialects import dialectFor
from acqs.store.schema import initdb
from acqs.store.url import parseURL
from tests.vicidial_tables import createVICIdialTables

SERVER = "10.10.11.12"
DIGITS = 10  # per call
GAP, TONE = 0.35, 0.1  # seconds between digits, of each tone
CHANNELS = (("Received", "Local/8600050@default-00000005;1"),
            ("Sent", "Local/8600052@default-00000004;2"),
            ("Received", "Local/8600052@default-00000004;1"))


def dtmf(name, call, channel, direction, digit):
    return Message([("Event", name), ("Privilege", "dtmf,all"), ("Channel", f"{channel}-{call}"),
                    ("Uniqueid", f"1796667017.{call}"), ("Digit", digit),
                    ("Direction", direction)])


async def run(reactor, store, calls):
    duties = DutyWriter(reactor, store, SERVER)
    await duties.find()
    rng = random.Random(calls)
    for call in range(calls):
        start = rng.uniform(0, GAP)
        for n in range(DIGITS):
            digit = "0123456789"[n]
            for direction, channel in CHANNELS:
                for name, at in (("DTMFBegin", 0), ("DTMFEnd", TONE)):
                    reactor.callLater(start + n * GAP + at, duties.event,
                                      dtmf(name, call, channel, direction, digit))
    await deferLater(reactor, GAP * (DIGITS + 1) + TONE, lambda: None)
    await duties.whenIdle()
    digits = calls * DIGITS
    return duties.written, duties.statements, digits


async def main(reactor, server):
    name = f"acqs_bench_{secrets.token_hex(4)}"
    url = attr.evolve(server, database=name)
    dialect = dialectFor(server)
    admin = dialect.connect(server, database=False)
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        initdb(url)
        connection = dialect.connect(url)
        connection.autocommit(True)
        createVICIdialTables(SimpleNamespace(execute=connection.cursor().execute),
                             ["vicidial_dtmf_log"])
        store = openStore(url, reactor)
        try:
            print(f"DTMF duty, {DIGITS} digits a call, 6 events a digit (VICIdial: 6"
                  " statements a digit)")
            print(f"{'calls':>6} {'digits':>7} {'rows':>6} {'statements':>11}"
                  f" {'per digit':>10} {'rows each':>10}")
            for calls in (1, 10, 50, 200):
                rows, statements, digits = await run(reactor, store, calls)
                print(f"{calls:>6} {digits:>7} {rows:>6} {statements:>11}"
                      f" {statements / digits:>10.2f} {rows / statements:>10.1f}")
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

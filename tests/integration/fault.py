"""
What the fault tests share: a GUI client's steady load of synchronous Originates
(as VICIdial's agent screens and dialers queue them), and the accounting of every
row once the fault is over: lost, sent twice, stranded, and how long sending took
to resume.

A row is I{lost} when acqs says it went out (or gave up on it) but Asterisk never
received it; I{sent twice} when Asterisk received it more than once; I{stranded}
when, once everything settled, it still waits for something that will never come:
NEW or QUEUE (never sent), SENT with response Y (its call was answered, and nobody
noticed it end), or UPDATED (its call is over).  Rows acqs recorded as C{unknown}
(killed between writing the action and recording the answer) are counted apart.
"""

import json
import os
import time
import uuid
from collections import Counter
from typing import Callable, List, Optional, Tuple

import attr
from twisted.internet import reactor
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.threads import deferToThread

from .daemon import SERVER, eventually

# When set, each fault test appends its figures (one JSON object a line) to this file.
REPORT = os.environ.get("ACQS_FAULT_REPORT")


@attr.s(auto_attribs=True)
class Tally:
    rows: int
    received: int
    lost: List[int]
    doubled: List[int]
    stranded: List[Tuple[int, str]]
    unknown: List[int]
    endedUnseen: int


class GUILoad:
    """
    Inserts a synchronous Originate C{rate} times a second, each with its own
    callerid, over a connection of its own and in a thread of its own, as a GUI
    client's process would (it waits when the table is locked; an INSERT fails
    while the database is away).
    """

    def __init__(self, testCase, db, rate: float, lines: Callable[[str], List[str]]):
        self.db, self.rate, self.lines = db, rate, lines
        self.rows: List[Tuple[int, str]] = []
        self.failed = 0
        self._connection = db.connect()
        testCase.addCleanup(self._connection.close)
        self._loop = LoopingCall(lambda: deferToThread(self._insert))
        self._loop.clock = reactor

    def _insert(self) -> None:
        callerid = "V" + str(uuid.uuid4().int)[:19]
        try:
            self._connection.ping(reconnect=True)
            man_id = self.db.insertAction(SERVER, "Originate", callerid, self.lines(callerid),
                                          connection=self._connection)
        except Exception:
            self.failed += 1
            return
        reactor.callFromThread(self.rows.append, (man_id, callerid))

    async def run(self, seconds: float, at: Optional[dict] = None) -> None:
        """Load for C{seconds}; C{at} maps seconds from the start to things to do then."""
        started = time.monotonic()
        self._running = self._loop.start(1 / self.rate, now=True)
        try:
            for when, action in sorted((at or {}).items()):
                await deferLater(reactor, max(0.0, started + when - time.monotonic()),
                                 lambda: None)
                result = action()
                if hasattr(result, "addCallback") or hasattr(result, "__await__"):
                    await result
            await deferLater(reactor, max(0.0, started + seconds - time.monotonic()),
                             lambda: None)
        finally:
            self._loop.stop()
        await self._running


def sentCallerids(actions) -> Counter:
    """How many times Asterisk received an Originate of each callerid."""
    return Counter(m["Callerid"] for _, m in actions if m["Action"] == "Originate")


def tally(db, rows, received: Counter) -> Tally:
    lost, doubled, stranded, unknown, unseen = [], [], [], [], 0
    for man_id, callerid in rows:
        row, record = db.row(man_id), db.action(man_id) or {}
        times = received[callerid]
        if times > 1:
            doubled.append(man_id)
        status = row["status"]
        if status in ("NEW", "QUEUE", "UPDATED") or (status == "SENT" and row["response"] == "Y"):
            stranded.append((man_id, status))
        if record.get("outcome") == "unknown":
            unknown.append(man_id)
        elif times == 0 and status not in ("NEW", "QUEUE"):
            lost.append(man_id)
        unseen += record.get("outcome") == "ended_unseen"
    return Tally(len(rows), sum(1 for _, c in rows if received[c]), lost, doubled, stranded,
                 unknown, unseen)


async def settled(db, rows, timeout: float = 60.0) -> None:
    """Every row is in a final state: DEAD, or SENT with response N (failed or unknown)."""

    def final():
        """every row is DEAD, or SENT with response N"""
        return all(r["status"] == "DEAD" or (r["status"] == "SENT" and r["response"] == "N")
                   for r in (db.row(m) for m, _ in rows))

    try:
        await eventually(final, timeout=timeout, interval=0.2)
    except AssertionError as e:
        left = Counter((r["status"], r["response"], (db.action(r["man_id"]) or {}).get("outcome"))
                       for r in (db.row(m) for m, _ in rows))
        raise AssertionError(f"{e}; rows by (status, response, outcome): {dict(left)}") from e


def firstAfter(times: List[float], actions, moment: float) -> Optional[float]:
    """Seconds from C{moment} to the first Originate Asterisk received after it."""
    later = [t for t, (_, m) in zip(times, actions) if m["Action"] == "Originate" and t >= moment]
    return min(later) - moment if later else None


def report(scenario: str, result: Tally, recovery: Optional[float] = None, **extra) -> None:
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as f:
            f.write(json.dumps(dict(
                scenario=scenario, rows=result.rows, lost=len(result.lost),
                doubled=len(result.doubled), stranded=len(result.stranded),
                unknown=len(result.unknown), ended_unseen=result.endedUnseen,
                recovery=recovery, **extra)) + "\n")

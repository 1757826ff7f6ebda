"""
The listener's VICIdial duties at work: events in, rows out (L{DutyWriter}).

Which duties are on is found out from the tables themselves
(L{acqs.store.duties.dutyPlan}): once at start and after each reconnection
of the listener, and said in one log line whenever it changes.  A database
without VICIdial's tables keeps every duty off and is never written to.

Rows queue in an ordered L{BatchWriter} that never stalls the AMI reader:
those of half a second are written together, one transaction per batch.  A
duty whose writes fail for good (a privilege missing) stops until the next
reconnection, and says so once; values that VICIdial's columns cannot hold
are said once per kind (L{acqs.duties.Misfit}).
"""

from typing import Dict, List, Optional, Sequence, Set

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .batching import BatchWriter
from .duties import EVENTS, Misfit, dutyRows
from .store.duties import DUTIES, DutyRow, dutyPlan
from .store.interfaces import IQueueStore

# How long the first duty row waits for others to be written with it
# (seconds): a digit's begin and end, or a burst of registrations, go
# together.  Their times are the database's when the event came, whatever
# the wait.
DUTY_WINDOW = 0.5
# Kinds of misfit said at most (the rest are not).
MAX_MISFITS = 1000

# How the log names each duty.
NAMES = {
    "dtmf": "DTMF log",
    "peer_events": "peer event log",
    "phone_ip": "phones.phone_ip",
    "phone_status": "phones.peer_status",
    "cpd": "CPD log",
    "sip_hangup_cause": "SIP hangup causes",
}


class DutyWriter:
    """
    Turns duty events into rows (L{event}, an AMI event handler) and writes
    them to C{store} for C{serverIP}.  L{plan} maps each duty to None when
    it is on, or why it is off; None while unknown (rows then wait).
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, store: IQueueStore, serverIP: str, *,
                 delay: float = DUTY_WINDOW, maxPending: int = 100_000):
        self._clock = clock
        self._store = store
        self._serverIP = serverIP
        self.plan: Optional[Dict[str, Optional[str]]] = None
        self._said: Optional[Dict[str, Optional[str]]] = None
        self._misfits: Set[str] = set()
        self.writes = BatchWriter(clock, self._write, "VICIdial duty rows", delay=delay,
                                  maxPending=maxPending)
        # Counted for acqs.metrics: rows written, rows lost (a duty's write
        # failed for good, or too many waited), statements run.
        self.written = self.failed = self.statements = 0

    @property
    def dropped(self) -> int:
        return self.failed + self.writes.dropped

    def on(self, duty: str) -> bool:
        """Whether C{duty} is on, or not known yet."""
        return self.plan is None or self.plan[duty] is None

    def eventNames(self) -> List[str]:
        """The events of the duties that are on (all while not known)."""
        return [name for name, duties in EVENTS.items() if any(map(self.on, duties))]

    def event(self, message) -> None:
        """An AMI event handler: the rows of the duties that are on, queued."""
        rows, misfits = dutyRows(message, self._clock.seconds())
        for misfit in misfits:
            self._misfit(misfit)
        for row in rows:
            if self.on(row.duty):
                self.writes.add(row)

    def _misfit(self, misfit: Misfit) -> None:
        if misfit.kind in self._misfits or len(self._misfits) >= MAX_MISFITS:
            return
        self._misfits.add(misfit.kind)
        self.log.warn("VICIdial duties: {text} (said once)", text=misfit.text)

    # Which duties are on

    def find(self) -> Deferred:
        """
        Find out (again) which duties are on, and start afresh those whose
        writes failed; fires with the plan (fails if the store does).
        """
        return Deferred.fromCoroutine(self._find())

    async def _find(self) -> Dict[str, Optional[str]]:
        plan = dutyPlan(await self._store.dutyColumns())
        self._setPlan(plan)
        return plan

    def _setPlan(self, plan: Dict[str, Optional[str]]) -> None:
        self.plan = plan
        if plan == self._said:
            return
        self._said = dict(plan)
        on = [NAMES[d] for d in DUTIES if plan[d] is None]
        off = [f"{NAMES[d]} ({plan[d]})" for d in DUTIES if plan[d] is not None]
        self.log.info("VICIdial duties on: {on}; off: {off}",
                      on=", ".join(on) or "none", off="; ".join(off) or "none")

    def snapshot(self) -> Dict[str, str]:
        """Each duty, "on" or why it is off, for the status file ("unknown" while unknown)."""
        if self.plan is None:
            return {duty: "unknown" for duty in DUTIES}
        return {duty: reason or "on" for duty, reason in self.plan.items()}

    # Writing

    async def _write(self, batch: Sequence[DutyRow]) -> None:
        plan = self.plan if self.plan is not None else await self._find()
        rows = [row for row in batch if plan[row.duty] is None]
        if not rows:
            return
        written = await self._store.writeDuties(self._serverIP, rows, self._clock.seconds())
        self.written += written.rows
        self.statements += written.statements
        for duty, reason, count in written.failed:
            self.failed += count
            if self.plan is not None:
                self.plan = {**self.plan, duty: f"writing failed: {reason}"}
            self.log.error(
                "VICIdial duty {duty} stopped: writing failed ({reason}); {count} rows not"
                " written; it is tried again when the listener reconnects",
                duty=NAMES[duty], reason=reason, count=count)

    def whenIdle(self) -> Deferred:
        return self.writes.whenIdle()

    def stop(self) -> None:
        self.writes.stop()

"""
The embedded demo: ``twistd -n acqs --demo``.

acqs runs against SQLite (in a fresh temporary directory) and the built-in
Asterisk simulator on a free loopback port, while a sample GUI client
INSERTs rows the way VICIdial does: Originates to the simulator's
``default`` context, some dialled out through a carrier leg, and Hangups of
live calls.  A watcher logs each row's life cycle,
NEW → QUEUE → SENT → UPDATED → DEAD.
"""

import itertools
import os
import tempfile
import time
from typing import Dict, List, Optional

import attr
from twisted.application.service import Service
from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.tcp import Port
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from .app import Acqs, acqsServices
from .config import Settings
from .simulator import DEFAULT_USERS, Simulator
from .store import openStore
from .store.reads import lifeCycle
from .store.schema import initdb
from .store.url import parseURL

SERVER_IP = "10.10.11.12"
# The positional INSERT of ACQS.txt, as GUI clients send it.
INSERT = (
    "INSERT INTO vicidial_manager values('','',?,'NEW','N',?,'',?,?,?,?,?,?,?,?,?,?,?,?)"
)
ROWS = (
    "SELECT v.man_id, v.status, v.action, v.channel, v.uniqueid, a.claimed_at, a.sending_at"
    " FROM vicidial_manager v LEFT JOIN acqs_action a ON a.man_id = v.man_id ORDER BY v.man_id"
)


class SimulatorService(Service):
    """The simulator, listening on a free loopback port once started."""

    def __init__(self, reactor, simulator: Simulator):
        self._reactor = reactor
        self.simulator = simulator
        self.port: Optional[Port] = None

    def startService(self) -> None:
        super().startService()
        self.port = self._reactor.listenTCP(0, self.simulator.factory, interface="127.0.0.1")

    def stopService(self) -> Optional[Deferred]:
        super().stopService()
        return None if self.port is None else self.port.stopListening()


@implementer(IStreamClientEndpoint)
@attr.s(frozen=True)
class SimulatorEndpoint:
    """Connects to the simulator wherever it ended up listening."""

    reactor = attr.ib()
    service: SimulatorService = attr.ib()

    def connect(self, factory) -> Deferred:
        listening = self.service.port
        if listening is None:
            return fail(ConnectionRefusedError("the simulator is not listening yet"))
        port = listening.getHost().port
        return TCP4ClientEndpoint(self.reactor, "127.0.0.1", port, timeout=5).connect(factory)


class SampleClient(Service):
    """A GUI client: INSERTs an Originate every few seconds; every third
    call it also hangs up, once answered, by a Hangup row on its channel."""

    log = Logger()

    def __init__(self, reactor, path: str, interval: float = 3.0):
        self._reactor = reactor
        self._pool = adbapi.ConnectionPool("sqlite3", path, check_same_thread=False,
                                           cp_min=1, cp_max=1)
        self._loop = LoopingCall(self._insert)
        self._loop.clock = reactor
        self._interval = interval
        self._count = itertools.count(1)
        self._looping: Optional[Deferred] = None

    def startService(self) -> None:
        super().startService()
        self._looping = self._loop.start(self._interval, now=True)

    def _insert(self) -> Deferred:
        n = next(self._count)
        callerid = "V%09d%010d" % (int(time.strftime("%m%d%H%M%S")) % 10**9, n)
        # Numbers starting with 9 go out through a carrier trunk, as VICIdial dials them;
        # the answered call joins the agent's conference, 8600051.
        number = f"9312555{n:04d}" if n % 2 else f"555{n:04d}"
        lines = [f"Channel: Local/{number}@default", "Context: default", "Exten: 8600051",
                 "Priority: 1", f"Callerid: {callerid}", "Timeout: 30000", "", "", "", ""]
        d = self._pool.runOperation(INSERT, (time.strftime("%Y-%m-%d %H:%M:%S"), SERVER_IP,
                                             "Originate", callerid, *lines))
        if n % 3 == 0:
            self._reactor.callLater(2.5, self._hangup, callerid)
        return d.addErrback(lambda f: self.log.failure("Sample INSERT failed", f))

    def _hangup(self, callerid: str) -> Deferred:
        async def hangup():
            rows = await self._pool.runQuery(
                "SELECT channel FROM vicidial_manager WHERE callerid=? AND status='UPDATED'",
                (callerid,))
            if rows:
                hangupCID = "HLvdcW" + str(int(time.time())) + "demo"
                await self._pool.runOperation(INSERT, (
                    time.strftime("%Y-%m-%d %H:%M:%S"), SERVER_IP, "Hangup", hangupCID,
                    f"Channel: {rows[0][0]}", *([""] * 9)))

        return Deferred.fromCoroutine(hangup()).addErrback(
            lambda f: self.log.failure("Sample Hangup failed", f))

    def stopService(self) -> Deferred:
        super().stopService()
        if self._looping is None:  # never started
            return succeed(None)
        self._loop.stop()
        return self._looping.addCallback(lambda _: self._pool.close())


class Watcher(Service):
    """Logs every row's life cycle as it grows, as a newcomer wants to see it."""

    log = Logger()

    def __init__(self, reactor, path: str, interval: float = 0.2):
        self._pool = adbapi.ConnectionPool("sqlite3", path, check_same_thread=False,
                                           cp_min=1, cp_max=1)
        self._seen: Dict[int, List[str]] = {}
        self._loop = LoopingCall(self._look)
        self._loop.clock = reactor
        self._interval = interval
        self._looping: Optional[Deferred] = None

    def startService(self) -> None:
        super().startService()
        self._looping = self._loop.start(self._interval, now=True)

    def _look(self) -> Deferred:
        return self._pool.runQuery(ROWS).addCallbacks(
            self._report, lambda f: self.log.failure("Watching rows failed", f))

    def _report(self, rows) -> None:
        for man_id, status, action, channel, uniqueid, claimed, sending in rows:
            path = lifeCycle(status, uniqueid, claimed, sending)
            if self._seen.get(man_id) != path:
                self._seen[man_id] = path
                where = f" on {channel}" if status == "UPDATED" else ""
                self.log.info("row {man_id} {action}: {history}{where}", man_id=man_id,
                              action=action, history=" → ".join(path), where=where)

    def stopService(self) -> Deferred:
        super().stopService()
        if self._looping is None:  # never started
            return succeed(None)
        self._loop.stop()
        return self._looping.addCallback(lambda _: self._pool.close())


def buildDemo(settings: Settings, reactor) -> Acqs:
    """acqs on a temporary SQLite file and the simulator, with sample traffic."""
    directory = tempfile.mkdtemp(prefix="acqs-demo-")
    path = os.path.join(directory, "acqs.sqlite")
    url = parseURL(f"sqlite:///{path}")
    initdb(url)
    user, secret = "sender", DEFAULT_USERS["sender"]
    settings = attr.evolve(settings, server_ip=SERVER_IP, db=str(url), send_user=user,
                           send_secret=secret, listen_user="listener",
                           listen_secret=DEFAULT_USERS["listener"])
    simulator = SimulatorService(reactor, Simulator(reactor))
    store = openStore(url, reactor)
    demo = Acqs(store)
    simulator.setServiceParent(demo)
    for service in acqsServices(settings, reactor, store, SimulatorEndpoint(reactor, simulator)):
        service.setServiceParent(demo)
    SampleClient(reactor, path).setServiceParent(demo)
    Watcher(reactor, path).setServiceParent(demo)
    Logger().info("acqs demo: SQLite database {path}, server_ip {server_ip}",
                  path=path, server_ip=SERVER_IP)
    return demo

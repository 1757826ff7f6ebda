"""
The simulator in memory, for tests on C{task.Clock}: client endpoints whose
connections reach a L{Simulator} through C{twisted.test.iosim}, with no
sockets and no real time.

    clock = Clock()
    network = MemoryNetwork(Simulator(clock))
    d = AMIFactory("sender", "sendersecret", clock).login(network.endpoint())
    network.flush()                  # bytes move only when asked
    network.advance(clock, 3.0)      # time and bytes together
"""

from typing import List

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.test import iosim
from zope.interface import implementer

from .server import Simulator


@implementer(IStreamClientEndpoint)
class _Endpoint:
    def __init__(self, network: "MemoryNetwork"):
        self._network = network

    def connect(self, factory) -> Deferred:
        if self._network.refusing:
            return fail(ConnectionRefusedError("the simulator is down"))
        if self._network.hanging:
            return Deferred(lambda d: None)  # never answered; cancelled by its timeout
        return succeed(self._network.connect(factory.buildProtocol(None)))


class MemoryNetwork:
    """
    Connections from acqs' clients to C{simulator}, in memory.

    @ivar refusing: when True, new connections are refused (Asterisk down).
    @ivar hanging: when True, new connections are never answered (a lost SYN).
    @ivar silent: when True, new connections are made but never greeted
        (Asterisk's listen backlog full, or Asterisk stuck).
    @ivar connections: how many connections were made.
    """

    def __init__(self, simulator: Simulator):
        self.simulator = simulator
        self.pumps: List[iosim.IOPump] = []
        self.refusing = False
        self.hanging = False
        self.silent = False
        self.connections = 0

    def endpoint(self) -> IStreamClientEndpoint:
        return _Endpoint(self)

    def connect(self, protocol: Protocol) -> Protocol:
        """Connect a client C{protocol} to the simulator; returns it."""
        server = Protocol() if self.silent else self.simulator.factory.buildProtocol(None)
        self.pumps.append(iosim.connect(
            server, iosim.makeFakeServer(server), protocol, iosim.makeFakeClient(protocol),
            greet=False))
        self.connections += 1
        self.flush()
        return protocol

    def flush(self) -> None:
        """Move bytes both ways on every connection until all are quiet."""
        while any([pump.flush() for pump in self.pumps]):
            pass
        self.pumps = [p for p in self.pumps
                      if not (p.clientIO.disconnected and p.serverIO.disconnected)]

    def advance(self, clock: Clock, seconds: float, step: float = 0.05) -> None:
        """Let C{seconds} pass on C{clock} in steps, moving bytes after each."""
        self.flush()
        target = clock.seconds() + seconds
        while clock.seconds() < target:
            clock.advance(min(step, target - clock.seconds()))
            self.flush()

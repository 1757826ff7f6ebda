"""
A recording TCP proxy in front of the real Asterisk: what acqs wrote to AMI, and
what Asterisk wrote back, per connection, since the real Asterisk keeps no
record of the actions it got.
"""

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol

from acqs.ami.framing import MessageReader
from acqs.ami.message import Message


class RecordingProxy:
    """
    Listens on a free loopback C{port} (C{endpoint} reaches it) and forwards each
    connection to C{host}:C{port}, keeping the actions every client wrote and
    the messages Asterisk wrote back.  The connections of users named in
    C{closeAfterLogin} are closed as soon as their login is accepted (a proxy
    or an AMI that does so).
    """

    def __init__(self, testCase, host: str, port: int, closeAfterLogin=()):
        self.target = (host, port)
        self.closeAfterLogin = set(closeAfterLogin)
        self.connections = []
        self._port = reactor.listenTCP(0, Factory.forProtocol(lambda: _Recorder(self)),
                                       interface="127.0.0.1")
        testCase.addCleanup(self._port.stopListening)
        self.port = self._port.getHost().port
        self.endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)

    def actionsOf(self, username: str):
        """The actions of every connection that logged in as C{username}, in order."""
        return [m for c in self.connections if c.actions and c.actions[0]["Username"] == username
                for m in c.actions]

    def receivedBy(self, username: str):
        """The messages Asterisk wrote to every connection that logged in as C{username}."""
        return [m for c in self.connections if c.actions and c.actions[0]["Username"] == username
                for m in c.received]


class _Recorder(Protocol):
    """Forwards a client's bytes to the real Asterisk, keeping the actions it wrote, and
    when (C{timed})."""

    def __init__(self, proxy):
        self.proxy, self.peer, self.timed, self.received = proxy, None, [], []
        self.reader = MessageReader(lambda size, why: None)
        self.upstreamReader = MessageReader(lambda size, why: None)
        proxy.connections.append(self)

    def connectionMade(self):
        self.transport.pauseProducing()
        to = _Upstream(self)
        TCP4ClientEndpoint(reactor, *self.proxy.target).connect(
            Factory.forProtocol(lambda: to)).addErrback(lambda _: self.transport.loseConnection())

    def dataReceived(self, data):
        now = reactor.seconds()
        self.timed.extend((now, Message.fromBytes(raw)) for raw in self.reader.feed(data))
        self.peer.transport.write(data)

    @property
    def actions(self):
        return [m for _, m in self.timed]

    def connectionLost(self, reason):
        if self.peer is not None:
            self.peer.transport.loseConnection()


class _Upstream(Protocol):
    def __init__(self, client):
        self.client = client

    def connectionMade(self):
        self.client.peer = self
        self.client.transport.resumeProducing()

    def dataReceived(self, data):
        messages = [Message.fromBytes(raw) for raw in self.client.upstreamReader.feed(data)]
        self.client.received.extend(messages)
        self.client.transport.write(data)
        actions = self.client.actions
        if (actions and actions[0].get("Username") in self.client.proxy.closeAfterLogin
                and any(m.get("Message") == "Authentication accepted" for m in messages)):
            self.client.transport.loseConnection()

    def connectionLost(self, reason):
        self.client.transport.loseConnection()

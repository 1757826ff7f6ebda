"""
Every row shape VICIdial's PHP, Perl and AGIs write (tests/data/vicidial/rows.json,
surveyed from VICIdial's public sources; the values are made up), sent end to end:
GUI-style positional INSERT on the real MariaDB (InnoDB and VICIdial's MyISAM),
acqs, and the simulator or the real Asterisk 22 behind a recording proxy.  Each
row is sent, once, and the headers on the wire are the row's header lines.
"""

import json
import pathlib

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase

from acqs.ami.framing import MessageReader
from acqs.ami.message import Message

from ..databases import scratchMySQL
from . import asterisk
from .daemon import SERVER, SimulatorOnTCP, eventually, startAcqs

ROWS = json.loads((pathlib.Path(__file__).parent.parent / "data" / "vicidial" / "rows.json")
                  .read_text(encoding="utf-8"))
# Shapes GUI clients INSERT as NEW (one AGI records a SENT Redirect it sends itself).
SENDABLE = [row for row in ROWS if row.get("status", "NEW") == "NEW"]


def headerLines(cmdLines):
    """The lines of a row that go out as headers, as VICIdial's sender would send them:
    not blank, not 0, 'Name: value' (bare values are left out), the ActionID apart."""
    lines = []
    for line in cmdLines:
        key, sep, value = line.partition(":")
        if line.strip() in ("", "0") or not sep or not key or key.lower() == "actionid":
            continue
        if all(c.isalnum() or c in "_.-" for c in key):
            lines.append(f"{key}: {value[1:] if value.startswith(' ') else value}")
    return lines


def wireLines(message):
    """An action's headers as lines, without Action and ActionID."""
    return [f"{k}: {v}" for k, v in message.headers if k.lower() not in ("action", "actionid")]


class RowShapes:
    """Mixed into a TestCase: C{actions()} gives what Asterisk received, as Messages."""

    engine = None

    def setUp(self):
        self.db = scratchMySQL(self, engine=self.engine)

    def insertAll(self):
        """Every sendable shape, INSERTed as GUI clients do; man_id -> shape."""
        return {self.db.insertAction(SERVER, shape["action"], shape["callerid_sample"],
                                     shape["cmd_lines"]): shape for shape in SENDABLE}

    async def sendAll(self, endpoint):
        startAcqs(self, self.db, endpoint, linger=0)
        rows = self.insertAll()

        def answered():
            """every row's answer is recorded"""
            return all((self.db.action(m) or {}).get("answered_at") for m in rows)

        await eventually(answered, timeout=60)
        return rows

    def assertOnTheWire(self, rows, received):
        byActionID = {}
        for message in received:
            byActionID.setdefault(message.get("ActionID"), []).append(message)
        for man_id, shape in rows.items():
            record = self.db.action(man_id)
            [sent] = byActionID.get(record["action_id"], [None])
            self.assertIsNotNone(sent, shape["id"])
            self.assertEqual(sent["Action"], shape["action"], shape["id"])
            self.assertEqual(wireLines(sent), headerLines(shape["cmd_lines"]), shape["id"])
            own = [line for line in shape["cmd_lines"] if line.lower().startswith("actionid:")]
            if own:
                self.assertEqual(sent["ActionID"], own[0].partition(":")[2].strip(), shape["id"])
            self.assertEqual(record["outcome"], "sent", shape["id"])
            self.assertIn(self.db.status(man_id), ("SENT", "UPDATED", "DEAD"), shape["id"])


class SimulatorRowShapes(RowShapes):
    async def test_everyShapeSent(self):
        """Each shape VICIdial writes is sent once, headers as the row has them (bare values
        left out, the row's own ActionID used), and its answer recorded."""
        sim = SimulatorOnTCP(self)
        rows = await self.sendAll(sim.endpoint)
        received = [m for user, m in sim.simulator.actions
                    if user == "sender" and m["Action"] not in ("Login", "Logoff", "Command")]
        self.assertEqual(len(received), len(rows))
        self.assertOnTheWire(rows, received)


class InnoDBRowShapeTests(SimulatorRowShapes, TestCase):
    """On vicidial_manager as InnoDB."""


class MyISAMRowShapeTests(SimulatorRowShapes, TestCase):
    """On vicidial_manager as VICIdial ships it, MyISAM."""

    engine = "MyISAM"


class _Recorder(Protocol):
    """Forwards a client's bytes to the real Asterisk, keeping the actions it wrote."""

    def __init__(self, proxy):
        self.proxy, self.peer, self.actions = proxy, None, []
        self.reader = MessageReader(lambda size, why: None)
        proxy.connections.append(self)

    def connectionMade(self):
        self.transport.pauseProducing()
        to = _Upstream(self)
        TCP4ClientEndpoint(reactor, *self.proxy.target).connect(
            Factory.forProtocol(lambda: to)).addErrback(lambda _: self.transport.loseConnection())

    def dataReceived(self, data):
        self.actions.extend(Message.fromBytes(raw) for raw in self.reader.feed(data))
        self.peer.transport.write(data)

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
        self.client.transport.write(data)

    def connectionLost(self, reason):
        self.client.transport.loseConnection()


class RealAsteriskRowShapeTests(RowShapes, TestCase):
    """The shapes sent to the real Asterisk 22, recorded on the way."""

    skip = asterisk.SKIP

    async def test_everyShapeReachesAsterisk(self):
        """Each shape reaches the real Asterisk as the row has it, and Asterisk answers it
        (most with an error: the test dialplan has none of VICIdial's contexts)."""
        proxy = Factory.forProtocol(lambda: _Recorder(proxy))
        proxy.connections = []
        host, port = asterisk.ENDPOINT.split("host=")[1].split(":port=")
        proxy.target = (host, int(port))
        listening = reactor.listenTCP(0, proxy, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", listening.getHost().port)
        rows = await self.sendAll(endpoint)
        sent = [m for c in proxy.connections if c.actions and c.actions[0]["Username"] == "sender"
                for m in c.actions if m["Action"] not in ("Login", "Logoff", "Command")]
        self.assertEqual(len(sent), len(rows))
        self.assertOnTheWire(rows, sent)

"""
Every row shape VICIdial's PHP, Perl and AGIs write (tests/data/vicidial/rows.json,
surveyed from VICIdial's public sources; the values are made up), sent end to end:
GUI-style positional INSERT on the real MariaDB (InnoDB and VICIdial's MyISAM),
acqs, and the simulator or the real Asterisk 22 behind a recording proxy.  Each
row is sent, once, and the headers on the wire are the row's header lines.
"""

import json
import pathlib

from twisted.trial.unittest import TestCase

from ..databases import scratchMySQL
from . import asterisk
from .daemon import SERVER, SimulatorOnTCP, eventually, startAcqs
from .proxy import RecordingProxy

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


class RealAsteriskRowShapeTests(RowShapes, TestCase):
    """The shapes sent to the real Asterisk 22, recorded on the way."""

    skip = asterisk.SKIP

    async def test_everyShapeReachesAsterisk(self):
        """Each shape reaches the real Asterisk as the row has it, and Asterisk answers it
        (most with an error: the test dialplan has none of VICIdial's contexts)."""
        host, port = asterisk.ENDPOINT.split("host=")[1].split(":port=")
        proxy = RecordingProxy(self, host, int(port))
        rows = await self.sendAll(proxy.endpoint)
        sent = [m for m in proxy.actionsOf("sender")
                if m["Action"] not in ("Login", "Logoff", "Command")]
        self.assertEqual(len(sent), len(rows))
        self.assertOnTheWire(rows, sent)

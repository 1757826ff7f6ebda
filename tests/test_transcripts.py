"""
Real Asterisk 22 bytes (tests/data/asterisk22/, see capture.py and the
report) against acqs: the AMI client must parse every capture, and the
simulator must print the same flows the same way.
"""

import collections
import difflib
import hashlib
import random
import re
from typing import Dict, List, Tuple

from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.filepath import FilePath
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from acqs.ami import protocol as protocolModule
from acqs.ami.errors import AMIError
from acqs.ami.protocol import AMIProtocol, ListResult
from acqs.simulator import DEFAULT_DIALPLAN, Exten, Races, Simulator

DATA = FilePath(__file__).sibling("data").child("asterisk22")
# Captures of what acqs' design rests on, not of flows the simulator plays (facts/capture_facts.py).
FACTS = DATA.child("facts")

Pairs = List[Tuple[str, str]]


def transcriptNames(where: FilePath = DATA) -> List[str]:
    return sorted(p.basename()[: -len(".ami")] for p in where.globChildren("*.ami"))


def parseTranscript(data: bytes) -> Tuple[str, List[Pairs]]:
    """Greeting line and messages of a capture (an independent, minimal parser)."""
    greeting, _, body = data.partition(b"\r\n")
    messages = []
    for block in body.split(b"\r\n\r\n")[:-1]:
        messages.append([tuple(line.decode("utf-8").partition(": ")[::2])
                         for line in block.split(b"\r\n")])
    return greeting.decode("utf-8"), messages


def parseSent(data: bytes) -> List[Tuple[int, bytes, Pairs]]:
    """The actions of a .sent file: (ActionID number, exact bytes, headers)."""
    actions = []
    for block in data.split(b"\r\n\r\n")[:-1]:
        headers = [tuple(line.decode("utf-8").partition(": ")[::2])
                   for line in block.split(b"\r\n")]
        number = int(dict(headers)["ActionID"].split("-")[1])
        actions.append((number, block + b"\r\n\r\n", headers))
    return actions


def value(message: Pairs, name: str, default: str = "") -> str:
    return next((v for k, v in message if k == name), default)


# Replaying the captures through the client


class ReplayTests(SynchronousTestCase):
    def replay(self, name: str, where: FilePath = DATA) -> None:
        greeting, expected = parseTranscript(where.child(name + ".ami").getContent())
        sent = parseSent(where.child(name + ".sent").getContent())
        ids = iter(f"cap-{number}" for number, _, _ in sent)
        self.patch(protocolModule, "nextActionID", lambda: next(ids))
        transport = StringTransport()
        proto = AMIProtocol(Clock())
        proto.makeConnection(transport)
        events = []
        proto.registerEvent(None, events.append)
        pending = {}
        for number, _raw, headers in sent:
            action = value(headers, "Action")
            rest = [(k, v) for k, v in headers if k not in ("Action", "ActionID")]
            if action == "Command":
                pending[number] = proto.command(value(headers, "Command"))
            else:
                pending[number] = proto.sendAction(action, rest)
        self.assertEqual(transport.value(), where.child(name + ".sent").getContent(),
                         "the client writes actions as the capture script did")

        data = where.child(name + ".ami").getContent()
        rng = random.Random(name)
        pos = 0
        while pos < len(data):
            size = rng.randint(1, 64)
            proto.dataReceived(data[pos : pos + size])
            pos += size

        self.assertEqual(proto.greeting, greeting)
        listIDs = set()
        for number, d in pending.items():
            actionID = f"cap-{number}"
            mine = [m for m in expected if value(m, "ActionID") == actionID]
            response = next((m for m in mine if m[0][0] == "Response"), None)
            if response is None:
                self.assertNoResult(d)
                continue
            if value(response, "Response") == "Error":
                failure = self.failureResultOf(d, AMIError)
                self.assertEqual(failure.value.response.headers, response)
            elif value(response, "EventList") == "start":
                listIDs.add(actionID)
                result = self.successResultOf(d)
                self.assertIsInstance(result, ListResult)
                self.assertEqual(result.response.headers, response)
                items = [m for m in mine if m[0][0] == "Event"]
                self.assertEqual([e.headers for e in result.events], items[:-1])
                self.assertEqual(result.complete.headers, items[-1])
            elif value(response, "Message") == "Command output follows":
                self.assertEqual(self.successResultOf(d),
                                 [v for k, v in response if k == "Output"])
            else:
                self.assertEqual(self.successResultOf(d).headers, response)
        unsolicited = [m for m in expected
                       if m[0][0] == "Event" and value(m, "ActionID") not in listIDs]
        self.assertEqual([e.headers for e in events], unsolicited)


def _addReplayTest(name: str) -> None:
    def test(self):
        self.replay(name)

    test.__name__ = "test_" + name.replace(".", "_")
    test.__doc__ = f"The AMI client parses Asterisk 22's {name} bytes, fed in random pieces."
    setattr(ReplayTests, test.__name__, test)


for _name in transcriptNames():
    _addReplayTest(_name)


def _addFactsReplayTest(name: str) -> None:
    def test(self):
        self.replay(name, FACTS)

    test.__name__ = "test_facts_" + name.replace(".", "_")
    test.__doc__ = (f"The AMI client parses Asterisk 22's facts/{name} bytes,"
                    " fed in random pieces.")
    setattr(ReplayTests, test.__name__, test)


for _name in transcriptNames(FACTS):
    _addFactsReplayTest(_name)


class CommandOutputTests(SynchronousTestCase):
    def test_commandLinesKeepTrailingSpaces(self):
        """CLI output comes back line by line, trailing spaces and all, as Asterisk 22 sent it."""
        greeting, messages = parseTranscript(DATA.child("command.sender.ami").getContent())
        ids = iter(["cap-3"])
        self.patch(protocolModule, "nextActionID", lambda: next(ids))
        proto = AMIProtocol(Clock())
        proto.makeConnection(StringTransport())
        d = proto.command("core show channels")
        proto.dataReceived(DATA.child("command.sender.ami").getContent())
        lines = self.successResultOf(d)
        self.assertEqual(lines[1:], ["0 active channels", "0 active calls",
                                     "172 calls processed"])
        self.assertTrue(lines[0].startswith("Channel ") and lines[0].endswith("  "))


# Comparing the simulator with the captures

# Events whose place in the stream the captures show to vary.
FLOATING = frozenset(["OriginateResponse", "DeviceStateChange"])
# Runs of these are compared as sets: the two Newstate Up of a Local pair,
# and the items of a list.
UNORDERED_RUNS = frozenset(["Newstate", "CoreShowChannel", "Status"])
# Values that are part of what happened, not of one run.
KEY_FIELDS = {
    "Newexten": ("Context", "Exten", "Priority", "Application"),
    "Newstate": ("ChannelStateDesc",),
    "Hangup": ("Cause",), "HangupRequest": ("Cause",), "SoftHangupRequest": ("Cause",),
    "DialState": ("DialStatus",), "DialEnd": ("DialStatus",),
    "OriginateResponse": ("Response", "Reason"),
    "VarSet": ("Variable",), "DeviceStateChange": ("State",),
    "SuccessfulAuth": ("AccountID",),
}
ROLE_FIELDS = ("Channel", "DestChannel", "LocalOneChannel", "Device")
_COUNTER = re.compile(r"-([0-9a-f]{8})(?=;|$)")


class _Names:
    """Replaces each channel counter by its order of appearance."""

    def __init__(self):
        self.seen: Dict[str, int] = {}

    def __call__(self, name: str) -> str:
        def one(m):
            n = self.seen.setdefault(m.group(1), len(self.seen) + 1)
            return f"-#{n}"

        return _COUNTER.sub(one, name)


def describe(message: Pairs, names: _Names) -> tuple:
    """What a message says, independent of ids, times and counters."""
    kind, name = message[0]
    if kind == "Response":
        return ("Response", name, value(message, "Message"))
    role = ">".join(names(value(message, f)) for f in ROLE_FIELDS
                    if any(k == f for k, _ in message))
    return (name, role) + tuple(value(message, f) for f in KEY_FIELDS.get(name, ()))


def layout(message: Pairs) -> tuple:
    return tuple(k for k, _ in message)


def assertCompatible(case: SynchronousTestCase, label: str, real: bytes, simulated: bytes,
                     account: str) -> None:
    """
    Fail unless the simulated stream has the real one's messages (same
    events, same header names in the same order per event) in a compatible
    order: the same order apart from L{FLOATING} events, SuccessfulAuth of
    other sessions, and the order inside L{UNORDERED_RUNS}.
    """
    realGreeting, realMessages = parseTranscript(real)
    simGreeting, simMessages = parseTranscript(simulated)
    case.assertEqual(simGreeting, realGreeting, f"{label}: greeting")
    realNames, simNames = _Names(), _Names()
    realKeys = [describe(m, realNames) for m in realMessages]
    simKeys = [describe(m, simNames) for m in simMessages]

    missing = collections.Counter(realKeys) - collections.Counter(simKeys)
    extra = collections.Counter(simKeys) - collections.Counter(realKeys)
    if missing or extra:
        case.fail(f"{label}: the simulator printed other messages than Asterisk 22.\n"
                  f"  missing (printed by Asterisk only): {sorted(missing.elements())}\n"
                  f"  extra (printed by the simulator only): {sorted(extra.elements())}")

    def layouts(messages, keys):
        out = collections.defaultdict(set)
        for m, key in zip(messages, keys):
            out[key[:2] if key[0] == "Response" else key[0]].add(layout(m))
        return out

    realLayouts, simLayouts = layouts(realMessages, realKeys), layouts(simMessages, simKeys)
    for what in sorted(realLayouts, key=str):
        if realLayouts[what] != simLayouts[what]:
            case.fail(f"{label}: header names of {what} differ.\n"
                      f"  Asterisk 22: {sorted(realLayouts[what])}\n"
                      f"  simulator:   {sorted(simLayouts[what])}")

    def ordered(keys):
        kept = [k for k in keys if k[0] not in FLOATING and not (
            k[0] == "SuccessfulAuth" and k[2] != account)]
        out, run = [], []
        for k in kept + [("",)]:
            if run and k[0] != run[0][0]:
                out.extend(sorted(run) if run[0][0] in UNORDERED_RUNS else run)
                run = []
            run.append(k)
        return out

    realOrder, simOrder = ordered(realKeys), ordered(simKeys)
    if realOrder != simOrder:
        diff = "\n".join(difflib.unified_diff(
            [" ".join(k) for k in realOrder], [" ".join(k) for k in simOrder],
            "Asterisk 22", "simulator", lineterm="", n=2))
        case.fail(f"{label}: the order differs beyond what Asterisk itself varies:\n{diff}")


class _Client(Protocol):
    def __init__(self):
        self.received = bytearray()

    def dataReceived(self, data: bytes) -> None:
        self.received += data


USERS = {"listener": "listener", "sender": "sender", "sender2": "sender"}
SECRETS = {"listener": "listenersecret", "sender": "sendersecret"}  # as in capture.py


class FlowRun:
    """Replays one captured flow's actions against a fresh simulator."""

    def __init__(self, flow: str, races: Races = None, seed: int = 0):
        self.flow = flow
        self.clock = Clock()
        self.simulator = Simulator(self.clock, seed=seed)
        if races is not None:
            self.simulator.races = races
        self.roles = sorted(p.basename().split(".")[1]
                            for p in DATA.globChildren(flow + ".*.sent"))
        self.clients: Dict[str, Tuple[_Client, iosim.IOPump]] = {}

    def pump(self) -> None:
        while any([pump.flush() for _, pump in self.clients.values()]):
            pass

    def advance(self, seconds: float) -> None:
        while seconds > 0:
            step = min(seconds, 0.25)
            self.clock.advance(step)
            self.pump()
            seconds -= step

    def connect(self, role: str) -> _Client:
        client = _Client()
        server = self.simulator.factory.buildProtocol(None)
        pump = iosim.connect(server, iosim.makeFakeServer(server),
                             client, iosim.makeFakeClient(client), greet=False)
        self.clients[role] = (client, pump)
        pump.flush()
        return client

    def channelsOf(self, raw: bytes) -> bytes:
        """Real channel names in an action, as the simulator named them."""
        realOrder: List[str] = []
        capture = DATA.child(self.flow + ".listener.ami")
        text = capture.getContent().decode("utf-8") if capture.exists() else ""
        for m in _COUNTER.finditer(text):
            if m.group(1) not in realOrder:
                realOrder.append(m.group(1))
        return _COUNTER.sub(lambda m: f"-{realOrder.index(m.group(1)) + 1:08x}",
                            raw.decode("utf-8")).encode("utf-8")

    @staticmethod
    def answerChallenge(client: _Client, raw: bytes) -> bytes:
        """An MD5 Login keyed to the challenge this simulator gave."""
        if b"\r\nKey: " not in raw:
            return raw
        _, messages = parseTranscript(bytes(client.received))
        challenge = next(value(m, "Challenge") for m in messages if value(m, "Challenge"))
        user = re.search(rb"Username: (\w+)", raw).group(1).decode()
        key = hashlib.md5((challenge + SECRETS[user]).encode(), usedforsecurity=False).hexdigest()
        return re.sub(rb"Key: [0-9a-f]+", b"Key: " + key.encode(), raw)

    def run(self, waits: Dict[int, float], settle: float = 2.0) -> Dict[str, bytes]:
        actions = []
        for role in self.roles:
            for number, raw, _ in parseSent(DATA.child(f"{self.flow}.{role}.sent").getContent()):
                actions.append((number, role, raw))
        for number, role, raw in sorted(actions):
            self.advance(waits.get(number, 0))
            client = self.clients[role][0] if role in self.clients else self.connect(role)
            client.transport.write(self.answerChallenge(client, self.channelsOf(raw)))
            self.pump()
        self.advance(settle)
        return {role: bytes(client.received) for role, (client, _) in self.clients.items()}


# Per flow: seconds to let pass before sending action cap-N (what the
# capture script waited for), and the orderings the committed capture shows.
FLOWS = {
    "login_plain": ({}, None),
    "login_md5": ({}, None),
    "login_bad": ({}, None),
    "events_off": ({}, None),
    "command": ({}, None),
    "originate_answer": ({5: 10}, Races("beforeUp", "self")),
    "originate_ring": ({5: 10}, Races("afterDialEnd", "self")),
    "originate_noanswer": ({5: 10}, Races("betweenHangups", "self")),
    "originate_sync": ({5: 10}, Races(None, "self")),
    "originate_sync_events": ({4: 10}, Races(None, "self")),
    "originate_dial": ({5: 10}, Races("afterDialEnd", "self")),
    "originate_bad": ({8: 5}, Races("betweenHangups", "self")),
    "lists": ({8: 5}, Races("beforeUp", "peer")),
    "hangup": ({4: 1, 8: 5}, Races("afterUp", "self")),
    "hangup_cause": ({4: 1, 8: 5}, Races("afterDialEnd", "peer")),
    "redirect": ({4: 1, 8: 10}, Races("afterDialEnd", "self")),
    "redirect_leg2": ({4: 1, 8: 10}, Races("afterDialEnd", "self")),
    "filtered": ({7: 5}, Races("beforeUp", "self")),
}


class FidelityTests(SynchronousTestCase):
    def compareFlow(self, flow: str, seed: int = 0, pinned: bool = True) -> None:
        waits, races = FLOWS[flow]
        run = FlowRun(flow, races if pinned else None, seed)
        received = run.run(waits)
        self.assertEqual(sorted(received), run.roles)
        for role in run.roles:
            assertCompatible(self, f"{flow}.{role}",
                             DATA.child(f"{flow}.{role}.ami").getContent(), received[role],
                             USERS[role])
        self.assertEqual(run.simulator.channels, {}, "every channel hung up")

    def test_everyFlowIsCompared(self):
        """Every captured flow has a fidelity test."""
        flows = {name.split(".")[0] for name in transcriptNames()}
        self.assertEqual(flows, set(FLOWS))

    def test_anySeedPrintsTheSameMessages(self):
        """Whatever orderings the seed draws, a call prints the same events and headers."""
        for seed in range(6):
            for flow in ("originate_answer", "originate_noanswer", "hangup", "originate_bad"):
                waits, _ = FLOWS[flow]
                run = FlowRun(flow, seed=seed)
                received = run.run(waits)
                realGreeting, real = parseTranscript(
                    DATA.child(flow + ".listener.ami").getContent())
                _, simulated = parseTranscript(received["listener"])
                self.assertEqual(
                    collections.Counter(describe(m, _Names()) for m in real),
                    collections.Counter(describe(m, _Names()) for m in simulated),
                    f"{flow} with seed {seed}")


def _addFidelityTest(flow: str) -> None:
    def test(self):
        self.compareFlow(flow)

    test.__name__ = "test_" + flow
    test.__doc__ = (f"The simulator prints the {flow} flow as Asterisk 22 did: same events,"
                    " headers and order.")
    setattr(FidelityTests, test.__name__, test)


for _flow in FLOWS:
    _addFidelityTest(_flow)


class ComparisonTests(SynchronousTestCase):
    """The comparison helper itself must catch what matters."""

    real = (b"Asterisk Call Manager/11.0.0\r\n"
            b"Event: Newstate\r\nPrivilege: call,all\r\nChannel: Local/1@x-00000001;1\r\n"
            b"ChannelStateDesc: Up\r\n\r\n"
            b"Event: Hangup\r\nPrivilege: call,all\r\nChannel: Local/1@x-00000001;1\r\n"
            b"Cause: 16\r\n\r\n")

    def test_acceptsOtherIdsAndCounters(self):
        """Counters and values that differ per run do not matter."""
        other = self.real.replace(b"00000001", b"0000007f")
        assertCompatible(self, "same", self.real, other, "listener")

    def test_missingEvent(self):
        """A missing event fails with its name."""
        short = self.real[: self.real.index(b"Event: Hangup")]
        e = self.assertRaises(self.failureException, assertCompatible, self, "x", self.real,
                              short, "listener")
        self.assertIn("Hangup", str(e))

    def test_otherHeaders(self):
        """A header too many fails, naming the event."""
        more = self.real.replace(b"Cause: 16\r\n", b"Cause: 16\r\nCause-txt: x\r\n")
        e = self.assertRaises(self.failureException, assertCompatible, self, "x", self.real,
                              more, "listener")
        self.assertIn("header names of Hangup", str(e))

    def test_swappedOrder(self):
        """Events in another order fail with a diff."""
        _, messages = parseTranscript(self.real)
        swapped = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(
            b"\r\n".join(f"{k}: {v}".encode() for k, v in m) + b"\r\n\r\n"
            for m in reversed(messages))
        e = self.assertRaises(self.failureException, assertCompatible, self, "x", self.real,
                              swapped, "listener")
        self.assertIn("order differs", str(e))


# A synchronous Originate holds its session (facts/originate_sync_*)

_TIMES = re.compile(r"^\s*([\d.]+) (\S+)\s+([<>]) (\w+): (\S+)(?: ActionID: (cap-\d+))?")
# [acqs-facts] 8600040 is Busy(): the call fails at once.
FACTS_DIALPLAN = DEFAULT_DIALPLAN.withContext("acqs-facts", {"8600040": Exten(answer=False)})


class SyncOriginateTests(SynchronousTestCase):
    """
    The simulator answers a synchronous Originate, and the actions queued
    behind it on its session, when Asterisk 22 did: replays the actions of
    the facts captures at the times they were sent and compares when each
    response came.
    """

    TOLERANCE = 0.02  # seconds; the captures' clock has 1 ms steps, Asterisk's threads jitter

    def replay(self, flow: str) -> Tuple[dict, dict]:
        """
        C{(real, simulated)}: seconds at which each ActionID was answered,
        and (as C{"hangup"}) when the listener saw the first Hangup.
        """
        sends, real = [], {}
        for line in FACTS.child(flow + ".times").getContent().decode().splitlines():
            m = _TIMES.match(line)
            if m is None:
                continue
            at, role, way, kind, name, action = m.groups()
            if way == ">":
                sends.append((float(at), role, int(action.split("-")[1])))
            elif kind == "Response" and action is not None:
                real[action] = float(at)
            elif (kind, name, role) == ("Event", "Hangup", "listener"):
                real.setdefault("hangup", float(at))
        raw = {}
        for role in {role for _, role, _ in sends}:
            for number, data, _ in parseSent(FACTS.child(f"{flow}.{role}.sent").getContent()):
                raw[number] = self.ourChannels(flow, data)
        clock = Clock()
        simulator = Simulator(clock, dialplan=FACTS_DIALPLAN)
        clients: Dict[str, Tuple[_Client, iosim.IOPump]] = {}
        read: Dict[str, int] = {}
        seen: dict = {}

        def pump():
            while any([pump.flush() for _, pump in clients.values()]):
                pass
            for role, (client, _) in clients.items():
                data = bytes(client.received)
                end = data.rfind(b"\r\n\r\n") + 4
                if end <= read.get(role, 0):
                    continue
                start = read.get(role, data.index(b"\r\n") + 2)
                read[role] = end
                for m in parseTranscript(b"\r\n" + data[start:end])[1]:
                    if m[0][0] == "Response" and value(m, "ActionID"):
                        seen.setdefault(value(m, "ActionID"), clock.seconds())
                    elif m[0] == ("Event", "Hangup") and role == "listener":
                        seen.setdefault("hangup", clock.seconds())

        for at, role, number in sorted(sends):
            while clock.seconds() < at - 1e-9:
                clock.advance(min(0.001, at - clock.seconds()))
                pump()
            if role not in clients:
                client = _Client()
                server = simulator.factory.buildProtocol(None)
                clients[role] = (client, iosim.connect(
                    server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client),
                    greet=False))
            clients[role][0].transport.write(raw[number])
            pump()
        while clock.seconds() < max(real.values()) + 1:
            clock.advance(0.001)
            pump()
        return real, seen

    @staticmethod
    def ourChannels(flow: str, data: bytes) -> bytes:
        """Real channel counters in an action, as the simulator (counting from 1) names them."""
        seen: List[str] = []
        for m in _COUNTER.finditer(FACTS.child(flow + ".listener.ami").getContent().decode()):
            if m.group(1) not in seen:
                seen.append(m.group(1))
        return _COUNTER.sub(lambda m: f"-{seen.index(m.group(1)) + 1:08x}",
                            data.decode()).encode()

    def assertAnsweredAsReal(self, flow: str) -> dict:
        real, simulated = self.replay(flow)
        self.assertEqual(set(simulated), set(real), flow)
        for action, at in sorted(real.items()):
            self.assertLessEqual(abs(simulated[action] - at), self.TOLERANCE,
                                 f"{flow}: {action} answered at {simulated[action]:.3f} s,"
                                 f" Asterisk 22 at {at:.3f} s")
        return simulated

    def test_queue(self):
        """The Hangup, Ping and Logoff written behind a sync Originate are answered only
        when it is, 3 s later as the call answers; another session's Ping at once."""
        answered = self.assertAnsweredAsReal("originate_sync_queue")
        self.assertEqual({answered[a] for a in ("cap-5", "cap-6", "cap-7", "cap-8")},
                         {answered["cap-5"]})

    def test_timeout(self):
        """A sync Originate nobody answers fails at its Timeout; the Ping behind waits."""
        self.assertAnsweredAsReal("originate_sync_timeout")

    def test_busy(self):
        """A sync Originate refused at once fails at once; the Ping behind follows."""
        self.assertAnsweredAsReal("originate_sync_busy")

    def test_heldHangupTakesEffectAfterTheOriginate(self):
        """The held call's Hangup, queued behind the sync Originate, hangs it up only then."""
        real, simulated = self.replay("originate_sync_queue")
        self.assertLessEqual(abs(simulated["hangup"] - real["hangup"]), self.TOLERANCE)
        self.assertGreater(simulated["hangup"], simulated["cap-5"] - self.TOLERANCE)

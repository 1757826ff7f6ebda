"""
AMI events parsed and dispatched per second, acqs' protocol against a naive
line-by-line dict parser (the approach of starpy and of VICIdial's
listeners), measured in the same run on the same stream; and the listener's
whole hot path (its handlers and rules, call events and VICIdial duties, on
the protocol), for the events/s acqs reads a busy box's stream at.

The stream is what acqs' listener reads on a busy box: the real Asterisk 22
call transcripts of tests/data/asterisk22 (Newchannel, NewCallerid,
Newstate, Dial*, Hangup ...) diluted with the VarSet and Newexten noise that
dominates a production AMI feed, so most events are ones acqs ignores.
Both parsers dispatch Newstate and Hangup to a handler that reads the
Uniqueid, as the listener does, and are fed in 64 KiB reads.

    python bench/ami_parse.py [--events N] [--repeat R]
"""

import argparse
import pathlib
import time

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineOnlyReceiver

from acqs.ami.protocol import AMIProtocol
from acqs.correlate import CallTracker
from acqs.listener import Listener

DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "asterisk22"
CALLS = ["originate_answer", "originate_ring", "originate_dial", "originate_noanswer", "hangup"]
NOISE = [
    b"Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: SIP/carrier-0000a1b2\r\n"
    b"ChannelState: 6\r\nChannelStateDesc: Up\r\nCallerIDNum: 3125551234\r\n"
    b"CallerIDName: V1126100312000012345\r\nConnectedLineNum: 8600051\r\n"
    b"ConnectedLineName: Agent\r\nLanguage: en\r\nAccountCode: \r\nContext: default\r\n"
    b"Exten: 8368\r\nPriority: 2\r\nUniqueid: 1795688053.4242\r\nLinkedid: 1795688053.4240\r\n"
    b"Variable: BRIDGEPEER\r\nValue: SIP/agent-0000a1b3\r\n\r\n",
    b"Event: Newexten\r\nPrivilege: dialplan,all\r\nChannel: Local/8600051@default-0000a1b4;2\r\n"
    b"ChannelState: 6\r\nChannelStateDesc: Up\r\nCallerIDNum: 8600051\r\n"
    b"CallerIDName: M1126100312000012345\r\nConnectedLineNum: <unknown>\r\n"
    b"ConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: default\r\n"
    b"Exten: 8600051\r\nPriority: 3\r\nUniqueid: 1795688053.4244\r\nLinkedid: 1795688053.4243\r\n"
    b"Extension: 8600051\r\nApplication: MeetMe\r\nAppData: 8600051,F\r\n\r\n",
]
INTERESTING = (b"newstate", b"hangup")


def callEvents():
    """Every event of the real call transcripts, as raw messages."""
    events = []
    for name in CALLS:
        raw = (DATA / f"{name}.listener.ami").read_bytes()
        for message in raw.split(b"\r\n\r\n"):
            if message.startswith(b"Event: "):
                events.append(message + b"\r\n\r\n")
    return events


def stream(total, noisePerCall=9):
    """About C{total} events: real call events, each followed by noise."""
    calls = callEvents()
    out = []
    i = 0
    while len(out) < total:
        out.append(calls[i % len(calls)])
        out.extend(NOISE[j % 2] for j in range(noisePerCall))
        i += 1
    out = out[:total]
    return b"".join(out), out


class NaiveParser(LineOnlyReceiver):
    """Line by line into a dict per message, dispatch on a blank line."""

    delimiter = b"\r\n"
    MAX_LENGTH = 65536

    def __init__(self, handlers):
        self.handlers = handlers
        self.current = {}

    def lineReceived(self, line):
        if not line:
            message, self.current = self.current, {}
            name = message.get("event", "").lower()
            handler = self.handlers.get(name)
            if handler is not None:
                handler(message)
            return
        key, _, value = line.decode("utf-8", "replace").partition(": ")
        self.current[key.strip().lower()] = value.strip()


def feed(protocol, data, chunk=65536):
    for i in range(0, len(data), chunk):
        protocol.dataReceived(data[i : i + chunk])


def runAcqs(data):
    seen = []
    protocol = AMIProtocol(Clock())
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(b"Asterisk Call Manager/11.0.0\r\n")
    for name in ("Newstate", "Hangup"):
        protocol.registerEvent(name, lambda m: seen.append(m["Uniqueid"]))
    feed(protocol, data)
    return len(seen)


def runListener(data):
    """The listener's handlers on the protocol, as after its login; the events it read."""
    clock = Clock()
    listener = Listener(clock, None, None, None, "10.10.11.12", CallTracker())
    protocol = AMIProtocol(clock)
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(b"Asterisk Call Manager/11.0.0\r\n")
    listener.subscribe(protocol)
    feed(protocol, data)
    return listener.events


def runNaive(data):
    seen = []
    handler = lambda m: seen.append(m["uniqueid"])  # noqa: E731
    parser = NaiveParser({"newstate": handler, "hangup": handler})
    parser.makeConnection(StringTransport())
    feed(parser, data)
    return len(seen)


def measure(runs, data, repeat):
    """Best CPU time of each run, taking turns so both see the same machine."""
    best = {name: float("inf") for name in runs}
    dispatched = {}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.process_time()
            dispatched[name] = run(data)
            best[name] = min(best[name], time.process_time() - start)
    return best, dispatched


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    data, events = stream(args.events)
    interesting = sum(1 for e in events if e[7:].split(b"\r\n", 1)[0].lower() in INTERESTING)
    print(f"stream: {len(events):,} events, {len(data) / 1e6:.1f} MB,"
          f" {interesting:,} Newstate/Hangup ({100 * interesting / len(events):.1f}%)")
    runs = {"naive line parser": runNaive, "acqs AMIProtocol": runAcqs,
            "acqs listener": runListener}
    best, dispatched = measure(runs, data, args.repeat)
    results = {}
    for name, spent in best.items():
        if name != "acqs listener":
            assert dispatched[name] == interesting, (name, dispatched[name], interesting)
        results[name] = len(events) / spent
        print(f"{name:>18}: {results[name]:>12,.0f} events/s  (best of {args.repeat},"
              f" {spent * 1e6 / len(events):.2f} us CPU per event)")
    ratio = results["acqs AMIProtocol"] / results["naive line parser"]
    print(f"{'ratio':>18}: {ratio:.1f}x")


if __name__ == "__main__":
    main()

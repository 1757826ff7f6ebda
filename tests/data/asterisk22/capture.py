#!/usr/bin/env python3
"""Record raw AMI transcripts from a real Asterisk 22, for acqs' unit tests to replay.

Re-run against a private Asterisk (the default port is 5039):

    tests/asterisk/asterisk-ctl start /tmp/acqs-asterisk-capture 5039
    python3 tests/data/asterisk22/capture.py [--port 5039] [--out DIR] [-v] [FLOW ...]
    tests/asterisk/asterisk-ctl stop /tmp/acqs-asterisk-capture

With no FLOW every flow in FLOWS runs, one after the other; DIR defaults to this
script's directory. Each AMI connection a flow opens has a role (listener, sender,
sender2) and gives two files, with no framing or escaping of any kind:

    <flow>.<role>.ami    exactly the bytes received, from the greeting up to the
                         close (the last byte is the last one before EOF, or before
                         the client gave up waiting)
    <flow>.<role>.sent   exactly the bytes the client sent

Call flows use two or three connections at once: listener (Events: on, read all)
records the events, sender (Events: off) sends the Originate, and sender2 is a second
short sender session for Redirect or Hangup of the live call. Originates carry
Callerid: DL40130172253cc160 and target Context acqs-test, Exten 8600100 (8600014
for calls that must stay up); flows end when every channel has hung up and AMI has
been quiet for a second. See FLOWS for the list and etc/extensions.conf of the
Asterisk fixture for the dialplan.

facts/capture_facts.py records, the same way, flows that pin facts acqs' design rests
on (sync Originate, DTMF, PJSIP status, CLI permissions) rather than flows the
simulator plays.

ActionIDs are cap-1, cap-2, ... counted per flow across its connections. Channel
names, Uniqueids, Linkedids, timestamps and the MD5 challenge differ on every run.
-v prints every received message with its arrival time, to compare orderings.
"""
import argparse
import hashlib
import os
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
USERS = {"listener": "listenersecret", "sender": "sendersecret"}
CALLERID = "DL40130172253cc160"  # as VICIdial sends it: a name, no <number>


class Conn:
    """One AMI connection; a thread appends everything received to self.rx."""

    def __init__(self, flow, role):
        self.flow, self.role = flow, role
        self.rx, self.tx, self.arrivals = bytearray(), bytearray(), []
        self.eof = False
        self.cond = threading.Condition()
        self.sock = socket.create_connection((HOST, flow.port), timeout=5)
        self.sock.settimeout(None)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            with self.cond:
                if data:
                    self.rx += data
                    self.arrivals.append((time.monotonic(), len(self.rx)))
                else:
                    self.eof = True
                self.cond.notify_all()
            if not data:
                return

    def wait(self, predicate, timeout=10.0):
        with self.cond:
            ok = self.cond.wait_for(lambda: predicate(self), timeout)
        if not ok:
            print(f"  ! {self.flow.name}/{self.role}: timed out waiting", file=sys.stderr)
        return ok

    def messages(self):
        """Complete messages after the greeting line, as lists of (name, value)."""
        with self.cond:
            data = bytes(self.rx)
        body = data.split(b"\r\n", 1)[1] if b"\r\n" in data else b""
        out = []
        for block in body.split(b"\r\n\r\n")[:-1]:
            pairs = [line.decode("utf-8", "replace").partition(": ")[::2]
                     for line in block.split(b"\r\n")]
            out.append(pairs)
        return out

    def send(self, action, *headers):
        """Send an action; headers are 'Name: value' strings. Returns its ActionID."""
        aid = self.flow.next_id()
        lines = [f"Action: {action}", f"ActionID: {aid}", *headers]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.tx += data
        self.sock.sendall(data)
        return aid

    def reply(self, aid, until=None, timeout=10.0):
        """Wait for the Response to aid (for lists: its closing event named until)."""
        def mine(c):
            return [m for m in map(dict, c.messages()) if m.get("ActionID") == aid]

        def done(c):
            return c.eof or any(m.get("Event") == until if until else "Response" in m
                                for m in mine(c))
        self.wait(done, timeout)
        return mine(self)

    def login(self, user, events="on", secret=None):
        headers = [f"Username: {user}", f"Secret: {secret or USERS[user]}"]
        if events is not None:
            headers.append(f"Events: {events}")
        return self.reply(self.send("Login", *headers))

    def logoff(self):
        self.send("Logoff")
        self.wait(lambda c: c.eof, 5)

    def events(self, name):
        return [dict(m) for m in self.messages() if dict(m).get("Event") == name]


class Flow:
    def __init__(self, name, port):
        self.name, self.port, self.ids, self.conns = name, port, 0, []
        self.start = time.monotonic()

    def next_id(self):
        self.ids += 1
        return f"cap-{self.ids}"

    def open(self, role, user=None, events="on"):
        """Connect as role, read the greeting, log in as user (default: the role)."""
        conn = Conn(self, role)
        self.conns.append(conn)
        conn.wait(lambda c: b"\r\n" in c.rx)
        if user is not False:
            conn.login(user or role, events)
        return conn

    def save(self, outdir, verbose):
        for c in self.conns:
            c.sock.close()
            base = os.path.join(outdir, f"{self.name}.{c.role}")
            with open(base + ".ami", "wb") as f:
                f.write(bytes(c.rx))
            with open(base + ".sent", "wb") as f:
                f.write(bytes(c.tx))
            if verbose:
                pos = c.rx.index(b"\r\n") + 2 if b"\r\n" in c.rx else 0
                for block in bytes(c.rx[pos:]).split(b"\r\n\r\n")[:-1]:
                    pos += len(block) + 4
                    t = next((t for t, n in c.arrivals if n >= pos), 0) - self.start
                    head = b" ".join(block.split(b"\r\n")[:3]).decode(errors="replace")
                    print(f"  {t:7.3f} {c.role:8} {head}")
                print(f"  {c.role}: {len(c.rx)} bytes, eof={c.eof}")


def settled(listener, quiet=1.0, timeout=30.0):
    """Wait until every channel seen in Newchannel has had its Hangup and AMI is quiet."""
    start = time.monotonic()
    while time.monotonic() < start + timeout:
        born = {e["Uniqueid"] for e in listener.events("Newchannel")}
        dead = {e["Uniqueid"] for e in listener.events("Hangup")}
        last = max(start, listener.arrivals[-1][0])
        if born <= dead and time.monotonic() - last >= quiet:
            return
        time.sleep(0.1)
    print(f"  ! {listener.flow.name}: calls did not settle", file=sys.stderr)


def originate(sender, channel, exten="8600100", *extra, run=True):
    headers = [f"Channel: {channel}", "Context: acqs-test", f"Exten: {exten}",
               "Priority: 1", f"Callerid: {CALLERID}", *extra]
    if run:
        headers.append("Async: true")
    return sender.reply(sender.send("Originate", *headers), timeout=40)


def local_channels(listener, suffix):
    return [e["Channel"] for e in listener.events("Newchannel")
            if e["Channel"].endswith(suffix)]


def both_up(listener):
    listener.wait(lambda c: len([e for e in c.events("Newstate")
                                 if e["ChannelStateDesc"] == "Up"]) >= 2, 10)
    time.sleep(0.5)


# ---- flows ------------------------------------------------------------------------

def login_plain(f):
    c = f.open("listener")
    c.reply(c.send("Ping"))
    c.logoff()


def login_md5(f):
    c = f.open("sender", user=False)
    challenge = c.reply(c.send("Challenge", "AuthType: MD5"))[0]["Challenge"]
    key = hashlib.md5((challenge + USERS["sender"]).encode()).hexdigest()
    c.reply(c.send("Login", "AuthType: MD5", "Username: sender", f"Key: {key}",
                   "Events: off"))
    c.reply(c.send("Ping"))
    c.logoff()


def login_bad(f):
    c = f.open("listener", user=False)
    c.login("listener", secret="wrongsecret")
    c.wait(lambda c: c.eof, 10)


def events_off(f):
    c = f.open("sender", events="off")
    c.reply(c.send("Ping"))
    c.logoff()


def command(f):
    c = f.open("sender", events="off")
    for cmd in ("core show version", "core show channels", "no such cli command"):
        c.reply(c.send("Command", f"Command: {cmd}"))
    c.reply(c.send("NoSuchAction"))
    c.logoff()


def lists(f):
    listener, sender = f.open("listener"), f.open("sender", events="off")
    originate(sender, "Local/8600014@acqs-test", "8600014")
    both_up(listener)
    sender.reply(sender.send("CoreShowChannels"), until="CoreShowChannelsComplete")
    sender.reply(sender.send("Status"), until="StatusComplete")
    sender.reply(sender.send("Hangup", f"Channel: {local_channels(listener, ';1')[0]}"))
    settled(listener)
    sender.logoff()
    listener.logoff()


def call(channel, exten="8600100", *extra, run=True, events="off"):
    def flow(f):
        listener, sender = f.open("listener"), f.open("sender", events=events)
        originate(sender, channel, exten, *extra, run=run)
        settled(listener)
        sender.logoff()
        listener.logoff()
    return flow


def act_on_live_call(action, suffix, *headers):
    def flow(f):
        listener, sender = f.open("listener"), f.open("sender", events="off")
        originate(sender, "Local/8600014@acqs-test", "8600014")
        both_up(listener)
        other = f.open("sender2", user="sender", events="off")
        other.reply(other.send(action, f"Channel: {local_channels(listener, suffix)[0]}",
                               *headers))
        other.logoff()
        settled(listener)
        sender.logoff()
        listener.logoff()
    return flow


def originate_bad(f):
    listener, sender = f.open("listener"), f.open("sender", events="off")
    originate(sender, "Local/8609999@acqs-test")              # no such extension
    settled(listener, 1.5)
    originate(sender, "Local/8600011@acqs-nosuchcontext")     # no such context
    settled(listener, 1.5)
    originate(sender, "Local/8609999@acqs-test", run=False)   # same, synchronous
    settled(listener, 1.5)
    originate(sender, "Local/8600011@acqs-test", "8609999")   # far side exten missing
    settled(listener, 1.5)
    sender.logoff()
    listener.logoff()


def filtered(f):
    """A listener with Events: call and acqs' event filter, a bad regex, a bad operation."""
    listener = f.open("listener", events="call")
    listener.reply(listener.send("Filter", "Operation: Add", f"Filter: {LISTENER_FILTER}"))
    listener.reply(listener.send("Filter", "Operation: Add", "Filter: (["))
    listener.reply(listener.send("Filter", "Operation: Remove", "Filter: Event: Newstate"))
    sender = f.open("sender", events="off")
    originate(sender, "Local/8600011@acqs-test")
    listener.wait(lambda c: len(c.events("Hangup")) >= 2, 15)
    time.sleep(1.0)
    sender.logoff()
    listener.logoff()


# The filter acqs' listener added when this was captured (now acqs.listener.eventFilter
# of the events it reads).
LISTENER_FILTER = "^Event: (Newstate|Hangup|OriginateResponse)[[:space:]]"
REDIRECT = ("Context: acqs-test", "Exten: 8600020", "Priority: 1")
FLOWS = {
    "login_plain": login_plain,
    "login_md5": login_md5,
    "login_bad": login_bad,
    "events_off": events_off,
    "command": command,
    "lists": lists,
    "originate_answer": call("Local/8600011@acqs-test"),
    "originate_ring": call("Local/8600012@acqs-test"),
    "originate_noanswer": call("Local/8600013@acqs-test", "8600100", "Timeout: 5000"),
    "originate_sync": call("Local/8600011@acqs-test", run=False),
    "originate_sync_events": call("Local/8600012@acqs-test", run=False, events="on"),
    "originate_dial": call("Local/8600030@acqs-test"),
    "redirect": act_on_live_call("Redirect", ";1", *REDIRECT),
    "redirect_leg2": act_on_live_call("Redirect", ";2", *REDIRECT),
    "hangup": act_on_live_call("Hangup", ";1"),
    "hangup_cause": act_on_live_call("Hangup", ";1", "Cause: 16"),
    "originate_bad": originate_bad,
    "filtered": filtered,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=5039)
    p.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("flows", nargs="*", metavar="FLOW", help=", ".join(FLOWS))
    args = p.parse_args()
    unknown = set(args.flows) - set(FLOWS)
    if unknown:
        p.error(f"unknown flows: {', '.join(sorted(unknown))}")
    os.makedirs(args.out, exist_ok=True)
    for name in args.flows or FLOWS:
        print(f"{name}:")
        flow = Flow(name, args.port)
        FLOWS[name](flow)
        flow.save(args.out, args.verbose)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Record Asterisk 22 facts acqs' design rests on: sync Originate, DTMF, PJSIP status, CLI.

These flows need more than the shared test fixture: PJSIP on loopback UDP, a user that
may only run CLI commands, and an extra dialplan context. --setup PREFIX adds them to a
private Asterisk started with asterisk-ctl (its copies under PREFIX/etc/asterisk only):

    tests/asterisk/asterisk-ctl start /tmp/ast-facts 5061
    python3 tests/data/asterisk22/facts/capture_facts.py --setup /tmp/ast-facts
    python3 tests/data/asterisk22/facts/capture_facts.py --port 5061 [-v] [FLOW ...]
    tests/asterisk/asterisk-ctl stop /tmp/ast-facts

The files have the format of ../capture.py (whose Conn and Flow this script uses):
<flow>.<role>.ami are the bytes received, <flow>.<role>.sent the bytes sent. Besides,
<flow>.times lists every message of the flow, sent (>) and received (<), with the
second it crossed the socket, counted from the flow's first connection: the timings
the flows are about. PJSIP takes 127.0.0.1:15061; this script's SIP user agents
listen on 127.0.0.1:15062 (phone1, registers) and 127.0.0.1:15063 (trunk1's static
contact).

Each flow's docstring says what it shows, with the timings of the committed capture.
"""
import argparse
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import capture
from capture import CALLERID, both_up, local_channels, settled

capture.USERS["cmdonly"] = "cmdonlysecret"
CTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "asterisk",
                   "asterisk-ctl")

# ---- what --setup adds to the fixture ---------------------------------------------

PJSIP_CONF = """\
; PJSIP on loopback UDP only (capture_facts.py --setup).
[transport-udp]
type = transport
protocol = udp
bind = 127.0.0.1:15061

; A phone that registers from 127.0.0.1:15062 and is qualified every 3 s.
[phone1]
type = endpoint
context = acqs-test
disallow = all
allow = ulaw
auth = phone1
aors = phone1

[phone1]
type = auth
auth_type = userpass
username = phone1
password = phone1secret

[phone1]
type = aor
max_contacts = 1
minimum_expiration = 5
default_expiration = 60
qualify_frequency = 3
qualify_timeout = 1.0

; A trunk with a static contact, qualified every 3 s.
[trunk1]
type = endpoint
context = acqs-test
disallow = all
allow = ulaw
aors = trunk1

[trunk1]
type = aor
contact = sip:trunk1@127.0.0.1:15063
qualify_frequency = 3
qualify_timeout = 1.0
"""

EXTENSIONS_ADD = """
; capture_facts.py --setup
[acqs-facts]
; Busy at once: a sync Originate that fails.
exten => 8600040,1,Busy(5)
; Answer, then play DTMF 1 2 # (100 ms each, 250 ms apart) with SendDTMF, hang up.
exten => 8600050,1,Answer()
 same => n,Wait(0.5)
 same => n,SendDTMF(12#,250)
 same => n,Wait(1)
 same => n,Hangup()
; Answer and listen 5 s: Wait reads the DTMF the other side sends.
exten => 8600051,1,Answer()
 same => n,Wait(5)
 same => n,Hangup()
; Bridge to the DTMF player, so DTMF crosses a bridge (Received on one side, Sent on the other).
exten => 8600052,1,Dial(Local/8600050@acqs-facts/n,20)
 same => n,Hangup()
; Bridge to a Local leg held up 60 s: a bridged call for the channel lists.
exten => 8600060,1,Dial(Local/8600014@acqs-test/n,20)
 same => n,Hangup()
"""

MANAGER_ADD = """
; capture_facts.py --setup: may run CLI commands, no other action.
[cmdonly]
secret = cmdonlysecret
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = system,call
write = command
"""

PJSIP_MODULES = [
    "res_sorcery_config", "res_sorcery_memory", "res_sorcery_astdb", "res_pjproject",
    "res_rtp_asterisk", "res_pjsip", "res_pjsip_authenticator_digest",
    "res_pjsip_endpoint_identifier_user",
    "res_pjsip_registrar", "res_pjsip_session",
    "res_pjsip_sdp_rtp", "res_pjsip_pubsub", "chan_pjsip",
]


def setup(prefix):
    """Add PJSIP, the cmdonly user and [acqs-facts] to a running asterisk-ctl instance."""
    etc = os.path.join(prefix, "etc", "asterisk")
    with open(os.path.join(etc, "pjsip.conf"), "w") as f:
        f.write(PJSIP_CONF)
    for name, text, marker in (("extensions.conf", EXTENSIONS_ADD, "[acqs-facts]"),
                               ("manager.conf", MANAGER_ADD, "[cmdonly]")):
        with open(os.path.join(etc, name)) as f:
            if marker in f.read():
                continue
        with open(os.path.join(etc, name), "a") as f:
            f.write(text)
    cli = [CTL, "cli", prefix]
    for command in ["dialplan reload", "manager reload"] + [
            f"module load {m}.so" for m in PJSIP_MODULES]:
        subprocess.run(cli + [command], check=True)


# ---- a tiny SIP user agent (REGISTER with digest auth, answers OPTIONS/REGISTER) ---

ASTERISK_SIP = ("127.0.0.1", 15061)


def parse_sip(data):
    head = data.decode("utf-8", "replace").partition("\r\n\r\n")[0]
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, val = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(val.strip())
    return lines[0], headers


class UserAgent:
    """UDP on loopback; answers every request with 200 OK while self.answering."""

    _by_port = {}

    @classmethod
    def on(cls, port):
        if port not in cls._by_port:
            cls._by_port[port] = cls(port)
        return cls._by_port[port]

    def __init__(self, port):
        self.port, self.answering = port, False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.replies = []
        self.cond = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            data, addr = self.sock.recvfrom(65536)
            first, headers = parse_sip(data)
            if first.startswith("SIP/2.0"):
                with self.cond:
                    self.replies.append((first, headers))
                    self.cond.notify_all()
            elif self.answering:
                self.sock.sendto(self._ok(first, headers), addr)

    @staticmethod
    def _ok(first, headers):
        lines = ["SIP/2.0 200 OK"]
        for name in ("Via", "From", "Call-ID", "CSeq"):
            lines += [f"{name}: {v}" for v in headers.get(name.lower(), [])]
        to = headers.get("to", [""])[0]
        lines.append(f"To: {to}" if ";tag=" in to else f"To: {to};tag={uuid.uuid4().hex[:8]}")
        expires = headers.get("expires", ["0"])[0]
        if first.startswith("REGISTER") and expires != "0":
            lines += [f"Contact: {v};expires={expires}" for v in headers.get("contact", [])]
        return ("\r\n".join(lines + ["Content-Length: 0", "", ""])).encode()

    def _request(self, lines, timeout=3.0):
        def final():
            return [r for r in self.replies if not r[0].startswith("SIP/2.0 1")]
        with self.cond:
            self.replies.clear()
        data = "\r\n".join(lines + ["Content-Length: 0", "", ""]).encode()
        self.sock.sendto(data, ASTERISK_SIP)
        with self.cond:
            self.cond.wait_for(final, timeout)
            got = final()
        return got[-1] if got else (None, {})

    def register(self, user, password, expires):
        """REGISTER (answering the digest challenge); returns the final status line."""
        callid, uri = uuid.uuid4().hex, f"sip:{ASTERISK_SIP[0]}:{ASTERISK_SIP[1]}"

        def message(cseq, authorization=None):
            lines = [f"REGISTER {uri} SIP/2.0",
                     f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;"
                     f"branch=z9hG4bK{uuid.uuid4().hex[:12]}",
                     "Max-Forwards: 70",
                     f"From: <sip:{user}@127.0.0.1>;tag={callid[:8]}",
                     f"To: <sip:{user}@127.0.0.1>", f"Call-ID: {callid}",
                     f"CSeq: {cseq} REGISTER", f"Contact: <sip:{user}@127.0.0.1:{self.port}>",
                     f"Expires: {expires}", "User-Agent: acqs-capture"]
            return lines + ([authorization] if authorization else [])

        status, headers = self._request(message(1))
        if not (status or "").startswith("SIP/2.0 401"):
            return status
        p = dict(re.findall(r'(\w+)="?([^",]*)"?', headers["www-authenticate"][0]))
        ha1 = hashlib.md5(f"{user}:{p['realm']}:{password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"REGISTER:{uri}".encode()).hexdigest()
        cnonce = uuid.uuid4().hex[:8]
        response = hashlib.md5(
            f"{ha1}:{p['nonce']}:00000001:{cnonce}:auth:{ha2}".encode()).hexdigest()
        authorization = (
            f'Authorization: Digest username="{user}", realm="{p["realm"]}", '
            f'nonce="{p["nonce"]}", uri="{uri}", response="{response}", algorithm=MD5, '
            f'qop=auth, nc=00000001, cnonce="{cnonce}"'
            + (f', opaque="{p["opaque"]}"' if "opaque" in p else ""))
        return self._request(message(2, authorization))[0]


# ---- flow helpers -----------------------------------------------------------------

class TimedConn(capture.Conn):
    """A Conn that also notes when each action left."""

    def __init__(self, flow, role):
        super().__init__(flow, role)
        self.sent_at = []

    def send(self, action, *headers):
        aid = super().send(action, *headers)
        self.sent_at.append((time.monotonic(), f"Action: {action} ActionID: {aid}"))
        return aid


class TimedFlow(capture.Flow):
    def open(self, role, user=None, events="on"):
        conn = TimedConn(self, role)
        self.conns.append(conn)
        conn.wait(lambda c: b"\r\n" in c.rx)
        if user is not False:
            conn.login(user or role, events)
        return conn

    def save(self, outdir, verbose):
        super().save(outdir, verbose)
        rows = []
        for c in self.conns:
            rows += [(t, c.role, ">", what) for t, what in c.sent_at]
            pos = c.rx.index(b"\r\n") + 2 if b"\r\n" in c.rx else 0
            for block in bytes(c.rx[pos:]).split(b"\r\n\r\n")[:-1]:
                pos += len(block) + 4
                t = next((t for t, n in c.arrivals if n >= pos), self.start)
                lines = block.decode(errors="replace").split("\r\n")
                head = [lines[0]] + [x for x in lines[1:] if x.startswith(
                    ("ActionID:", "Message:", "Channel:", "Peer:", "PeerStatus:",
                     "ContactStatus:", "Status:", "Digit:", "Direction:", "Response:",
                     "Reason:", "Cause:", "ChannelStateDesc:", "Device:", "State:"))]
                rows.append((t, c.role, "<", " ".join(head)))
        rows.sort(key=lambda r: r[0])
        with open(os.path.join(outdir, f"{self.name}.times"), "w") as f:
            f.write(f"# {self.name}: seconds since the flow began; > sent, < received\n")
            for t, role, way, what in rows:
                f.write(f"{t - self.start:8.3f} {role:15} {way} {what}\n")


def events_named(conn, *names):
    return [e for e in map(dict, conn.messages()) if e.get("Event") in names]


def sync_originate(sender, channel, exten="8600100", *extra):
    """Send a synchronous Originate (no Async header) without waiting for its answer."""
    return sender.send("Originate", f"Channel: {channel}", "Context: acqs-test",
                       f"Exten: {exten}", "Priority: 1", f"Callerid: {CALLERID}", *extra)


# ---- flows ------------------------------------------------------------------------

def originate_sync_queue(f):
    """
    A sync Originate (no Async) that rings 3 s, with Hangup (of another, held call), Ping
    and Logoff written right behind it on the same session; 1 s later a Ping on another
    session. Committed capture, seconds after the Originate left: the Originate's
    Response (Success, "Originate successfully queued") came at 3.007, when the far end
    answered; the Hangup ("Channel Hungup"), Ping and Goodbye responses came only then,
    in the same millisecond, and the listener saw the held call's Hangup at 3.008, not
    at 0. Asterisk reads a session's actions one at a time, the next only once the
    previous is answered. The other session's Ping was answered at once (1.000). A sync
    Originate prints no OriginateResponse event.
    """
    listener = f.open("listener")
    holder = f.open("sender2", user="sender", events="off")
    capture.originate(holder, "Local/8600014@acqs-test", "8600014")
    both_up(listener)
    held = local_channels(listener, ";1")[0]
    sender = f.open("sender", events="off")
    sync_originate(sender, "Local/8600012@acqs-test")
    sender.send("Hangup", f"Channel: {held}")
    sender.send("Ping")
    sender.send("Logoff")
    time.sleep(1.0)
    holder.reply(holder.send("Ping"))
    sender.wait(lambda c: c.eof, 40)
    settled(listener)
    holder.logoff()
    listener.logoff()


def originate_sync_timeout(f):
    """
    A sync Originate whose far end rings and never answers, Timeout: 5000, with Ping and
    Logoff right behind. The Originate's Response (Error, "Originate failed") came at
    5.005 s, when the timeout hung the ringing channel up (Hangup Cause 19); Ping and
    Logoff were answered in the same millisecond.
    """
    listener = f.open("listener")
    sender = f.open("sender", events="off")
    sync_originate(sender, "Local/8600013@acqs-test", "8600100", "Timeout: 5000")
    sender.send("Ping")
    sender.send("Logoff")
    sender.wait(lambda c: c.eof, 40)
    settled(listener)
    listener.logoff()


def originate_sync_busy(f):
    """
    A sync Originate whose far end answers Busy() at once, with Ping and Logoff right
    behind: Response Error "Originate failed" after 1 ms (Hangup Cause 17 on ;2, 0 on
    ;1), then Ping and Logoff.
    """
    listener = f.open("listener")
    sender = f.open("sender", events="off")
    sender.send("Originate", "Channel: Local/8600040@acqs-facts", "Context: acqs-test",
                "Exten: 8600100", "Priority: 1", f"Callerid: {CALLERID}")
    sender.send("Ping")
    sender.send("Logoff")
    sender.wait(lambda c: c.eof, 40)
    settled(listener)
    listener.logoff()


def dtmf(f):
    """
    DTMF crossing a bridge: Local/8600052;2 Dials Local/8600050/n, whose ;2 plays
    "12#" with SendDTMF. DTMFBegin/DTMFEnd (class dtmf) come as Received on the
    channels that read the digits (Local/8600050;1 and Local/8600052;1) and as Sent on
    the bridged Local/8600052;2 the bridge writes them to; SendDTMF's own channel prints
    none. DTMFEnd adds DurationMs. listener_dtmf (Events: dtmf) gets these and nothing
    else.
    """
    listener = f.open("listener")
    dtmf_only = f.open("listener_dtmf", user="listener", events="dtmf")
    sender = f.open("sender", events="off")
    sender.reply(sender.send(
        "Originate", "Channel: Local/8600052@acqs-facts", "Context: acqs-facts",
        "Exten: 8600051", "Priority: 1", f"Callerid: {CALLERID}", "Async: true"), timeout=20)
    settled(listener)
    sender.logoff()
    dtmf_only.logoff()
    listener.logoff()


def pjsip_register(f):
    """
    phone1 registers (expires 60; at 0.0 s), stops answering the qualify OPTIONS at 3.5 s
    (Unreachable at 7.0 s), answers again (Reachable at 9.0 s), unregisters (Expires: 0;
    Removed at 10.0 s), then registers for 5 s at 11.0 s and lets it lapse (Removed at
    37.7 s: the periodic expiry check, not the expiry itself, removes it). PeerStatus
    (class system; ChannelType PJSIP, Peer PJSIP/phone1, PeerStatus only: no Address,
    Cause or Time) says Reachable on register, Unreachable when qualify fails or the
    contact goes; ContactStatus (system) says NonQualified then Reachable on register,
    Unreachable, Reachable, Removed; DeviceStateChange (call) follows with NOT_INUSE /
    UNAVAILABLE. listener_system (Events: system) has no DeviceStateChange. The
    TestEvent lines (class reporting) come from Debian's build having the test framework
    on; the qualify results of trunk1 (nobody answers it here) show only there.
    """
    listener = f.open("listener")
    system = f.open("listener_system", user="listener", events="system")
    phone = UserAgent.on(15062)
    phone.answering = True

    def status_count():
        return len(events_named(listener, "ContactStatus"))

    print("  register:", phone.register("phone1", "phone1secret", 60))
    listener.wait(lambda c: status_count() >= 2, 8)
    time.sleep(3.5)
    phone.answering = False
    seen = status_count()
    listener.wait(lambda c: status_count() > seen, 10)
    time.sleep(1)
    phone.answering = True
    seen = status_count()
    listener.wait(lambda c: status_count() > seen, 10)
    time.sleep(1)
    print("  unregister:", phone.register("phone1", "phone1secret", 0))
    seen = status_count()
    listener.wait(lambda c: status_count() > seen, 5)
    time.sleep(1)
    print("  register 5 s:", phone.register("phone1", "phone1secret", 5))
    listener.wait(lambda c: any(e.get("ContactStatus") == "Removed"
                                for e in events_named(c, "ContactStatus")[seen + 1:]), 45)
    time.sleep(1)
    system.logoff()
    listener.logoff()


def pjsip_qualify(f):
    """
    trunk1's static contact (no registration) starts answering the qualify OPTIONS,
    then stops: PeerStatus Reachable / Unreachable for PJSIP/trunk1, ContactStatus
    Reachable / Unreachable, DeviceStateChange NOT_INUSE / UNAVAILABLE, each change
    once (not on every qualify).
    """
    listener = f.open("listener")
    trunk = UserAgent.on(15063)
    trunk.answering = True

    def peer(status):
        return lambda c: any(e.get("PeerStatus") == status and e.get("Peer") == "PJSIP/trunk1"
                             for e in events_named(c, "PeerStatus"))
    listener.wait(peer("Reachable"), 8)
    time.sleep(7)
    trunk.answering = False
    listener.wait(peer("Unreachable"), 10)
    time.sleep(1)
    listener.logoff()


def event_masks(f):
    """
    One DTMF call and one register/unregister of phone1, seen by three listeners:
    Events: on (all the user's read classes), Events: call (Newchannel ... Hangup,
    DeviceStateChange, OriginateResponse; no DTMF, PeerStatus, ContactStatus, Newexten,
    FullyBooted) and Events: call,dtmf,system (call plus DTMFBegin/DTMFEnd, PeerStatus,
    ContactStatus, FullyBooted; no dialplan, security or reporting events).
    """
    listener = f.open("listener")
    call = f.open("listener_call", user="listener", events="call")
    cds = f.open("listener_cds", user="listener", events="call,dtmf,system")
    sender = f.open("sender", events="off")
    sender.reply(sender.send(
        "Originate", "Channel: Local/8600050@acqs-facts", "Context: acqs-facts",
        "Exten: 8600051", "Priority: 1", f"Callerid: {CALLERID}", "Async: true"), timeout=20)
    settled(listener)
    phone = UserAgent.on(15062)
    phone.answering = True
    print("  register:", phone.register("phone1", "phone1secret", 60))
    listener.wait(lambda c: len(events_named(c, "ContactStatus")) >= 2, 8)
    time.sleep(0.5)
    print("  unregister:", phone.register("phone1", "phone1secret", 0))
    listener.wait(lambda c: len(events_named(c, "ContactStatus")) >= 3, 8)
    time.sleep(1)
    sender.logoff()
    for c in (cds, call, listener):
        c.logoff()


def command_perms(f):
    """
    A bridged call (Local/8600060;2 Dials Local/8600014/n; caller ID
    "DL40130172253cc160" <5551234>), listed by a user with write = command only:
    Command "core show channels concise" / "verbose" / plain answer Response: Success,
    Message: Command output follows, one Output: line per CLI line (concise:
    Channel!Context!Exten!Priority!State!Application!Data!CallerIDNum!AccountCode!
    PeerAccount!AMAFlags!Duration!BridgeID!Uniqueid, no count lines); CoreShowChannels,
    Status and Filter answer Response: Error, Message: Permission denied; Ping works.
    The sender (write system,call,...) lists the same channels with CoreShowChannels;
    listener2 (write = system) is denied Command.
    """
    listener = f.open("listener")
    sender = f.open("sender", events="off")
    sender.reply(sender.send(
        "Originate", "Channel: Local/8600060@acqs-facts", "Context: acqs-test",
        "Exten: 8600014", "Priority: 1", 'Callerid: "DL40130172253cc160" <5551234>',
        "Async: true"), timeout=20)
    listener.wait(lambda c: len(events_named(c, "BridgeEnter")) >= 2, 10)
    time.sleep(2)
    cli = f.open("cmdonly", events="off")
    for command in ("core show channels concise", "core show channels verbose",
                    "core show channels"):
        cli.reply(cli.send("Command", f"Command: {command}"))
    cli.reply(cli.send("CoreShowChannels"))
    cli.reply(cli.send("Status"))
    cli.reply(cli.send("Filter", "Operation: Add", "Filter: Event: Newstate"))
    cli.reply(cli.send("Ping"))
    cli.logoff()
    sender.reply(sender.send("CoreShowChannels"), until="CoreShowChannelsComplete")
    other = f.open("listener2", user="listener", events="off")
    other.reply(other.send("Command", "Command: core show channels concise"))
    other.logoff()
    first = [ch for ch in local_channels(listener, ";1") if "8600060" in ch][0]
    sender.reply(sender.send("Hangup", f"Channel: {first}"))
    settled(listener)
    sender.logoff()
    listener.logoff()


FLOWS = {
    "originate_sync_queue": originate_sync_queue,
    "originate_sync_timeout": originate_sync_timeout,
    "originate_sync_busy": originate_sync_busy,
    "dtmf": dtmf,
    "pjsip_register": pjsip_register,
    "pjsip_qualify": pjsip_qualify,
    "event_masks": event_masks,
    "command_perms": command_perms,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=5039)
    p.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("--setup", metavar="PREFIX", help="configure a running asterisk-ctl PREFIX")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("flows", nargs="*", metavar="FLOW", help=", ".join(FLOWS))
    args = p.parse_args()
    if args.setup:
        setup(args.setup)
        return
    unknown = set(args.flows) - set(FLOWS)
    if unknown:
        p.error(f"unknown flows: {', '.join(sorted(unknown))}")
    os.makedirs(args.out, exist_ok=True)
    for name in args.flows or FLOWS:
        print(f"{name}:")
        flow = TimedFlow(name, args.port)
        FLOWS[name](flow)
        flow.save(args.out, args.verbose)


if __name__ == "__main__":
    main()

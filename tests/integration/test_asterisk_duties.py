"""
The Perl listener's other duties, and the catch-up of VICIdial's stock
listen user, against a real Asterisk 22 of the test's own: DTMF crossing a
bridge, a PJSIP contact's reachability, and a hangup while the listener
was away, caught up with 'core show channels concise'.
"""

import os
import uuid

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from acqs.listener import Listener

from ..databases import scratchMySQL
from ..vicidial_tables import createVICIdialTables
from . import asterisk
from .daemon import SERVER, eventually, startAcqs

CID = "V1126100310000012345"

# A second call context: a DTMF player bridged to a listener, and a call
# that stays up.  Answer, play 1 2 # with SendDTMF, hang up; 8600052 dials
# it, so the digits cross a bridge.
EXTENSIONS = """
[acqs-duties]
exten => 8600050,1,Answer()
 same => n,Wait(0.5)
 same => n,SendDTMF(12#,250)
 same => n,Wait(1)
 same => n,Hangup()
exten => 8600051,1,Answer()
 same => n,Wait(5)
 same => n,Hangup()
exten => 8600052,1,Dial(Local/8600050@acqs-duties/n,20)
 same => n,Hangup()
exten => 8600053,1,Answer()
 same => n,Wait(60)
 same => n,Hangup()
"""

# VICIdial's stock listen user: Command is all it may run.
MANAGER = """
[listencron]
secret = {secret}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = system,call,log,verbose,command,agent,user,dtmf
write = command
"""

# PJSIP on loopback UDP: a trunk whose static contact is qualified every 2 s.  Its answer
# may take 1.5 s: the test's reactor, which answers, also runs acqs and may be slow on a busy
# machine, and one late answer would add a flap to the peer events.
PJSIP = """
[transport-udp]
type = transport
protocol = udp
bind = 127.0.0.1:{port}

[trunk1]
type = endpoint
context = acqs-duties
disallow = all
allow = ulaw
aors = trunk1

[trunk1]
type = aor
contact = sip:trunk1@127.0.0.1:{contact}
qualify_frequency = 2
qualify_timeout = 1.5
"""

PJSIP_MODULES = (
    "res_sorcery_config", "res_sorcery_memory", "res_sorcery_astdb", "res_pjproject",
    "res_rtp_asterisk", "res_pjsip", "res_pjsip_session", "res_pjsip_sdp_rtp", "chan_pjsip",
)


class Contact(DatagramProtocol):
    """A SIP contact on loopback UDP that answers 200 OK while C{answering}."""

    answering = True

    def datagramReceived(self, data, address):
        head = data.decode("utf-8", "replace").partition("\r\n\r\n")[0].split("\r\n")
        if not self.answering or head[0].startswith("SIP/2.0"):
            return
        lines = ["SIP/2.0 200 OK"]
        for line in head[1:]:
            name = line.partition(":")[0].strip().lower()
            if name == "to" and ";tag=" not in line:
                line += f";tag={uuid.uuid4().hex[:8]}"
            if name in ("via", "from", "to", "call-id", "cseq"):
                lines.append(line)
        self.transport.write(("\r\n".join(lines + ["Content-Length: 0", "", ""])).encode(),
                             address)


class Asterisk22DutiesTests(TestCase):
    skip = asterisk.SKIP_PRIVATE

    def setUp(self):
        self.asterisk = asterisk.PrivateAsterisk(self)
        etc = os.path.join(self.asterisk.prefix, "etc", "asterisk")
        self.contact = Contact()
        port = reactor.listenUDP(0, self.contact, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        with open(os.path.join(etc, "pjsip.conf"), "w") as f:
            f.write(PJSIP.format(port=asterisk._freePort(), contact=port.getHost().port))
        with open(os.path.join(etc, "extensions.conf"), "a") as f:
            f.write(EXTENSIONS)
        self.setSecret("1234")
        for command in ["dialplan reload"] + [f"module load {m}.so" for m in PJSIP_MODULES]:
            self.asterisk.cli(command)
        self.db = scratchMySQL(self)
        createVICIdialTables(self.db)
        self.observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def setSecret(self, secret):
        """listencron's secret in manager.conf, reloaded."""
        path = os.path.join(self.asterisk.prefix, "etc", "asterisk", "manager.conf")
        with open(path) as f:
            text = f.read().partition("\n[listencron]")[0]
        with open(path, "w") as f:
            f.write(text + MANAGER.format(secret=secret))
        self.asterisk.cli("manager reload")

    def start(self, user="listener", secret="listenersecret"):
        acqs = startAcqs(self, self.db, self.asterisk.endpoint, listen_user=user,
                         listen_secret=secret)
        return next(s for s in acqs if isinstance(s, Listener))

    def said(self, text):
        return [formatEvent(e) for e in self.observer if text in formatEvent(e)]

    async def test_dtmfAcrossABridge(self):
        """The digits a call plays are DTMF log rows: BEGIN and END of each digit, Received
        on the channels that read them and Sent on the one the bridge writes to."""
        listener = self.start()
        await eventually(lambda: listener.duties.plan is not None)
        self.db.insertAction(SERVER, "Originate", CID, [
            "Channel: Local/8600052@acqs-duties", "Context: acqs-duties", "Exten: 8600051",
            "Priority: 1", f"Callerid: {CID}"])
        await eventually(lambda: len(self.db.rows(
            "SELECT 1 FROM vicidial_dtmf_log WHERE digit = '#' AND state = 'END'")) == 3,
            timeout=20)
        rows = self.db.rows("SELECT digit, direction, state, COUNT(*) FROM vicidial_dtmf_log"
                            " WHERE server_ip = %s GROUP BY digit, direction, state"
                            " ORDER BY digit, direction, state", (SERVER,))
        self.assertEqual(rows, [(digit, direction, state, count)
                                for digit in ("#", "1", "2")
                                for direction, count in (("Received", 2), ("Sent", 1))
                                for state in ("BEGIN", "END")])
        self.assertEqual(listener.duties.dropped, 0)

    async def test_pjsipReachability(self):
        """A PJSIP contact that answers its qualify is REACHABLE on its phone, one that stops
        answering UNREACHABLE; each change is a peer event row."""
        self.db.execute("INSERT INTO phones (extension, server_ip, protocol)"
                        " VALUES ('trunk1', %s, 'PJSIP')", (SERVER,))
        self.start()

        def status():
            return self.db.rows("SELECT peer_status FROM phones")[0][0]

        await eventually(lambda: status() == "REACHABLE", timeout=20)
        self.contact.answering = False
        await eventually(lambda: status() == "UNREACHABLE", timeout=20)
        self.assertEqual(self.db.rows(
            "SELECT event_type, channel_type, peer, data FROM vicidial_peer_event_log"
            " ORDER BY peer_event_id"), [
            ("REACHABLE", "PJSIP", "PJSIP/trunk1", "|"),
            ("UNREACHABLE", "PJSIP", "PJSIP/trunk1", "|")])

    async def test_stockListencronCatchUp(self):
        """As VICIdial's listencron (Command only), the listener catches up a hangup it missed
        with 'core show channels concise', and says so once."""
        listener = self.start("listencron", "1234")
        man_id = self.db.insertAction(SERVER, "Originate", CID, [
            "Channel: Local/8600053@acqs-duties", "Context: acqs-duties", "Exten: 8600053",
            "Priority: 1", f"Callerid: {CID}"])
        await eventually(lambda: self.db.status(man_id) == "UPDATED")
        channel = self.db.row(man_id)["channel"]
        self.setSecret("locked out")
        listener.protocol.transport.abortConnection()
        await eventually(lambda: listener.protocol is None)
        self.asterisk.cli(f"channel request hangup {channel}")
        done = listener.caughtUp
        self.setSecret("1234")
        await eventually(lambda: listener.caughtUp > done, timeout=20)
        await eventually(lambda: self.db.status(man_id) == "DEAD")
        self.assertEqual(len(self.said("The listener catches up with 'core show channels"
                                       " concise': CoreShowChannels is refused to listencron"
                                       " (Permission denied)")), 1)
        self.assertEqual(listener.filtered, False)

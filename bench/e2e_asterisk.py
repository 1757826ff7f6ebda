"""
The simulated Asterisk of bench/e2e.py, in a process of its own so that its
work does not share a core (or the GIL) with the driver's clocks.

    python bench/e2e_asterisk.py [--dialect asterisk22] [--ring 0.2] [--hold 0.5]
        [--listen-secret listenersecret]

acqs' L{Simulator} on a free 127.0.0.1 port, with the dialplan below.  It
writes one line per fact to stdout, each with the wall-clock time
(C{time.time()}) at which the simulator saw it:

    port PORT                the port, once listening
    L TIME USERNAME          a Login action arrived
    O TIME CALLERID          an Originate arrived (its Callerid header), or a Hangup or Redirect
                             of SIP/CALLERID (bench/e2e.py --load hangups)
    R TIME CALLERID          the first Newstate Ringing or Up of a channel whose
                             caller ID name is CALLERID

The dialplan is VICIdial's manual dial: the Originate's channel is the
agent's leg (C{Local/8600051@bench}, answered at once and held until hung
up), so Asterisk answers the synchronous Originate at once; the call then
goes to C{9NUMBER}, which dials the carrier (C{SIP/carrier/NUMBER}, the leg
that carries the caller ID): it rings C{--ring} seconds, answers, talks
C{--hold} seconds and hangs up, and the Local legs go with it.

Like Asterisk's manager (main/manager.c), it sets TCP_NODELAY on every
connection (here on the listening socket, which accepted ones inherit on
Linux): with Nagle's algorithm on, an event written while an earlier one
waits for its ACK waits for the reader's delayed ACK, up to 40 ms.  It
listens with Twisted's backlog of 50 connections; Asterisk's manager listens
with 10 but accepts in a thread of its own, where the simulator accepts
between the calls it plays.
"""

import argparse
import socket
import sys
import time

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, react
from twisted.logger import globalLogBeginner, textFileLogObserver

from acqs.simulator import Exten, HangupHandler, Simulator, User
from acqs.simulator.dialplan import Dialplan

AGENT = "8600051"
# A phone that rings --long-ring seconds before it answers (bench/ringing.py):
# a synchronous Originate to it is answered only then.
RINGING = "8600052"
CONTEXT = "bench"


def dialplan(ring: float, hold: float, longRing: float = 30.0) -> Dialplan:
    return Dialplan({CONTEXT: {
        AGENT: Exten(answer=True, hold=None),
        RINGING: Exten(ring=longRing, answer=True, hold=None),
        "_9X.": Exten(ring=ring, answer=True, hold=hold, dial="SIP/carrier/${EXTEN:1}",
                      dialTimeout=60),
        "h": HangupHandler(),
    }})


def users(sendSecret: str, listenSecret: str):
    """As VICIdial's sendcron and listencron: the sender reads no call events."""
    return [User("sender", sendSecret, read="command",
                 write="system,call,originate,command,reporting"),
            User("listener", listenSecret, read="all", write="system,call")]


class Reporter:
    """Buffers the fact lines and writes them out 20 times a second."""

    def __init__(self, out):
        self._out = out
        self._lines = []
        self._ringing = set()

    def write(self, text: str) -> None:
        self._lines.append(text)

    def onAction(self, username, message) -> None:
        action = (message.get("Action") or "").lower()
        if action == "originate":
            self.write(f"O {time.time():.6f} {message.get('Callerid') or ''}\n")
        elif action in ("hangup", "redirect"):  # --load hangups, bench/ringing.py
            self.write(f"O {time.time():.6f} {(message.get('Channel') or '')[4:]}\n")
        elif action == "login":
            self.write(f"L {time.time():.6f} {username}\n")

    def onEvent(self, event) -> None:
        channel = event.channel
        if event.name != "Newstate" or channel is None or channel.state not in ("Ringing", "Up"):
            return
        callerid = channel.callerIDName
        if callerid and callerid not in self._ringing:
            self._ringing.add(callerid)
            self.write(f"R {time.time():.6f} {callerid}\n")

    def flush(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self._out.write("".join(lines).encode("ascii", "replace"))
            self._out.flush()


async def main(reactor, argv) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialect", default="asterisk22")
    parser.add_argument("--ring", type=float, default=0.2)
    parser.add_argument("--hold", type=float, default=0.5)
    parser.add_argument("--long-ring", type=float, default=30.0)
    parser.add_argument("--send-secret", default="sendersecret")
    parser.add_argument("--listen-secret", default="listenersecret")
    options = parser.parse_args(argv)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    simulator = Simulator(reactor, dialect=options.dialect,
                          dialplan=dialplan(options.ring, options.hold, options.long_ring),
                          users=users(options.send_secret, options.listen_secret))
    simulator.testEvents = False
    reporter = Reporter(sys.stdout.buffer)
    simulator.onAction = reporter.onAction
    simulator.onEvent = reporter.onEvent
    port = reactor.listenTCP(0, simulator.factory, interface="127.0.0.1")
    port.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reporter.write(f"port {port.getHost().port}\n")
    LoopingCall(reporter.flush).start(0.05)
    # The reporter has what the driver needs; do not keep every action.
    def forget():
        simulator.actions.clear()
        simulator.actionTimes.clear()

    LoopingCall(forget).start(1.0)
    await Deferred()  # until SIGTERM


if __name__ == "__main__":
    react(lambda reactor: Deferred.fromCoroutine(main(reactor, sys.argv[1:])))

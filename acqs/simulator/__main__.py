"""
Run the simulator stand-alone on 127.0.0.1:

    python -m acqs.simulator --port 5038 [--dialect asterisk14] [--seed N]
        [--vicidial-patches]
"""

import argparse
import sys

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import react
from twisted.logger import globalLogBeginner, textFileLogObserver

from .server import Simulator
from .dialects import DIALECTS


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m acqs.simulator",
                                     description="acqs' simulated Asterisk manager interface")
    parser.add_argument("--port", type=int, default=5038, help="TCP port (default 5038)")
    parser.add_argument("--dialect", choices=sorted(DIALECTS), default="asterisk22",
                        help="which Asterisk to behave like (default asterisk22)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the orderings Asterisk leaves to chance")
    parser.add_argument("--vicidial-patches", action="store_true",
                        help="a build with VICIdial's chan_sip patches (their events can then"
                             " be injected)")
    return parser.parse_args(argv)


async def main(reactor, argv) -> None:
    options = parse(argv)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    simulator = Simulator(reactor, dialect=options.dialect, seed=options.seed,
                          vicidialPatches=options.vicidial_patches)
    endpoint = TCP4ServerEndpoint(reactor, options.port, interface="127.0.0.1")
    port = await simulator.listen(endpoint)
    address = port.getHost()
    print(f"acqs AMI simulator ({options.dialect}) on {address.host}:{address.port}")
    for user in simulator.users.values():
        print(f"  user {user.username} secret {user.secret} read={user.read} write={user.write}")
    sys.stdout.flush()
    await Deferred()  # until interrupted


if __name__ == "__main__":
    react(lambda reactor: Deferred.fromCoroutine(main(reactor, sys.argv[1:])))

"""
Where the disposable Asterisk 22 for integration tests is.

Start one with tests/asterisk/asterisk-ctl (CONTRIBUTING.rst) and set
ACQS_TEST_ASTERISK to its AMI client endpoint string, and
ACQS_TEST_ASTERISK_CTL to asterisk-ctl itself, with which tests start
private ones (another asterisk.conf, or to restart it).  Never point them at
a production Asterisk: the tests originate and hang up calls in context
acqs-test.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, clientFromString

ENDPOINT = os.environ.get("ACQS_TEST_ASTERISK", "")
CTL = os.environ.get("ACQS_TEST_ASTERISK_CTL", "")
SENDER = ("sender", "sendersecret")
LISTENER = ("listener", "listenersecret")

SKIP = (
    None
    if ENDPOINT
    else "no disposable Asterisk 22: set ACQS_TEST_ASTERISK to the AMI endpoint of one started"
    " with tests/asterisk/asterisk-ctl (e.g. tcp:host=127.0.0.1:port=5040)"
)
SKIP_PRIVATE = (
    None
    if CTL and os.access(CTL, os.X_OK)
    else "no asterisk-ctl to start a private Asterisk 22 with: set ACQS_TEST_ASTERISK_CTL to"
    " the absolute path of tests/asterisk/asterisk-ctl"
)


def endpoint():
    """A client endpoint to the test Asterisk's AMI."""
    return clientFromString(reactor, ENDPOINT)


def _freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateAsterisk:
    """
    An Asterisk 22 of a test's own in a new temporary folder, on a free
    loopback port, with C{options} added to asterisk.conf's [options] (e.g.
    C{systemname}); it can stop and start again, and is stopped when the
    test ends.
    """

    def __init__(self, testCase, **options):
        # Short: Asterisk's control socket lives under it (108 characters at most).
        self.prefix = tempfile.mkdtemp(prefix="acqs-ast-")
        testCase.addCleanup(shutil.rmtree, self.prefix, True)
        self.port = _freePort()
        self.endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port, timeout=5)
        # asterisk-ctl writes the configuration, then it is changed and run as is.
        self._ctl("start", self.prefix, str(self.port))
        self.stop()
        conf = os.path.join(self.prefix, "etc", "asterisk", "asterisk.conf")
        with open(conf, "a", encoding="utf-8") as f:
            f.writelines(f"{key} = {value}\n" for key, value in options.items())
        testCase.addCleanup(self.stop)
        self.start()

    def _ctl(self, *arguments) -> str:
        done = subprocess.run([CTL, *arguments], capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise RuntimeError(f"asterisk-ctl {arguments[0]} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        """Start it again, as configured, and wait for its AMI greeting."""
        log = open(os.path.join(self.prefix, "var", "log", "asterisk", "stdout.log"), "ab")
        subprocess.Popen([CTL, "_run", self.prefix, "-f", "-n"], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL, cwd=self.prefix, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                    if s.recv(100).startswith(b"Asterisk Call Manager"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the private Asterisk did not bring AMI up in 30 s: {self.prefix}")

    def stop(self) -> None:
        self._ctl("stop", self.prefix)

    def cli(self, command: str) -> str:
        return self._ctl("cli", self.prefix, command)

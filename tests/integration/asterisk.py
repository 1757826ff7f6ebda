"""
Where the disposable Asterisk 22 for integration tests is.

CI starts one with ../shared/asterisk/asterisk-ctl and sets
ACQS_TEST_ASTERISK to its AMI client endpoint string.  Never point it at a
production Asterisk: the tests originate and hang up calls in context
acqs-test.
"""

import os

from twisted.internet import reactor
from twisted.internet.endpoints import clientFromString

ENDPOINT = os.environ.get("ACQS_TEST_ASTERISK", "")
SENDER = ("sender", "sendersecret")
LISTENER = ("listener", "listenersecret")

SKIP = (
    None
    if ENDPOINT
    else "no disposable Asterisk 22: set ACQS_TEST_ASTERISK to the AMI endpoint of one started"
    " with ../shared/asterisk/asterisk-ctl (e.g. tcp:host=127.0.0.1:port=5040)"
)


def endpoint():
    """A client endpoint to the test Asterisk's AMI."""
    return clientFromString(reactor, ENDPOINT)

"""
acqs running in-process for end-to-end tests: the real service tree on the
real reactor, a scratch database on the real MariaDB, and Asterisk on
loopback TCP (the simulator, or the real Asterisk 22 of CI).
"""

import time

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import deferLater

from acqs.app import Acqs, acqsServices
from acqs.config import Settings
from acqs.simulator import DEFAULT_DIALPLAN, Exten, Simulator, User

SERVER = "10.10.11.12"
# Quick calls, so that a test sees a whole life cycle in about a second.
# "demo" and "default" serve ACQS.txt's INSERT: the agent's Local/8600011@demo
# answers, and 917274515135 then goes out through a carrier leg.
DIALPLAN = DEFAULT_DIALPLAN.withContext("e2e", {
    "100": Exten(ring=0.3, answer=True, hold=0.5),
    "200": Exten(answer=True, hold=None),  # up until someone hangs up
    "300": Exten(answer=True, hold=0.5),  # a Redirect target
    "400": Exten(ring=1, answer=True, hold=None),  # rings a second, then up until hung up
    "_7X.": Exten(ring=0.3, answer=True, hold=None, dial="SIP/carrier/${EXTEN:1}"),
}).withContext("demo", {
    "8600011": Exten(ring=0.3, answer=True, hold=None),
}).withContext("default", {
    "_9X.": Exten(ring=0.3, answer=True, hold=0.5, dial="SIP/carrier/${EXTEN:1}"),
})


# As the test Asterisk has them, but the listener may also write "call": Asterisk
# 1.4's Status (the list acqs catches up with there) needs it, and VICIdial's
# listen users have it.
USERS = [
    User("sender", "sendersecret", read="system,call,originate",
         write="system,call,originate,command,reporting"),
    User("listener", "listenersecret", read="all", write="system,call"),
]


class SimulatorOnTCP:
    """A simulator listening on a free loopback port, which can go down and come back."""

    def __init__(self, testCase, dialect="asterisk22", dialplan=DIALPLAN, users=USERS,
                 **options):
        self.simulator = Simulator(reactor, dialect=dialect, dialplan=dialplan, users=users,
                                   **options)
        self.simulator.testEvents = False
        self.port = reactor.listenTCP(0, self.simulator.factory, interface="127.0.0.1")
        self.number = self.port.getHost().port
        self.endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.number, timeout=5)
        testCase.addCleanup(lambda: self.port and self.port.stopListening())
        testCase.addCleanup(self.simulator.stop)

    def down(self):
        """Asterisk goes away: no more connections, every session dropped."""
        d, self.port = self.port.stopListening(), None
        self.simulator.dropAll()
        return d

    def up(self):
        self.port = reactor.listenTCP(self.number, self.simulator.factory, interface="127.0.0.1")


def startAcqs(testCase, db, endpoint, store=None, **settings) -> Acqs:
    """acqs on C{db}'s store (or C{store}) and C{endpoint}, started; stopped when the test
    ends."""
    values = dict(server_ip=SERVER, db=str(db.url), send_user="sender",
                  send_secret="sendersecret", listen_user="listener",
                  listen_secret="listenersecret", linger=0.2,
                  action_timeout=5.0, status_file=None, instance="e2e")
    values.update(settings)
    store = store or db.openStore()
    acqs = Acqs(store)
    for service in acqsServices(Settings(**values), reactor, store, endpoint):
        service.setServiceParent(acqs)
    acqs.startService()
    testCase.addCleanup(lambda: acqs.running and acqs.stopService())
    return acqs


async def eventually(check, timeout=15.0, interval=0.02):
    """Poll C{check()} on the real reactor until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:g} s: {check.__doc__ or check}")
        await deferLater(reactor, interval, lambda: None)


class History:
    """The statuses a row has been seen in, polled as fast as the database allows."""

    def __init__(self, db, man_id):
        self.db, self.man_id, self.seen = db, man_id, []

    def look(self):
        status = self.db.status(self.man_id)
        if not self.seen or self.seen[-1] != status:
            self.seen.append(status)
        return status

    async def until(self, status, timeout=15.0):
        def reached():
            """the row reaches the status"""
            return self.look() == status
        await eventually(reached, timeout, interval=0.005)
        return self.seen

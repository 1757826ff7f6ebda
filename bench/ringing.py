"""
Agents' rows while synchronous Originates ring (issue 15, part 2).

    python bench/ringing.py [--ringing 200] [--long-ring 30] [--rate 10]
                            [--seconds 20] [--drain 200] [--code DIR] [ACQS OPTIONS ...]

Set-up as bench/e2e.py's (a scratch database, acqs' simulator in a process
of its own, twistd acqs under bench/e2e_reaper.py), at acqs' default
settings (C{--linger 10}; options this script does not know go to acqs).
C{--code DIR} runs the SUT from another tree (e.g. an export of main) with
this tree's simulator and driver, for the old behaviour.

Load: C{--ringing} synchronous Originates, as VICIdial's dialer writes them
(C{Timeout: 60000}, no C{Async}), to a phone that rings C{--long-ring}
seconds before it answers; once they have reached the simulator (or 10 s
passed), Hangup and Redirect rows in turn at C{--rate} a second, Poisson
arrivals, for C{--seconds}: each is answered at once (no such channel).
Then it waits up to C{--drain} seconds for those still to reach AMI.

Figures: INSERT->AMI (commit -> the simulator parses the action, as in
bench/e2e.py) p50/p99/max of the Hangups and of the Redirects; the
Originates that had reached the simulator when the agents' rows began;
acqs' RSS (VmRSS of twistd) before the Originates and at the peak, and the
difference per ringing session.
"""

import argparse
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from e2e import (BENCH, LISTEN_SECRET, SERVER_IP, Asterisk, Database, Tree, _env, acqsCommand,
                 percentile)
from e2e_asterisk import CONTEXT, RINGING

from acqs.store.url import parseURL

ORIGINATE = (
    "INSERT INTO vicidial_manager values('','',NOW(),'NEW','N','{server}','','Originate',"
    "'{callerid}','Channel: Local/{phone}@{context}','Context: {context}','Exten: 9{number}',"
    "'Priority: 1','Callerid: {callerid}','Timeout: 60000','','','','')"
)
AGENT_ROWS = {
    "Hangup": ("INSERT INTO vicidial_manager values('','',NOW(),'NEW','N','{server}','',"
               "'Hangup','{callerid}','Channel: SIP/{callerid}','','','','','','','','','')"),
    "Redirect": ("INSERT INTO vicidial_manager values('','',NOW(),'NEW','N','{server}','',"
                 "'Redirect','{callerid}','Channel: SIP/{callerid}','Context: default',"
                 "'Exten: 8600051','Priority: 1','','','','','','')"),
}


def rss(pid):
    """VmRSS of C{pid} in kB, 0 once gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RSSWatch(threading.Thread):
    """The SUT's twistd: its VmRSS now and at its peak, every 0.2 s."""

    def __init__(self, tree):
        super().__init__(daemon=True)
        self.tree, self.now, self.peak = tree, 0, 0

    def run(self):
        while self.tree.alive():
            pids = self.tree.processes()
            self.now = sum(rss(pid) for pid in pids)
            self.peak = max(self.peak, self.now)
            time.sleep(0.2)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306/test")
    parser.add_argument("--ringing", type=int, default=200)
    parser.add_argument("--long-ring", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--drain", type=float, default=200.0,
                        help="seconds to wait after the load for rows still to reach AMI")
    parser.add_argument("--code", help="run the SUT from this tree")
    args, extra = parser.parse_known_args(argv)
    args.dialect, args.ring, args.hold = "asterisk22", 0.2, 0.5
    work = Path(tempfile.mkdtemp(prefix="acqs-ringing-"))
    db = Database(parseURL(args.mysql))
    asterisk = tree = None
    try:
        db.initdb(work, open(work / "initdb.log", "ab"))
        asterisk = Asterisk(args, LISTEN_SECRET, open(work / "asterisk.log", "ab"),
                            extra=("--long-ring", str(args.long_ring)))
        command = acqsCommand(args, ["--linger", "10", *extra], db, asterisk.port, work)
        env = _env()
        if args.code:
            env["PYTHONPATH"] = str(Path(args.code).resolve())
        log = open(work / "sut.log", "ab")
        tree = Tree(subprocess.Popen([sys.executable, str(BENCH / "e2e_reaper.py"), *command],
                                     stdout=log, stderr=log, cwd=work, env=env,
                                     start_new_session=True))
        watch = RSSWatch(tree)
        watch.start()
        deadline = time.monotonic() + 30
        while "listener" not in asterisk.logins:
            if not tree.alive() or time.monotonic() > deadline:
                raise SystemExit(f"the SUT did not log in; see {work}")
            time.sleep(0.05)
        time.sleep(3)
        before = watch.now
        prefix = f"M{random.randrange(10 ** 6):06d}"
        gui = db.connect()
        cursor = gui.cursor()
        cursor.execute("SET SESSION sql_mode=''")
        calls = [f"{prefix}1{n:012d}" for n in range(args.ringing)]
        started = time.monotonic()
        for n, callerid in enumerate(calls):
            cursor.execute(ORIGINATE.format(server=SERVER_IP, callerid=callerid, phone=RINGING,
                                            context=CONTEXT, number=5550000 + n))
        while (sum(c in asterisk.originates for c in calls) < args.ringing
               and time.monotonic() - started < 10):
            time.sleep(0.05)
        reached = sum(c in asterisk.originates for c in calls)
        ringingFor = time.monotonic() - started
        rng = random.Random(7)
        inserted = {}  # callerid -> (kind, commit time)
        end = time.monotonic() + args.seconds
        n = 0
        while time.monotonic() < end:
            time.sleep(rng.expovariate(args.rate))
            kind = ("Hangup", "Redirect")[n % 2]
            callerid = f"{prefix}2{n:012d}"
            cursor.execute(AGENT_ROWS[kind].format(server=SERVER_IP, callerid=callerid))
            inserted[callerid] = (kind, time.time())
            n += 1
        loadEnded = time.monotonic()
        while (any(c not in asterisk.originates for c in inserted)
               and time.monotonic() - loadEnded < args.drain):
            time.sleep(0.1)
        peak = watch.peak
        print(f"{args.ringing} synchronous Originates ringing {args.long_ring:g} s"
              f" ({reached} had reached AMI {ringingFor:.1f} s after their INSERTs);"
              f" agents' rows at {args.rate:g}/s for {args.seconds:g} s"
              f"{' (SUT from ' + args.code + ')' if args.code else ''}")
        for kind in AGENT_ROWS:
            times = sorted(1000 * (asterisk.originates[c][0] - at)
                           for c, (k, at) in inserted.items()
                           if k == kind and c in asterisk.originates)
            lost = sum(1 for c, (k, _) in inserted.items()
                       if k == kind and c not in asterisk.originates)
            print(f"  {kind:8s} INSERT->AMI p50 {percentile(times, 50):8.1f} ms"
                  f"  p99 {percentile(times, 99):8.1f} ms  max {times[-1] if times else 0:8.1f}"
                  f" ms  ({len(times)} rows, {lost} never reached AMI)")
        print(f"  acqs RSS {before / 1024:.1f} MB before the Originates, peak"
              f" {peak / 1024:.1f} MB: {(peak - before) / max(1, reached):.1f} kB per ringing"
              " session")
    finally:
        if tree is not None:
            tree.stop()
        if asterisk is not None:
            asterisk.stop()
        db.close()


if __name__ == "__main__":
    main(sys.argv[1:])

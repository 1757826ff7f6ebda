"""
End to end: GUI clients' INSERTs into vicidial_manager, through the system
under test (SUT) to a simulated Asterisk, and the calls' progress back into
the rows.

    python bench/e2e.py [--rates 20,100,500,1000] [--seconds 15 | --rows N]
                        [--idle 20] [--ring 0.2] [--hold 0.5] [ACQS OPTIONS ...]
    python bench/e2e.py --sut perl --vicidial-bin DIR [--rates 20]
    python bench/e2e.py --instances 20 --engine MyISAM --rates 100 --probe-rate 5

Set-up.  A scratch database with a random name on --mysql (default
ACQS_TEST_MYSQL or mysql://root@127.0.0.1:3306/test; its database part is
not used), made by C{acqs initdb} and dropped at the end, and a MariaDB user
of the SUT's own, so that its statements can be counted apart from anyone
else's.  acqs' simulator (bench/e2e_asterisk.py, a process of its own) on a
free loopback port: it answers each synchronous Originate at once, as the
agent's leg of a VICIdial manual dial does, and puts the call through a
carrier leg that rings --ring s, talks --hold s and hangs up, so that each
row goes NEW, QUEUE, SENT, UPDATED, DEAD.  The SUT, under
bench/e2e_reaper.py:

  acqs  twistd -n --pidfile= acqs --db mysql://USER@127.0.0.1:3306/DB
        --db-password-file F --ami tcp:host=127.0.0.1:port=P --server-ip
        10.10.11.12 --send-user sender --send-secret-file F --listen-user
        listener --listen-secret-file F --linger 0 --status-file '', then
        every option this script does not know (e.g. --max-sessions 100),
        running this tree's code (PYTHONPATH);
  perl  VICIdial's AST_manager_listen_AMI2.pl (AST_manager_listen.pl with
        --dialect asterisk14, as VICIdial's keepalive picks them by Asterisk
        version), then AST_manager_send.pl, which starts
        AST_send_action_child.pl for each action, all from --vicidial-bin,
        an operator's own VICIdial install (nothing of VICIdial is part of
        this bench).  They read /etc/astguiclient.conf: the bench writes one
        in its temporary directory and lays it over /etc in a private mount
        namespace (unshare, overlayfs), so the real /etc never changes; that
        needs root.  In that namespace /bin/ps also prints whole command
        lines for the sender's `ps -o "%p %a"` (see PS_SHIM).  Their
        database gets a `servers` table with just the columns they read (one
        row: this server, the simulator's port, the one AMI secret VICIdial
        shares between its users, vd_server_logs Y as VICIdial's default)
        and an empty `server_updater`.  Debian packages: libnet-telnet-perl
        libdbi-perl libdbd-mysql-perl libswitch-perl.

With --load hangups the rows are Hangups of channels that do not exist,
which Asterisk (here the simulator) answers at once with an error and which
start no call: what the sender alone sustains, the listener idle.  With
--instances N, N acqs (--instance bench-0 ... on server IPs 10.10.11.12 and
on), each with a simulator of its own, share the one database; rows go to
each server in turn, and the figures add the N up (RSS: the largest); with
--sut perl, N pairs of VICIdial's scripts, each in its own namespace with
its own server IP.  --engine MyISAM makes vicidial_manager MyISAM, as
VICIdial's own table is (acqs initdb makes it InnoDB).
bench/compare.py runs acqs and the Perl in turn and prints both side by
side, with ratios.

Load.  For each rate, the driver inserts the rows on a PyMySQL connection of
their own, at Poisson arrivals, each with the GUI clients' positional INSERT (''
for man_id, SET SESSION sql_mode=''), an Originate of Local/8600051@bench to
9NUMBER with a VICIdial-style callerid (M and 19 digits), and notes
time.time() once each commit has returned.

Figures, per rate:

  INSERT->AMI   commit -> the simulator parses that row's Originate (matched
                by its Callerid header; time.time() in the simulator):
                p50, p95, p99 in ms.
  event->row    the simulator publishes the call's first Newstate Ringing or
                Up -> the row's status becomes UPDATED, as timed inside
                MariaDB by an AFTER UPDATE trigger with SYSDATE(6), the same
                wall clock to the microsecond: when the UPDATE ran, just
                before its commit; no polling.  p50, p99 in ms.
  CPU/action    CPU (utime+stime+cutime+cstime) of the whole SUT tree from
                /proc over the loaded window, divided by the Originates the
                simulator received.  The reaper adopts and waits for orphans
                (VICIdial's children), so their CPU lands in its cutime and
                cstime; the window runs from the first INSERT until every
                row is final and the SUT has no more processes than at rest.
  RSS           the largest sum of VmHWM over the SUT's live processes,
                sampled every 0.2 s (for acqs: twistd's VmHWM).
  DB            statements per action and MariaDB CPU ms per action of the
                SUT's user (information_schema.USER_STATISTICS; userstat is
                switched on for the run and off again afterwards unless
                another run is under way; NaN if someone turned it off);
                and transactions per action: the COMMITs the server ran
                (its Com_commit, everyone's: run on a quiet server) but the
                driver's own, one per row.
  GUI INSERTs   how long each GUI client's INSERT took (execute and commit,
                on its own connection), p50, p99, max; and each instance's
                INSERT->AMI p99 (the lowest and highest of the N).
  lost/twice/left   rows the simulator never received, received more than
                once, and not DEAD once no row has become DEAD for --settle s.
  %CPU          of the SUT, the simulator, this driver and the whole MariaDB
                server (everyone's) over the window, and of the whole machine;
                beside it the machine's TcpExtListenOverflows: connections
                (SYNs) dropped because a listen queue, most likely the
                simulator's, was full; the client retries them after 1, 3, 7 s.

Idle: for --idle s after start-up (and --warmup s), with the driver quiet:
the statements per second clients sent (the server's Questions: run the bench
on an otherwise quiet server), the SUT user's statements per second
(USER_STATISTICS, which also counts each statement a wait runs inside the
server), and the SUT's and the MariaDB server's CPU %; with --probe-rate R,
R GUI INSERTs a second for a server no SUT serves, each timed (they count
in the server's CPU, the same for every SUT).  The load average
is printed before and after: other work on the machine shows in the figures,
so repeat runs and compare ranges.
"""

import argparse
import json
import math
import os
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

from e2e_asterisk import AGENT, CONTEXT

from acqs.store.url import parseURL

BENCH = Path(__file__).resolve().parent
TREE = BENCH.parent
SERVER_IP = "10.10.11.12"
# The GUI INSERT probe's rows (--probe-rate) are for a server no SUT serves.
PROBE_IP = "10.10.99.99"
SEND_SECRET, LISTEN_SECRET = "sendersecret", "listenersecret"
TICK = os.sysconf("SC_CLK_TCK")
INSERT = (
    "INSERT INTO vicidial_manager values('','',NOW(),'NEW','N','{server}','','Originate',"
    "'{callerid}','Channel: Local/{agent}@{context}','Context: {context}','Exten: 9{number}',"
    "'Priority: 1','Callerid: {callerid}','','','','','')"
)
# --load hangups: a Hangup of a channel that does not exist, answered at once
# (No such channel), no call: what the sender alone sustains.
HANGUP = (
    "INSERT INTO vicidial_manager values('','',NOW(),'NEW','N','{server}','','Hangup',"
    "'{callerid}','Channel: SIP/{callerid}','','','','','','','','','')"
)
TRIGGER = """
CREATE TRIGGER bench_updated AFTER UPDATE ON vicidial_manager FOR EACH ROW
  IF NEW.status = 'UPDATED' AND NOT (OLD.status <=> 'UPDATED') THEN
    INSERT IGNORE INTO bench_updated VALUES (NEW.man_id, NEW.callerid, UNIX_TIMESTAMP(SYSDATE(6)));
  END IF
"""
# The columns of VICIdial's servers table that its ACQS scripts read, and the
# values they get here (anything else: '').
SERVERS_COLUMNS = (
    "server_id server_description server_ip active asterisk_version max_vicidial_trunks "
    "telnet_host telnet_port ASTmgrUSERNAME ASTmgrSECRET ASTmgrUSERNAMEupdate "
    "ASTmgrUSERNAMElisten ASTmgrUSERNAMEsend local_gmt voicemail_dump_exten "
    "answer_transfer_agent ext_context sys_perf_log vd_server_logs agi_output "
    "vicidial_balance_active balance_trunks_offlimits recording_web_link alt_server_ip "
    "active_asterisk_server generate_vicidial_conf rebuild_conf_files "
    "outbound_calls_per_second sysload channels_total cpu_idle_percent disk_usage "
    "sounds_update vicidial_recording_limit carrier_logging_active vicidial_balance_rank "
    "rebuild_music_on_hold active_agent_login_server conf_secret"
).split()
PERL_LISTENERS = {"asterisk22": ("AST_manager_listen_AMI2.pl", "22.0.0"),
                  "asterisk14": ("AST_manager_listen.pl", "1.4.21.2")}
PERL_START = """
mount -t overlay bench-etc -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc || exit 1
mount --bind "$3" "$4" || exit 1
"$5" &
sleep 1
exec "$6"
"""
# With --instances N, each pair has a PID namespace of its own too: the Perl
# sender exits when `ps` shows another sender ("I am not alone"), as one
# machine runs one pair.  The shell stays, as the namespace's init, so that
# SIGTERM reaches it; when it ends, the kernel ends the pair and its children.
PERL_START_APART = """
mount -t overlay bench-etc -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc || exit 1
mount --bind "$3" "$4" || exit 1
trap 'exit 0' TERM
"$5" &
sleep 1
"$6" &
wait
"""
# procps-ng 4.0 cuts the AIX-format `ps -o "%p %a"` to 27 characters, so
# AST_manager_send.pl never sees "AST_manager_li" and stops within a second,
# taking its listener for dead; older procps printed the whole command line.
PS_SHIM = """#!/bin/sh
if [ "$1" = "-o" ] && [ "$2" = "%p %a" ]; then shift 2; set -- -o pid,args "$@"; fi
exec {ps} "$@"
"""


def percentile(values, p):
    """Nearest-rank percentile of C{values} (sorted), or NaN."""
    if not values:
        return math.nan
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


# The system under test's processes


def processCPU(pid):
    """utime+stime+cutime+cstime of C{pid} in seconds; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / TICK


def _children(pid):
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids.extend(int(k) for k in f.read().split())
    except OSError:
        pass
    return kids


class Tree:
    """The SUT: a reaper process and everything below it."""

    def __init__(self, reaper):
        self.reaper = reaper  # subprocess.Popen
        self.peakRSS = 0

    def processes(self):
        out, todo = [], _children(self.reaper.pid)
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(_children(pid))
        return out

    def cpu(self):
        """CPU seconds of the whole tree so far, dead processes included."""
        total = sum(processCPU(pid) for pid in self.processes())
        try:
            with open(f"/proc/{self.reaper.pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += (int(fields[13]) + int(fields[14])) / TICK  # cutime + cstime
        except OSError:
            pass
        return total

    def sampleRSS(self):
        total = 0
        for pid in self.processes():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        self.peakRSS = max(self.peakRSS, total)

    def alive(self):
        return self.reaper.poll() is None

    def stop(self):
        if self.alive():
            os.killpg(self.reaper.pid, signal.SIGTERM)
            try:
                self.reaper.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.reaper.pid, signal.SIGKILL)
                self.reaper.wait()


def driverCPU():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def listenOverflows():
    """The machine's count of connections dropped from full listen queues."""
    with open("/proc/net/netstat") as f:
        names, values = [line.split() for line in f if line.startswith("TcpExt:")][:2]
    return int(values[names.index("ListenOverflows")])


def machineCPU():
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(x) / TICK for x in f.readline().split()[1:9])
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


# The simulated Asterisk


class Asterisk:
    """bench/e2e_asterisk.py in its own process, and what it reports."""

    def __init__(self, args, listenSecret, log, extra=()):
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "e2e_asterisk.py"), "--dialect", args.dialect,
             "--ring", str(args.ring), "--hold", str(args.hold),
             "--send-secret", SEND_SECRET, "--listen-secret", listenSecret, *extra],
            stdout=subprocess.PIPE, stderr=log, env=_env())
        first = self.process.stdout.readline().split()
        if first[:1] != [b"port"]:
            raise SystemExit("the simulator did not start; see its log " + log.name)
        self.port = int(first[1])
        self.originates = {}  # callerid -> [times]
        self.ringing = {}  # callerid -> time
        self.logins = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            kind, at, value = line.decode("ascii").rstrip("\n").split(" ", 2)
            if kind == "O":
                self.originates.setdefault(value, []).append(float(at))
            elif kind == "R":
                self.ringing[value] = float(at)
            elif kind == "L":
                self.logins.append(value)

    def stop(self):
        self.process.terminate()
        self.process.wait()


# The database


class Database:
    """A scratch database and a MariaDB user of the SUT's own; gone on close()."""

    def __init__(self, server):
        self.server = server
        self.name = f"acqs_e2e_{secrets.token_hex(4)}"
        self.user, self.password = self.name, secrets.token_hex(12)
        self.admin = self.connect(database=False)
        cursor = self.admin.cursor()
        cursor.execute("SELECT @@userstat, VERSION(), @@pid_file")
        self.userstat, self.version, pidFile = cursor.fetchone()
        try:  # the server's process, if it runs on this machine
            self.pid = int(Path(pidFile).read_text())
        except (OSError, ValueError):
            self.pid = None
        cursor.execute(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4")
        cursor.execute(f"CREATE USER '{self.user}'@'%' IDENTIFIED BY '{self.password}'")
        cursor.execute(f"GRANT ALL PRIVILEGES ON `{self.name}`.* TO '{self.user}'@'%'")
        if not self.userstat:
            cursor.execute("SET GLOBAL userstat = 1")

    def connect(self, database=True, autocommit=True):
        s = self.server
        return pymysql.connect(host=s.host, port=s.port, user=s.user, password=s.password or "",
                               database=self.name if database else None, autocommit=autocommit)

    def url(self, user=None):
        s = self.server
        return f"mysql://{user or s.user}@{s.host}:{s.port}/{self.name}"

    def initdb(self, work, log):
        command = [str(Path(sys.executable).parent / "acqs"), "initdb", "--db", self.url()]
        if self.server.password:
            command += ["--db-password-file",
                        _secretFile(work, "admin.secret", self.server.password)]
        subprocess.run(command, check=True, stdout=log, stderr=log, env=_env())
        cursor = self.admin.cursor()
        cursor.execute(f"USE `{self.name}`")
        cursor.execute("CREATE TABLE bench_updated (man_id INT UNSIGNED PRIMARY KEY,"
                       " callerid VARCHAR(20), at DOUBLE NOT NULL) ENGINE=InnoDB")
        cursor.execute(TRIGGER)

    def query(self, sql, args=None):
        cursor = self.admin.cursor()
        cursor.execute(sql, args)
        return cursor.fetchall()

    def questions(self) -> int:
        """Statements every client sent the server so far (its Questions)."""
        return int(self.query("SHOW GLOBAL STATUS LIKE 'Questions'")[0][1])

    def commits(self) -> int:
        """COMMITs every client had the server run so far (its Com_commit)."""
        return int(self.query("SHOW GLOBAL STATUS LIKE 'Com_commit'")[0][1])

    def tableLocksWaited(self) -> int:
        """Table locks (MyISAM's) someone had to wait for so far (Table_locks_waited)."""
        return int(self.query("SHOW GLOBAL STATUS LIKE 'Table_locks_waited'")[0][1])

    def userStatistics(self):
        """
        (statements, MariaDB CPU seconds) of the SUT's user so far; NaN while
        userstat is off (someone else turned it off: the figures would be wrong).
        """
        if not self.query("SELECT @@userstat")[0][0]:
            return math.nan, math.nan
        rows = self.query(
            "SELECT SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS, CPU_TIME"
            " FROM information_schema.USER_STATISTICS WHERE USER = %s", (self.user,))
        return (int(rows[0][0]), float(rows[0][1])) if rows else (0, 0.0)

    def close(self):
        cursor = self.admin.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        cursor.execute(f"DROP USER IF EXISTS '{self.user}'@'%'")
        cursor.execute("SHOW DATABASES LIKE 'acqs\\_e2e\\_%'")
        if not self.userstat and not cursor.fetchall():  # unless another run still needs it
            cursor.execute("SET GLOBAL userstat = 0")
        self.admin.close()


# Systems under test


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TREE), env.get("PYTHONPATH")]))
    return env


def _secretFile(work, name, secret):
    path = work / name
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return str(path)


def serverIPs(count):
    """The server IPs of C{count} instances: one Asterisk box each."""
    return [f"10.10.11.{12 + n}" for n in range(count)]


def acqsCommand(args, extra, db, port, work, serverIP=SERVER_IP, instance="bench"):
    twistd = str(Path(sys.executable).parent / "twistd")
    return [sys.executable, twistd, "-n", "--pidfile=", "acqs",
            "--db", db.url(db.user),
            "--db-password-file", _secretFile(work, "db.secret", db.password),
            "--ami", f"tcp:host=127.0.0.1:port={port}", "--server-ip", serverIP,
            "--instance", instance,
            "--send-user", "sender",
            "--send-secret-file", _secretFile(work, "send.secret", SEND_SECRET),
            "--listen-user", "listener",
            "--listen-secret-file", _secretFile(work, "listen.secret", LISTEN_SECRET),
            "--linger", "0", "--status-file", "", *extra]


def perlTables(db, count):
    """The tables VICIdial's scripts read: a `servers` row for each instance's server."""
    columns = ", ".join(f"`{c}` VARCHAR(100) NOT NULL DEFAULT ''" for c in SERVERS_COLUMNS)
    db.query(f"CREATE TABLE servers ({columns}) ENGINE=InnoDB")
    db.query("CREATE TABLE server_updater (server_ip VARCHAR(15) NOT NULL,"
             " last_update DATETIME) ENGINE=InnoDB")


def perlCommand(args, db, port, work, serverIP=SERVER_IP):
    """VICIdial's scripts from --vicidial-bin, with the tables and config file they read."""
    home = Path(args.vicidial_bin).resolve()
    listener, version = PERL_LISTENERS[args.dialect]
    for script in (listener, "AST_manager_send.pl", "AST_send_action_child.pl"):
        if not os.access(home / script, os.X_OK):
            raise SystemExit(f"{home / script} is missing or not executable")
    if os.geteuid() != 0:
        raise SystemExit("--sut perl needs root: /etc/astguiclient.conf is laid over /etc in a"
                         " private mount namespace")
    values = dict.fromkeys(SERVERS_COLUMNS, "")
    values.update(server_id=f"bench{serverIP}", server_ip=serverIP, active="Y",
                  asterisk_version=version,
                  telnet_host="127.0.0.1", telnet_port=str(port), ASTmgrUSERNAME="cron",
                  ASTmgrSECRET=SEND_SECRET, ASTmgrUSERNAMEupdate="updatecron",
                  ASTmgrUSERNAMElisten="listener", ASTmgrUSERNAMEsend="sender",
                  vd_server_logs="Y", active_asterisk_server="Y")
    db.query(f"INSERT INTO servers ({', '.join(values)})"
             f" VALUES ({', '.join(['%s'] * len(values))})", list(values.values()))
    upper, overlayWork, logs = work / "etc", work / "etc-work", work / "logs"
    for d in (upper, overlayWork, logs):
        d.mkdir()
    ps = os.path.realpath("/bin/ps")
    shutil.copy2(ps, work / "ps.real")
    (work / "ps").write_text(PS_SHIM.format(ps=work / "ps.real"))
    (work / "ps").chmod(0o755)
    s = db.server
    (upper / "astguiclient.conf").write_text(
        f"PATHhome => {home}\nPATHlogs => {logs}\nVARserver_ip => {serverIP}\n"
        f"VARDB_server => {s.host}\nVARDB_database => {db.name}\nVARDB_user => {db.user}\n"
        f"VARDB_pass => {db.password}\nVARDB_port => {s.port}\n")
    apart = ["--pid", "--fork", "--mount-proc"] if args.instances > 1 else []
    return ["unshare", "--mount", "--propagation", "private", *apart, "/bin/sh", "-c",
            PERL_START_APART if apart else PERL_START, "sh", str(upper), str(overlayWork),
            str(work / "ps"), ps, str(home / listener), str(home / "AST_manager_send.pl")]


# Load


def insertRows(db, rate, callerids, seed, template=INSERT, servers=(SERVER_IP,)):
    """
    Insert a row for each of C{callerids} at Poisson arrivals of C{rate} per
    second, as GUI clients do, on a connection of its own, for each of
    C{servers} in turn; returns the time.time() after each commit, by
    callerid, and how long each INSERT took (execute and commit, seconds).
    """
    connection = db.connect(autocommit=False)
    cursor = connection.cursor()
    cursor.execute("SET SESSION sql_mode=''")
    arrivals = random.Random(seed)
    committed, waits = {}, []
    due = time.perf_counter()
    for n, callerid in enumerate(callerids):
        due += arrivals.expovariate(rate)
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        began = time.perf_counter()
        cursor.execute(template.format(server=servers[n % len(servers)], callerid=callerid,
                                       agent=AGENT, context=CONTEXT, number=f"{n:010d}"))
        connection.commit()
        waits.append(time.perf_counter() - began)
        committed[callerid] = time.time()
    connection.close()
    return committed, waits


class Sampler(threading.Thread):
    """Samples the SUT's memory every 0.2 s."""

    def __init__(self, tree):
        super().__init__(daemon=True)
        self.tree = tree

    def run(self):
        while self.tree.alive():
            self.tree.sampleRSS()
            time.sleep(0.2)


class Run:
    """One bench run: set up, idle, each rate, tear down."""

    def __init__(self, args, extra):
        self.args, self.extra = args, extra
        self.work = Path(tempfile.mkdtemp(prefix="acqs-e2e-"))
        self.db = None
        self.asterisks, self.trees = [], []  # one of each per instance
        self.prefix = f"M{random.randrange(10 ** 6):06d}"

    def log(self, name):
        return open(self.work / name, "ab")

    def setUp(self):
        args = self.args
        self.db = Database(parseURL(args.mysql))
        self.db.initdb(self.work, self.log("initdb.log"))
        if args.engine:
            self.db.query(f"ALTER TABLE vicidial_manager ENGINE={args.engine}")
        perl = args.sut == "perl"
        if perl:
            perlTables(self.db, args.instances)
        for n, serverIP in enumerate(serverIPs(args.instances)):
            work = self.work / f"instance{n}"
            work.mkdir()
            asterisk = Asterisk(args, SEND_SECRET if perl else LISTEN_SECRET,
                                self.log(f"asterisk{n}.log"))
            self.asterisks.append(asterisk)
            if perl:
                command = perlCommand(args, self.db, asterisk.port, work, serverIP)
            else:
                command = acqsCommand(args, self.extra, self.db, asterisk.port, work,
                                      serverIP, f"bench-{n}")
            sutLog = self.log(f"sut{n}.log")
            reaper = subprocess.Popen([sys.executable, str(BENCH / "e2e_reaper.py"), *command],
                                      stdout=sutLog, stderr=sutLog, cwd=work, env=_env(),
                                      start_new_session=True)
            self.trees.append(Tree(reaper))
            Sampler(self.trees[-1]).start()
        deadline = time.monotonic() + 30 + 2 * args.instances
        for asterisk, tree in zip(self.asterisks, self.trees):
            while "listener" not in asterisk.logins:
                if not tree.alive() or time.monotonic() > deadline:
                    raise SystemExit(f"the SUT did not log in to the simulator; see {self.work}")
                time.sleep(0.05)
        time.sleep(args.warmup)
        self.restingProcesses = self.processes()

    def processes(self):
        return sum(len(tree.processes()) for tree in self.trees)

    def sutCPU(self):
        return sum(tree.cpu() for tree in self.trees)

    def simCPU(self):
        return sum(processCPU(a.process.pid) for a in self.asterisks)

    def idle(self):
        """
        (client statements/s, statements/s, SUT %CPU, MariaDB %CPU) with
        the driver quiet: client statements are those sent over the wire
        (the server's Questions, everyone's: run on a quiet server), the
        others also count each statement a wait runs inside the server.
        """
        statements, _ = self.db.userStatistics()
        questions = self.db.questions()
        cpu, server = self.sutCPU(), processCPU(self.db.pid) if self.db.pid else math.nan
        started = time.monotonic()
        self.idleInserts = []
        if self.args.probe_rate:
            count = round(self.args.probe_rate * self.args.idle)
            _, self.idleInserts = insertRows(
                self.db, self.args.probe_rate,
                [f"P{self.prefix[1:]}{n:012d}" for n in range(count)], seed=99,
                template=HANGUP, servers=(PROBE_IP,))
        time.sleep(max(0.0, self.args.idle - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
        statementsAfter, _ = self.db.userStatistics()
        # Minus this method's own SHOW STATUS (one each time).
        clients = (self.db.questions() - questions - 1) / elapsed
        serverAfter = processCPU(self.db.pid) if self.db.pid else math.nan
        return (clients, (statementsAfter - statements) / elapsed,
                100 * (self.sutCPU() - cpu) / elapsed, 100 * (serverAfter - server) / elapsed,
                self.idleInserts)

    def _settle(self, like, count):
        """
        Wait until every row of the rate is final (DEAD; SENT for --load
        hangups), or until none became so for --settle s; then until the SUT
        has no more processes than at rest.
        """
        dead, moved = -1, time.monotonic()
        while time.monotonic() - moved < self.args.settle:
            now = self.db.query("SELECT COUNT(*) FROM vicidial_manager"
                                " WHERE callerid LIKE %s AND status = %s",
                                (like, self.final))[0][0]
            if now >= count:
                break
            if now != dead:
                dead, moved = now, time.monotonic()
            time.sleep(0.25)
        deadline = time.monotonic() + self.args.settle
        while self.processes() > self.restingProcesses and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)  # the simulator reports every 50 ms

    def rate(self, index, rate):
        args = self.args
        count = args.rows or round(rate * args.seconds)
        callerids = [f"{self.prefix}{index:02d}{n:011d}" for n in range(count)]
        like = callerids[0][:9] + "%"
        statements, dbCPU = self.db.userStatistics()
        commits, lockWaits = self.db.commits(), self.db.tableLocksWaited()
        sutCPU, simCPU, ownCPU = self.sutCPU(), self.simCPU(), driverCPU()
        serverCPU, machine, overflows = processCPU(self.db.pid), machineCPU(), listenOverflows()
        for tree in self.trees:
            tree.peakRSS = 0
        started = time.monotonic()
        committed, inserts = insertRows(self.db, rate, callerids, seed=index,
                               template=HANGUP if args.load == "hangups" else INSERT,
                               servers=serverIPs(args.instances))
        self._settle(like, count)
        if not all(tree.alive() for tree in self.trees):
            raise SystemExit(f"the SUT ended during the run; see {self.work}/sut*.log")
        elapsed = time.monotonic() - started
        sutCPU = self.sutCPU() - sutCPU
        simCPU = self.simCPU() - simCPU
        ownCPU = driverCPU() - ownCPU
        serverCPU = processCPU(self.db.pid) - serverCPU
        busy, total = (after - before for after, before in zip(machineCPU(), machine))
        overflows = listenOverflows() - overflows
        statementsAfter, dbCPUAfter = self.db.userStatistics()
        commits = self.db.commits() - commits - count  # but the driver's
        lockWaits = self.db.tableLocksWaited() - lockWaits

        originates, ringing = {}, {}
        for asterisk in self.asterisks:
            originates.update(asterisk.originates)
            ringing.update(asterisk.ringing)
        received = [c for c in callerids if c in originates]
        toAMI = sorted(1000 * (originates[c][0] - committed[c]) for c in received)
        ips = serverIPs(args.instances)
        perInstance = [percentile(sorted(1000 * (originates[c][0] - committed[c])
                                         for n, c in enumerate(callerids)
                                         if n % len(ips) == i and c in originates), 99)
                       for i in range(len(ips))]
        updated = dict(self.db.query(
            "SELECT callerid, at FROM bench_updated WHERE callerid LIKE %s", (like,)))
        toRow = sorted(1000 * (updated[c] - ringing[c]) for c in received
                       if c in updated and c in ringing)
        statuses = dict(self.db.query(
            "SELECT status, COUNT(*) FROM vicidial_manager WHERE callerid LIKE %s"
            " GROUP BY status", (like,)))
        times = sorted(t for c in received for t in originates[c][:1])
        sent = len(received) / (times[-1] - times[0]) if len(times) > 1 else math.nan
        return dict(
            rate=rate, rows=count,
            inserted=(count - 1) / (committed[callerids[-1]] - committed[callerids[0]]),
            sent=sent,
            ami=[percentile(toAMI, p) for p in (50, 95, 99)],
            instanceP99=perInstance,
            inserts=insertWaits(inserts), tableLockWaits=lockWaits,
            row=[percentile(toRow, p) for p in (50, 99)],
            cpu=1000 * sutCPU / max(len(received), 1),
            rss=max(tree.peakRSS for tree in self.trees) / 1024,
            statements=(statementsAfter - statements) / max(len(received), 1),
            commits=commits / max(len(received), 1),
            dbCPU=1000 * (dbCPUAfter - dbCPU) / max(len(received), 1),
            lost=count - len(received),
            twice=sum(1 for c in received if len(originates[c]) > 1),
            left={s: n for s, n in statuses.items() if s != self.final},
            sutPercent=100 * sutCPU / elapsed, simPercent=100 * simCPU / elapsed,
            ownPercent=100 * ownCPU / elapsed, window=elapsed,
            serverPercent=100 * serverCPU / elapsed if self.db.pid else math.nan,
            machinePercent=100 * busy / total, overflows=overflows,
        )

    @property
    def final(self):
        return "SENT" if self.args.load == "hangups" else "DEAD"

    def tearDown(self):
        for part in self.trees + self.asterisks:
            part.stop()
        if self.db is not None:
            self.db.close()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def load():
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def insertWaits(seconds):
    """p50, p99 and max of GUI INSERTs' times (execute and commit), in ms."""
    ordered = sorted(1000 * t for t in seconds)
    return [percentile(ordered, 50), percentile(ordered, 99),
            ordered[-1] if ordered else math.nan]


def report(args, idle, results):
    print(f"{'rate':>5} {'rows':>6} {'in/s':>6} {'sent/s':>6}  {'INSERT->AMI ms':^20}"
          f"  {'event->row ms':^13}  {'CPU ms':>6} {'RSS':>5}  {'DB':>5} {'DB':>5}"
          f" {'DB ms':>5}"
          f"  {'lost':>4} {'twice':>5} {'left':>4}")
    print(f"{'/s':>5} {'':>6} {'':>6} {'':>6}  {'p50':>6} {'p95':>6} {'p99':>6}"
          f"  {'p50':>6} {'p99':>6}  {'/act':>6} {'MB':>5}  {'st/a':>5} {'tx/a':>5}"
          f" {'/act':>5}"
          f"  {'':>4} {'':>5} {'':>4}")
    for r in results:
        print(f"{r['rate']:>5g} {r['rows']:>6} {r['inserted']:>6.0f} {r['sent']:>6.0f}"
              f"  {r['ami'][0]:>6.1f} {r['ami'][1]:>6.1f} {r['ami'][2]:>6.1f}"
              f"  {r['row'][0]:>6.1f} {r['row'][1]:>6.1f}  {r['cpu']:>6.2f} {r['rss']:>5.0f}"
              f"  {r['statements']:>5.1f} {r['commits']:>5.2f} {r['dbCPU']:>5.2f}"
              f"  {r['lost']:>4} {r['twice']:>5} {sum(r['left'].values()):>4}")
    print("in/s, sent/s: rows inserted, Originates received; CPU: the SUT's per action;"
          " DB: its statements,\ntransactions and MariaDB's CPU per action; left: not DEAD"
          " (see the module docstring)")
    print(f"\nidle ({args.idle:g} s): {idle[0]:.1f} client statements/s ({idle[1]:.1f} counting"
          f" those a wait runs in the server), SUT {idle[2]:.2f} % CPU, MariaDB"
          f" {idle[3]:.2f} % CPU")
    cpus = os.cpu_count()
    print(f"\n%CPU over each window (first INSERT until settled), of one core (machine: of"
          f" all {cpus});\nother: the machine's work that is none of these")
    print(f"{'rate':>5} {'window s':>8} {'SUT':>5} {'simulator':>9} {'driver':>6}"
          f" {'MariaDB':>7} {'other':>5} {'machine':>7}  listen overflows")
    for r in results:
        ours = r["sutPercent"] + r["simPercent"] + r["ownPercent"] + r["serverPercent"]
        print(f"{r['rate']:>5g} {r['window']:>8.1f} {r['sutPercent']:>5.0f}"
              f" {r['simPercent']:>9.0f} {r['ownPercent']:>6.0f} {r['serverPercent']:>7.0f}"
              f" {r['machinePercent'] * cpus - ours:>5.0f} {r['machinePercent']:>7.0f}"
              f"  {r['overflows']:>16}")
    if args.probe_rate:
        i = insertWaits(idle[4])
        print(f"\nGUI INSERTs (execute and commit) idle, {args.probe_rate:g}/s for a server no"
              f" SUT serves: p50 {i[0]:.2f} ms, p99 {i[1]:.2f} ms, max {i[2]:.2f} ms")
    for r in results:
        i = r["inserts"]
        print(f"GUI INSERTs at {r['rate']:g}/s: p50 {i[0]:.2f} ms, p99 {i[1]:.2f} ms,"
              f" max {i[2]:.2f} ms; table lock waits {r['tableLockWaits']}; INSERT->AMI p99"
              f" per instance {min(r['instanceP99']):.1f}-{max(r['instanceP99']):.1f} ms")
    for r in results:
        if r["left"]:
            print(f"left behind at {r['rate']:g}/s: "
                  + ", ".join(f"{n} {s}" for s, n in sorted(r["left"].items(), key=str)))


def parse(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Options not listed here are passed on to acqs (twistd acqs --help).")
    parser.add_argument("--sut", choices=("acqs", "perl"), default="acqs")
    parser.add_argument("--vicidial-bin", metavar="DIR",
                        help="with --sut perl: the directory of VICIdial's ACQS scripts")
    parser.add_argument("--rates", default="20,100,500,1000",
                        type=lambda s: [float(r) for r in s.split(",") if r and r != "none"],
                        help="actions per second, comma-separated; none: idle only"
                             " [20,100,500,1000]")
    parser.add_argument("--engine", choices=("InnoDB", "MyISAM"),
                        help="vicidial_manager's engine [acqs initdb's: InnoDB]; VICIdial's"
                             " own table is MyISAM")
    parser.add_argument("--probe-rate", type=float, default=0.0,
                        help="during the idle window, GUI INSERTs per second for a server no"
                             " SUT serves, each timed [0: none]")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the figures as JSON (bench/compare.py reads them)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--seconds", type=float, default=15.0,
                      help="seconds of load per rate [15: 300 rows at 20/s]")
    size.add_argument("--rows", type=int, help="rows per rate, whatever the rate")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle measurement")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds between start-up and the idle measurement")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="give up waiting for rows to reach DEAD after this many seconds"
                             " in which none did [60: longer than acqs' longest pause]")
    parser.add_argument("--load", choices=("calls", "hangups"), default="calls",
                        help="rows: Originates of calls that ring, are answered and end, or"
                             " Hangups of channels that do not exist (answered at once, no"
                             " call: the sender alone) [calls]")
    parser.add_argument("--instances", type=int, default=1,
                        help="acqs instances, each for a server IP of its own with its own"
                             " simulated Asterisk, on the one database; the rate is their"
                             " sum [1]")
    parser.add_argument("--ring", type=float, default=0.2, help="carrier ring seconds")
    parser.add_argument("--hold", type=float, default=0.5, help="carrier talk seconds")
    parser.add_argument("--dialect", choices=sorted(PERL_LISTENERS), default="asterisk22",
                        help="which Asterisk the simulator plays [asterisk22]")
    parser.add_argument("--mysql", default=os.environ.get(
        "ACQS_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test"),
        help="a MariaDB server where a scratch database and user may be created")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (logs, config) and name it")
    args, extra = parser.parse_known_args(argv)
    if args.sut == "perl" and (not args.vicidial_bin or extra):
        parser.error("--sut perl takes --vicidial-bin DIR and no acqs options")
    return args, extra


def main(argv):
    args, extra = parse(argv)
    sys.setswitchinterval(0.0005)  # the inserter's clock waits less for the GIL
    run = Run(args, extra)
    try:
        run.setUp()
        print(f"{' '.join([args.sut, *extra])} ({args.dialect}) on MariaDB {run.db.version},"
              f" {os.cpu_count()} CPUs, {load()}")
        idle = run.idle()
        results = [run.rate(i, rate) for i, rate in enumerate(args.rates)]
        print(f"after the run: {load()}\n")
        report(args, idle, results)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(sut=args.sut, options=extra, instances=args.instances,
                               engine=args.engine or "InnoDB", load=os.getloadavg(),
                               idle=dict(clientStatements=idle[0], statements=idle[1],
                                         sutPercent=idle[2], serverPercent=idle[3],
                                         inserts=insertWaits(idle[4])),
                               rates=results), f, indent=1)
    finally:
        run.tearDown()
        if args.keep:
            print(f"logs and config kept in {run.work}")


if __name__ == "__main__":
    main(sys.argv[1:])

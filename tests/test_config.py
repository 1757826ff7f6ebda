"""Tests for acqs.config: where each setting comes from."""

import os
import socket

import attr

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from acqs.config import OPTIONS, Settings, loadSettings, readAstguiclient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# /etc/astguiclient.conf as VICIdial's install.pl writes it.
ASTGUICLIENT = """\
# Paths used by astGUIclient
PATHhome => /usr/share/astguiclient
PATHlogs => /var/log/astguiclient
# The IP address of this machine
VARserver_ip => 10.0.0.4
# Database connection information
VARDB_server => localhost
VARDB_database => asterisk
VARDB_user => cron
VARDB_pass => 1234
VARDB_custom_user => custom
VARDB_custom_pass => custom1234
VARDB_port => 3306
VARactive_keepalives => 12345689EC
"""


class LoadTestCase(SynchronousTestCase):
    def setUp(self):
        self.env = {}
        self.astguiclient = self.mktemp()  # absent unless a test writes it
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def write(self, text: str, mode: int = 0o600) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def ini(self, text: str, mode: int = 0o600) -> str:
        return self.write("[acqs]\n" + text, mode)

    def load(self, **options) -> Settings:
        options = {k.replace("_", "-"): v for k, v in options.items()}
        return loadSettings(options, self.env, self.astguiclient)

    def loadVICIdial(self, text: str = ASTGUICLIENT, **options) -> Settings:
        self.astguiclient = self.write(text)
        return self.load(**options)

    def refused(self, **options) -> str:
        return str(self.assertRaises(usage.UsageError, self.load, **options))

    def warnings(self) -> str:
        return "\n".join(e["log_format"].format(**e) for e in self.logged)


class DefaultsTests(LoadTestCase):
    def test_defaults(self):
        """With only a server IP and a secret, every other setting has its documented default."""
        s = self.load(server_ip="10.0.0.9", send_secret="s")
        self.assertEqual(
            (s.db, s.db_password, s.ami, s.send_user, s.listen_user, s.md5),
            ("mysql://cron@127.0.0.1:3306/asterisk", None, "tcp:host=127.0.0.1:port=5038",
             "cron", "cron", False),
        )
        self.assertEqual(
            (s.poll_interval, s.linger, s.max_sessions, s.action_timeout, s.stale_after),
            (0.01, 10.0, 50, 10.0, 60.0),
        )
        self.assertEqual((s.status_file, s.json_log, s.roll_logs, s.demo),
                         ("acqs.status.json", None, False, False))
        self.assertEqual(s.instance, socket.gethostname()[:64])

    def test_demoNeedsNothing(self):
        """--demo starts with no server IP, secret, database or astguiclient.conf."""
        s = self.load(demo=1)
        self.assertTrue(s.demo)
        self.assertEqual((s.send_secret, s.listen_secret), ("", ""))

    def test_demoIgnoresAstguiclient(self):
        """--demo does not read /etc/astguiclient.conf, even a broken one."""
        s = self.loadVICIdial("VARserver_ip => nonsense\n", demo=1)
        self.assertEqual(s.server_ip, "127.0.0.1")


class AstguiclientTests(LoadTestCase):
    def test_vicidialBoxNeedsNoDatabaseSettings(self):
        """On a VICIdial box the server IP and database come from astguiclient.conf."""
        s = self.loadVICIdial(send_secret="s")
        self.assertEqual(s.server_ip, "10.0.0.4")
        self.assertEqual(s.db, "mysql://cron@localhost:3306/asterisk")
        self.assertEqual(s.db_password, "1234")

    def test_parsedLikeVICIdial(self):
        """Spaces, tabs and '>' go, '#'/';' start comments, the last '=' and line win."""
        values = readAstguiclient(self.write(
            "VARserver_ip\t=>  10.0.0.1 # first\n"
            "VARserver_ip => 10.0.0.7 ; the one used\n"
            "VARDB_server => db . example\n"
            "VARDB_database => a=b=vici\n"
            "VARDB_user => old\n"
            "VARDB_username => new\n"
            "VARDB_pass => p#rt\n"
            "VARDB_port =>\n"
        ))
        self.assertEqual(values, {
            "server-ip": "10.0.0.7",
            "db": "mysql://new@db.example:3306/vici",
            "db-password": "p",
        })

    def test_incompleteDatabaseIgnored(self):
        """Without VARDB_database the built-in database is used, and a warning says why."""
        s = self.loadVICIdial("VARserver_ip => 10.0.0.4\nVARDB_server => db1\n", send_secret="s")
        self.assertEqual(s.db, "mysql://cron@127.0.0.1:3306/asterisk")
        self.assertIn("names no complete database", self.warnings())

    def test_missingServerIP(self):
        """Without astguiclient.conf or --server-ip, acqs says where a server IP can be given."""
        self.assertIn("--server-ip", self.refused(send_secret="s"))

    def test_badServerIP(self):
        """A VARserver_ip that is no IPv4 address is refused, naming the file."""
        e = self.assertRaises(
            usage.UsageError, self.loadVICIdial, "VARserver_ip => dialer\n", send_secret="s"
        )
        self.assertIn(f"VARserver_ip in {self.astguiclient}", str(e))


class INITests(LoadTestCase):
    def test_iniBeatsAstguiclient(self):
        """Settings in --config beat astguiclient.conf's; its URL then loses VARDB_pass."""
        config = self.ini("server-ip = 10.0.0.5\ndb = mysql://acqs@db2:3307/vici\n")
        s = self.loadVICIdial(config=config, send_secret="s")
        self.assertEqual((s.server_ip, s.db, s.db_password),
                         ("10.0.0.5", "mysql://acqs@db2:3307/vici", None))

    def test_commandLineBeatsINI(self):
        """A command-line option beats the same setting in --config."""
        config = self.ini("poll-interval = 1\nmax_sessions = 7\nlinger = 3\n")
        s = self.load(config=config, server_ip="10.0.0.9", send_secret="s", linger=0.0)
        self.assertEqual((s.poll_interval, s.max_sessions, s.linger), (1.0, 7, 0.0))

    def test_everyKey(self):
        """Every documented key is read from the INI file and parsed."""
        config = self.ini(
            "server-ip = 10.0.0.5\ninstance = a1\ndb = sqlite:///var/lib/acqs/q.db\n"
            "ami = unix:path=/run/ami.sock\nmd5 = yes\nsend-user = s\nsend-secret = x\n"
            "listen-user = l\npoll-interval = 0.5\nlinger = 0\nmax-sessions = 3\n"
            "action-timeout = 4\nstale-after = 9\nstatus-file =\n"
            "json-log = /tmp/j.json\nroll-logs = on\n"
        )
        s = self.load(config=config)
        self.assertEqual(
            (s.server_ip, s.instance, s.db, s.ami, s.md5, s.send_user, s.listen_user),
            ("10.0.0.5", "a1", "sqlite:///var/lib/acqs/q.db", "unix:path=/run/ami.sock",
             True, "s", "l"),
        )
        self.assertEqual(
            (s.poll_interval, s.linger, s.max_sessions, s.action_timeout, s.stale_after,
             s.status_file, s.json_log, s.roll_logs),
            (0.5, 0.0, 3, 4.0, 9.0, None, "/tmp/j.json", True),
        )

    def test_sampleListsEveryKeyWithItsDefault(self):
        """etc/acqs.ini.sample has a line for every INI key, showing its default (where it
        has one: the server IP and instance name are examples), and README.rst documents
        every option."""
        with open(os.path.join(ROOT, "etc", "acqs.ini.sample")) as f:
            sample = dict(line[1:].split("=", 1) for line in f.read().splitlines()
                          if line.startswith(";") and "=" in line)
        sample = {k.strip(): v.strip() for k, v in sample.items()}
        with open(os.path.join(ROOT, "README.rst")) as f:
            readme = f.read()
        defaults = attr.fields_dict(Settings)
        for option in OPTIONS:
            self.assertIn(f"``--{option.name}", readme)
            if not option.inINI:
                continue
            self.assertIn(option.name, sample)
            field = defaults.get(option.field)
            if field is None or field.default in (None, attr.NOTHING) or option.name in (
                    "server-ip", "instance"):
                continue
            self.assertEqual(option.parse(sample[option.name]), field.default, option.name)

    def test_unknownKey(self):
        """A misspelt key is refused by name, not silently ignored."""
        message = self.refused(config=self.ini("pol-interval = 1\n"))
        self.assertIn("unknown setting 'pol-interval'", message)

    def test_unknownSection(self):
        """Settings outside [acqs] are refused."""
        message = self.refused(config=self.write("[acqs]\n[database]\ndb = x\n"))
        self.assertIn("unknown section [database]", message)

    def test_noSection(self):
        """A file without a section header says it must start with [acqs]."""
        self.assertIn("[acqs]", self.refused(config=self.write("linger = 1\n")))

    def test_badLineHidesItsText(self):
        """A line without '=' is reported by number, never by content (it may be a secret)."""
        message = self.refused(config=self.ini("linger = 1\nhunter2\n"))
        self.assertIn("line 3", message)
        self.assertNotIn("hunter2", message)

    def test_badNumber(self):
        """A value out of range is refused, naming the key and the file."""
        config = self.ini("max-sessions = 0\n")
        message = self.refused(config=config, server_ip="10.0.0.9", send_secret="s")
        self.assertEqual(message, f"max-sessions in {config} must be 1 or more, not 0")

    def test_badBoolean(self):
        """A flag that is not yes/no is refused."""
        message = self.refused(config=self.ini("md5 = maybe\n"), demo=1)
        self.assertIn("'maybe' is not yes or no", message)

    def test_missingFile(self):
        """An unreadable --config file is named in the error."""
        self.assertIn("cannot read the --config file", self.refused(config=self.mktemp()))


class CommandLineChecksTests(LoadTestCase):
    def test_ranges(self):
        """Numbers out of range on the command line are refused with the option name."""
        for option, value, expected in [
            ("poll_interval", 0.0, "--poll-interval must be more than 0, not 0"),
            ("idle_poll_interval", -1.0, "--idle-poll-interval must be more than 0, not -1"),
            ("wakeup", "binlog", "--wakeup must be one of auto, wait, poll, not 'binlog'"),
            ("linger", -1.0, "--linger must be 0 or more, not -1"),
            ("action_timeout", float("inf"), "--action-timeout must be more than 0, not inf"),
            ("stale_after", float("nan"), "--stale-after must be more than 0, not nan"),
        ]:
            self.assertEqual(self.refused(demo=1, **{option: value}), expected)

    def test_badEndpoint(self):
        """An --ami that is no endpoint string is refused with an example."""
        self.assertIn("tcp:host=127.0.0.1:port=5038", self.refused(demo=1, ami="tpc:x"))

    def test_badDatabaseURLHidesPassword(self):
        """A malformed --db URL is refused without showing its password."""
        message = self.refused(demo=1, db="mysql://cron:hunter2@db1")
        self.assertIn("not a database URL", message)
        self.assertNotIn("hunter2", message)

    def test_longInstance(self):
        """An instance name longer than its column is refused."""
        self.assertIn("1 to 64 characters", self.refused(demo=1, instance="x" * 65))


class SecretTests(LoadTestCase):
    def test_commandLineSecretBeatsAllAndWarns(self):
        """--send-secret beats every other source, with a warning that ps shows it."""
        self.env["ACQS_SEND_SECRET"] = "from-env"
        s = self.load(server_ip="10.0.0.9", send_secret="cli",
                      send_secret_file=self.write("file\n"),
                      config=self.ini("send-secret = ini\n"))
        self.assertEqual(s.send_secret, "cli")
        self.assertIn("--send-secret on the command line can be read by every user with ps",
                      self.warnings())

    def test_secretFileBeatsEnvironment(self):
        """--send-secret-file beats ACQS_SEND_SECRET; only its first line counts."""
        self.env["ACQS_SEND_SECRET"] = "from-env"
        s = self.load(server_ip="10.0.0.9", send_secret_file=self.write("file\r\nmore\n"))
        self.assertEqual(s.send_secret, "file")
        self.assertEqual(self.warnings(), "")

    def test_environmentBeatsINI(self):
        """ACQS_SEND_SECRET and ACQS_LISTEN_SECRET beat the INI file's secrets."""
        self.env.update(ACQS_SEND_SECRET="send-env", ACQS_LISTEN_SECRET="listen-env")
        config = self.ini("send-secret = a\nlisten-secret = b\n")
        s = self.load(server_ip="10.0.0.9", config=config)
        self.assertEqual((s.send_secret, s.listen_secret), ("send-env", "listen-env"))

    def test_emptyEnvironmentIgnored(self):
        """An empty ACQS_SEND_SECRET counts as unset."""
        self.env["ACQS_SEND_SECRET"] = ""
        s = self.load(server_ip="10.0.0.9", config=self.ini("send-secret = ini\n"))
        self.assertEqual(s.send_secret, "ini")

    def test_iniSecretThenFile(self):
        """In the INI file, send-secret beats send-secret-file, which is used alone."""
        path = self.write("from-file\n")
        both = self.load(server_ip="10.0.0.9",
                         config=self.ini(f"send-secret = lit\nsend-secret-file = {path}\n"))
        alone = self.load(server_ip="10.0.0.9", config=self.ini(f"send-secret-file = {path}\n"))
        self.assertEqual((both.send_secret, alone.send_secret), ("lit", "from-file"))

    def test_listenDefaultsToSend(self):
        """With one AMI secret given, both the sender and the listener use it."""
        self.assertEqual(self.load(server_ip="10.0.0.9", send_secret="s").listen_secret, "s")
        self.env["ACQS_LISTEN_SECRET"] = "l"
        self.assertEqual(self.load(server_ip="10.0.0.9").send_secret, "l")

    def test_missingSecret(self):
        """Without any AMI secret the settings load with none: on a VICIdial server it comes
        from the servers row (acqs.app refuses to start where none is found)."""
        s = self.load(server_ip="10.0.0.9")
        self.assertEqual((s.send_secret, s.listen_secret), ("", ""))
        self.assertNotIn("send_secret", s.given)

    def test_givenSettings(self):
        """Settings.given names what the command line, the INI file and astguiclient.conf
        gave, and the secrets given anywhere: those beat VICIdial's servers row."""
        self.env["ACQS_SEND_SECRET"] = "s"
        s = self.load(server_ip="10.0.0.9", config=self.ini("listen-user = l\n"))
        self.assertEqual(s.given, {"server_ip", "listen_user", "send_secret", "listen_secret"})
        del self.env["ACQS_SEND_SECRET"]
        self.assertEqual(self.loadVICIdial(send_user="u").given,
                         {"server_ip", "db", "send_user"})

    def test_emptySecretFile(self):
        """An empty secret file is refused."""
        path = self.write("\n")
        self.assertIn(f"the send secret file {path} is empty",
                      self.refused(server_ip="10.0.0.9", send_secret_file=path))

    def test_unreadableSecretFile(self):
        """A missing secret file is refused with the system's reason."""
        path = self.mktemp()
        self.assertEqual(
            self.refused(server_ip="10.0.0.9", listen_secret_file=path),
            f"cannot read the listen secret file {path}: No such file or directory",
        )

    def test_publicSecretFileWarned(self):
        """A secret file every user can read is warned about."""
        path = self.write("s\n", mode=0o644)
        self.load(server_ip="10.0.0.9", send_secret_file=path)
        self.assertIn(f"{path} holds the send secret and every user can read it",
                      self.warnings())

    def test_lineBreakRefusedQuietly(self):
        """A secret with a line break is refused without showing it."""
        message = self.refused(server_ip="10.0.0.9", send_secret="a\r\nAction: x")
        self.assertIn("line break", message)
        self.assertNotIn("Action", message)


class DatabasePasswordTests(LoadTestCase):
    def test_commandLineURLPassword(self):
        """A password in --db is used, kept out of Settings.db, and warned about."""
        self.env["ACQS_DB_PASSWORD"] = "env"
        s = self.load(server_ip="10.0.0.9", send_secret="s", db="mysql://u:p%40ss@db1/vici")
        self.assertEqual((s.db, s.db_password), ("mysql://u@db1/vici", "p@ss"))
        self.assertIn("password in --db", self.warnings())

    def test_fileBeatsEnvironmentBeatsINI(self):
        """--db-password-file beats ACQS_DB_PASSWORD, which beats the INI file."""
        config = self.ini("db = mysql://u:url@db1/vici\ndb-password = ini\n")
        self.env["ACQS_DB_PASSWORD"] = "env"
        withFile = self.load(server_ip="10.0.0.9", send_secret="s", config=config,
                             db_password_file=self.write("file\n"))
        withEnv = self.load(server_ip="10.0.0.9", send_secret="s", config=config)
        del self.env["ACQS_DB_PASSWORD"]
        withINI = self.load(server_ip="10.0.0.9", send_secret="s", config=config)
        self.assertEqual([withFile.db_password, withEnv.db_password, withINI.db_password],
                         ["file", "env", "ini"])
        self.assertEqual(withINI.db, "mysql://u@db1/vici")

    def test_iniURLPassword(self):
        """A password in the INI file's db URL is used when nothing else gives one."""
        s = self.load(server_ip="10.0.0.9", send_secret="s",
                      config=self.ini("db = mysql://u:url@db1/vici\n"))
        self.assertEqual(s.db_password, "url")

    def test_environmentBeatsVARDBpass(self):
        """ACQS_DB_PASSWORD beats VARDB_pass for astguiclient.conf's database."""
        self.env["ACQS_DB_PASSWORD"] = "env"
        self.assertEqual(self.loadVICIdial(send_secret="s").db_password, "env")

    def test_emptyPasswordFile(self):
        """An empty database password file means no password."""
        s = self.load(server_ip="10.0.0.9", send_secret="s", db_password_file=self.write(""))
        self.assertIsNone(s.db_password)


class ReprTests(SynchronousTestCase):
    def test_reprHidesSecrets(self):
        """Settings can be logged: secrets, the DB password and a URL password show as ***."""
        s = Settings(db="mysql://cron:urlpw@db1:3306/asterisk", db_password="dbpw",
                     send_secret="sendpw", listen_secret="listenpw")
        for text in (repr(s), str(s)):
            for secret in ("urlpw", "dbpw", "sendpw", "listenpw"):
                self.assertNotIn(secret, text)
            self.assertIn("db='mysql://cron:***@db1:3306/asterisk'", text)
            self.assertIn("send_secret='***'", text)

    def test_reprShowsUnsetSecrets(self):
        """An unset secret shows as empty, so a missing one can be told from a hidden one."""
        self.assertIn("db_password=None", repr(Settings()))
        self.assertIn("send_secret=''", repr(Settings()))

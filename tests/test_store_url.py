"""
Database URLs: what they name, and that they never show a password.
"""

from twisted.trial.unittest import SynchronousTestCase

from acqs.store.url import MYSQL, SQLITE, DatabaseURL, hidePassword, parseURL, withoutPassword


class ParseTests(SynchronousTestCase):
    """parseURL reads the two kinds of URL an operator writes."""

    def test_mysql(self):
        """A MySQL URL gives user, password, host, port and database."""
        self.assertEqual(
            parseURL("mysql://cron:1234@10.0.0.4:3307/asterisk"),
            DatabaseURL(MYSQL, "asterisk", "10.0.0.4", 3307, "cron", "1234"),
        )

    def test_mysqlDefaults(self):
        """The port defaults to 3306, the password to none; mariadb:// means mysql://."""
        self.assertEqual(
            parseURL("mariadb://root@localhost/test"),
            DatabaseURL(MYSQL, "test", "localhost", 3306, "root", None),
        )

    def test_percentEncoding(self):
        """User and password may be percent-encoded, for characters such as @ : /."""
        url = parseURL("mysql://cron%40box:p%40ss%3Aw%2Frd@db/asterisk")
        self.assertEqual((url.user, url.password), ("cron@box", "p@ss:w/rd"))

    def test_sqlite(self):
        """sqlite:///path names an absolute file (four slashes too), sqlite:path a relative one."""
        self.assertEqual(
            parseURL("sqlite:///var/lib/acqs/queue.db"),
            DatabaseURL(SQLITE, "/var/lib/acqs/queue.db"),
        )
        self.assertEqual(
            parseURL("sqlite:////var/lib/acqs/queue.db").database, "/var/lib/acqs/queue.db"
        )
        self.assertEqual(parseURL("sqlite:queue.db").database, "queue.db")

    def test_malformed(self):
        """Malformed URLs raise ValueError with a sentence that says what is expected."""
        for text, expected in [
            ("postgres://db/x", "starts with mysql:// or sqlite:"),
            ("/var/lib/acqs.db", "starts with mysql:// or sqlite:"),
            ("mysql://cron@db", "names a host and a database"),
            ("mysql://cron@db:port/x", "bad port"),
            ("mysql://cron@db/x?ssl=1", "unexpected ?query"),
            ("sqlite://host/x.db", "has no host"),
            ("sqlite:///", "names no file"),
        ]:
            with self.assertRaises(ValueError) as caught:
                parseURL(text)
            self.assertIn(expected, str(caught.exception))


class SecretTests(SynchronousTestCase):
    """A password never shows when a URL is printed, logged or refused."""

    def test_strAndRepr(self):
        """str and repr show *** for the password, and the rest of the URL."""
        url = parseURL("mysql://cron:hunter2@db:3306/asterisk")
        self.assertEqual(str(url), "mysql://cron:***@db:3306/asterisk")
        self.assertEqual(repr(url), "DatabaseURL('mysql://cron:***@db:3306/asterisk')")
        self.assertEqual(
            str(parseURL("mysql://cron@db/asterisk")), "mysql://cron@db:3306/asterisk"
        )
        self.assertEqual(str(parseURL("sqlite:///tmp/q.db")), "sqlite:///tmp/q.db")

    def test_errors(self):
        """A malformed URL's error text hides its password."""
        for text in ("mysql://cron:hunter2@db:port/x", "mysql://cron:hunter2@db/x?a=1"):
            with self.assertRaises(ValueError) as caught:
                parseURL(text)
            self.assertNotIn("hunter2", str(caught.exception))
            self.assertIn("cron:***@db", str(caught.exception))

    def test_withPassword(self):
        """withPassword replaces the URL's password; None keeps it."""
        url = parseURL("mysql://cron:old@db/asterisk")
        self.assertEqual(url.withPassword("new").password, "new")
        self.assertEqual(url.withPassword(None).password, "old")


class PasswordTests(SynchronousTestCase):
    def test_hidePassword(self):
        """A URL's password is shown as ***, whatever it holds; a URL without one is unchanged."""
        self.assertEqual(hidePassword("mysql://cron:p%40ss@db:3306/asterisk"),
                         "mysql://cron:***@db:3306/asterisk")
        self.assertEqual(hidePassword("mysql://cron@db/asterisk"), "mysql://cron@db/asterisk")

    def test_withoutPassword(self):
        """The password is taken out of a URL and decoded."""
        self.assertEqual(withoutPassword("mysql://cron:p%40ss@db:3306/asterisk"),
                         ("mysql://cron@db:3306/asterisk", "p@ss"))
        self.assertEqual(withoutPassword("sqlite:///x.db"), ("sqlite:///x.db", None))


class UnencodedPasswordTests(SynchronousTestCase):
    """Passwords holding URL delimiters, written unencoded, stay whole and never show."""

    PASSWORDS = ("pa/ss", "pa#ss", "pa?ss", "p@ss", "a/b#c?d@e:f")

    def test_parsed(self):
        """The password is everything between the user's colon and the last @."""
        for password in self.PASSWORDS:
            url = parseURL(f"mysql://cron:{password}@db1:3307/asterisk")
            self.assertEqual((url.user, url.password, url.host, url.port, url.database),
                             ("cron", password, "db1", 3307, "asterisk"), password)

    def test_neverShown(self):
        """Neither errors, nor hidePassword, nor withoutPassword echo such a password."""
        for password in self.PASSWORDS:
            for text in (f"mysql://cron:{password}@db1:port/asterisk",
                         f"mysql://cron:{password}@db1",
                         f"mysql://cron:{password}@db1/asterisk?ssl=1"):
                with self.assertRaises(ValueError) as caught:
                    parseURL(text)
                self.assertNotIn(password, str(caught.exception), text)
                self.assertIn("cron:***@db1", str(caught.exception), text)
            text = f"mysql://cron:{password}@db1/asterisk"
            self.assertEqual(hidePassword(text), "mysql://cron:***@db1/asterisk")
            self.assertEqual(withoutPassword(text), ("mysql://cron@db1/asterisk", password))


class TypoTests(SynchronousTestCase):
    """A mistyped URL never shows its password, however broken it is."""

    def test_slashesMissing(self):
        """mysql:/user:pw@host/db and mysql:user:pw@host/db: refused, the password hidden."""
        for text in ("mysql:/cron:s3cr3t@db1/asterisk", "mysql:cron:s3cr3t@db1/asterisk",
                     "mysql:///cron:s3cr3t@db1/asterisk"):
            with self.assertRaises(ValueError) as caught:
                parseURL(text)
            self.assertNotIn("s3cr3t", str(caught.exception), text)
            self.assertIn("cron:***@db1/asterisk", str(caught.exception), text)
            self.assertNotIn("s3cr3t", hidePassword(text), text)

    def test_atMissing(self):
        """mysql://user:pw/host (the @ left out): the error hides what stands as the port."""
        with self.assertRaises(ValueError) as caught:
            parseURL("mysql://cron:s3cr3t/asterisk")
        self.assertEqual(str(caught.exception),
                         "bad port in database URL mysql://cron:***/asterisk")

    def test_sqlitePathKept(self):
        """An SQLite path holding : and @ is a path, not a password."""
        self.assertEqual(withoutPassword("sqlite:///a:b@c.db"), ("sqlite:///a:b@c.db", None))
        self.assertEqual(parseURL("sqlite:///a:b@c.db").database, "/a:b@c.db")

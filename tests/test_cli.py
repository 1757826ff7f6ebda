"""Tests for the acqs command itself: its version, and how usage errors end."""

import contextlib
import io
from importlib import metadata

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from acqs._version import __version__
from acqs.cli import USAGE, main
from acqs.health import UNKNOWN


def run(*argv):
    """C{(status, stdout, stderr)} of C{acqs ARGV} in this process, argparse's exits included."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv), out, err)
        except SystemExit as e:
            status = e.code
    return status, out.getvalue(), err.getvalue()


class VersionTests(SynchronousTestCase):
    def test_version(self):
        """acqs --version prints the package's one version string and exits 0."""
        self.assertEqual(run("--version"), (0, f"acqs {__version__}\n", ""))

    def test_installedMetadataAgrees(self):
        """The installed distribution's version is the one in acqs/_version.py."""
        try:
            installed = metadata.version("acqs")
        except metadata.PackageNotFoundError:
            raise SkipTest("acqs is not installed in this Python") from None
        self.assertEqual(installed, __version__)


class UsageTests(SynchronousTestCase):
    def test_badStatus(self):
        """acqs rows --status BOGUS is a usage error with its own code, not 'no rows'."""
        status, out, err = run("rows", "--status", "BOGUS", "--db", "sqlite:///nowhere.db")
        self.assertEqual((status, out), (USAGE, ""))
        self.assertIn("--status: invalid choice: 'BOGUS'", err)

    def test_negativeLimit(self):
        """acqs rows --limit -1 (or 0) is a usage error, not the database's."""
        for limit in ("-1", "0", "many"):
            status, out, err = run("rows", "--limit", limit, "--db", "sqlite:///nowhere.db")
            self.assertEqual((status, out), (USAGE, ""), limit)
            self.assertIn("--limit", err)
            self.assertNotIn("database", err)

    def test_codesApart(self):
        """A usage error's code is none of the tools' others (0-3: --timeout is 2)."""
        self.assertNotIn(USAGE, (0, 1, 2, 3))

    def test_healthUsageIsUnknown(self):
        """acqs health with a bad argument exits 3 (Nagios' UNKNOWN), never a restart code."""
        status, _, err = run("health", "--max-age", "soon")
        self.assertEqual(status, UNKNOWN)
        self.assertIn("--max-age", err)


class DatabaseTypoTests(SynchronousTestCase):
    def test_neverShowsPassword(self):
        """A mistyped --db (mysql:/user:pw@host/db) is refused without its password."""
        typo = "mysql:/cron:s3cr3t@db1/asterisk"
        for argv in (("rows", "--server-ip", "10.0.0.4", "--db", typo,
                      "--astguiclient", "/nonexistent"),
                     ("trace", "1", "--db", typo, "--astguiclient", "/nonexistent"),
                     ("initdb", "--db", typo)):
            status, out, err = run(*argv)
            self.assertNotEqual(status, 0, argv)
            self.assertIn("cron:***@db1/asterisk", err, argv)
            self.assertNotIn("s3cr3t", out + err, argv)

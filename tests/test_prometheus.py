"""
The Prometheus side, checked by Prometheus' own promtool where the machine
has it (Debian's prometheus package): the example alert rules, their
behaviour on made-up series, and every query of the Grafana dashboard.
"""

import json
import os
import shutil
import subprocess

from twisted.trial.unittest import SkipTest, SynchronousTestCase

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMTOOL = shutil.which("promtool")


def promtool(testCase, *arguments, cwd=SOURCE) -> str:
    """Run promtool; fail with its output unless it succeeds."""
    if PROMTOOL is None:
        raise SkipTest("no promtool on this machine (Debian: apt-get install prometheus)")
    result = subprocess.run([PROMTOOL, *arguments], cwd=cwd, capture_output=True, text=True,
                            timeout=120)
    testCase.assertEqual(result.returncode, 0, result.stdout + result.stderr)
    return result.stdout + result.stderr


class AlertRuleTests(SynchronousTestCase):
    def test_checked(self):
        """etc/acqs-alerts.yml passes promtool check rules."""
        self.assertIn("SUCCESS", promtool(self, "check", "rules", "etc/acqs-alerts.yml"))

    def test_fire(self):
        """The NEW-backlog and refused-login alerts fire on a box whose rows pile up and
        whose login is refused, and not on a healthy one (promtool test rules)."""
        self.assertIn("SUCCESS", promtool(self, "test", "rules", "acqs-alerts.test.yml",
                                          cwd=os.path.join(SOURCE, "tests", "data")))


class DashboardTests(SynchronousTestCase):
    def test_queriesParse(self):
        """Every query of etc/grafana-acqs.json is valid PromQL (as a recording rule,
        with its template variables filled in)."""
        with open(os.path.join(SOURCE, "etc", "grafana-acqs.json"), encoding="utf-8") as f:
            dashboard = json.load(f)
        rules = [{"record": f"dashboard:panel{panel['id']}:{target['refId']}",
                  "expr": target["expr"].replace("$instance", ".*")}
                 for panel in dashboard["panels"] for target in panel["targets"]]
        self.assertGreater(len(rules), 20)
        path = os.path.abspath(self.mktemp() + ".yml")
        with open(path, "w") as f:
            json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)  # YAML holds JSON
        self.assertIn(f"SUCCESS: {len(rules)} rules found", promtool(self, "check", "rules", path))

    def test_whatOperatorsAskFor(self):
        """The dashboard has an up panel that is red without data, the NEW backlog,
        memory, and server IP and instance variables."""
        with open(os.path.join(SOURCE, "etc", "grafana-acqs.json"), encoding="utf-8") as f:
            dashboard = json.load(f)
        exprs = {target["expr"] for panel in dashboard["panels"] for target in panel["targets"]}
        self.assertIn('min(up{instance=~"$instance"}) or on() vector(0)', exprs)
        self.assertTrue(any("acqs_new_rows" in e for e in exprs))
        self.assertTrue(any("acqs_new_oldest_age_seconds" in e for e in exprs))
        self.assertTrue(any("process_resident_memory_bytes" in e for e in exprs))
        self.assertTrue(any("acqs_claim_to_send_seconds" in e for e in exprs))
        names = [v["name"] for v in dashboard["templating"]["list"]]
        self.assertEqual(names, ["datasource", "server_ip", "acqs_instance", "instance"])

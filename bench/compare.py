"""
acqs beside VICIdial's Perl ACQS: bench/e2e.py run for each, in turn, on
the same machine and database server, and their figures side by side with
ranges over the runs and the ratio acqs / Perl.

    python bench/compare.py --vicidial-bin DIR [--runs 2] [--perl-rates 20]
                            [E2E OPTIONS ...] [-- ACQS OPTIONS ...]

Every option not listed here goes to both e2e.py runs (e.g. --rates 20
--idle 60 --mysql URL --instances 20 --engine MyISAM --probe-rate 5); those
after a lone -- go to acqs only.  --perl-rates gives the Perl runs other
rates (none: idle only, as 20 Perl pairs cannot carry 100 rows/s on two
cores: each action forks a Perl child of about 40 ms of CPU).  The runs
alternate (acqs, Perl, acqs, Perl ...), so that the machine's other work
falls on both; repeat when the load average was high, and compare ranges.

The table: idle MariaDB CPU (% of one core, the whole server process) and
the SUT's statements per second; for each rate, INSERT->AMI p50/p99 and the
largest instance's p99, MariaDB CPU per action (USER_STATISTICS of the
SUT's user) and the whole server's %CPU, statements and transactions per
action, and GUI INSERTs' times (p50/p99/max); lost and sent twice.  Each
e2e.py run's own output is kept beside the JSON in --out.
"""

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def span(values, digits=1):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "-"
    low, high = min(values), max(values)
    if round(low, digits) == round(high, digits):
        return f"{low:.{digits}f}"
    return f"{low:.{digits}f}-{high:.{digits}f}"


def ratio(ours, theirs):
    ours = [v for v in ours if not math.isnan(v)]
    theirs = [v for v in theirs if not math.isnan(v)]
    if not ours or not theirs or min(theirs) <= 0:
        return "-"
    low, high = min(ours) / max(theirs), max(ours) / min(theirs)
    return f"{low:.2f}-{high:.2f}" if round(low, 2) != round(high, 2) else f"{low:.2f}"


def run(name, command, out):
    """One e2e.py run; its JSON figures."""
    figures = out / f"{name}.json"
    with open(out / f"{name}.txt", "w") as log:
        print(f"{time.strftime('%H:%M:%S')} {name}: {' '.join(command)}", file=log, flush=True)
        subprocess.run([sys.executable, str(BENCH / "e2e.py"), *command, "--json",
                        str(figures)], stdout=log, stderr=subprocess.STDOUT, check=True)
    return json.loads(figures.read_text())


def rows(runs, rate):
    return [r for figures in runs for r in figures["rates"] if r["rate"] == rate]


def table(acqs, perl):
    lines = [("", "VICIdial ACQS", "acqs", "acqs / Perl")]

    def line(label, get, digits=1, compare=True):
        theirs, ours = [get(f) for f in perl], [get(f) for f in acqs]
        lines.append((label, span(theirs, digits), span(ours, digits),
                      ratio(ours, theirs) if compare else ""))

    line("idle: MariaDB % of a core", lambda f: f["idle"]["serverPercent"], 2)
    line("idle: SUT statements/s", lambda f: f["idle"]["statements"])
    line("idle: SUT client statements/s", lambda f: f["idle"]["clientStatements"])
    if any(f["idle"]["inserts"][0] == f["idle"]["inserts"][0] for f in acqs + perl):
        line("idle: GUI INSERT p50 ms", lambda f: f["idle"]["inserts"][0], 2)
        line("idle: GUI INSERT p99 ms", lambda f: f["idle"]["inserts"][1], 2)
        line("idle: GUI INSERT max ms", lambda f: f["idle"]["inserts"][2], 2)
    rates = sorted({r["rate"] for f in acqs for r in f["rates"]})
    for rate in rates:
        ours, theirs = rows(acqs, rate), rows(perl, rate)

        def each(label, get, digits=1, compare=True, rate=rate, ours=ours, theirs=theirs):
            lines.append((f"{rate:g}/s: {label}", span([get(r) for r in theirs], digits),
                          span([get(r) for r in ours], digits),
                          ratio([get(r) for r in ours], [get(r) for r in theirs])
                          if compare else ""))

        each("INSERT->AMI p50 ms", lambda r: r["ami"][0])
        each("INSERT->AMI p99 ms", lambda r: r["ami"][2])
        each("worst instance's p99 ms", lambda r: max(r["instanceP99"]))
        each("MariaDB CPU ms/action (SUT user)", lambda r: r["dbCPU"], 2)
        each("MariaDB % of a core (whole server)", lambda r: r["serverPercent"])
        each("statements/action", lambda r: r["statements"])
        each("transactions/action", lambda r: r["commits"], 2, compare=False)
        each("GUI INSERT p50 ms", lambda r: r["inserts"][0], 2)
        each("GUI INSERT p99 ms", lambda r: r["inserts"][1], 2)
        each("GUI INSERT max ms", lambda r: r["inserts"][2], 2)
        each("table lock waits (MyISAM)", lambda r: r.get("tableLockWaits", math.nan), 0,
             compare=False)
        each("SUT CPU ms/action", lambda r: r["cpu"])
        each("lost / sent twice", lambda r: r["lost"] + r["twice"], 0, compare=False)
    widths = [max(len(cell[i]) for cell in lines) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip()
                     for cell in lines)


def main(argv):
    split = argv.index("--") if "--" in argv else len(argv)
    argv, acqsOnly = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vicidial-bin", required=True, metavar="DIR")
    parser.add_argument("--runs", type=int, default=2, help="runs of each [2]")
    parser.add_argument("--perl-rates", help="the Perl runs' --rates [as acqs']")
    parser.add_argument("--out", default=None,
                        help="folder for each run's output and JSON [a new one in /tmp]")
    args, common = parser.parse_known_args(argv)
    out = Path(args.out or f"/tmp/acqs-compare-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    perlCommon = list(common)
    if args.perl_rates is not None:
        perlCommon = [a for i, a in enumerate(common) if a != "--rates"
                      and (i == 0 or common[i - 1] != "--rates")] + ["--rates", args.perl_rates]
    acqs, perl = [], []
    for n in range(args.runs):
        acqs.append(run(f"acqs{n}", [*common, *acqsOnly], out))
        perl.append(run(f"perl{n}", ["--sut", "perl", "--vicidial-bin", args.vicidial_bin,
                                     *perlCommon], out))
    print(f"{args.runs} runs each, alternating; {' '.join(common)}"
          + (f"; acqs {' '.join(acqsOnly)}" if acqsOnly else "")
          + "; load averages " + ", ".join(f"{f['load'][0]:.1f}" for f in acqs + perl))
    print(table(acqs, perl))
    print(f"(each run's output: {out})")


if __name__ == "__main__":
    main(sys.argv[1:])

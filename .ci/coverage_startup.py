"""
CI only: start coverage in every Python process of the test run.

.ci/run copies this module into its .venv with a .pth file that imports it at
start-up, coverage's documented way to measure subprocesses.  It does nothing
unless COVERAGE_PROCESS_START names the configuration.  A twistd that shut down
on SIGTERM ends by sending itself that signal with the default handler back in
place, so atexit never runs: the data is saved just before.
"""

import os
import signal

if os.environ.get("COVERAGE_PROCESS_START"):
    import coverage

    _coverage = coverage.process_startup()
    if _coverage is not None:
        _kill = os.kill

        def _saveThenKill(pid, sig, _kill=_kill, _coverage=_coverage):
            if (pid == os.getpid() and sig in (signal.SIGTERM, signal.SIGINT)
                    and signal.getsignal(sig) == signal.SIG_DFL):
                _coverage.stop()
                _coverage.save()
            _kill(pid, sig)

        os.kill = _saveThenKill

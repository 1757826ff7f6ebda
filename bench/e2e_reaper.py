"""
Run a command as a child subreaper, so that bench/e2e.py can count the CPU
of every process the command starts, even those it leaves behind.

    python bench/e2e_reaper.py COMMAND [ARGS...]

VICIdial's sender starts each action's child through C{system("... &")}:
the shell exits at once and the child is orphaned.  As a subreaper
(C{PR_SET_CHILD_SUBREAPER}) this process becomes the parent of such
orphans and waits for them, so when any process of the tree ends its
CPU time is added to this process's C{cutime}/C{cstime} in
C{/proc/PID/stat}; what still runs is read from the processes themselves.
SIGTERM is ignored here (it is meant for the tree); this process exits,
with the command's status, once the last process of the tree is gone.
"""

import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    # A handler, not SIG_IGN: handlers are reset in the command, ignored signals are not.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    command = os.fork()
    if command == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    status = 0
    while True:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            return status
        if pid == command:
            status = os.waitstatus_to_exitcode(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

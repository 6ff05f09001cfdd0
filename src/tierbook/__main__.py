import os
import signal
import sys

from .cli import INTERRUPTED, main


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (kill, a CI timeout) ends a run like Ctrl-C: marked interrupted, latest untouched


signal.signal(signal.SIGTERM, _terminate)
code = main()
if code == INTERRUPTED:
    # do not wait for notebooks still running in worker threads; their kernels end with this process
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)

"""Run ``entprobe probe`` on the tiny BAGEL and SIGKILL the process when image
generation starts for the ``KILL_AT``-th time (test-only kill switch).

Usage: python upstream_bagel_kill_run.py KILL_AT PROBE_ARGS...
"""

from __future__ import annotations

import os
import signal
import sys

from entprobe.cli import main
from entprobe.models.bagel import BagelAdapter

if __name__ == "__main__":
    kill_at, args = int(sys.argv[1]), sys.argv[2:]
    calls = [0]
    denoise = BagelAdapter.denoise

    def killing(self, *a, **kw):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return denoise(self, *a, **kw)

    BagelAdapter.denoise = killing
    main(args)

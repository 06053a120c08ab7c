"""Run ``entprobe probe`` on the tiny Show-o2; with ``kill`` it SIGKILLs itself when the
second image generation starts (after that sample's prompt and text-gen rows).

Usage: python upstream_showo2_kill_run.py STORE CHECKPOINT UPSTREAM_SRC kill|run
"""

from __future__ import annotations

import os
import signal
import sys

from entprobe.models.showo2 import Showo2Adapter
from entprobe.pipeline import probe_from_cli

if __name__ == "__main__":
    store, checkpoint, src, mode = sys.argv[1:5]
    if mode == "kill":
        original, calls = Showo2Adapter.image_generation, []

        def dying(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, *args, **kwargs)

        Showo2Adapter.image_generation = dying
    probe_from_cli(
        model=checkpoint,
        adapter="showo2",
        upstream_src=src,
        store=store,
        text_prompts=["sample:t2i"],
        image_prompts=["sample:mmbench"],
        limit=2,
        generation={"max_new_tokens": 3, "image_steps": 3},
        image_response_step="1,3",
        progress=False,
        log=lambda s: None,
    )

"""``entprobe probe`` in-process, SIGKILLed at step 2 of the KILL_ON-th image generation.

Usage: python upstream_kill_run.py FAMILY KILL_ON <entprobe probe arguments>
"""

from __future__ import annotations

import os
import signal
import sys

from entprobe.models.registry import get_adapter
from entprobe.pipeline.probe import probe_from_cli

if __name__ == "__main__":
    family, kill_on, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    opts = {
        args[i].lstrip("-").replace("-", "_"): args[i + 1]
        for i in range(0, len(args) - 1, 2)
        if args[i] != "--no-progress" and not args[i + 1].startswith("--")
    }
    adapter = get_adapter(family).load(opts["model"], upstream_src=opts["upstream_src"])
    seen = []
    original = adapter.llm_call

    def llm_call(**tag):
        if tag.get("step") == 2:
            seen.append(tag)
            if len(seen) == kill_on:
                os.kill(os.getpid(), signal.SIGKILL)
        return original(**tag)

    adapter.llm_call = llm_call
    probe_from_cli(
        model=adapter,
        store=opts["store"],
        text_prompts=[opts["text_prompts"]],
        image_prompts=[opts["image_prompts"]],
        levels=opts["levels"],
        limit=int(opts["limit"]),
        generation={
            "max_new_tokens": int(opts["max_new_tokens"]),
            "guidance_scale": float(opts["guidance_scale"]),
            "image_steps": int(opts["image_steps"]),
        },
        image_response_step=opts["image_response_step"],
        progress=False,
    )

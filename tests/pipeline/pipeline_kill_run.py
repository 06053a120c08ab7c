"""Run the fake probe in a subprocess; ``kill_on`` SIGKILLs it mid-run (see the tests).

Usage: python pipeline_kill_run.py STORE LEVELS KILL_ON KILL_IN BATCH_SIZE OVERLAP(0|1) [SAVE_GRAMS]
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline_fakes import FakeAdapter, image_set, text_set

from entprobe.pipeline import ProbeOptions, run_probe
from entprobe.store import ResultStore

if __name__ == "__main__":
    store_path, levels, kill_on, kill_in, batch_size, overlap = sys.argv[1:7]
    grams = Path(sys.argv[7]) if len(sys.argv) > 7 and sys.argv[7] else None
    adapter = FakeAdapter(kill_on=int(kill_on) if int(kill_on) > 0 else None, kill_in=kill_in)
    with ResultStore(store_path) as store:
        run_probe(
            adapter,
            [text_set(), image_set()],
            levels=levels,
            store=store,
            options=ProbeOptions(save_grams=grams, batch_size=int(batch_size), overlap=overlap == "1"),
            progress=False,
        )

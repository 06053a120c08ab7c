"""Checks behind docs/correlate-table6.md: can any subset of Table 5's models give the
published Table 6 coefficients, and are those coefficients attainable at all?

Run: PYTHONPATH=src python examples/table6_checks.py
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from scipy import stats

from entprobe.analysis import read_probes, read_scores

HERE = Path(__file__).parent
probes = read_probes(HERE / "table5_probes.csv").set_index("model")
scores = read_scores(HERE / "table5_scores.csv").pivot(index="model", columns="benchmark", values="score")
data = probes.join(scores)
models = list(data.index)

# Published Table 6 (All Models n=10, All-in-One n=7); RealUnify column ambiguous: try both.
published = {
    ("image_gen_ce", "T2I-CoReBench"): (+0.312, +0.750),
    ("image_gen_ce", "RealUnify"): (+0.405, +0.786),
    ("text_gen_ce", "T2I-CoReBench"): (-0.218, -0.586),
    ("text_gen_ce", "RealUnify"): (-0.304, -0.612),
}
benchmarks = {
    "T2I-CoReBench": ["T2I-CoReBench"],
    "RealUnify": ["RealUnify (Image Gen)", "RealUnify (Text Gen)"],
}

print("1. Subsets of 5-10 models whose rho rounds to a published value:")
for (probe, bench), targets in published.items():
    for column in benchmarks[bench]:
        hits = []
        for k in range(5, 11):
            for subset in itertools.combinations(models, k):
                d = data.loc[list(subset)]
                rho = stats.spearmanr(d[probe], d[column]).statistic
                for t in targets:
                    if round(rho, 3) == t:
                        hits.append((t, k, subset))
        print(f"   {probe} vs {column}: {len(hits)} subset(s)")
        for t, k, subset in hits:
            print(f"      rho={t:+.3f} n={k}: {', '.join(subset)}")

print("2. Attainable rho without ties: 1 - 6*S/(n^3 - n), S an even integer in [0, (n^3 - n)/3]")
for n, values in (
    (10, [0.312, 0.405, -0.218, -0.304, -0.391, -0.468]),
    (7, [0.750, 0.786, -0.586, -0.612, -0.712, -0.823]),
):
    grid = 1 - 6 * np.arange(0, (n**3 - n) // 3 + 1, 2) / (n**3 - n)
    for v in values:
        nearest = grid[np.argmin(np.abs(grid - v))]
        print(
            f"   n={n:2d} published {v:+.3f}: nearest attainable {nearest:+.4f} "
            f"({'attainable' if round(nearest, 3) == v else 'NOT attainable'} at 3 decimals)"
        )

print("3. Student-t p-value (scipy.stats.spearmanr's) of the published All-in-One rhos, n=7:")
for v in (0.750, 0.786, -0.586, -0.612, -0.712, -0.823):
    t = v * np.sqrt(5 / (1 - v * v))
    print(f"   rho={v:+.3f}: p={2 * stats.t.sf(abs(t), 5):.3f}")

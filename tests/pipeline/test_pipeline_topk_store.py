"""spectrum="topk:K" through the store: value, lower, upper per layer; old stores still open."""

from __future__ import annotations

import numpy as np

from entprobe.pipeline.estimate import layer_values, metric_value, width_report
from entprobe.store import ResultStore


def _sample(i: int) -> dict:
    return {
        "run_id": "r",
        "dataset": "d",
        "sample_id": f"s{i}",
        "level": "prompt",
        "status": "ok",
        "modality": "text",
    }


def test_bounds_rows_round_trip_and_width_report(tmp_path):
    from entprobe.estimators import matrix_entropy

    x = np.random.default_rng(0).normal(size=(2, 300, 5))
    res = matrix_entropy(x, spectrum="topk:16")
    vals = layer_values(res)
    assert vals.shape == (2, 3)
    exact = layer_values(matrix_entropy(x))
    assert exact.shape == (2,) and metric_value(exact[0]) == {"value": float(exact[0])}
    path = tmp_path / "s.duckdb"
    with ResultStore(path) as store:
        store.start_run("r", "m", "a", {})
        rows = [
            {"model": "m", "adapter": "a", "layer": i, "n_layers": 1, "metric": "entropy", **metric_value(v)}
            for i, v in enumerate(vals)
        ]
        store.write_sample(_sample(0), rows)
    with ResultStore(path, read_only=True) as reader:
        df = reader.layer_metrics()
        np.testing.assert_array_equal(df["lower"].to_numpy(), vals[:, 1])
        np.testing.assert_array_equal(df["upper"].to_numpy(), vals[:, 2])
        assert (df["lower"] <= exact).all() and (exact <= df["upper"]).all()
        text = width_report(reader)
    assert text is not None and "entropy: mean" in text


def test_a_schema_2_store_without_the_bound_columns_opens_and_migrates(tmp_path):
    import duckdb

    path = tmp_path / "old.duckdb"
    with ResultStore(path) as store:
        store.start_run("r", "m", "a", {})
        store.write_sample(
            _sample(0),
            [{"model": "m", "adapter": "a", "layer": 0, "n_layers": 1, "metric": "entropy", "value": 1.5}],
        )
    # Make it look like a schema-2 store: no lower/upper columns.
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE layer_metrics DROP COLUMN lower")
    con.execute("ALTER TABLE layer_metrics DROP COLUMN upper")
    con.execute("UPDATE store_info SET value = '2' WHERE key = 'schema_version'")
    con.close()
    with ResultStore(path, read_only=True) as reader:
        df = reader.layer_metrics()
        assert df["value"].tolist() == [1.5] and df["lower"].isna().all()
        assert width_report(reader) is None
    with ResultStore(path) as store:  # a writer migrates it
        store.write_sample(
            _sample(1),
            [
                {
                    "model": "m",
                    "adapter": "a",
                    "layer": 0,
                    "n_layers": 1,
                    "metric": "entropy",
                    "value": 1.0,
                    "lower": 0.9,
                    "upper": 1.1,
                }
            ],
        )
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT value FROM store_info WHERE key = 'schema_version'").fetchone()[0] == "3"
    assert con.execute("SELECT lower, upper FROM layer_metrics WHERE sample_id = 's1'").fetchone() == (
        0.9,
        1.1,
    )
    con.close()

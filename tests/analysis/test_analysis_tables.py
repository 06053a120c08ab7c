"""Every table number equals a direct SQL aggregation over the fixture stores.

The SQL is written here, independently of the pandas code: the stores are attached
read-only to an in-memory DuckDB and queried through views that union them.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from entprobe import analysis as A
from entprobe.errors import ProbeInputError, StoreError

CATEGORY_SQL = """CASE lower(category)
    WHEN 'single-instance' THEN 'Single' WHEN 'cross-instance' THEN 'Cross'
    ELSE category END"""


@pytest.fixture(scope="module")
def db(two_stores):
    con = duckdb.connect()
    for i, path in enumerate(two_stores):
        con.execute(f"ATTACH '{path}' AS s{i} (READ_ONLY)")
    for table in ("layer_metrics", "samples", "runs"):
        union = " UNION ALL ".join(f"SELECT * FROM s{i}.{table}" for i in range(len(two_stores)))
        con.execute(f"CREATE TEMP VIEW {table} AS {union}")
    yield con
    con.close()


@pytest.fixture(scope="module")
def frames(two_stores):
    return A.load(two_stores)


def _keyed(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.set_index(keys).sort_index()


def test_load_pools_stores_and_dedups(two_stores, db, frames):
    lm, samples, runs = frames
    assert len(lm) == db.execute("SELECT count(*) FROM layer_metrics").fetchone()[0]
    assert len(samples) == db.execute("SELECT count(*) FROM samples").fetchone()[0]
    assert sorted(runs["model"]) == ["tiny-a", "tiny-b", "tiny-c"]
    # the same store given twice counts once
    lm2, samples2, runs2 = A.load([two_stores[0], two_stores[0]])
    assert len(lm2) == db.execute("SELECT count(*) FROM s0.layer_metrics").fetchone()[0]
    assert len(runs2) == 2


def test_load_errors(tmp_path):
    with pytest.raises(StoreError, match="not found"):
        A.load([tmp_path / "nope.duckdb"])
    with pytest.raises(StoreError, match="no results store"):
        A.load([])


def test_table1_matches_sql(db, frames):
    lm, _, _ = frames
    got = _keyed(A.embedding_entropy_table(lm, n_boot=200), ["model", "modality", "category"])
    want = db.execute(f"""
        SELECT model, modality, {CATEGORY_SQL} AS category, count(*) AS n, avg(value) AS mean
        FROM layer_metrics
        WHERE level = 'prompt' AND metric = 'entropy' AND layer = 0
        GROUP BY ALL""").df()
    want = _keyed(want, ["model", "modality", "category"])
    assert list(got.index) == list(want.index)
    assert (got["n"].to_numpy() == want["n"].to_numpy()).all()
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-12)
    assert set(got.index.get_level_values("category")) == set(A.TEXT_CATEGORIES + A.IMAGE_CATEGORIES)
    assert ((got["ci_low"] <= got["mean"]) & (got["mean"] <= got["ci_high"])).all()


def test_table1_order_follows_paper(frames):
    t1 = A.embedding_entropy_table(frames[0], n_boot=10)
    first = t1.loc[t1["model"] == "tiny-a", "category"].tolist()
    assert first == list(A.TEXT_CATEGORIES + A.IMAGE_CATEGORIES)


def test_trajectories_match_sql(db, frames):
    lm, _, _ = frames
    got = A.layer_trajectories(lm, by=("modality", "category"))
    want = db.execute(f"""
        SELECT model, n_layers, modality, {CATEGORY_SQL} AS category, layer,
               layer / n_layers AS rel_depth, count(*) AS n, avg(value) AS mean,
               stddev_samp(value) AS std
        FROM layer_metrics WHERE level = 'prompt' AND metric = 'entropy'
        GROUP BY ALL""").df()
    keys = ["model", "modality", "category", "layer"]
    got, want = _keyed(got, keys), _keyed(want, keys)
    assert list(got.index) == list(want.index)
    assert (got["n"].to_numpy() == want["n"].to_numpy()).all()
    for col in ("rel_depth", "mean", "std"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-12)


def test_length_bucket_trajectories_match_sql(db, frames):
    lm, _, _ = frames
    got = _keyed(
        A.layer_trajectories(lm, by=("length_bucket",), modality="text"), ["model", "length_bucket", "layer"]
    )
    want = _keyed(
        db.execute("""
        SELECT model, length_bucket, layer, count(*) AS n, avg(value) AS mean FROM layer_metrics
        WHERE level = 'prompt' AND metric = 'entropy' AND modality = 'text' GROUP BY ALL""").df(),
        ["model", "length_bucket", "layer"],
    )
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-12)


@pytest.mark.parametrize("early", [0.25, 0.5, 1.0])
def test_asymmetry_matches_sql(db, frames, early):
    lm, _, _ = frames
    got = _keyed(A.cross_modal_asymmetry(lm, early_fraction=early), ["model"])
    want = _keyed(
        db.execute(f"""
        WITH per AS (
            SELECT model, layer,
                   avg(value) FILTER (WHERE modality = 'text') AS t,
                   avg(value) FILTER (WHERE modality = 'image') AS i
            FROM layer_metrics
            WHERE level = 'prompt' AND metric = 'entropy' AND layer <= {early} * n_layers
            GROUP BY model, layer)
        SELECT model, avg(t - i) AS asymmetry, avg(t) AS text_mean, avg(i) AS image_mean,
               count(*) AS n_early_layers
        FROM per GROUP BY model""").df(),
        ["model"],
    )
    assert list(got.index) == list(want.index) == ["tiny-a", "tiny-b", "tiny-c"]
    for col in ("asymmetry", "text_mean", "image_mean"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-12)
    assert (got["n_early_layers"].to_numpy() == want["n_early_layers"].to_numpy()).all()


def test_table5_matches_sql(db, frames):
    lm, _, _ = frames
    got = _keyed(A.response_proxy_table(lm, n_boot=200), ["model", "level"])
    want = _keyed(
        db.execute("""
        WITH per_sample AS (
            SELECT model, level, run_id, dataset, sample_id, avg(value) AS v FROM layer_metrics
            WHERE level IN ('text-gen', 'image-gen') AND metric = 'conditional_entropy'
            GROUP BY ALL)
        SELECT model, level, count(*) AS n, avg(v) AS mean FROM per_sample GROUP BY ALL""").df(),
        ["model", "level"],
    )
    assert list(got.index) == list(want.index)
    assert (got["n"].to_numpy() == want["n"].to_numpy()).all()
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-12)
    probes = A.model_probes(lm).set_index("model")
    np.testing.assert_allclose(
        probes["image_gen_ce"], want.xs("image-gen", level="level")["mean"], rtol=1e-12
    )
    np.testing.assert_allclose(probes["text_gen_ce"], want.xs("text-gen", level="level")["mean"], rtol=1e-12)


def test_length_points_match_sql(db, frames):
    lm, samples, _ = frames
    pts = A.prompt_length_points(lm, samples)
    want = db.execute("""
        SELECT m.model, m.sample_id, s.n_chars AS length, m.value AS entropy
        FROM layer_metrics m JOIN samples s USING (run_id, dataset, sample_id, level)
        WHERE m.level = 'prompt' AND m.metric = 'entropy' AND m.layer = 0 AND m.modality = 'text'
        ORDER BY model, sample_id""").df()
    got = pts.sort_values(["model", "sample_id"]).reset_index(drop=True)
    assert (got["length_unit"] == "characters").all()
    np.testing.assert_array_equal(got["length"].to_numpy(float), want["length"].to_numpy(float))
    np.testing.assert_allclose(got["entropy"], want["entropy"], rtol=1e-12)
    trend = A.length_trend(pts, n_bins=4)
    counts = trend.groupby("model")["n"].sum()
    assert counts.to_dict() == want.groupby("model").size().to_dict()
    # bin means equal SQL means over the same half-open ranges
    for r in trend.itertuples():
        last = r.bin == trend["bin"].max()
        op = "<=" if last else "<"
        v = db.execute(
            f"""
            SELECT avg(m.value), count(*) FROM layer_metrics m JOIN samples s USING (run_id, dataset, sample_id, level)
            WHERE m.level = 'prompt' AND m.metric = 'entropy' AND m.layer = 0 AND m.modality = 'text'
              AND m.model = ? AND s.n_chars >= ? AND s.n_chars {op} ?""",
            [r.model, r.length_low, r.length_high],
        ).fetchone()
        assert v[1] == r.n
        assert v[0] == pytest.approx(r.entropy_mean, rel=1e-12)


def test_provenance_matches_sql(db, frames):
    lm, samples, runs = frames
    counts = _keyed(A.sample_counts(samples, runs), ["model", "level", "modality", "dataset"])
    want = _keyed(
        db.execute("""
        SELECT r.model, s.level, s.modality, s.dataset,
               count(*) FILTER (WHERE s.status = 'ok') AS n_ok,
               count(*) FILTER (WHERE s.status = 'failed') AS n_failed
        FROM samples s JOIN runs r USING (run_id) GROUP BY ALL""").df(),
        ["model", "level", "modality", "dataset"],
    )
    assert list(counts.index) == list(want.index)
    assert (counts[["n_ok", "n_failed"]].to_numpy() == want[["n_ok", "n_failed"]].to_numpy()).all()
    failed = A.failed_samples(samples, runs)
    n_failed = db.execute("SELECT count(*) FROM samples WHERE status = 'failed'").fetchone()[0]
    assert len(failed) == n_failed == 6
    assert failed["error"].str.contains("need 2").all()
    summ = A.run_summary(runs, samples)
    assert summ["settings"].str.contains("estimator.alpha=1.01").all()
    assert summ["n_failed"].tolist() == [2, 2, 2]


def test_bootstrap_interval_is_seeded_and_close_to_normal_theory():
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 2.0, size=400)
    lo, hi = A.bootstrap_mean_ci(x, n_boot=4000, seed=3, key=("m",))
    assert (lo, hi) == A.bootstrap_mean_ci(x, n_boot=4000, seed=3, key=("m",))
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert lo == pytest.approx(x.mean() - half, abs=0.04)
    assert hi == pytest.approx(x.mean() + half, abs=0.04)
    assert np.isnan(A.bootstrap_mean_ci([1.0])).all()


def test_bootstrap_cell_does_not_depend_on_other_cells(frames):
    lm, _, _ = frames
    alone = A.embedding_entropy_table(lm.loc[lm["model"] == "tiny-b"], n_boot=300)
    pooled = A.embedding_entropy_table(lm, n_boot=300)
    pooled = pooled.loc[pooled["model"] == "tiny-b"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, pooled)


def test_category_spellings():
    assert A.normalize_category("Single-instance") == "Single"
    assert A.normalize_category("cross-instance") == "Cross"
    assert A.normalize_category("deductive") == "Deductive"
    assert A.normalize_category("C-MI") == "C-MI"
    assert A.normalize_category(None) is None


def test_missing_modality_and_levels_give_empty_not_errors(frames):
    lm, _, _ = frames
    text_only = lm.loc[(lm["modality"] == "text") & (lm["level"] == "prompt")]
    assert A.cross_modal_asymmetry(text_only).empty
    assert A.response_proxy_table(text_only).empty
    probes = A.model_probes(text_only)
    assert probes[list(A.PROBE_COLUMNS)].isna().all().all()
    assert A.layer_trajectories(text_only, level="image-gen", metric="conditional_entropy").empty


def test_bad_input_errors(frames):
    lm, _, _ = frames
    with pytest.raises(ProbeInputError, match=r"lacks column\(s\) \['value'\]"):
        A.embedding_entropy_table(lm.drop(columns="value"))
    with pytest.raises(ProbeInputError, match="early_fraction must be in"):
        A.cross_modal_asymmetry(lm, early_fraction=0)
    with pytest.raises(ProbeInputError, match="n_boot must be a positive integer"):
        A.embedding_entropy_table(lm, n_boot=0)
    with pytest.raises(ProbeInputError, match="must be a pandas DataFrame"):
        A.embedding_entropy_table([1, 2, 3])

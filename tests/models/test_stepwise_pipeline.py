"""The step-wise contract through the probe loop and the store: per-step rows, the
response definition in the run configuration, fail-fast checks, old stores."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from stepwise_toy import GRID, ToyMaskGIT

from entprobe.datasets import PromptRecord, PromptSet
from entprobe.errors import ProbeInputError
from entprobe.estimators import conditional_entropy
from entprobe.models.base import GenerationSettings
from entprobe.models.hf_causal_lm import HFCausalLMAdapter
from entprobe.pipeline import ProbeOptions, run_probe
from entprobe.pipeline.checks import check_generation
from entprobe.store import ResultStore
from entprobe.store.schema import SCHEMA_VERSION

TEXTS = ["a red cube on a table", "two birds", "the sea at night"]


def _set() -> PromptSet:
    recs = [
        PromptRecord(
            id=f"t{i}",
            dataset="toy",
            modality="text",
            text=t,
            category=None,
            subcategory=None,
            n_chars=len(t),
            source="mem",
            row=i,
            meta={},
        )
        for i, t in enumerate(TEXTS)
    ]
    return PromptSet(name="toy", spec="toy:mem", records=recs)


def _options(steps) -> ProbeOptions:
    return ProbeOptions(generation=GenerationSettings(guidance_scale=1.5, seed=2), image_response_steps=steps)


def test_per_step_rows_and_response_definition(tmp_path):
    path = tmp_path / "s.duckdb"
    with ResultStore(path) as store:
        summary = run_probe(
            ToyMaskGIT(), [_set()], levels="image-gen", store=store, options=_options((1, 3)), progress=False
        )
        assert summary.n_ok == len(TEXTS) and summary.n_failed == 0
        lm, steps, runs = store.layer_metrics(), store.step_metrics(), store.runs()
    assert len(lm) == len(TEXTS) * 3  # default response: 2 layers + embeddings
    assert sorted(steps["step"].unique()) == [1, 3] and len(steps) == len(TEXTS) * 2 * 3
    assert set(steps["n_steps"]) == {3} and set(steps["n_response_tokens"]) == {GRID}
    cfg = runs.loc[0, "config"]["image_response"]
    assert cfg["steps"] == [1, 3] and cfg["n_steps"] == 3 and "teacher-forced" in cfg["default"]

    # The stored numbers are the estimator's on [teacher-forced prompt; step-k response].
    toy = ToyMaskGIT()
    gen = toy.generate_image(TEXTS[1], settings=_options("all").generation, response_steps=(3,))
    prompt = gen.prompt.content()
    want = conditional_entropy(
        prompt.double().numpy(), gen.step_states[3].double().numpy()[None].repeat(1, 0)[0]
    )
    got = steps[(steps["sample_id"] == "t1") & (steps["step"] == 3)].sort_values("layer")["value"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    default = lm[lm["sample_id"] == "t1"].sort_values("layer")["value"].to_numpy()
    np.testing.assert_allclose(
        default,
        conditional_entropy(prompt.double().numpy(), gen.response_states().double().numpy()),
        rtol=1e-6,
        atol=1e-8,
    )


def test_other_step_options_are_other_runs_and_default_writes_no_step_rows(tmp_path):
    with ResultStore(tmp_path / "s.duckdb") as store:
        a = run_probe(
            ToyMaskGIT(), [_set()], levels="image-gen", store=store, options=_options("final"), progress=False
        )
        b = run_probe(
            ToyMaskGIT(), [_set()], levels="image-gen", store=store, options=_options("all"), progress=False
        )
        assert a.run_id != b.run_id
        assert store.step_metrics(run_id=a.run_id).empty
        assert len(store.step_metrics(run_id=b.run_id)) == len(TEXTS) * 3 * 3
        # Same default response in both runs.
        va = store.layer_metrics(run_id=a.run_id)["value"].to_numpy()
        vb = store.layer_metrics(run_id=b.run_id)["value"].to_numpy()
        np.testing.assert_allclose(va, vb)


def test_step_option_fails_fast(tmp_path):
    with ResultStore(tmp_path / "s.duckdb") as store:
        with pytest.raises(ProbeInputError, match="runs 3 steps"):
            run_probe(
                ToyMaskGIT(),
                [_set()],
                levels="image-gen",
                store=store,
                options=_options((5,)),
                progress=False,
            )
    with pytest.raises(ProbeInputError, match="applies to the image-gen level"):
        check_generation(ToyMaskGIT(), ("prompt",), _options("all"))
    with pytest.raises(ProbeInputError, match="token by token"):
        check_generation(HFCausalLMAdapter, ("image-gen",), _options((1,)))


def test_schema1_store_reads_and_upgrades(tmp_path):
    path = tmp_path / "old.duckdb"
    with ResultStore(path) as store:
        run_probe(
            ToyMaskGIT(), [_set()], levels="image-gen", store=store, options=_options("final"), progress=False
        )
    con = duckdb.connect(str(path))  # make it look like a store written by schema 1
    con.execute("DROP TABLE step_metrics")
    con.execute("UPDATE store_info SET value = '1'")
    con.close()
    with ResultStore(path, read_only=True) as store:
        assert len(store.layer_metrics()) == len(TEXTS) * 3
        assert store.step_metrics().empty
    with ResultStore(path) as store:
        with store.session() as con:
            version = con.execute("SELECT value FROM store_info WHERE key = 'schema_version'").fetchone()[0]
        assert version == SCHEMA_VERSION
        run_probe(
            ToyMaskGIT(), [_set()], levels="image-gen", store=store, options=_options((2,)), progress=False
        )
        assert len(store.step_metrics()) == len(TEXTS) * 3


def test_cli_refuses_upstream_and_step_options_for_transformers_adapters(tmp_path):
    from click.testing import CliRunner

    from entprobe.cli import main

    base = [
        "probe",
        "--model",
        str(tmp_path),
        "--adapter",
        "hf-causal-lm",
        "--text-prompts",
        "sample:t2i",
        "--store",
        str(tmp_path / "s.duckdb"),
    ]
    out = CliRunner().invoke(main, [*base, "--upstream-src", str(tmp_path)])
    assert out.exit_code != 0 and "does not use upstream code" in out.output
    out = CliRunner().invoke(main, [*base, "--image-response-step", "2"])
    assert out.exit_code != 0 and "token by token" in out.output
    out = CliRunner().invoke(main, [*base, "--image-response-step", "zero"])
    assert out.exit_code != 0 and "--image-response-step must be" in out.output

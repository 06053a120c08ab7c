"""The notebook API: load a model, probe inline prompts / SPECs, read DataFrames; the
same run as the command; the example notebook runs."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure
from PIL import Image

import entprobe
from entprobe.cli import main
from entprobe.errors import ProbeInputError
from entprobe.estimators import conditional_entropy, matrix_entropy
from entprobe.store import ResultStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "notebook_quickstart.py"
TEXTS = ["a red cube on a table", "two cats asleep on a green sofa, one of them grey"]


@pytest.fixture(scope="module")
def llama(tiny_llama):
    return entprobe.load_model(tiny_llama)


def _stable(df: pd.DataFrame) -> pd.DataFrame:
    drop = [c for c in ("created_at", "model_seconds", "estimate_seconds") if c in df.columns]
    return df.drop(columns=drop).reset_index(drop=True)


def test_inline_prompts_in_memory_match_the_estimator(llama):
    result = entprobe.probe(llama, [*TEXTS, "   "], levels="prompt")
    assert result.store is None and result.summary.n_ok == 2 and result.summary.n_failed == 1
    wide = result.prompt_entropies(wide=True)
    assert list(wide.columns) == list(range(llama.n_layers + 1))
    assert wide.index.names == ["model", "dataset", "sample_id"]
    assert wide.index.get_level_values("sample_id").tolist() == ["0", "1"]
    for i, text in enumerate(TEXTS):
        # independent path: the states of a forward pass, then the plain estimator
        states = llama.encode_text(text).content().double().cpu().numpy()
        got = wide.xs(str(i), level="sample_id").to_numpy().ravel()
        np.testing.assert_allclose(got, matrix_entropy(states), rtol=1e-7, atol=1e-9)

    long = entprobe.prompt_entropies(result)
    assert len(long) == 2 * (llama.n_layers + 1)
    assert {"category", "length_bucket", "rel_depth", "n_prompt_tokens"} <= set(long.columns)
    assert long["rel_depth"].max() == 1.0
    failed = result.failures()
    assert failed["sample_id"].tolist() == ["2"] and "empty prompt" in failed["error"].iloc[0]
    assert entprobe.sample_table(result, status="ok")["sample_id"].tolist() == ["0", "1"]


def test_text_gen_proxy_into_a_store_and_resume(llama, tmp_path):
    store = tmp_path / "r.duckdb"
    gen = {"max_new_tokens": 3}
    first = entprobe.probe(llama, TEXTS[:1], levels="prompt,text-gen", store=store, generation=gen)
    assert first.store == store and first.summary.n_ok == 2
    proxy = entprobe.proxies(store, level="text-gen")
    assert set(proxy["level"]) == {"text-gen"} and len(proxy) == llama.n_layers + 1
    # the proxy against the estimator on a teacher-forced pass of the same response
    response = first.samples.set_index("level").loc["text-gen", "generated_text"]
    out = llama.generate_text(TEXTS[0], settings=llama_settings(gen))
    assert out.text == response
    prompt = out.prompt.content().double().numpy()
    resp = out.response_states().double().numpy()
    np.testing.assert_allclose(
        proxy.sort_values("layer")["value"].to_numpy(),
        conditional_entropy(prompt, resp),
        rtol=1e-6,
        atol=1e-8,
    )
    again = entprobe.probe(llama, TEXTS[:1], levels="prompt,text-gen", store=store, generation=gen)
    assert again.run_id == first.run_id and again.summary.n_skipped == 2 and again.summary.n_ok == 0


def llama_settings(gen):
    from entprobe.models.base import GenerationSettings

    return GenerationSettings(**gen)


def test_api_and_command_write_the_same_run(tiny_llama, tmp_path):
    cli_store, api_store = tmp_path / "cli.duckdb", tmp_path / "api.duckdb"
    result = CliRunner().invoke(
        main,
        [
            "probe",
            "--model",
            str(tiny_llama),
            "--text-prompts",
            "sample:t2i",
            "--limit",
            "3",
            "--levels",
            "prompt",
            "--store",
            str(cli_store),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    by_spec = entprobe.probe(tiny_llama, "sample:t2i", limit=3, levels="prompt", store=api_store)
    by_flag = entprobe.probe(tiny_llama, text_prompts=["sample:t2i"], limit=3, levels="prompt")
    with ResultStore(cli_store, read_only=True) as s:
        cli_lm, cli_runs = s.layer_metrics(), s.runs()
    assert cli_runs["run_id"].tolist() == [by_spec.run_id] == [by_flag.run_id]
    pd.testing.assert_frame_equal(_stable(cli_lm), _stable(by_spec.layer_metrics))
    pd.testing.assert_frame_equal(_stable(cli_lm), _stable(by_flag.layer_metrics))


def test_image_prompts_and_mixed_inputs(tiny_janus):
    janus = entprobe.load_model(tiny_janus)
    red = Image.new("RGB", (32, 32), (200, 30, 30))
    result = entprobe.probe(
        janus,
        ["a red cube", red, (red, "What colour?"), {"text": "a tree", "id": "t", "category": "Plants"}],
        levels="prompt",
    )
    long = result.prompt_entropies()
    kinds = long.drop_duplicates("sample_id").set_index("sample_id")[["modality", "category"]]
    assert kinds.loc["0", "modality"] == "text" and kinds.loc["1", "modality"] == "image"
    assert kinds.loc["2", "modality"] == "image" and kinds.loc["t", "category"] == "Plants"
    by_id = result.samples.set_index("sample_id")
    assert by_id.loc["2", "prompt_text"] == "What colour?"
    # other prompts, another run: the inline set's SPEC is a hash of its content
    other = entprobe.probe(janus, ["a blue cube"], levels="prompt")
    assert other.run_id != result.run_id


def test_tables_and_figures_from_a_store(llama, tmp_path):
    store = tmp_path / "t.duckdb"
    words = [
        "a cube",
        "two red cubes",
        "three cubes in a row, left to right",
        "a lamp",
        "if the lamp is on, the room is bright",
        "a dark room",
    ]
    prompts = [{"text": w, "category": "Composition" if i < 3 else "Deductive"} for i, w in enumerate(words)]
    entprobe.probe(llama, prompts, levels="prompt", store=store)
    t1 = entprobe.embedding_entropy_table(store, n_boot=50)
    assert {"model", "modality", "category", "n", "mean", "ci_low", "ci_high"} <= set(t1.columns)
    assert t1["n"].sum() == 6
    traj = entprobe.layer_trajectories(store, by=("category",))
    assert set(traj["layer"]) == set(range(llama.n_layers + 1))
    assert not entprobe.length_trend(store).empty
    assert not entprobe.run_summary(store).empty
    for fig in (
        entprobe.plot_prompt_types(store),
        entprobe.plot_length_entropy(store),
        entprobe.plot_length_layers(store),
    ):
        assert isinstance(fig, Figure) and fig.axes
    report = entprobe.write_report(store, tmp_path / "report", n_boot=50)
    assert report.is_file() and "Table 1" in report.read_text()


def test_bad_inputs_raise_clear_errors(llama, tmp_path):
    with pytest.raises(ProbeInputError, match="prompt 0 is a int"):
        entprobe.probe(llama, [3], levels="prompt")
    with pytest.raises(ProbeInputError, match="unknown key.*'colour'"):
        entprobe.probe(llama, [{"text": "x", "colour": "red"}], levels="prompt")
    with pytest.raises(ProbeInputError, match="no prompts given"):
        entprobe.probe(llama, [], levels="prompt")
    with pytest.raises(ProbeInputError, match="backend must be 'local' or 'ray'"):
        entprobe.probe(llama, TEXTS, levels="prompt", backend="dask")
    with pytest.raises(ProbeInputError, match="level 'image-gen'"):
        entprobe.probe(llama, [Image.new("RGB", (8, 8))], levels="image-gen")
    with pytest.raises(ProbeInputError, match="expected a store path"):
        entprobe.prompt_entropies(42)
    with pytest.raises(entprobe.StoreError, match="not found"):
        entprobe.prompt_entropies(tmp_path / "missing.duckdb")
    # text that merely looks like a SPEC is a text prompt
    sets = entprobe.prompt_sets(["csv: a list of things", "sample:t2i"], limit=1)
    assert [ps.name for ps in sets] == ["sample-t2i", "prompts"]
    assert sets[1].records[0].text == "csv: a list of things"


def test_example_notebook_runs(tiny_janus, tmp_path, monkeypatch):
    monkeypatch.setenv("ENTPROBE_MODEL", str(tiny_janus))
    monkeypatch.setenv("ENTPROBE_WORK", str(tmp_path))
    namespace = runpy.run_path(str(EXAMPLE), run_name="__main__")
    entropies = namespace["entropies"]
    assert entropies.shape == (3 + 4, namespace["model"].n_layers + 1)
    assert (tmp_path / "prompt_types.png").is_file()
    assert (tmp_path / "report" / "report.html").is_file()
    assert namespace["proxies"]["value"].notna().all()
    assert os.path.samefile(namespace["store"], tmp_path / "results.duckdb")

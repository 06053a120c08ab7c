"""Figure recipes: the data a figure draws equals plain pandas over the store's rows, and
the notebook API and the report draw the same figures from them."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib import rc_context

import entprobe
from entprobe.analysis import load
from entprobe.report import (
    FigureRecipe,
    build_report,
    figure_colors,
    length_layers_recipe,
    model_colors,
    prompt_types_recipes,
)
from entprobe.report._figures import SAVE_RC


def _expected_length_layers(lm: pd.DataFrame) -> pd.DataFrame:
    """Fig. 4 (right) by hand: prompt-level entropy of text prompts with a length bucket,
    mean / n / std per model, bucket and layer (the responses' rows left out)."""
    rows = lm[
        (lm["level"] == "prompt")
        & (lm["metric"] == "entropy")
        & (lm["modality"] == "text")
        & lm["length_bucket"].notna()
    ]
    out = (
        rows.groupby(["model", "n_layers", "length_bucket", "layer"])["value"]
        .agg(n="count", mean="mean", std="std")
        .reset_index()
    )
    out["rel_depth"] = out["layer"] / out["n_layers"]
    return out


def _lines(fig) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(panel title, line label) -> (x, y) of every line drawn on the figure's axes."""
    return {
        (ax.get_title(), line.get_label()): (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
        for ax in fig.axes
        for line in ax.get_lines()
    }


def _png(fig) -> bytes:
    """The figure saved as the report saves it (``_Writer.figure``)."""
    buf = io.BytesIO()
    with rc_context(SAVE_RC):
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def test_length_layers_data_is_prompt_entropy_of_bucketed_text_prompts(full_store):
    lm, _, runs = load(full_store)
    # the store also holds text-gen / image-gen rows of the same text prompts, with buckets
    assert {"text-gen", "image-gen"} <= set(lm.loc[lm["length_bucket"].notna(), "level"])
    recipe = length_layers_recipe(lm, runs=runs)
    assert isinstance(recipe, FigureRecipe) and not recipe.empty
    want = _expected_length_layers(lm)
    got = recipe.data.sort_values(["model", "length_bucket", "layer"]).reset_index(drop=True)
    want = want.sort_values(["model", "length_bucket", "layer"]).reset_index(drop=True)
    assert got[["model", "length_bucket", "layer", "n"]].values.tolist() == (
        want[["model", "length_bucket", "layer", "n"]].values.tolist()
    )
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-12)
    np.testing.assert_allclose(got["std"], want["std"], rtol=1e-12)
    np.testing.assert_allclose(got["rel_depth"], want["rel_depth"], rtol=1e-12)

    # what is drawn: one panel per bucket, one line per model, x = layer / n_layers
    lines = _lines(recipe.figure)
    assert recipe.figure is recipe.figure  # drawn once
    assert len(lines) == len(want.groupby(["model", "length_bucket"]))
    for (model, bucket), grp in want.groupby(["model", "length_bucket"]):
        x, y = lines[(f"{bucket} prompts", model)]
        np.testing.assert_allclose(x, grp["rel_depth"], rtol=1e-12)
        np.testing.assert_allclose(y, grp["mean"], rtol=1e-12)
    assert recipe.colors == model_colors(sorted(set(lm["model"])))


def test_api_and_report_draw_the_same_figures(full_store, report_dir):
    """The API's figures save to the same PNG bytes as the report's (same data, same
    styling), and the API's Fig. 4 (right) lines are the report's data table."""
    figures = report_dir.parent / "figures"
    for fig, name in (
        (entprobe.plot_length_entropy(full_store), "fig4_length_entropy"),
        (entprobe.plot_length_layers(full_store), "fig4_length_layers"),
        (entprobe.plot_prompt_types(full_store), "fig5_text_prompt_types"),
        (entprobe.plot_prompt_types(full_store, modality="image"), "fig5_image_prompt_types"),
        (entprobe.plot_cross_modal(full_store, early_fraction=0.5), "s53_cross_modal"),  # as report_dir
        (entprobe.plot_response(full_store), "s6_response"),
    ):
        assert _png(fig) == (figures / f"{name}.png").read_bytes(), name

    table = pd.read_csv(report_dir.parent / "tables" / "fig4_length_trajectories.csv")
    lines = _lines(entprobe.plot_length_layers(full_store))
    assert len(lines) == len(table.groupby(["model", "length_bucket"]))
    for (model, bucket), grp in table.groupby(["model", "length_bucket"]):
        x, y = lines[(f"{bucket} prompts", model)]
        np.testing.assert_allclose(x, grp.sort_values("layer")["rel_depth"], rtol=1e-12)
        np.testing.assert_allclose(y, grp.sort_values("layer")["mean"], rtol=1e-12)


def test_responses_alone_give_no_length_layers(synth, tmp_path):
    """Text prompts with buckets but only generation rows: nothing to draw in Fig. 4
    (right); the API raises as before, the report says so."""
    lm, samples, runs = synth.synthetic_results(
        {"m0": 3}, per_category=1, modalities=("text",), levels=("text-gen",)
    ).frames()
    recipe = length_layers_recipe(lm, runs=runs)
    assert recipe.empty
    with pytest.raises(ValueError):
        entprobe.plot_length_layers((lm, samples, runs))
    page = build_report(lm, samples, runs, tmp_path / "r", n_boot=10).read_text(encoding="utf-8")
    assert "no text prompts with prompt-level entropy" in page


def test_colours_cover_models_without_rows_and_recipes_share_data(synth):
    lm, _, runs = synth.synthetic_results({"m0": 3, "m1": 4}, per_category=1).frames()
    runs = pd.concat([runs, pd.DataFrame({"run_id": ["run-x"], "model": ["m-no-rows"]})])
    colors = figure_colors(lm, runs)
    assert list(colors) == ["m-no-rows", "m0", "m1"]
    assert colors == model_colors(["m0", "m1", "m-no-rows"])
    both = prompt_types_recipes(lm, runs=runs)
    assert both["text"].data is both["image"].data and both["text"].colors == colors
    titles = {mod: both[mod].figure.get_suptitle() for mod in both}
    assert "text prompt type" in titles["text"] and "image prompt type" in titles["image"]

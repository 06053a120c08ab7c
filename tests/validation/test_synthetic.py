"""Synthetic data generators and the experiment functions' contracts."""

from __future__ import annotations

import numpy as np
import pytest

from entprobe.validation import (
    EXPERIMENTS,
    ValidationConfig,
    cluster_sequence,
    markdown_table,
    pair_population,
    run_dependence_proxy,
    run_validation,
)
from entprobe.validation.synthetic import PROMPT_LENGTHS, RESPONSE_LENGTHS


def test_cluster_sequence_has_requested_number_of_distinct_clusters():
    rng = np.random.default_rng(0)
    x = cluster_sequence(5, n_tokens=50, d=8, spread=0.0, rng=rng)
    assert x.shape == (50, 8)
    assert len(np.unique(x.round(12), axis=0)) == 5
    same = cluster_sequence(0, n_tokens=7, d=3, rng=rng)
    assert np.all(same == same[0])


def test_cluster_sequence_refuses_more_clusters_than_tokens():
    with pytest.raises(ValueError, match="n_clusters must be in 0..n_tokens=10"):
        cluster_sequence(11, n_tokens=10, rng=np.random.default_rng(0))


@pytest.mark.parametrize("noise", ["same", "rotated"])
def test_pair_population_shapes_and_copies(noise):
    pop = pair_population(40, d=6, noise=noise, rng=np.random.default_rng(1))
    frame = pop.frame()
    assert len(pop) == 40 and list(frame.columns) == ["pair", "n_prompt", "n_response", "correlation", "decay"]
    assert set(frame.n_prompt) <= set(PROMPT_LENGTHS) and set(frame.n_response) <= set(RESPONSE_LENGTHS)
    assert all(p.shape[1] == r.shape[1] == 6 for p, r in zip(pop.prompts, pop.responses))
    assert np.all((pop.correlation >= 0) & (pop.correlation <= 1))


def test_pair_population_refuses_unknown_noise():
    with pytest.raises(ValueError, match="noise must be one of"):
        pair_population(5, noise="other", rng=np.random.default_rng(0))


def test_config_is_checked():
    with pytest.raises(ValueError, match="seeds must be at least 2"):
        ValidationConfig(seeds=1)
    with pytest.raises(ValueError, match="population_noise"):
        ValidationConfig(population_noise="x")


def test_unknown_experiment_is_refused():
    with pytest.raises(ValueError, match="unknown experiment"):
        run_validation(ValidationConfig(seeds=2), experiments=["nope"])


def test_dependence_experiment_records_and_claims():
    result = run_dependence_proxy(ValidationConfig(seeds=2), n_tokens=24, d=8)
    assert set(result.records.normalization) == {"trace", "plain"}
    assert len(result.table) == 3 and len(result.claims) == 5
    identical = result.records[(result.records.case == "Y = X")].proxy_bits
    assert np.all(np.abs(identical) < 1e-3)  # the estimator's own doctest property, as a sanity check
    assert all(isinstance(c.holds, bool) for c in result.claims)


def test_markdown_table_escapes_pipes():
    import pandas as pd

    text = markdown_table(pd.DataFrame({"a": ["x|y"], "b": [0.5]}))
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 0.5 |"]


def test_registry_names():
    assert list(EXPERIMENTS) == ["cluster_entropy", "dependence_proxy", "shannon_agreement", "normalization", "sensitivity"]

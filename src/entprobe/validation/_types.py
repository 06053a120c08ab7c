"""Result types of the synthetic validations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["Claim", "ExperimentResult", "ValidationConfig", "ValidationReport"]


@dataclass(frozen=True)
class ValidationConfig:
    """What ``entprobe validate`` runs.

    Attributes:
        seeds: independent repetitions of every experiment (the paper's Table 1 uses 10,
            its Table 2 uses 5).
        population: synthetic prompt/response pairs per seed in the normalisation and
            sensitivity experiments (the paper uses 500 and 300 real prompts).
        base_seed: added to every seed, to draw a different but reproducible set.
        population_noise: where the independent part of a synthetic response comes
            from: ``"same"`` (the prompt's own token distribution) or ``"rotated"`` (a
            randomly rotated copy of it, i.e. new directions).
    """

    seeds: int = 10
    population: int = 200
    base_seed: int = 0
    population_noise: str = "same"

    def __post_init__(self) -> None:
        if self.seeds < 2:
            raise ValueError(f"seeds must be at least 2 (a std needs two); got {self.seeds}")
        if self.population < 10:
            raise ValueError(f"population must be at least 10 pairs; got {self.population}")
        if self.population_noise not in ("same", "rotated"):
            raise ValueError(f"population_noise must be 'same' or 'rotated'; got {self.population_noise!r}")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, tested here.

    Attributes:
        experiment: name of the experiment that tests it.
        statement: the paper's claim, paraphrased, with where it is made.
        criterion: the test applied here, fixed before looking at the numbers.
        holds: whether the criterion is met on this run.
        evidence: the numbers that decided it.
    """

    experiment: str
    statement: str
    criterion: str
    holds: bool
    evidence: str

    @property
    def verdict(self) -> str:
        return "HOLDS" if self.holds else "DOES NOT HOLD"


@dataclass
class ExperimentResult:
    """The outcome of one synthetic experiment.

    Attributes:
        name: short identifier, also the stem of the files written for it.
        title: what it reproduces (figure/table of the paper).
        setup: how the data were made and what was computed, including every choice
            the paper leaves open.
        records: one row per (seed, case, setting): the raw numbers (written as CSV).
        table: the summary table, cells already formatted, with the paper's values
            alongside where it reports any (written as Markdown).
        claims: the claims this experiment tests.
        notes: anything observed on the way (warnings from the estimators, caveats).
        figure_data: small arrays the figures need beyond ``records`` (e.g. 2-D
            projections of example sequences), keyed by name.
    """

    name: str
    title: str
    setup: str
    records: pd.DataFrame
    table: pd.DataFrame
    claims: list[Claim] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figure_data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ValidationReport:
    """All experiments of one ``entprobe validate`` run."""

    config: ValidationConfig
    experiments: list[ExperimentResult]
    seconds: float = 0.0

    @property
    def claims(self) -> list[Claim]:
        return [c for e in self.experiments for c in e.claims]

    def claims_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "experiment": c.experiment,
                    "verdict": c.verdict,
                    "statement": c.statement,
                    "criterion": c.criterion,
                    "evidence": c.evidence,
                }
                for c in self.claims
            ]
        )

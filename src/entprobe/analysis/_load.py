"""The one place analysis touches the results store: read its three tables."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import pandas as pd

from entprobe.errors import StoreError

__all__ = ["load", "StoreSpec"]

StoreSpec = str | PathLike[str] | Iterable[str | PathLike[str]]

_LM_KEY = ["run_id", "dataset", "sample_id", "level", "layer", "metric"]
_SAMPLE_KEY = ["run_id", "dataset", "sample_id", "level"]


def _as_paths(stores: StoreSpec) -> list[Path]:
    if isinstance(stores, (str, PathLike)):
        items = [stores]
    else:
        items = list(stores)
    if not items:
        raise StoreError("no results store given; pass at least one store path")
    paths = [Path(p) for p in items]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise StoreError(f"results store(s) not found: {missing}")
    return paths


def _read_one(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    from entprobe.store import ResultStore

    with ResultStore(path, read_only=True) as store:
        return store.layer_metrics(), store.samples(), store.runs()


def load(stores: StoreSpec) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read ``layer_metrics``, ``samples`` and ``runs`` from one or more stores.

    Tables of several stores are concatenated; rows repeated across stores (the
    same store given twice, or a merged store next to its shards) are kept once by
    the tables' primary keys.

    Args:
        stores: a store path, or several.

    Returns:
        ``(layer_metrics, samples, runs)`` as pandas DataFrames with the columns of
        DEVELOPERS.md; ``runs`` gains a ``store`` column naming the file it came from.

    Raises:
        StoreError: no store given, a path does not exist, or a store cannot be read.
    """
    lms, sams, runs = [], [], []
    for path in _as_paths(stores):
        try:
            lm, sam, run = _read_one(path)
        except StoreError:
            raise
        except Exception as exc:  # a corrupt file, a foreign DuckDB database, ...
            raise StoreError(f"cannot read results store {path}: {exc}") from exc
        lms.append(lm)
        sams.append(sam)
        runs.append(run.assign(store=str(path)))
    lm = pd.concat(lms, ignore_index=True) if len(lms) > 1 else lms[0]
    sam = pd.concat(sams, ignore_index=True) if len(sams) > 1 else sams[0]
    run = pd.concat(runs, ignore_index=True) if len(runs) > 1 else runs[0]
    if len(lms) > 1:
        lm = lm.drop_duplicates([c for c in _LM_KEY if c in lm.columns], ignore_index=True)
        sam = sam.drop_duplicates([c for c in _SAMPLE_KEY if c in sam.columns], ignore_index=True)
        run = run.drop_duplicates("run_id", ignore_index=True)
    return lm, sam, run

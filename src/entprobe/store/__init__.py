"""The results store (DuckDB) and the Gram files of ``--save-grams``.

Nobody else creates tables: the schema lives in :mod:`entprobe.store.schema`.
"""

from ._status import RunProgress, StoreStatus, store_status
from ._store import MergeSummary, ResultStore
from .grams import GramRecord, gram_path, iter_gram_files, load_gram, read_gram_meta, save_gram
from .schema import LAYER_METRICS_COLUMNS, LEVELS, METRICS, RUNS_COLUMNS, SAMPLES_COLUMNS

__all__ = [
    "GramRecord",
    "LAYER_METRICS_COLUMNS",
    "LEVELS",
    "METRICS",
    "MergeSummary",
    "RUNS_COLUMNS",
    "ResultStore",
    "RunProgress",
    "StoreStatus",
    "SAMPLES_COLUMNS",
    "gram_path",
    "iter_gram_files",
    "load_gram",
    "read_gram_meta",
    "save_gram",
    "store_status",
]

"""The results store's schema: the one place that creates tables.

Three tables (see DEVELOPERS.md, "Results store"):

- ``runs``: one row per run; ``config`` is the run's full configuration as JSON.
- ``samples``: one row per (run, dataset, sample, level), ``status`` 'ok' or 'failed'.
- ``layer_metrics``: one row per (run, dataset, sample, level, layer, metric).

plus ``store_info`` (key/value: the schema version), so a later version can tell an
old store from a foreign DuckDB file. Timestamps are UTC.

Schema 2 adds ``step_metrics``: the per-denoising-step conditional entropies of
step-wise image generators (``--image-response-step``), one row per (run, dataset,
sample, level, step, layer, metric). ``layer_metrics`` keeps holding the default
response (the teacher-forced clean final response), so every analysis reads it
unchanged. A schema-1 store is upgraded when opened for writing (the table is
added); opened read-only it reads as having no step rows.
"""

from __future__ import annotations

__all__ = [
    "LAYER_METRICS_COLUMNS",
    "LAYER_METRICS_KEY",
    "LATER_TABLES",
    "LEVELS",
    "LEVEL_METRIC",
    "METRICS",
    "MODALITIES",
    "RUNS_COLUMNS",
    "SAMPLES_COLUMNS",
    "SAMPLES_KEY",
    "SCHEMA_VERSION",
    "STATUSES",
    "STEP_METRICS_COLUMNS",
    "STEP_METRICS_KEY",
    "TABLES",
    "create_tables",
    "ADDED_COLUMNS",
]

SCHEMA_VERSION = "3"

LEVELS: tuple[str, ...] = ("prompt", "text-gen", "image-gen")
METRICS: tuple[str, ...] = ("entropy", "conditional_entropy")
MODALITIES: tuple[str, ...] = ("text", "image")
STATUSES: tuple[str, ...] = ("ok", "failed")

#: The metric each level writes.
LEVEL_METRIC: dict[str, str] = {
    "prompt": "entropy",
    "text-gen": "conditional_entropy",
    "image-gen": "conditional_entropy",
}


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# (name, DuckDB type) in table order.
_RUNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR NOT NULL PRIMARY KEY"),
    ("model", "VARCHAR NOT NULL"),
    ("adapter", "VARCHAR NOT NULL"),
    ("config", "JSON NOT NULL"),
    ("entprobe_version", "VARCHAR"),
    ("started_at", "TIMESTAMP"),
    ("finished_at", "TIMESTAMP"),
)

_SAMPLES: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR NOT NULL"),
    ("dataset", "VARCHAR NOT NULL"),
    ("sample_id", "VARCHAR NOT NULL"),
    ("level", f"VARCHAR NOT NULL CHECK (level IN {_in(LEVELS)})"),
    ("modality", f"VARCHAR CHECK (modality IN {_in(MODALITIES)})"),
    ("category", "VARCHAR"),
    ("subcategory", "VARCHAR"),
    ("length_bucket", "VARCHAR"),
    ("n_chars", "INTEGER"),
    ("status", f"VARCHAR NOT NULL CHECK (status IN {_in(STATUSES)})"),
    ("error", "VARCHAR"),
    ("prompt_text", "VARCHAR"),
    ("generated_text", "VARCHAR"),
    ("image_path", "VARCHAR"),
    ("n_prompt_tokens", "INTEGER"),
    ("n_response_tokens", "INTEGER"),
    ("model_seconds", "DOUBLE"),
    ("estimate_seconds", "DOUBLE"),
    ("created_at", "TIMESTAMP"),
)

_LAYER_METRICS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR NOT NULL"),
    ("model", "VARCHAR NOT NULL"),
    ("adapter", "VARCHAR NOT NULL"),
    ("dataset", "VARCHAR NOT NULL"),
    ("sample_id", "VARCHAR NOT NULL"),
    ("modality", f"VARCHAR CHECK (modality IN {_in(MODALITIES)})"),
    ("category", "VARCHAR"),
    ("subcategory", "VARCHAR"),
    ("length_bucket", "VARCHAR"),
    ("level", f"VARCHAR NOT NULL CHECK (level IN {_in(LEVELS)})"),
    ("layer", "INTEGER NOT NULL"),
    ("n_layers", "INTEGER NOT NULL"),
    ("metric", f"VARCHAR NOT NULL CHECK (metric IN {_in(METRICS)})"),
    ("value", "DOUBLE NOT NULL"),
    ("n_prompt_tokens", "INTEGER"),
    ("n_response_tokens", "INTEGER"),
    # Schema 3: certified bounds of spectrum="topk:K" (NULL for the exact spectrum,
    # where lower = value = upper).
    ("lower", "DOUBLE"),
    ("upper", "DOUBLE"),
)

#: Columns added to an existing table by a later schema version: (table, column, type).
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("layer_metrics", "lower", "DOUBLE"),
    ("layer_metrics", "upper", "DOUBLE"),
)

# Schema 2: layer_metrics' columns plus the denoising step (1-based) and the
# generator's number of steps.
_STEP_METRICS: tuple[tuple[str, str], ...] = (
    _LAYER_METRICS[:10] + (("step", "INTEGER NOT NULL"), ("n_steps", "INTEGER")) + _LAYER_METRICS[10:-2]
)

SAMPLES_KEY: tuple[str, ...] = ("run_id", "dataset", "sample_id", "level")
LAYER_METRICS_KEY: tuple[str, ...] = SAMPLES_KEY + ("layer", "metric")
STEP_METRICS_KEY: tuple[str, ...] = SAMPLES_KEY + ("step", "layer", "metric")

RUNS_COLUMNS: tuple[str, ...] = tuple(c for c, _ in _RUNS)
SAMPLES_COLUMNS: tuple[str, ...] = tuple(c for c, _ in _SAMPLES)
LAYER_METRICS_COLUMNS: tuple[str, ...] = tuple(c for c, _ in _LAYER_METRICS)
STEP_METRICS_COLUMNS: tuple[str, ...] = tuple(c for c, _ in _STEP_METRICS)

#: Tables every store has (schema 1 on), in dependency order.
TABLES: tuple[str, ...] = ("runs", "samples", "layer_metrics")
#: Tables added by later schema versions (absent from older stores opened read-only).
LATER_TABLES: tuple[str, ...] = ("step_metrics",)


def _ddl(name: str, columns: tuple[tuple[str, str], ...], key: tuple[str, ...] = ()) -> str:
    body = [f"{col} {typ}" for col, typ in columns]
    if key:
        body.append(f"PRIMARY KEY ({', '.join(key)})")
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    " + ",\n    ".join(body) + "\n)"


DDL: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS store_info (key VARCHAR PRIMARY KEY, value VARCHAR)",
    _ddl("runs", _RUNS),
    _ddl("samples", _SAMPLES, SAMPLES_KEY),
    _ddl("layer_metrics", _LAYER_METRICS, LAYER_METRICS_KEY),
    _ddl("step_metrics", _STEP_METRICS, STEP_METRICS_KEY),
)


def create_tables(con) -> None:  # noqa: ANN001 - a duckdb connection
    """Create the tables (idempotent) and record the schema version; an older store
    gets the tables it lacks (later versions only add tables)."""
    for statement in DDL:
        con.execute(statement)
    # Migration to schema 3: older stores get the new nullable columns.
    for table, column, typ in ADDED_COLUMNS:
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {typ}")
    con.execute(
        "INSERT INTO store_info VALUES ('schema_version', ?) "
        "ON CONFLICT DO UPDATE SET value = excluded.value "
        "WHERE TRY_CAST(store_info.value AS INTEGER) < TRY_CAST(excluded.value AS INTEGER)",
        [SCHEMA_VERSION],
    )

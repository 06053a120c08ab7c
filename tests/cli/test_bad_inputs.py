"""The bad-input corpus: each case runs the CLI as a new user would and asserts the
message, the exit code, and that the user's files (stores, output folders) are
exactly as before -- no store left behind, nothing half-written.

Tiny models and a small good store are built once per module. Cases that must fail
before any work also prove it: the tree under the case's folder is unchanged (or,
where the command does useful work, changed only where it should be).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
import torch
from click.testing import CliRunner

from entprobe.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


# --- module fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tiny causal LM, a small JSONL prompt file, and a good store with Grams."""
    from entprobe.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("bad-inputs")
    llama = build_tiny("llama", root / "llama")
    prompts = root / "prompts.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "text": f"a red cube number {i} on a table"}) + "\n" for i in range(3)
        )
    )
    store = root / "good.duckdb"
    grams = root / "grams"
    result = CliRunner().invoke(
        main,
        [
            "probe",
            "--model",
            str(llama),
            "--text-prompts",
            f"jsonl:{prompts}",
            "--levels",
            "prompt",
            "--store",
            str(store),
            "--save-grams",
            str(grams),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    return {"root": root, "llama": llama, "prompts": prompts, "store": store, "grams": grams}


def _tree(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file (and '<dir>' for folders) under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _unwritable(folder: Path) -> Path:
    """A folder that exists and cannot be written. chmod does not bind root, so as
    root a folder of a pseudo file system stands in."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        folder.chmod(0o755)
        for candidate in (Path("/sys/kernel"), Path("/proc/1/fdinfo")):
            if candidate.is_dir():
                return candidate
        pytest.skip("no unwritable folder available to this user")
    return folder


def _png(path: Path, size: int = 8) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (200, 30, 30)).save(path)
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# --- the cases -----------------------------------------------------------------------


@dataclass
class Case:
    """``setup(tmp, world) -> argv``; the run must exit with ``code`` and print
    ``message`` (a substring, case-insensitive). ``creates``: paths (relative to the
    case folder) the command may add; everything else must stay byte-identical.
    ``check(tmp, world, output)``: further assertions."""

    setup: Callable[[Path, dict], list[str]]
    code: int
    message: str
    creates: tuple[str, ...] = ()
    check: Callable[[Path, dict, str], None] | None = None
    needs: str = ""
    marks: list = field(default_factory=list)


def probe_args(w: dict, store: Path, *extra: str, prompts: str | None = None) -> list[str]:
    return [
        "probe",
        "--model",
        str(w["llama"]),
        "--text-prompts",
        prompts or f"jsonl:{w['prompts']}",
        "--levels",
        "prompt",
        "--store",
        str(store),
        "--no-progress",
        *extra,
    ]


def _truncated_model(t: Path, w: dict) -> list[str]:
    import shutil

    model = t / "model"
    shutil.copytree(w["llama"], model)
    weights = model / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    return [
        "probe",
        "--model",
        str(model),
        "--text-prompts",
        f"jsonl:{w['prompts']}",
        "--store",
        str(t / "s.duckdb"),
        "--no-progress",
    ]


def _foreign_duckdb(t: Path, w: dict) -> list[str]:
    con = duckdb.connect(str(t / "theirs.duckdb"))
    con.execute("CREATE TABLE accounts (id INTEGER, name VARCHAR)")
    con.execute("INSERT INTO accounts VALUES (1, 'ada')")
    con.close()
    return probe_args(w, t / "theirs.duckdb")


def _json_store(t: Path, w: dict) -> list[str]:
    (t / "results.json").write_text('{"not": "a store"}\n')
    return probe_args(w, t / "results.json")


def _images_outside(t: Path, w: dict, absolute: bool, allow: bool) -> list[str]:
    outside = _png(t / "secret" / "private.png")
    data = t / "data"
    _png(data / "inside.png")
    target = str(outside) if absolute else "../secret/private.png"
    (data / "index.csv").write_text(f"file,text\ninside.png,what is it\n{target},what is this\n")
    return ["datasets", "inspect", f"images:{data}", *(["--allow-outside-paths"] if allow else [])]


def _bomb(t: Path, w: dict) -> list[str]:
    _png(t / "imgs" / "big.png", size=64)
    return ["datasets", "inspect", f"images:{t / 'imgs'}", "--max-pixels", "100"]


def _locked(t: Path, w: dict) -> list[str]:
    import shutil

    shutil.copy(w["store"], t / "busy.duckdb")
    holder = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {SRC!r})
        from entprobe.store import ResultStore
        store = ResultStore({str(t / "busy.duckdb")!r})
        print("open", flush=True)
        sys.stdin.readline()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "open"
    _HOLDERS.append(proc)
    return probe_args(w, t / "busy.duckdb")


_HOLDERS: list[subprocess.Popen] = []


def _truncated_gram(t: Path, w: dict) -> list[str]:
    import shutil

    shutil.copytree(w["grams"], t / "grams")
    files = sorted((t / "grams").rglob("*.safetensors"))
    assert len(files) == 3
    os.truncate(files[0], files[0].stat().st_size - 100)
    return ["reestimate", "--grams", str(t / "grams"), "--store", str(t / "re.duckdb"), "--no-progress"]


def _check_reestimate_went_on(t: Path, w: dict, output: str) -> None:
    con = duckdb.connect(str(t / "re.duckdb"), read_only=True)
    rows = dict(con.execute("SELECT status, count(*) FROM samples GROUP BY status").fetchall())
    con.close()
    assert rows == {"ok": 2, "failed": 1}


def _garbage_grams(t: Path, w: dict) -> list[str]:
    (t / "grams" / "x").mkdir(parents=True)
    (t / "grams" / "x" / "a.safetensors").write_bytes(b"\x00" * 40)
    return ["reestimate", "--grams", str(t / "grams"), "--store", str(t / "re.duckdb"), "--no-progress"]


def _failed_rows(t: Path, w: dict, output: str) -> None:
    con = duckdb.connect(str(t / "s.duckdb"), read_only=True)
    rows = con.execute("SELECT status, error FROM samples").fetchall()
    con.close()
    assert rows and all(s == "failed" and "too long" in e for s, e in rows)


def _odd_text(t: Path, w: dict) -> list[str]:
    rows = [
        {"id": "nul", "text": "a red\x00 cube"},
        {"id": "bidi", "text": "abc \u202edcba\u202c \u2067x\u2069 on a table"},
    ]
    return probe_args(w, t / "s.duckdb", prompts=f"jsonl:{_jsonl(t / 'odd.jsonl', rows)}")


def _odd_text_kept(t: Path, w: dict, output: str) -> None:
    con = duckdb.connect(str(t / "s.duckdb"), read_only=True)
    rows = dict(con.execute("SELECT sample_id, prompt_text FROM samples WHERE status = 'ok'").fetchall())
    con.close()
    assert rows == {"nul": "a red\x00 cube", "bidi": "abc \u202edcba\u202c \u2067x\u2069 on a table"}


def _report_into_missing(t: Path, w: dict) -> list[str]:
    return ["report", "--store", str(w["store"]), "--out", str(t / "new" / "deeper"), "--n-boot", "10"]


CASES: dict[str, Case] = {
    # --- the table -----------------------------------------------------------
    "truncated-safetensors": Case(_truncated_model, 1, "is damaged or incomplete"),
    "save-images-unwritable": Case(
        lambda t, w: probe_args(w, t / "s.duckdb", "--save-images", str(_unwritable(t / "ro"))),
        1,
        "is not writable",
    ),
    "save-grams-is-a-file": Case(
        lambda t, w: (
            (t / "f").write_text("x") and probe_args(w, t / "s.duckdb", "--save-grams", str(t / "f"))
        ),
        2,
        "is a file",
    ),
    "report-read-only-folder": Case(
        lambda t, w: ["report", "--store", str(w["store"]), "--out", str(_unwritable(t / "ro"))],
        1,
        "not writable",
    ),
    "report-folder-under-a-file": Case(
        lambda t, w: (
            (t / "f").write_text("x") and ["report", "--store", str(w["store"]), "--out", str(t / "f" / "r")]
        ),
        1,
        "cannot create the report folder",
    ),
    "report-into-missing-folder-creates-it": Case(
        _report_into_missing,
        0,
        "wrote",
        creates=("new", "new/deeper", "new/deeper/report.html", "new/deeper/figures", "new/deeper/tables"),
        check=lambda t, w, o: None,
    ),
    "export-read-only-folder": Case(
        lambda t, w: ["export", "--store", str(w["store"]), "--out", str(_unwritable(t / "ro"))],
        1,
        "not writable",
    ),
    "export-folder-under-a-file": Case(
        lambda t, w: (
            (t / "f").write_text("x") and ["export", "--store", str(w["store"]), "--out", str(t / "f" / "x")]
        ),
        1,
        "cannot create the export folder",
    ),
    "store-is-someone-elses-duckdb": Case(_foreign_duckdb, 1, "entprobe did not create"),
    "store-is-a-json-file": Case(_json_store, 1, "is not a DuckDB database"),
    "store-is-a-folder": Case(lambda t, w: (t / "d").mkdir() or probe_args(w, t / "d"), 2, "directory"),
    "pca-dim-0": Case(
        lambda t, w: probe_args(w, t / "s.duckdb", "--pca-dim", "0"), 2, "positive number of components"
    ),
    "pca-dim-negative": Case(
        lambda t, w: probe_args(w, t / "s.duckdb", "--pca-dim", "-3"), 2, "'none' for no PCA"
    ),
    "pca-dim-word": Case(lambda t, w: probe_args(w, t / "s.duckdb", "--pca-dim", "many"), 2, "--pca-dim"),
    "image-path-dotdot": Case(lambda t, w: _images_outside(t, w, False, False), 0, "outside the data folder"),
    "image-path-absolute": Case(lambda t, w: _images_outside(t, w, True, False), 0, "--allow-outside-paths"),
    "image-path-allowed": Case(lambda t, w: _images_outside(t, w, False, True), 0, "2 records"),
    "reestimate-one-truncated-gram": Case(
        _truncated_gram, 0, "1 failed", creates=("re.duckdb",), check=_check_reestimate_went_on
    ),
    "reestimate-only-garbage": Case(_garbage_grams, 1, "can be read"),
    # --- already handled before, kept handled -----------------------------------------
    "missing-model-path": Case(
        lambda t, w: (
            probe_args(w, t / "s.duckdb")[:2] + [str(t / "nope")] + probe_args(w, t / "s.duckdb")[3:]
        ),
        1,
        "no such folder or file",
    ),
    "unknown-model-type": Case(
        lambda t, w: (
            ((t / "m").mkdir() or (t / "m" / "config.json").write_text('{"model_type": "nonsense"}'))
            and ["probe", "--model", str(t / "m")] + probe_args(w, t / "s.duckdb")[3:]
        ),
        1,
        "no adapter handles model_type 'nonsense'",
    ),
    "hub-id-offline": Case(
        lambda t, w: ["probe", "--model", "nobody-here/no-such-model"] + probe_args(w, t / "s.duckdb")[3:],
        1,
        "cannot read the config of 'nobody-here/no-such-model'",
    ),
    "malformed-tsv": Case(
        lambda t, w: (
            (t / "b.tsv").write_text("a\tb\n1\t2\n") and ["datasets", "inspect", f"mmbench:{t / 'b.tsv'}"]
        ),
        1,
        "is not an MMBench TSV",
    ),
    "malformed-jsonl": Case(
        lambda t, w: (
            (t / "b.jsonl").write_text("not json\n[1]\n")
            and probe_args(w, t / "s.duckdb", prompts=f"jsonl:{t / 'b.jsonl'}")
        ),
        1,
        "no line holds a JSON object",
    ),
    "jsonl-bad-line-skipped": Case(
        lambda t, w: (
            (t / "h.jsonl").write_text('{"text": "fine"}\n{broken\n')
            and ["datasets", "inspect", f"jsonl:{t / 'h.jsonl'}"]
        ),
        0,
        "line is not valid JSON",
    ),
    "decompression-bomb": Case(_bomb, 0, "pixels"),
    "shard-3-of-2": Case(lambda t, w: probe_args(w, t / "s.duckdb", "--shard", "3/2"), 1, "1 <= K <= N"),
    "shard-garbage": Case(lambda t, w: probe_args(w, t / "s.duckdb", "--shard", "two"), 1, "K/N"),
    "locked-store": Case(_locked, 1, "is being written by process"),
    "bogus-level": Case(
        lambda t, w: [*probe_args(w, t / "s.duckdb"), "--levels", "prompt,video-gen"],
        1,
        "unknown level(s) ['video-gen']",
    ),
    "bogus-device": Case(
        lambda t, w: probe_args(w, t / "s.duckdb", "--device", "toaster"), 1, "is not a torch device"
    ),
    "cuda-missing": Case(
        lambda t, w: probe_args(w, t / "s.duckdb", "--device", "cuda"),
        1,
        "CUDA is not available",
        needs="no-cuda",
    ),
    "alpha-zero": Case(
        lambda t, w: probe_args(w, t / "s.duckdb", "--alpha", "0"), 1, "alpha must be a positive"
    ),
    "alpha-word": Case(lambda t, w: probe_args(w, t / "s.duckdb", "--alpha", "x"), 2, "--alpha"),
    "base-one": Case(lambda t, w: probe_args(w, t / "s.duckdb", "--base", "1"), 1, "other than 1"),
    "base-word": Case(lambda t, w: probe_args(w, t / "s.duckdb", "--base", "ten"), 2, "a number or 'e'"),
    "bogus-normalization": Case(
        lambda t, w: probe_args(w, t / "s.duckdb", "--normalization", "bogus"),
        1,
        "normalization must be one of",
    ),
    "own-bandwidth-with-fixed-sigma": Case(
        lambda t, w: probe_args(w, t / "s.duckdb", "--prompt-bandwidth", "own", "--sigma", "1.0"),
        1,
        "cannot be combined with a fixed sigma",
    ),
    "bogus-last-layer": Case(
        lambda t, w: probe_args(w, t / "s.duckdb", "--last-layer", "middle"), 2, "--last-layer"
    ),
    "limit-zero": Case(lambda t, w: probe_args(w, t / "s.duckdb", "--limit", "0"), 2, "--limit"),
    "no-prompts": Case(
        lambda t, w: ["probe", "--model", str(w["llama"]), "--store", str(t / "s.duckdb")],
        1,
        "no prompts given",
    ),
    "prompt-of-20000-tokens": Case(
        lambda t, w: probe_args(
            w, t / "s.duckdb", prompts=f"jsonl:{_jsonl(t / 'long.jsonl', [{'text': 'word ' * 20000}])}"
        ),
        1,
        "prompt too long",
        creates=("s.duckdb",),
        check=_failed_rows,
    ),
    "nul-and-bidi-characters": Case(
        _odd_text, 0, "2 (sample, level) ok", creates=("s.duckdb",), check=_odd_text_kept
    ),
    "merge-a-json-file": Case(
        lambda t, w: (
            (t / "x.json").write_text("{}") and ["merge", "--out", str(t / "m.duckdb"), str(t / "x.json")]
        ),
        1,
        "is not a DuckDB database",
    ),
    "report-on-foreign-duckdb": Case(
        lambda t, w: (
            _foreign_duckdb(t, w) and ["report", "--store", str(t / "theirs.duckdb"), "--out", str(t / "r")]
        ),
        1,
        "not an entprobe results store",
        creates=("r", "r/figures", "r/tables"),
    ),
    "status-of-a-json-file": Case(
        lambda t, w: (t / "x.json").write_text("{}") and ["status", "--store", str(t / "x.json")],
        1,
        "is not a DuckDB database",
    ),
}


@pytest.fixture(autouse=True)
def _stop_holders():
    yield
    while _HOLDERS:
        proc = _HOLDERS.pop()
        proc.stdin.close()
        proc.wait(timeout=30)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, world, tmp_path):
    case = CASES[name]
    if case.needs == "no-cuda" and torch.cuda.is_available():
        pytest.skip("checks the message shown when CUDA is missing")
    work = tmp_path / "case"
    work.mkdir()
    argv = case.setup(work, world)
    before = _tree(work)
    good_before = _tree(world["root"])
    result = CliRunner().invoke(main, argv)
    output = result.output
    assert result.exit_code == case.code, f"{argv}\n{output}\n{result.exception!r}"
    assert case.message.lower() in output.lower(), output
    assert "Traceback" not in output
    if case.code != 0 and result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)  # a message, not a crash
    after = _tree(work)
    changed = {k for k in before if after.get(k) != before[k]}
    assert not changed, f"changed or removed: {sorted(changed)}"
    added = set(after) - set(before)
    allowed = set(case.creates)
    assert added <= allowed | {a for a in added if any(a.startswith(c + "/") for c in allowed)}, sorted(added)
    if not _HOLDERS:  # (the holder of the locked-store case keeps its own lock file)
        assert not any(p.endswith(".lock") for p in after), "a lock file was left behind"
    assert _tree(world["root"]) == good_before  # the shared good store and Grams are untouched
    if case.check is not None:
        case.check(work, world, output)


def test_corpus_is_large_enough():
    assert len(CASES) >= 30

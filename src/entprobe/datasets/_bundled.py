"""The bundled sample sets (``sample:t2i``, ``sample:mmbench``), written for entprobe
by ``scripts/make_sample_sets.py`` and shipped as package data under ``samples/``."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from types import ModuleType

from entprobe.errors import DatasetError

from . import _mmbench, _t2i_corebench

NAME = "sample"
EXAMPLE = "sample:t2i"
DESCRIPTION = (
    "bundled sample sets written for entprobe: sample:t2i (T2I-CoReBench format, "
    "12 dimensions) and sample:mmbench (MMBench TSV, six image types, drawn images)"
)
OPTIONS: dict[str, str] = {}

# name -> (loader, file or folder under samples/, dataset name)
SAMPLES: dict[str, tuple[ModuleType, str, str]] = {
    "t2i": (_t2i_corebench, "t2i-corebench", "sample-t2i"),
    "mmbench": (_mmbench, "mmbench-sample.tsv", "sample-mmbench"),
}


def samples_dir() -> Path:
    """The folder holding the bundled sample files."""
    root = files("entprobe.datasets").joinpath("samples")
    if not isinstance(root, Path):
        raise DatasetError(
            "entprobe's bundled samples are not on the file system (zipped install?); "
            "reinstall entprobe from a wheel or source"
        )
    return root


def resolve(name: str) -> tuple[ModuleType, Path, str]:
    """The loader, path and dataset name of the sample set ``name``.

    Raises:
        DatasetError: unknown sample name, or its files are missing.
    """
    if name not in SAMPLES:
        raise DatasetError(
            f"unknown sample set {name!r}; available: " + ", ".join(f"sample:{n}" for n in SAMPLES)
        )
    loader, relative, dataset = SAMPLES[name]
    path = samples_dir() / relative
    if not path.exists():
        raise DatasetError(f"bundled sample file {path} is missing; the installation is incomplete")
    return loader, path, dataset

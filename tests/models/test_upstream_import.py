"""Finding the user's upstream code (models/_upstream.py)."""

from __future__ import annotations

import sys

import pytest

from entprobe.errors import ModelLoadError
from entprobe.models._upstream import Upstream, import_upstream, require_versions, upstream_env_var

SPEC = Upstream(
    family="toyfam",
    repo="someone/Toy",
    checked=("abc123 (2026-01-01)",),
    install="git clone https://github.com/someone/Toy",
    modules=("toyup_models.core",),
    subdir="pkg",
)


@pytest.fixture
def checkout(tmp_path):
    mod = tmp_path / "Toy" / "pkg" / "toyup_models"
    mod.mkdir(parents=True)
    (mod / "__init__.py").write_text("")
    (mod / "core.py").write_text("WHERE = __file__\n")
    yield tmp_path / "Toy"
    for name in [n for n in sys.modules if n.startswith("toyup_models")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if not p.startswith(str(tmp_path))]


def test_env_var_name():
    assert upstream_env_var("showo2") == "ENTPROBE_SHOWO2_SRC" and SPEC.env_var == "ENTPROBE_TOYFAM_SRC"


def test_missing_code_names_repo_commit_and_install(monkeypatch):
    monkeypatch.delenv("ENTPROBE_TOYFAM_SRC", raising=False)
    with pytest.raises(ModelLoadError) as err:
        import_upstream(SPEC)
    text = str(err.value)
    for part in (
        "someone/Toy",
        "abc123",
        "git clone https://github.com/someone/Toy",
        "--upstream-src",
        "ENTPROBE_TOYFAM_SRC",
        "toyup_models.core",
    ):
        assert part in text
    with pytest.raises(ModelLoadError, match="is not a folder"):
        import_upstream(SPEC, "/nonexistent/toy")


def test_checkout_from_argument_and_env(checkout, monkeypatch):
    monkeypatch.delenv("ENTPROBE_TOYFAM_SRC", raising=False)
    got = import_upstream(SPEC, checkout)
    assert got["modules"]["toyup_models.core"].WHERE.startswith(str(checkout / "pkg"))
    assert got["identity"]["repo"] == "someone/Toy" and got["identity"]["path"] == str(checkout.resolve())
    monkeypatch.setenv("ENTPROBE_TOYFAM_SRC", str(checkout))
    assert import_upstream(SPEC)["identity"]["path"] == str(checkout.resolve())
    with pytest.raises(ModelLoadError, match="has no 'pkg' folder"):
        import_upstream(SPEC, checkout / "pkg")


def test_require_versions():
    require_versions({"torch": "2.0"}, who="x")
    with pytest.raises(ModelLoadError, match=r"adapter 'y' needs torch>=999\.0; this environment has torch"):
        require_versions({"torch": "999.0"}, who="adapter 'y'")
    with pytest.raises(ModelLoadError, match="not installed"):
        require_versions({"no-such-package-xyz": "1"}, who="x")


def test_a_missing_dependency_of_the_checkout_is_not_reported_as_missing_code(checkout, monkeypatch):
    """The checkout is there; the module it imports is not (BAGEL's flash_attn, timm's
    torchvision): the message names that module and says to install it."""
    monkeypatch.delenv("ENTPROBE_TOYFAM_SRC", raising=False)
    (checkout / "pkg" / "toyup_models" / "core.py").write_text("import entprobe_no_such_dependency\n")
    with pytest.raises(ModelLoadError) as err:
        import_upstream(SPEC, checkout)
    text = str(err.value)
    assert "the upstream code of someone/Toy is there" in text
    assert "'entprobe_no_such_dependency' is not installed in this environment" in text
    assert "git clone" not in text

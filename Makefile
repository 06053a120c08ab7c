# The two set-up commands of the README. Both work on a fresh machine with only
# Python and pip: they create .venv, install torch's CPU build first (so pip does not
# pull the CUDA wheels), then the package with its test extras.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP   = $(VENV)/.installed

.PHONY: demo test install bench validate clean browser test-upstream lint format

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test,ray]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/entprobe demo --out demo-output

test: $(STAMP) browser
	$(PY) -m pytest -q

# ruff (pinned in the test extras): the rules and the format in pyproject.toml.
LINTED = src tests scripts examples
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(LINTED)
	$(VENV)/bin/ruff format $(LINTED)

# The report's end-to-end test needs headless Chromium; install it when we can
# (root or passwordless sudo with apt). The test skips, saying why, where we cannot.
browser:
	@sh scripts/install-chromium.sh || echo "(the browser test will be skipped)"

# Integration tests against the upstream UMM repositories (tests/upstream), in a second
# virtualenv pinned like the upstreams as far as one environment can be: Show-o pins
# transformers 4.41 / diffusers 0.30, Show-o2 4.47 / 0.31, BAGEL 4.49; 4.49 + 0.31 import
# them all (JanusFlow's attrdict: attrdict3, the Python >= 3.10 fork of the same module;
# torchdiffeq: Show-o2's ODE sampler). OmniGen2's adapter is also run here, under
# transformers 4.x (its pin is 4.51.3). ENTPROBE_UPSTREAM_ROOT: a folder of
# <owner>+<repo> checkouts.
UVENV   ?= .venv-upstream
UPY      = $(UVENV)/bin/python
USTAMP   = $(UVENV)/.installed
UPSTREAM_PKGS ?= transformers==4.49.0 diffusers==0.31.0 accelerate einops mmengine \
	sentencepiece omegaconf jaxtyping typeguard pyyaml attrdict3 torchdiffeq==0.2.5
# timm without its dependencies: it asks for torchvision, whose PyPI build replaces
# torch 2.13 (tests/upstream/standins/ has the torchvision shell timm imports).
UPSTREAM_NODEPS ?= timm
ENTPROBE_UPSTREAM_ROOT ?= ../shared/upstream

$(UPY):
	$(PYTHON) -m venv $(UVENV)
	$(UPY) -m pip install -q --upgrade pip

$(USTAMP): pyproject.toml Makefile | $(UPY)
	$(UPY) -c "import torch" 2>/dev/null || $(UPY) -m pip install -q "$(TORCH_SPEC)"
	$(UPY) -m pip install -q -e ".[test]" "$(TORCH_SPEC)" $(UPSTREAM_PKGS)
	$(UPY) -m pip install -q --no-deps $(UPSTREAM_NODEPS)
	touch $(USTAMP)

test-upstream: $(USTAMP)
	ENTPROBE_UPSTREAM_ROOT="$(abspath $(ENTPROBE_UPSTREAM_ROOT))" $(UPY) -m pytest -q tests/upstream tests/models/test_omnigen2.py

bench: $(STAMP)
	$(VENV)/bin/entprobe bench

validate: $(STAMP)
	$(VENV)/bin/entprobe validate --out validate-output

clean:
	rm -rf $(VENV) $(UVENV) demo-output validate-output .pytest_cache

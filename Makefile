# The two set-up commands of the README. Both work on a fresh machine with only
# Python and pip: they create .venv, install torch's CPU build first (so pip does not
# pull the CUDA wheels), then the package with its test extras.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP   = $(VENV)/.installed

.PHONY: demo test install bench validate clean browser

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

# The report's end-to-end test needs headless Chromium; install it when we can
# (root or passwordless sudo with apt). The test skips, saying why, where we cannot.
browser:
	@sh scripts/install-chromium.sh || echo "(the browser test will be skipped)"

bench: $(STAMP)
	$(VENV)/bin/entprobe bench

validate: $(STAMP)
	$(VENV)/bin/entprobe validate --out validate-output

clean:
	rm -rf $(VENV) demo-output validate-output .pytest_cache

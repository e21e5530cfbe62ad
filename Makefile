# Two commands for a fresh machine: `make demo` and `make test`. Both are idempotent:
# the virtualenv is (re)installed only when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test install warm mutation clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgekit demo --out runs/demo

# Every core (up to 4), a whole module per worker, the longest first (tests/conftest.py). A worker that
# crashes ends the run, reported: xdist's replacement worker was seen to wait forever under loadfile.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder --max-worker-restart=0

# The caches a few tests fill on first use (arm64 userland, MediaPipe, TF Serving's client, Chromium and Playwright):
# filled ahead of time, for a machine about to go offline or a CI image. tests/caches.py says what each holds.
warm: $(STAMP)
	$(VENV)/bin/python tests/caches.py

clean:
	rm -rf runs .pytest_cache

# Two commands for a fresh machine: `make demo` and `make test`. Both are idempotent:
# the virtualenv is (re)installed only when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint docs install warm mutation clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[all,dev,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgekit demo --out runs/demo

# Lint and the architecture first: ruff (lint and format), import-linter's layer contracts (pyproject.toml), the
# import-cycle and size checks (tests/project/test_architecture.py). ARCHITECTURE.md says what they enforce.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/project/test_architecture.py

# The docs site into site/, strict: a broken link, an unresolved API reference or a page missing from the nav fails.
# The generated pages (CLI, API, vocabulary, benchmarks) come from scripts/docs_pages.py; a test says when one is stale.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# Every core (up to 4), a whole module per worker, the longest first (recorded in tests/durations.json by the last
# whole run). A worker that crashes ends the run, reported: xdist's replacement worker was seen to wait forever under
# loadfile.
test: lint docs
	$(VENV)/bin/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder --max-worker-restart=0

# The quick loop while editing: no test that trains a model, installs into a cache or runs the product end to end.
test-fast: lint
	$(VENV)/bin/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder -m "not slow and not integration and not installs"

# The caches a few tests fill on first use (arm64 userland, MediaPipe, TF Serving's client, Chromium and Playwright):
# filled ahead of time, for a machine about to go offline or a CI image. tests/helpers/caches.py says what each holds.
warm: $(STAMP)
	$(VENV)/bin/python tests/helpers/caches.py

clean:
	rm -rf runs .pytest_cache site dist build

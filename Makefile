# Two commands for a fresh machine: `make demo` and `make test`. Both are idempotent:
# the virtualenv is (re)installed only when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgekit demo --out runs/demo

# Every core (up to 4), a whole module per worker, the longest first (tests/conftest.py).
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder

clean:
	rm -rf runs .pytest_cache

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

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf runs .pytest_cache

# KTRDR training service. `make demo` runs the main job; `make test` runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test test-unit test-integration quality lint format protos proto-breaking demo bench clean

# Creates .venv and installs the project with dev extras; a no-op while pyproject.toml is unchanged.
setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest -q -m "not integration and not e2e" $(PYTEST_ARGS)

test-integration: setup
	$(PY) -m pytest -q -m "integration or e2e" $(PYTEST_ARGS)

quality: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@if [ -d protos/ktrdr ]; then $(VENV)/bin/buf lint; fi

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: setup
	$(PY) -m ktrdr.cli.main train examples/strategies/rsi_single.yaml --local \
		--data-dir data/samples --models-dir .demo/models

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache

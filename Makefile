# KTRDR training service. `make demo` runs the main job; `make test` runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test test-unit test-integration test-e2e chaos chaos-short quality lint format protos proto-breaking demo bench mlflow-ui clean

# Creates .venv and installs the project with the training library, the services, MLflow
# tracking, Ray (the host's optional Ray mode), sweeps (Optuna), tracing (OpenTelemetry) and
# the dev tools; a no-op while pyproject.toml is unchanged.
setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -e '.[training,mlflow,ray,sweeps,tracing,dev]'
	@touch $(STAMP)

# The tiers (README "Tests"), one folder each: unit (tests/unit: in-process: no ports, no
# servers, no child processes, no real-time waits; its conftest fails a test that starts one),
# integration (tests/integration: real servers, processes and trainings), e2e (tests/e2e: the
# services as users start them). `make test` runs all three, one after the other. The -m
# selections repeat what the folders give (tests/conftest.py marks by folder).
# The unit tier spreads over UNIT_XDIST workers: measured on this 2-core machine (wall of the
# pytest command, median [min..max] of 3-5 alternating runs), near quiet (load 1-1.5): -n 2
# 12.4 s [11.9..12.9], one process 15.5 s [14.2..15.7]; beside other helpers' runs (load 5-7):
# -n 2 37 s [29..70], one process 25 s [20..43]. Each worker collects the tier (~1.5 s) and
# imports torch, pandas, optuna (~3 s): UNIT_XDIST= (one process) on a busy machine.
# Integration tests spread over XDIST pytest-xdist workers, whole files per worker. The e2e
# tier runs in one process: its services and trainings keep a core busy, and two workers made
# it slower here (6m28s against 6m08s). E2E_XDIST='-n 2 --dist loadfile' spreads it too (each
# worker then starts its own session services).
# KTRDR_TEST_TIME_SCALE=3 (say) stretches every deadline on a slow or loaded machine.
# The MLflow UI test uses .venv-mlflow (MLFLOW_VENV), the venv `make mlflow-ui` uses: made once
# (in the background while the e2e tests before it run; ~60 s of CPU), then reused.
# Test files go to /dev/shm when it is a tmpfs (tests/conftest.py; KTRDR_TEST_TMPFS=0: not).
UNIT_XDIST ?= -n 2
XDIST ?= -n 2
E2E_XDIST ?=

test: test-unit test-integration test-e2e

test-unit: setup
	$(PY) -m pytest -q $(UNIT_XDIST) -m "not integration and not e2e and not chaos" tests/unit \
		$(PYTEST_ARGS)

test-integration: setup
	$(PY) -m pytest -q $(XDIST) --dist loadfile -m "integration and not e2e" tests/integration \
		$(PYTEST_ARGS)

test-e2e: setup
	KTRDR_TEST_MLFLOW_UI_VENV=$(abspath $(MLFLOW_VENV)) \
		$(PY) -m pytest -q $(E2E_XDIST) -m e2e tests/e2e $(PYTEST_ARGS)

# The chaos soak (README "Chaos test"), in no tier of `make test`: trainings in local mode and
# on two hosts while faults are injected at moments drawn from KTRDR_CHAOS_SEED (random when
# unset; printed), then the invariants. `chaos`: 300 s of faults; `chaos-short`: 90 s (CI).
# KTRDR_CHAOS_SECONDS=N changes the length. Mounts a tmpfs (root), else skips only that fault.
chaos: setup
	KTRDR_CHAOS_PROFILE=full $(PY) -m pytest -q -s -m chaos tests/chaos $(PYTEST_ARGS)

chaos-short: setup
	KTRDR_CHAOS_PROFILE=short $(PY) -m pytest -q -s -m chaos tests/chaos $(PYTEST_ARGS)

quality: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy benchmarks scripts
	$(VENV)/bin/buf lint
	$(PY) scripts/gen_protos.py --check

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Regenerates src/ktrdr/training/v1 from protos/ (committed; never edit it by hand).
protos: setup
	$(PY) scripts/gen_protos.py

# Checks protos/ against main for breaking changes (buf breaking, FILE rules).
proto-breaking: setup
	@if git cat-file -e main:protos/ktrdr/training/v1 2>/dev/null; then \
		$(VENV)/bin/buf breaking --against '.git#branch=main' && \
		echo "protos: no breaking change against main"; \
	else echo "main has no protos yet: nothing to compare"; fi

# Starts a host and a backend on free loopback ports, trains an example strategy in host
# mode, prints metrics and models, writes .demo/training.png, stops both services.
demo: setup
	$(PY) scripts/demo.py

bench: setup
	$(PY) benchmarks/run_all.py

# MLflow's UI on http://127.0.0.1:5000 (MLFLOW_PORT): `mlflow server` from .venv-mlflow (the
# mlflow-ui extra, installed once), its store in .ktrdr/mlflow-server/. Start the backend with
# KTRDR_BACKEND_MLFLOW_TRACKING_URI=http://127.0.0.1:5000 to see its runs and sweeps there.
MLFLOW_VENV ?= .venv-mlflow
MLFLOW_PORT ?= 5000
mlflow-ui:
	@test -x $(MLFLOW_VENV)/bin/mlflow || (python3 -m venv $(MLFLOW_VENV) && \
		$(MLFLOW_VENV)/bin/pip install --quiet --disable-pip-version-check 'mlflow>=3.10')
	@mkdir -p .ktrdr/mlflow-server
	$(MLFLOW_VENV)/bin/mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) \
		--backend-store-uri sqlite:///$(CURDIR)/.ktrdr/mlflow-server/mlflow.db \
		--artifacts-destination $(CURDIR)/.ktrdr/mlflow-server/artifacts

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache

# Two commands on a fresh machine with only Python and pip: `make demo` and `make test`.
# Test lanes: `make test` (fast), `make test-slow` (end to end), `make reliability`; CI runs all three
# (`make test-full`: the fast lane, then the other two as one pytest run, `make full-lane`), each test once.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DCAI_DATA_DIR ?= $(CURDIR)/.data
# Telemetry off: Dagster (dagster.yaml below), MLflow, and GX (older 1.x releases read this).
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= true
export GX_ANALYTICS_ENABLED ?= false

.PHONY: demo example test test-slow test-full full-lane reliability ui mlflow-ui schema lineage benchmark clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (Python 3.11) on PATH; set PYTHON=..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[demo,dev,production]"
	touch $@

$(DAGSTER_HOME)/dagster.yaml: resources/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp resources/dagster.yaml $@

## Run the demo pipeline end to end on embedded defaults (SQLite instance, local Parquet files).
demo: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m jobs.demo

## Run the second example end to end: hourly weather at the NYC airports, monthly partitions (Apr-Sep 2013).
example: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m jobs.airport_weather_demo

# Test runs put their throwaway Dagster instances, MLflow databases and lakes on a RAM disk
# (/dev/shm) when it has 4 GB free, in a directory removed afterwards: on a shared VM's disk each
# SQLite commit waits for the disk, and that took longer than the tests' own work (four retrain
# tests at the same load: 107 s with the disk, 28 s with /dev/shm). Prefix a command with it.
# (Readable by others: the test PostgreSQL server runs as the `postgres` user.)
TEST_TMP = tmp=$$( [ "$$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $$4}')" -gt 4000000 ] 2>/dev/null \
	&& mktemp -d -p /dev/shm dcai-tests.XXXXXX || mktemp -d ) && trap 'rm -rf "$$tmp"' EXIT \
	&& chmod 755 "$$tmp" && TMPDIR=$$tmp

## The fast lane, the README's test command: lint, `dagster definitions validate`, and every test
## not marked `slow` or `reliability` (unit and in-process tests), on every core (pytest-xdist).
test: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/dagster definitions validate -w dagster_workspace.yaml
	$(TEST_TMP) $(PY) -m pytest -n auto --dist loadfile

## The full lane's end-to-end tests (marker `slow`): live instances, the production instance on
## PostgreSQL, the Chromium UI test, the example commands, killed subprocesses, MLflow servers.
## Installs Debian's Chromium and PostgreSQL if missing.
test-slow: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	scripts/install-chromium.sh
	scripts/install-postgres.sh
	$(TEST_TMP) $(PY) -m pytest -m "slow and not reliability" $(LONGEST_FIRST)

## What CI runs (.ci/run): the fast lane, then the end-to-end tests and the reliability suite.
test-full: test full-lane

# The full lane's modules each run on one of two pytest-xdist workers (`--dist loadfile`), in the
# order tests/conftest.py gives them, longest first (`--no-loadscope-reorder`: not by test count),
# so that no long module starts last while the other worker has nothing left to do.
LONGEST_FIRST = -n 2 --dist loadfile --no-loadscope-reorder

## `make test-slow` and `make reliability` as one pytest run (what CI runs after `make test`): the
## two workers share out both lanes' modules, so neither waits alone at the end of a lane.
full-lane: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	scripts/install-chromium.sh
	scripts/install-postgres.sh
	$(TEST_TMP) $(PY) -m pytest -m "slow or reliability" $(LONGEST_FIRST) -p no:cacheprovider

## The reliability suite: kill -9 mid-run, 1,000 files at once, a year's backfill,
## faults (MLflow down, disk full) and the bad-input catalogue, on a real instance with the daemon.
reliability: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	scripts/install-postgres.sh
	$(TEST_TMP) $(PY) -m pytest -m reliability $(LONGEST_FIRST) -p no:cacheprovider tests/reliability

## Open the demo in the Dagster UI at http://127.0.0.1:3000 (sensors run while it is open).
ui: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w dagster_workspace.yaml -h 127.0.0.1 -p 3000

## Open the demo's MLflow runs and registry at http://127.0.0.1:5000.
mlflow-ui: $(VENV)/.installed
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(DCAI_DATA_DIR)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

## Regenerate the demo's schema file from its reference window (review the diff like code).
schema: $(VENV)/.installed
	$(VENV)/bin/dcai-assets schema infer jobs.flights:FLIGHTS

## What made a model version (make lineage VERSION=2), or which versions used a partition
## (make lineage PARTITION=2013-02-10), from the demo's MLflow registry.
MODEL ?= flights_model
lineage: $(VENV)/.installed
	@MLFLOW_TRACKING_URI=sqlite:///$(DCAI_DATA_DIR)/mlflow/mlflow.db $(VENV)/bin/dcai-assets lineage \
	  $(if $(PARTITION),partition $(PARTITION) --model $(MODEL),model $(MODEL) $(or $(VERSION),1))

benchmark: $(VENV)/.installed
	$(PY) benchmarks/validate_partition.py
	$(PY) benchmarks/read_csv_partition.py
	$(PY) benchmarks/label_model.py
	$(PY) benchmarks/retrain.py
	$(PY) benchmarks/knn_shapley_speed.py
	$(PY) benchmarks/valuation_growth.py
	$(PY) benchmarks/health_checks.py
	$(PY) benchmarks/data_debugging.py
	$(PY) benchmarks/careless_lf.py
	$(PY) benchmarks/automation_latency.py
	$(PY) benchmarks/backfill_parallel.py
	$(PY) benchmarks/healing_tick.py

clean:
	rm -rf $(DAGSTER_HOME) $(DCAI_DATA_DIR)

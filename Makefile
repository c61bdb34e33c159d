# The two commands of the README:
#   make run   installs into .venv, seeds demo files into the lake's raw/, starts `dagster dev`
#   make test  installs into .venv (with test tools), checks lint, format and types, runs the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Installs come from the committed locks (uv.lock; deploy/checkov/uv.lock), never from a fresh
# resolution. uv itself is installed into .venv-uv by pip, at the version pyproject.toml requires.
UV_REQUIREMENT := $(shell sed -n 's/^required-version = "\(.*\)"/\1/p' pyproject.toml)
UV := .venv-uv/bin/uv
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1
# Installs compile every module's bytecode once: this machine's environment may forbid Python to
# write it (PYTHONDONTWRITEBYTECODE), and then each process, every Dagster run worker among
# them, compiled dagster and pandas again at import (about a second).
export UV_COMPILE_BYTECODE := 1
LOCK_STALE := uv.lock does not match pyproject.toml: run make lock, then make test, and commit both

export LAKEHOUSE_URI ?= $(CURDIR)/.lakehouse
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
DEMO_ORDERS ?= 2000
PORT ?= 3000

.PHONY: run test install install-run lock seed demo lint bench clean jvm checkov

$(UV): pyproject.toml
	test -x .venv-uv/bin/python || $(PYTHON) -m venv .venv-uv
	.venv-uv/bin/pip install --quiet --disable-pip-version-check "uv$(UV_REQUIREMENT)"
	touch $(UV)

# What running needs (no test tools, no Spark); keeps what `make install` added (--inexact).
install-run: $(UV)
	@$(UV) lock --check --offline --quiet 2>/dev/null || { echo "$(LOCK_STALE)" >&2; exit 1; }
	$(UV) sync --locked --quiet --no-dev --inexact

# What the tests need besides: the dev group (pytest, moto, ruff, mypy, ...) and Spark; exactly the lock.
install: $(UV)
	@$(UV) lock --check --offline --quiet 2>/dev/null || { echo "$(LOCK_STALE)" >&2; exit 1; }
	$(UV) sync --locked --quiet --extra spark

# Moving pins: `make lock` re-resolves what pyproject.toml allows but keeps every locked version
# that still fits; `$(UV) lock --upgrade-package NAME` moves one. Then `make test`, and commit.
lock: $(UV)
	$(UV) lock
	$(UV) lock --project deploy/checkov

seed: install-run
	@$(MAKE) --no-print-directory demo

# The demo files (what `make run` seeds; the README's test loads them too): three families, three
# order lines that break a rule.
demo:
	$(BIN)/ecom-lakehouse generate "$(LAKEHOUSE_URI)/raw" --orders $(DEMO_ORDERS) --seed 7 --bad-rows 3
	$(BIN)/ecom-lakehouse generate "$(LAKEHOUSE_URI)/raw" --family thelook --orders $(DEMO_ORDERS) --days 30 --seed 7
	$(BIN)/ecom-lakehouse generate "$(LAKEHOUSE_URI)/raw" --family transactions --orders 288 --days 1 --seed 7

run: seed
	mkdir -p "$(DAGSTER_HOME)" && cp deploy/local/dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	@echo "Dagster UI: http://127.0.0.1:$(PORT)  (lake: $(LAKEHOUSE_URI))"
	@# the UI's links in notifications follow PORT; `dagster dev` warns that `dg dev` supersedes
	@# it, which needs a package this project does not use: nothing a user can act on
	LAKEHOUSE_TRANSACTIONS_GENERATOR=running DAGSTER_UI_URL=$${DAGSTER_UI_URL:-http://127.0.0.1:$(PORT)} \
	  PYTHONWARNINGS='ignore:Function `dev_command` is superseded' \
	  exec $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

# checkov lints deploy/ from its own virtualenv and lock: it pins its own boto3, among much else.
checkov: $(UV)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/.venv-checkov $(UV) sync --locked --quiet --project deploy/checkov

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@# the definitions load as `dagster dev` loads them, on a throw-away instance (the CLI says
	@# `dg check defs` supersedes it, which needs a package this project does not use)
	env -u DAGSTER_HOME PYTHONWARNINGS='ignore:Function `definitions_validate_command` is superseded' \
	  $(BIN)/dagster definitions validate -w workspace.yaml

# The JVM engines the tests run (Spark's Delta jars, Trino) come from Maven Central into a cache
# outside the repository (~/.cache/ecom-lakehouse; about 1.1 GB the first time), never at test time.
# Tests are shared out by file: a file's tests share one worker, so the Trino tests start one
# Trino (pytest 9.2 ignores xdist's loadgroup: it can no longer rename a test's node id).
jvm: install
	$(BIN)/python -m ecom_lakehouse_tests.jvm

test: lint checkov jvm
	$(BIN)/pytest -n 2 --dist loadfile --durations=15 $(PYTEST_ARGS)

# The benchmark suite (not part of the tests): about 6 minutes on 2 cores.
bench: install
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf .lakehouse .dagster_home .pytest_cache

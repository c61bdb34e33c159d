# The two commands of the README:
#   make run   installs into .venv, seeds demo files into the lake's raw/, starts `dagster dev`
#   make test  installs into .venv (with test tools), checks lint, format and types, runs the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

export LAKEHOUSE_URI ?= $(CURDIR)/.lakehouse
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
DEMO_ORDERS ?= 2000
PORT ?= 3000

.PHONY: run test install seed lint bench clean jvm

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

seed: install
	$(BIN)/ecom-lakehouse generate "$(LAKEHOUSE_URI)/raw" --orders $(DEMO_ORDERS) --seed 7
	$(BIN)/ecom-lakehouse generate "$(LAKEHOUSE_URI)/raw" --family thelook --orders $(DEMO_ORDERS) --days 30 --seed 7
	$(BIN)/ecom-lakehouse generate "$(LAKEHOUSE_URI)/raw" --family transactions --orders 288 --days 1 --seed 7

run: seed
	mkdir -p "$(DAGSTER_HOME)" && cp deploy/local/dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	@echo "Dagster UI: http://127.0.0.1:$(PORT)  (lake: $(LAKEHOUSE_URI))"
	LAKEHOUSE_TRANSACTIONS_GENERATOR=running exec $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

# checkov lints deploy/ from its own virtualenv: a large tool with its own pins, kept out of the project's.
CHECKOV_VERSION := 3.3.30
CHECKOV := .venv-checkov/bin/checkov-$(CHECKOV_VERSION)
$(CHECKOV):
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet "checkov==$(CHECKOV_VERSION)"
	ln -sf checkov $(CHECKOV)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The JVM engines the tests run (Spark's Delta jars, Trino) come from Maven Central into a cache
# outside the repository (~/.cache/ecom-lakehouse; about 1.1 GB the first time), never at test time.
# Tests are shared out by file: a file's tests share one worker, so the Trino tests start one
# Trino (pytest 9.2 ignores xdist's loadgroup: it can no longer rename a test's node id).
jvm: install
	$(BIN)/python -m ecom_lakehouse_tests.jvm

test: lint $(CHECKOV) jvm
	$(BIN)/pytest -n 2 --dist loadfile --durations=15 $(PYTEST_ARGS)

# The benchmark suite (not part of the tests): about 6 minutes on 2 cores.
bench: install
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf .lakehouse .dagster_home .pytest_cache

# rtcc-streams: every command a user or CI needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INFRA := deploy/local/infra.sh
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv infra-up infra-down infra-status topics run worker test test-unit \
        test-integration schemas clean bench chaos

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "rtcc-streams needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

venv: $(STAMP)  ## create .venv and install the project with its test extras

infra-up:  ## start Kafka (KRaft) and Redis locally, or reuse running ones
	@bash $(INFRA) up

infra-down:  ## stop what infra-up started (never a reused service)
	@bash $(INFRA) down

infra-status:  ## show Kafka and Redis
	@bash $(INFRA) status

topics: venv infra-up  ## create every topic the app uses (idempotent)
	@eval "$$(bash $(INFRA) env)" && $(BIN)/rtcc topics create

run: venv infra-up topics  ## the main job: worker + replay of the sample data + live view (Ctrl-C stops)
	@eval "$$(bash $(INFRA) env)" && $(BIN)/rtcc demo

worker: venv infra-up topics  ## run one worker in the foreground
	@eval "$$(bash $(INFRA) env)" && $(BIN)/rtcc worker

test: venv infra-up  ## the whole test suite: unit and integration (real Kafka and Redis)
	@eval "$$(bash $(INFRA) env)" && $(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv  ## unit tests only (no broker)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv infra-up  ## integration tests only
	@eval "$$(bash $(INFRA) env)" && $(BIN)/pytest tests/integration $(PYTEST_ARGS)

schemas: venv  ## re-render schemas/json from the Faust Records
	$(BIN)/python -m schemas.jsonschema

bench: venv infra-up  ## pipeline vs raw Kafka and plain Faust: throughput, latency (BENCH_ARGS="--quick")
	@eval "$$(bash $(INFRA) env)" && $(BIN)/python -m bench.pipeline $(BENCH_ARGS)

chaos: venv infra-up  ## reliability scenarios (kill -9, restarts, scaling, outages) checked against a clean run
	@eval "$$(bash $(INFRA) env)" && $(BIN)/python -m bench.chaos --full $(CHAOS_ARGS)

clean:  ## remove the virtualenv, local state and caches (not the Kafka jar cache)
	rm -rf $(VENV) var .pytest_cache .hypothesis

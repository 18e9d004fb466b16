# Chat Service — the two commands a developer needs: `make run` and `make test`.
# Both create .venv and install the project (with the dev/devstack extras) on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test deploy-check test-unit test-integration test-e2e bench lint format ci clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

## The whole system locally: embedded broker, MongoDB, Redis and every function.
run: $(STAMP)
	$(BIN)/python -m shared.devstack

## Everything needed, then the deployment checks and the whole suite (unit, integration, e2e).
test: $(STAMP) deploy-check
	$(BIN)/python -m pytest

## The Knative bundle as a cluster would check it: every overlay valid, every broken fixture
## rejected (KNATIVE_CRDS_DIR: the Knative CRDs, default ../shared/knative-crds).
deploy-check: $(STAMP)
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m shared.deploy check
	$(BIN)/python -m shared.deploy expect-broken tests/data/deploy/broken/*/

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

## Cold start, import time and throughput as ratios against a bare functions-framework function.
bench: $(STAMP)
	$(BIN)/python scripts/bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared tests
	@# Each function is its own `main` module: type-check them one at a time.
	@for f in functions/*/main.py; do echo "mypy $$f"; $(BIN)/mypy "$$f" || exit 1; done

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

ci: lint test

clean:
	rm -rf .devstack .mypy_cache .ruff_cache .pytest_cache

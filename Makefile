# Chat Service — the two commands a developer needs: `make run` and `make test`.
# Both create .venv and install the project (with the dev/devstack extras) on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test deploy-check test-unit test-integration test-e2e test-reliability bench bench-quick lint format ci clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

## The whole system locally: embedded broker, MongoDB, Redis and every function.
run: $(STAMP)
	$(BIN)/python -m shared.devstack

## Everything needed, then the deployment checks and the whole suite (unit, integration, e2e);
## the long runs of `make test-reliability` are left out.
test: $(STAMP) deploy-check
	$(BIN)/python -m pytest -m 'not reliability'

## The Knative bundle as a cluster would check it: every overlay valid, every broken fixture
## rejected (KNATIVE_CRDS_DIR: the Knative CRDs, default ../shared/knative-crds, or beside the origin of a clone).
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

## docs/reliability.md: the fault matrix and load and abuse on a whole local stack (prints the
## fault table), then fuzzing and attacks with the "reliability" hypothesis profile (over
## 10,000 generated cases).
test-reliability: $(STAMP)
	$(BIN)/python -m pytest -m reliability tests/reliability
	HYPOTHESIS_PROFILE=reliability $(BIN)/python -m pytest -m fuzz tests

## The performance targets, measured: ingress (wrk), round trips per bot turn, end to end on
## the whole stack, cold start and memory; each line PASS/FAIL against its target, results in
## bench-results/ (docs/performance.md). Exit 1 only when something did not start.
bench: $(STAMP)
	$(BIN)/python scripts/bench/run.py

## The same lines with fewer, shorter samples: about a minute.
bench-quick: $(STAMP)
	$(BIN)/python scripts/bench/run.py --quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared tests
	@# scripts/bench runs as a script: its modules import each other by name.
	MYPYPATH=scripts/bench $(BIN)/mypy scripts/bench/*.py scripts/bench/hello/main.py
	@# Each function is its own `main` module: type-check them one at a time.
	@for f in functions/*/main.py; do echo "mypy $$f"; $(BIN)/mypy "$$f" || exit 1; done

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

ci: lint test

clean:
	rm -rf .devstack .mypy_cache .ruff_cache .pytest_cache

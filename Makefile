# The two commands a new user needs are `make run` and `make test`; everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
# The tests spend most of their time waiting on the servers, workers and browsers they start, so
# they run in one pytest process per core (at most four); PYTEST_ARGS= runs them in one process.
PYTEST_ARGS ?= -n auto --maxprocesses 4

.PHONY: run test check lint typecheck bench chromium slapd clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(INSTALLED)

## Start Headwater on the embedded defaults: SQLite and blobs in ./var, scheduler and worker inside.
run: $(INSTALLED)
	$(BIN)/headwater serve

## Every test, including the browser tests (Chromium and slapd come from Debian's packages).
test: $(INSTALLED) chromium slapd
	$(BIN)/pytest $(PYTEST_ARGS)

chromium:
	@scripts/ensure-chromium $(CHROMIUM)

slapd:
	@scripts/ensure-slapd

## Lint and type check.
check: lint typecheck
lint: $(INSTALLED)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
typecheck: $(INSTALLED)
	$(BIN)/mypy

## The benchmarks of docs/performance.md.
bench: $(INSTALLED)
	@scripts/ensure-wrk
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

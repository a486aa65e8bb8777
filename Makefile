# The two commands of the README: `make demo` runs the shop, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

## demo: venv + install, secrets, migrate the embedded SQLite DB, demo data, serve on http://127.0.0.1:8000
demo: $(VENV)/.installed
	$(BIN)/quanyi init --public-base-url http://$(HOST):$(PORT)
	$(BIN)/quanyi migrate
	$(BIN)/quanyi demo
	$(BIN)/quanyi serve --host $(HOST) --port $(PORT) --with-test-peers

## test: dev dependencies, lint, then the whole suite (PostgreSQL/Redis variants when QUANYI_TEST_*_URL are set)
## on TEST_WORKERS pytest-xdist workers (most tests wait on I/O: 3 keep 2 cores busy; serial/slow tests run alone),
## listing the 25 slowest steps at the end (the suite has a time budget: see README "Tests")
TEST_WORKERS ?= 3
test: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=25

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench

## bench: the import, purchase and flash-sale benchmarks on SQLite (add ARGS=--pg for PostgreSQL)
bench: $(VENV)/.dev-installed
	$(BIN)/python bench/import_keys.py $(ARGS)
	$(BIN)/python bench/purchase.py $(ARGS)
	$(BIN)/python bench/flash_sale.py $(ARGS)

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .ruff_cache

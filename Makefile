# Entry points for a fresh clone: `make demo`, `make test`, `make check` (each creates .venv first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test test-unit lint check

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

## Run the demo API on the embedded default: SQLite file, in-memory broker and task queue.
demo: install
	$(BIN)/python -m examples.demo --host $(HOST) --port $(PORT)

## Run the whole test suite (unit, contracts, integration against the local services).
test: install
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit

lint: install
	$(BIN)/ruff check src tests bench examples

## Every static check CI runs before the tests: lint, formatting, strict types on src/core, and
## the import-layering contracts (pyproject.toml [tool.importlinter]). PYTHONPATH=src makes mypy
## and lint-imports read this checkout's code whatever the venv's editable install points to.
check: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	PYTHONPATH=src $(BIN)/mypy
	PYTHONPATH=src $(BIN)/lint-imports

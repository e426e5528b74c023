# Two entry points for a fresh clone: `make demo` and `make test` (each creates .venv first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test test-unit lint

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

# Every target sets itself up: a fresh machine needs only python3 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck check clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

## Serve the example app on http://127.0.0.1:$(PORT) against the embedded Auth0 emulator.
demo: $(STAMP)
	PORT=$(PORT) $(BIN)/python -m example_app

## Run the whole test suite (emulator and Redis are started by the tests themselves).
test: $(STAMP)
	$(BIN)/python -m pytest

## ruff (lint + format check) and mypy --strict.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache

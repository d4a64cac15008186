# The README's two commands: `make run` (everything locally) and `make test` (the test suite).
# Both create .venv with the project installed on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint install clean

run: install
	$(BIN)/hcs run

test: install
	$(BIN)/hcs broker fetch
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check streams benchmarks tests
	$(BIN)/mypy

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .hcs .pytest_cache .mypy_cache .ruff_cache *.egg-info build bench-results

# The README's two commands: `make run` (everything locally) and `make test` (the test suite).
# Both create .venv with the project installed on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint install lock reset clean

run: install
	$(BIN)/hcs run

# Everything: the static checks first (a lint, type or layering error fails the run), then pytest.
test: lint
	$(BIN)/hcs broker fetch
	$(BIN)/python -m pytest

# The edit loop: the unit and agent tiers, no broker (seconds).
test-fast: install
	$(BIN)/python -m pytest tests/unit tests/agents

# ruff (with DTZ), mypy --strict over streams/, benchmarks/ and tests/, and the import-layer contracts.
lint: install
	$(BIN)/ruff check streams benchmarks tests deploy
	$(BIN)/mypy
	$(BIN)/lint-imports

install: $(VENV)/.installed

# The runtime dependencies at the versions (and hashes) of deploy/requirements.lock, the image's
# own; then the package and the development tools.
$(VENV)/.installed: pyproject.toml deploy/requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r deploy/requirements.lock
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Remake the lock file from pyproject.toml's ranges (newest versions that fit), on purpose.
lock: install
	$(BIN)/pip-compile --quiet --upgrade --generate-hashes --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file deploy/requirements.lock pyproject.toml

# A fresh start for `make run`: the local broker's data and the tables cleared, .venv kept.
reset: install
	$(BIN)/hcs reset

clean:
	rm -rf $(VENV) .hcs .pytest_cache .mypy_cache .ruff_cache *.egg-info build bench-results

# Two entry points for a fresh machine (see README):
#   make demo   set up .venv and run the demo study end to end (SQLite, nothing to start by hand)
#   make test   set up .venv and run the test suite
# The CPU setup path pins torch through constraints/cpu.txt; GPU users `pip install -e .[all]`
# into an environment that already has their CUDA build of torch.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PYTEST_ARGS ?=

.PHONY: setup demo test lint typecheck clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c constraints/cpu.txt torch
	$(PIP) install --quiet --disable-pip-version-check -c constraints/cpu.txt -e '.[all,dev]'
	touch $@

demo: setup
	$(BIN)/taskgraph tasks list

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check taskgraph tests benchmarks
	$(BIN)/ruff format --check taskgraph tests benchmarks

typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

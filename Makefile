# Two entry points for a fresh machine (see README):
#   make demo   set up .venv and run the demo study end to end (SQLite, nothing to start by hand)
#   make test   set up .venv and run the test suite
# The CPU setup path pins torch through constraints/cpu.txt; GPU users `pip install -e .[all]`
# into an environment that already has their CUDA build of torch.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# Two pytest-xdist workers, a test file to each (its module fixtures, a Ray session or a
# PostgreSQL server, start once): about half the serial time on 2 cores.  `PYTEST_ARGS=` runs
# serially, `PYTEST_ARGS='-n 4 --dist loadfile'` uses more cores.
PYTEST_ARGS ?= -n 2 --dist loadfile
DEMO_STORAGE ?= sqlite:///demo.db

.PHONY: setup demo test lint typecheck clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c constraints/cpu.txt torch
	$(PIP) install --quiet --disable-pip-version-check -c constraints/cpu.txt -e '.[all,dev]'
	touch $@

# Runs the study (a no-op once it is finished: `rm demo.db` to start over), then shows what it
# measured, what the affinity model recommends, and draws the affinity graph.
demo: setup
	$(BIN)/taskgraph study run searchspaces/demo.yaml --storage $(DEMO_STORAGE)
	$(BIN)/taskgraph study show demo --storage $(DEMO_STORAGE)
	$(BIN)/taskgraph affinity top --target synth_target -k 5 --max-size 2 --storage $(DEMO_STORAGE)
	$(BIN)/taskgraph affinity graph --format png -o demo-affinity.png --storage $(DEMO_STORAGE)
	@echo "optuna-dashboard on these trials: $(BIN)/taskgraph dashboard --storage $(DEMO_STORAGE)"

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check taskgraph tests benchmarks
	$(BIN)/ruff format --check taskgraph tests benchmarks

typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

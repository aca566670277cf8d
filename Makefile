# make test     set up the virtualenv when missing, lint, type-check, run every test
# make bench    offline preview and policy pack benchmarks (prints figures, writes docs/bench.json)
#
# The offline preview is ./preview <stack>, not a make target: make reports every failed
# recipe as exit 2, which would hide the preview's own codes (1: mandatory violation, 2: error).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: test lint typecheck pytest bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt policies/requirements.txt bootstrap/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

test: lint typecheck pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/pyright

pytest: $(BIN)/.installed
	$(BIN)/python -m pytest -n 2

bench: $(BIN)/.installed
	$(BIN)/python -m tools.bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

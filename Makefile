# make test     set up the virtualenv when missing, lint, type-check, run every test
# make preview  offline preview of a stack (STACK=dev by default) with the policy pack; it runs
#               ./preview, but make reports any failure as exit 2, so scripts that need the
#               preview's own code (1: mandatory violation, 2: error) call ./preview <stack>
# make bench    offline preview and policy pack benchmarks (prints figures)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= dev
ARGS   ?=

.PHONY: test lint typecheck pytest preview bench clean

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
	$(BIN)/pyright components policies bootstrap

pytest: $(BIN)/.installed
	$(BIN)/python -m pytest -n 2

preview:
	VENV=$(VENV) PYTHON=$(PYTHON) ./preview $(STACK) $(ARGS)

bench: $(BIN)/.installed
	$(BIN)/python -m tools.bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

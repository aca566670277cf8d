# make test     set up the virtualenv when missing, lint, type-check, run every test
# make bench    offline preview and policy pack benchmarks (prints figures, writes docs/bench.json),
#               the preview against the CDK anchor (bench/cdk-anchor) when node and npm are there
#
# The offline preview is ./preview <stack>, not a make target: make reports every failed
# recipe as exit 2, which would hide the preview's own codes (1: mandatory violation, 2: error).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ANCHOR := bench/cdk-anchor

.PHONY: test lint typecheck pytest bench anchor clean

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

# The anchor is optional: when it cannot be installed (no node, no registry), the bench says so
# and measures the rest, hence the leading '-'.
bench: $(BIN)/.installed
	-$(MAKE) --no-print-directory anchor
	$(BIN)/python -m tools.bench

# The CDK app's packages from its lock file, and cfn-lint in the anchor's own virtualenv.
anchor: $(ANCHOR)/node_modules/.installed $(ANCHOR)/.venv/.installed

$(ANCHOR)/node_modules/.installed: $(ANCHOR)/package.json $(ANCHOR)/package-lock.json
	cd $(ANCHOR) && npm ci --no-audit --no-fund
	touch $@

$(ANCHOR)/.venv/.installed: $(ANCHOR)/requirements.txt
	test -x $(ANCHOR)/.venv/bin/python || $(PYTHON) -m venv $(ANCHOR)/.venv
	$(ANCHOR)/.venv/bin/python -m pip install --quiet -r $(ANCHOR)/requirements.txt
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

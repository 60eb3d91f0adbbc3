# PowerX Agent Taskflow: the two commands a newcomer runs are `make demo` and `make test`.
# Every target installs what it needs under the repo (.venv, node_modules) and is idempotent:
# the install steps re-run only when pyproject.toml or package.json change.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all demo test lint bench bench-quick bench-load bench-hostile fuzz setup setup-node clean synth help

help:
	@echo "make demo   - set up and run the engine end to end on the embedded local runtime"
	@echo "make test   - set up and run the whole test suite (unit, integration, infrastructure, e2e)"
	@echo "make lint   - ruff + strategy lint"
	@echo "make bench  - every benchmark: bench-quick then bench-load (tens of minutes)"
	@echo "make bench-quick - matcher, compiler, ingest, product cost: docs/benchmarks.md (~1 min)"
	@echo "make bench-load - load runs on the embedded runtime: docs/benchmarks-load.md"
	@echo "make bench-hostile - worst-case input of every surface, time and memory: docs/benchmarks-hostile.md"
	@echo "make fuzz   - the fuzz suites with FUZZ_SCALE times the examples of make test (~30 min)"
	@echo "make synth  - synthesize the CDK app into cdk.out/"

$(VENV)/.stamp: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -e '.[test,infra,dev]'
	@touch $@

node_modules/.stamp: package.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.stamp node_modules/.stamp

setup-node: node_modules/.stamp

demo: setup
	$(VENV)/bin/powerx-agent local demo

test: setup
	bash scripts/ensure-chromium
	bash scripts/run-tests

lint: setup
	$(VENV)/bin/ruff check functions infra tests bench
	$(VENV)/bin/powerx-agent strategy lint strategies

# every benchmark: the fast ones (about a minute), then the load runs on the embedded runtime (tens of
# minutes on 2 cores: moto side by side with a bare pipeline, then 200 events/s offered for 30 s)
bench: bench-quick bench-hostile bench-load

bench-quick: setup
	$(PY) bench/run_all.py --out docs/benchmarks.md

bench-hostile: setup
	mkdir -p build && $(PY) bench/hostile.py --out docs/benchmarks-hostile.md

# the property-based fuzz suites of every input surface, far longer than in make test
FUZZ_SCALE ?= 20
fuzz: setup
	FUZZ_SCALE=$(FUZZ_SCALE) $(PY) -m pytest tests/unit/test_fuzz_strategy_surfaces.py tests/integration/test_fuzz_surfaces.py -q

bench-load: setup
	mkdir -p build && $(PY) bench/load.py --md docs/benchmarks-load.md --json build/load.json

synth: setup
	cdk synth --quiet

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .hypothesis build *.egg-info functions/*.egg-info

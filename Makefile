# The project's entry points. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOURCES := src tests bench scripts

.PHONY: test demo lint typecheck unit deps registry-deps clean fuzz chaos

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

deps: $(VENV)/.installed

# apt packages the tests need: the real registry, skopeo, htpasswd, openssl.
registry-deps:
	$(BIN)/python scripts/registry install

lint: deps
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: deps
	$(BIN)/mypy --strict src

test: deps registry-deps lint typecheck
	$(BIN)/pytest

# Long variants of the reliability suite (make test runs short ones). FUZZ_EXAMPLES per property;
# CHAOS_KILLS random SIGKILLs of a push (measured table: $$TMPDIR/yardarm-chaos.json).
FUZZ_EXAMPLES ?= 2000
CHAOS_KILLS ?= 20
fuzz: deps
	YARDARM_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q tests/reliability/test_fuzz.py tests/reliability/test_malformed_input.py

chaos: deps registry-deps
	YARDARM_CHAOS_KILLS=$(CHAOS_KILLS) YARDARM_CHAOS_RESULTS=$${TMPDIR:-/tmp}/yardarm-chaos.json \
		$(BIN)/pytest -q -s tests/reliability/test_crashes.py tests/reliability/test_network_cuts.py

# A two-minute tour on a fresh machine: real registry, import, push twice, mount, skopeo.
demo: deps registry-deps
	scripts/demo

# Benchmarks against skopeo, curl, python-dxf and oras-py (bench/README.md). Not part of `test`:
# the full run takes tens of minutes and ~10 GiB of disk under bench/work.
BENCH_VENV := bench/.venv
BENCH_ARGS ?=

$(BENCH_VENV)/.installed: | $(BIN)/python
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q 'python-dxf>=12,<13' 'oras>=0.2,<0.3' 'py-spy>=0.3,<1'
	touch $@

bench-deps: deps registry-deps $(BENCH_VENV)/.installed

bench: bench-deps
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The driver at tiny sizes (also run by `make test` as tests/integration/test_bench_smoke.py).
bench-smoke: deps registry-deps
	$(BIN)/pytest -q tests/integration/test_bench_smoke.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build src/*.egg-info

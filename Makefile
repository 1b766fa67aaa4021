# The project's entry points. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOURCES := src tests bench scripts

.PHONY: test demo lint typecheck unit deps registry-deps clean

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

# A two-minute tour on a fresh machine: real registry, import, push twice, mount, skopeo.
demo: deps registry-deps
	scripts/demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build src/*.egg-info

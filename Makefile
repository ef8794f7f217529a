# The two commands: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch; a looser spec pulls a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0

export RAY_AIR_NEW_OUTPUT := 0
export RAY_AUTH_MODE := disabled
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install test test-all test-gpu lint demo clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[test,data,export,tracking,explain]" "$(TORCH_PIN)"
	touch $(STAMP)

# Style (ruff), the import rule (lint-imports: the layers and contracts in setup.cfg; check_imports.py: imports sit at
# module top unless a measured cost is stated) and types (mypy, configured in setup.cfg).
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python tests/check_imports.py
	$(BIN)/mypy

# The suite runs in TEST_WORKERS processes (pytest-xdist), one test file per process at a time: the tests use one torch
# thread each, so two processes fill 2 cores. `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadfile)

test: install lint
	$(BIN)/python -m pytest -q $(XDIST)

# Every test, including the ones marked slow (exhaustive NAS-Bench-201 checks).
test-all: install lint
	$(BIN)/python -m pytest -q $(XDIST) -m "slow or not slow"

# Only the tests marked gpu (mixed precision, channels_last, resident and pinned data, fractional GPUs through Ray):
# on a machine with CUDA and a CUDA build of torch; elsewhere each is skipped with the reason.
test-gpu: install
	$(BIN)/python -m pytest -q -m gpu -rs

demo: install
	$(BIN)/nas demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache .import_linter_cache

# One command for the main job (`make export`) and one for the tests (`make test`).
# Each creates .venv, installs edgecnn into it and installs the offline Fashion-MNIST when missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATASET_DIR := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: export test test-fast bench dataset setup clean

export: setup dataset
	$(BIN)/edgecnn export --retrain --force

test: setup dataset
	$(BIN)/python -m pytest

# The edit loop: everything but the tests that train or export Keras models (~20 s).
test-fast: setup dataset
	$(BIN)/python -m pytest -m "not slow"

bench: setup dataset
	$(BIN)/python -m pip install -q -e '.[dev,engines]'
	$(BIN)/edgecnn bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

dataset:
	@test -f $(DATASET_DIR)/train-images-idx3-ubyte.gz || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; }

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

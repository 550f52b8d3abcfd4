# One command for the main job (`make export`) and one for the tests (`make test`).
# Each creates .venv, installs edgecnn into it and installs the offline Fashion-MNIST when missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATASET_DIR := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: export test test-fast bench dataset isa browser setup clean

export: setup dataset isa
	$(BIN)/edgecnn export --retrain --force --isa all

# EDGECNN_REQUIRE_ISA / _BROWSER: the emulated-CPU and browser tests fail instead of skipping
# when qemu or headless Chromium is missing.
test: setup dataset isa browser
	EDGECNN_REQUIRE_ISA=1 EDGECNN_REQUIRE_BROWSER=1 $(BIN)/python -m pytest

# The edit loop: everything but the tests that train or export Keras models (~20 s).
test-fast: setup dataset
	$(BIN)/python -m pytest -m "not slow"

bench: setup dataset
	$(BIN)/python -m pip install -q -e '.[dev,engines]'
	$(BIN)/edgecnn bench --profile

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# qemu-user and a Debian arm64 tree (cached in ~/.cache/edgecnn/isa), so that int8 accuracy is
# measured on every instruction-set class, not only this CPU's. Offline once built.
isa: setup
	@command -v qemu-x86_64 >/dev/null && command -v qemu-aarch64 >/dev/null && \
		command -v mmdebstrap >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq qemu-user mmdebstrap; }
	$(BIN)/edgecnn isa --setup

# Headless Chromium renders report.html in the tests.
browser:
	@command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium-headless-shell; }

dataset:
	@test -f $(DATASET_DIR)/train-images-idx3-ubyte.gz || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; }

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

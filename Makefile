# One command for the main job (`make export`) and one for the tests (`make test`).
# Each creates .venv, installs edgecnn into it from the lock file (exact versions, hashes) and
# installs the offline Fashion-MNIST when missing. `make lock` refreshes the lock files.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATASET_DIR := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Only the packages named, never their recommendations (which pull in daemons and upgrades).
APT_INSTALL := $(SUDO) apt-get install -y -qq --no-install-recommends
# Exact versions with hashes of every package `make` installs: dev (tests, export), bench (dev +
# the other engines), gpu (a separate venv with onnxruntime-gpu and its CUDA wheels).
LOCK_DEV := requirements/dev.lock
LOCK_BENCH := requirements/bench.lock
LOCK_GPU := requirements/gpu.lock
PIP_LOCKED := python -m pip install -q --require-hashes --no-deps -r
# The editable edgecnn itself, built with the locked setuptools.
PIP_SELF := python -m pip install -q --no-deps --no-build-isolation -e .
UV := uv==0.13.9
LOCK_ARGS := --universal --python-version 3.10 --generate-hashes -q

.PHONY: export test test-fast bench bench-suite dataset isa browser ssh setup lock gpu-venv clean

export: setup dataset isa
	$(BIN)/edgecnn export --retrain --force --isa all

# EDGECNN_REQUIRE_ISA / _BROWSER / _SSH: the emulated-CPU, browser and SSH-device tests fail
# instead of skipping when qemu, headless Chromium or OpenSSH is missing.
test: setup dataset isa browser ssh
	EDGECNN_REQUIRE_ISA=1 EDGECNN_REQUIRE_BROWSER=1 EDGECNN_REQUIRE_SSH=1 $(BIN)/python -m pytest

# The edit loop: everything but the tests that train or export Keras models (~20 s).
test-fast: setup dataset
	$(BIN)/python -m pytest -m "not slow"

bench: setup dataset
	$(BIN)/$(PIP_LOCKED) $(LOCK_BENCH)
	$(BIN)/edgecnn bench --profile

# edgecnn's files against LiteRT's on the zoo and five user-like graphs (about 6 min on 2 cores).
bench-suite: setup dataset
	$(BIN)/$(PIP_LOCKED) $(LOCK_BENCH)
	$(BIN)/python bench/suite.py

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK_DEV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP_LOCKED) $(LOCK_DEV)
	$(BIN)/$(PIP_SELF)
	touch $@

# A GPU developer's venv: onnxruntime-gpu with its CUDA/cuDNN wheels, never beside the CPU
# onnxruntime (both install the same module). `EDGECNN_GPU_VENV=.venv-gpu make test` also checks
# what `edgecnn doctor` says there.
gpu-venv: .venv-gpu/.installed

.venv-gpu/.installed: pyproject.toml $(LOCK_GPU)
	$(PYTHON) -m venv .venv-gpu
	.venv-gpu/bin/$(PIP_LOCKED) $(LOCK_GPU)
	.venv-gpu/bin/$(PIP_SELF)
	touch $@

# Re-resolve the lock files from pyproject.toml's ranges (needs the package index).
lock: setup
	$(BIN)/python -m pip install -q $(UV)
	$(BIN)/python -m uv pip compile pyproject.toml requirements/build.in --extra dev $(LOCK_ARGS) -o $(LOCK_DEV)
	$(BIN)/python -m uv pip compile pyproject.toml requirements/build.in --extra dev --extra engines $(LOCK_ARGS) -o $(LOCK_BENCH)
	$(BIN)/python -m uv pip compile pyproject.toml requirements/build.in --extra dev-gpu $(LOCK_ARGS) -o $(LOCK_GPU)

# qemu-user and a Debian arm64 tree (cached in ~/.cache/edgecnn/isa), so that int8 accuracy is
# measured on every instruction-set class, not only this CPU's. Offline once built.
isa: setup
	@command -v qemu-x86_64 >/dev/null && command -v qemu-aarch64 >/dev/null && \
		command -v mmdebstrap >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(APT_INSTALL) qemu-user mmdebstrap; }
	$(BIN)/edgecnn isa --setup

# The device tests start a real sshd on 127.0.0.1 and reach it with the OpenSSH client.
ssh:
	@command -v ssh >/dev/null && { command -v sshd >/dev/null || test -x /usr/sbin/sshd; } || \
		{ $(SUDO) apt-get update -qq && $(APT_INSTALL) openssh-client openssh-server; }

# Headless Chromium renders report.html in the tests.
browser:
	@command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(APT_INSTALL) chromium-headless-shell; }

dataset:
	@test -f $(DATASET_DIR)/train-images-idx3-ubyte.gz || \
		{ $(SUDO) apt-get update -qq && $(APT_INSTALL) dataset-fashion-mnist; }

clean:
	rm -rf $(VENV) .venv-gpu .pytest_cache build *.egg-info

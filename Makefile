# Two entry points: `make train` (the reference experiment) and `make test` (lint + tests).
# Both create .venv on first use and reinstall only when requirements.lock or pyproject.toml change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXPERIMENT ?= mobilenetv2_finetune
# Two test processes (pytest-xdist), a test file per process: 12.6 min instead of about 20 on
# the 2-core machines, since much of a test is single-threaded conversion and tracing.
PYTEST_ARGS ?= -n 2 --dist loadfile

# Offline copies beside the checkout (development machines and CI); empty elsewhere, so a normal
# machine keeps the Keras downloads.
SHARED ?= $(abspath ../shared)
export CIFAR10_DIR ?= $(wildcard $(SHARED)/data/cifar-10-batches-py)
export MOBILENETV2_WEIGHTS ?= $(wildcard $(SHARED)/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup train smoke test lint format lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

train: setup
	$(BIN)/cifar train $(EXPERIMENT) $(ARGS)

smoke: setup
	$(BIN)/cifar train smoke $(ARGS)

test: setup lint
	bash .ci/install-chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate the lock file after changing dependencies in pyproject.toml (needs `pip install uv`).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

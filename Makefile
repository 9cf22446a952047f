# posebowl — local runtime for the Pose Bowl spacecraft detection challenge.
# `make demo` runs the main job on the embedded data; `make test` runs the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
POSEBOWL := $(BIN)/posebowl
STAMP := $(VENV)/.installed
SUBMISSION_ZIP := submission/submission.zip
SUBMISSION_SRC ?= submission_src

DATA_DIR ?= data
LABELS ?=
SMOKE ?=
# The demo's own folders (data/ is where competitors extract the real data: never touched).
DEMO_DIR ?= demo
DEMO_DATA_DIR := $(DEMO_DIR)/data
DEMO_LABELS := $(DEMO_DIR)/labels
# What makes the demo's data (posebowl replaces only what it made there: --force is safe).
DEMO_DATA ?= $(POSEBOWL) data sample --force --out $(DEMO_DATA_DIR) --labels-out $(DEMO_LABELS)
# The sandbox engine: bwrap, docker or auto (empty: $$POSEBOWL_ENGINE, else auto). With
# ENGINE=docker, `make build` builds the runtime's image instead of its venv.
ENGINE ?=
# The runtime: official (the platform's packages, ~7 GB) or slim (posebowl's examples' subset).
# Empty: `make build` builds slim; runs use official when it is built, else slim.
RUNTIME ?=
# A Docker image to run in (implies the docker engine): one posebowl built, or any other with a
# python, e.g. the official one after `make pull IMAGE=...` (posebowl mounts its entrypoint).
IMAGE ?= $(POSEBOWL_IMAGE)
ifneq ($(IMAGE),)
export POSEBOWL_IMAGE := $(IMAGE)
endif
IMAGE_ARGS = $(if $(IMAGE),--image $(IMAGE))
ENGINE_ARGS = $(if $(ENGINE),--engine $(ENGINE)) $(if $(RUNTIME),--runtime $(RUNTIME)) $(IMAGE_ARGS)
DOCKER_BUILD = $(or $(filter docker,$(ENGINE)),$(IMAGE))
BUILD_ARGS = --runtime $(or $(RUNTIME),slim) $(if $(DOCKER_BUILD),--engine docker $(IMAGE_ARGS))

.PHONY: help install system-deps test test-fast lint pack-example pack-submission repack-example \
        repack-submission clean build build-full pull lock test-container interact-container test-submission \
        demo install-train train-benchmark pack-benchmark blender-venv sample-data

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-20s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 (e.g. apt-get install python3.11 python3.11-venv, or pyenv install 3.11)"; exit 4; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,scale]"
	touch $(STAMP)

install: $(STAMP) system-deps  ## create .venv and install posebowl with its dev extras

system-deps:  ## install Debian packages the sandbox and tests need (as root), or say how
	@bash scripts/system-deps.sh

LINTED := src tests scripts benchmarks
DOCKERFILE := src/posebowl/runtimes/definition/Dockerfile

lint: $(STAMP)  ## ruff, mypy, and hadolint on the runtime's Dockerfile
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check -q $(LINTED)
	$(BIN)/mypy
	@if [ -x $(BIN)/hadolint ]; then $(BIN)/hadolint $(DOCKERFILE) && echo "hadolint: $(DOCKERFILE) ok"; \
	  else echo "hadolint is not installed (its wheel is Linux x86_64 only): $(DOCKERFILE) not linted"; fi

# The fast lane: no sandbox, Docker, browser, Blender, Ray or training; nothing to build first.
FAST := not (sandbox or docker or browser or blender or train or ray or slow)

test-fast: $(STAMP)  ## the tests that need nothing but .venv (under 30 s)
	POSEBOWL_TEST_LANE=fast $(BIN)/pytest -q -m "$(FAST)"

# The docker lane: a real daemon (as root with none running: installed and started, and stopped
# again after the tests), the stand-in base (no registry needed) and the slim runtime's image on
# it, under a name of its own. One recipe line, so that one shell holds the daemon to the end.
TEST_BASE_IMAGE ?= posebowl-base:bookworm-py3.11
TEST_IMAGE ?= posebowl-runtime:slim-test

test: install install-train lint blender-venv  ## install what is needed (the [train] extra too), then run the linters and every test
	$(POSEBOWL) runtime build --runtime slim
	$(POSEBOWL) runtime build --runtime official
	@POSEBOWL=$(POSEBOWL) scripts/docker-test-setup.sh $(TEST_IMAGE) $(TEST_BASE_IMAGE) || \
	  { scripts/docker-daemon.sh stop; exit 1; }; \
	POSEBOWL_TEST_IMAGE=$(TEST_IMAGE) POSEBOWL_OFFICIAL_ENGINES_PYTHON=$(CURDIR)/.runtime/official/bin/python \
	  $(BIN)/pytest -q; rc=$$?; \
	scripts/docker-daemon.sh stop; exit $$rc

build: $(STAMP)  ## build a runtime (RUNTIME=official|slim, default slim; ENGINE=docker or IMAGE=: its image)
	$(POSEBOWL) runtime build $(BUILD_ARGS)

build-full: $(STAMP)  ## rebuild the runtime from scratch (as the official Makefile's build-full)
	$(POSEBOWL) runtime build $(BUILD_ARGS) --force

pull: $(STAMP)  ## pull a published runtime image: make pull IMAGE=registry/name:tag (needs the network)
	$(POSEBOWL) runtime pull --image $(IMAGE)

lock: $(STAMP)  ## re-resolve the official runtime's lock (needs PyPI) and select slim from it
	$(POSEBOWL) runtime lock

test-container: build  ## import every package of the runtime inside the sandbox
	$(POSEBOWL) runtime test $(ENGINE_ARGS)

interact-container: build  ## bash in the sandbox (network on), with $(DATA_DIR) and the zip if packed
	$(POSEBOWL) shell $(ENGINE_ARGS) $(if $(wildcard $(DATA_DIR)/submission_format.csv),--data $(DATA_DIR)) \
	  $(if $(wildcard $(SUBMISSION_ZIP)),--zip $(SUBMISSION_ZIP))

test-submission: build  ## run submission/submission.zip in the sandbox (SMOKE=N, LABELS=FILE)
	$(POSEBOWL) run $(SUBMISSION_ZIP) --data $(DATA_DIR) $(ENGINE_ARGS) $(if $(SMOKE),--smoke $(SMOKE)) \
	  $(if $(LABELS),--labels $(LABELS))

DEMO_ZIP := $(DEMO_DIR)/submission/submission.zip

demo: install build  ## the main job: the benchmark detector on the embedded data, sandboxed, scored
	$(DEMO_DATA)
	$(POSEBOWL) pack example_benchmark -o $(DEMO_ZIP) --force
	$(POSEBOWL) run $(DEMO_ZIP) --data $(DEMO_DATA_DIR) $(ENGINE_ARGS) \
	  --labels $(DEMO_LABELS)/test_labels.csv --report
	$(POSEBOWL) validate $(DEMO_DIR)/submission/submission.csv $(DEMO_DATA_DIR)/submission_format.csv
	@$(BIN)/python scripts/demo_summary.py $(DEMO_DIR)/submission/result.json

BLENDER_VENV ?= .cache/blender-venv

blender-venv: $(STAMP)  ## build the Blender (bpy) venv that renders sprites (~1.6 GB)
	$(POSEBOWL) synth setup --venv $(BLENDER_VENV)

sample-data: $(STAMP)  ## make the embedded test set in demo/data + demo/labels (24 held-out images)
	$(DEMO_DATA)

pack-example: $(STAMP)  ## zip example_src/ into submission/submission.zip
	$(POSEBOWL) pack example_src -o $(SUBMISSION_ZIP)

pack-submission: $(STAMP)  ## zip $(SUBMISSION_SRC)/ into submission/submission.zip
	$(POSEBOWL) pack $(SUBMISSION_SRC) -o $(SUBMISSION_ZIP)

repack-example: $(STAMP)  ## like pack-example, overwriting the zip
	$(POSEBOWL) pack example_src -o $(SUBMISSION_ZIP) --force

repack-submission: $(STAMP)  ## like pack-submission, overwriting the zip
	$(POSEBOWL) pack $(SUBMISSION_SRC) -o $(SUBMISSION_ZIP) --force

TRAIN_STAMP := $(VENV)/.installed-train
# CPU-sized default; the committed weights come from scripts/train_on_device.sh (BENCHMARKS.md).
TRAIN_ARGS ?= --generate 1000 --generate-val 200 --imgsz 320 --epochs 10 --device cpu \
              --batch 16 --workers 2 --synth-workers 2

$(TRAIN_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e ".[dev,scale,train]"
	touch $(TRAIN_STAMP)

install-train: $(TRAIN_STAMP)  ## add the [train] extra (torch, ultralytics, openvino: ~6 GB)

train-benchmark: $(TRAIN_STAMP)  ## train + evaluate + export a detector into runs/benchmark (FORCE=1: also into example_benchmark/model)
	$(POSEBOWL) train run $(TRAIN_ARGS) --out runs/benchmark
	@if [ -f example_benchmark/model/model.xml ] && [ "$(FORCE)" != 1 ]; then \
	  echo "Exported to runs/benchmark/model; example_benchmark/model already holds weights, kept."; \
	  echo "Compare with: posebowl train evaluate runs/benchmark/model HELDOUT_DIR; replace with FORCE=1."; \
	else \
	  cp runs/benchmark/model/model.onnx runs/benchmark/model/model.xml \
	     runs/benchmark/model/model.bin runs/benchmark/model/config.json example_benchmark/model/ && \
	  echo "Copied into example_benchmark/model."; \
	fi

pack-benchmark: $(STAMP)  ## zip example_benchmark/ (with its weights) into submission/submission.zip
	@test -f example_benchmark/model/model.xml -o -f example_benchmark/model/model.onnx || \
	  { echo "example_benchmark/model has no weights: run make train-benchmark (or copy them there)"; exit 4; }
	$(POSEBOWL) pack example_benchmark -o $(SUBMISSION_ZIP)

clean:  ## remove the submission folder's outputs (zip, csv, log, verdict, report)
	rm -f submission/submission.zip submission/submission.csv submission/log.txt \
	      submission/result.json
	rm -f submission/report/index.html submission/report/per_image.csv \
	      submission/report/.posebowl-files
	@rmdir submission/report 2>/dev/null || true

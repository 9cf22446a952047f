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

.PHONY: help install system-deps test lint pack-example pack-submission repack-example \
        repack-submission clean blender-venv sample-data

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-20s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 (e.g. apt-get install python3.11 python3.11-venv, or pyenv install 3.11)"; exit 4; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) system-deps  ## create .venv and install posebowl with its dev extras

system-deps:  ## install Debian packages the sandbox and tests need (as root), or say how
	@bash scripts/system-deps.sh

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check src tests scripts example_src benchmarks
	$(BIN)/ruff format --check -q src tests scripts example_src benchmarks

test: install lint blender-venv  ## install what is needed, then run ruff and the tests
	$(BIN)/pytest -q

BLENDER_VENV ?= .cache/blender-venv

blender-venv: $(STAMP)  ## build the Blender (bpy) venv that renders sprites (~1.6 GB)
	$(POSEBOWL) synth setup --venv $(BLENDER_VENV)

sample-data: $(STAMP)  ## make the embedded test set: data/ + data_labels/ (24 held-out images)
	$(POSEBOWL) data sample --force

pack-example: $(STAMP)  ## zip example_src/ into submission/submission.zip
	$(POSEBOWL) pack example_src -o $(SUBMISSION_ZIP)

pack-submission: $(STAMP)  ## zip $(SUBMISSION_SRC)/ into submission/submission.zip
	$(POSEBOWL) pack $(SUBMISSION_SRC) -o $(SUBMISSION_ZIP)

repack-example: $(STAMP)  ## like pack-example, overwriting the zip
	$(POSEBOWL) pack example_src -o $(SUBMISSION_ZIP) --force

repack-submission: $(STAMP)  ## like pack-submission, overwriting the zip
	$(POSEBOWL) pack $(SUBMISSION_SRC) -o $(SUBMISSION_ZIP) --force

clean:  ## remove the submission folder's outputs (zip, csv, log, verdict)
	rm -f submission/submission.zip submission/submission.csv submission/log.txt \
	      submission/result.json

# synthmatch developer commands. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-stamp
PYTEST_ARGS ?=
# The bundled examples, matched by `make match`.
EXAMPLES ?= examples
OUT ?= out
# Started from the bundled default model's prediction and refined with CMA-ES (300 renders or 20 s per
# example); writes .vital, WAV, spectrogram PNG and a tutorial per example (replacing those of an earlier
# run). `--start init` compares.
MATCH_FLAGS ?= --refine --refine-evals 300 --refine-timeout 20 --render --tutorial --overwrite

.DEFAULT_GOAL := help
.PHONY: help setup test match lint typecheck format bench clean examples devset

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install the package with everything the tests need (torch 2.13.0 CPU)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[all]"
	touch $(STAMP)

test: lint typecheck  ## lint, format check, type check, then the test suite (what CI runs)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

match: setup  ## match the example sounds in examples/ and write the results to out/
	$(BIN)/synthmatch infer -i $(EXAMPLES) -o $(OUT) $(MATCH_FLAGS)

lint: setup  ## ruff lint and format check
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: setup  ## mypy over the package (settings in pyproject.toml)
	$(BIN)/python -m mypy

format: setup  ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix src tests benchmarks examples
	$(BIN)/ruff format src tests benchmarks examples

bench: setup  ## run the speed benchmarks (prints tables; run on an idle machine)
	$(BIN)/python benchmarks/render.py

devset: setup  ## write the real-instrument dev set (data/devset) and held-out presets (data/in_domain)
	$(BIN)/synthmatch devset -o data/devset
	$(BIN)/synthmatch devset -o data/in_domain --kind in_domain -n 40

examples: setup  ## regenerate the example sounds
	$(BIN)/python examples/make_examples.py

clean:  ## remove build outputs (keeps .venv, data/ and runs/)
	rm -rf $(OUT) build dist .pytest_cache .ruff_cache src/*.egg-info

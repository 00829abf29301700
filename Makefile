# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
# torch is pinned only here, in the set-up step (the GPU machines carry another version).
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CODE := src tests scripts benchmarks

.PHONY: demo test mutants lint sheet docs bench clean gpu-data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[test]"
	# pypiqe (the PIQE reference of the tests) asks for the GUI build of OpenCV, which would clash with
	# opencv-python-headless; it needs nothing else, so it goes in without its dependencies.
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps "pypiqe>=1.2"
	touch $(STAMP)

# The main job: damage the example photos (one task each, labels beside them), restore them with the shipped
# model, and write a before/after picture of each.
demo: $(STAMP)
	$(BIN)/uir degrade examples/clean/astronaut.png -t noise -s 0.5 --seed 5 -o out/demo/degraded
	$(BIN)/uir degrade examples/clean/chelsea.png -t haze -s 0.5 --seed 1 -o out/demo/degraded
	$(BIN)/uir degrade examples/clean/coffee.png -t rain-streaks -s 0.7 --seed 1 -o out/demo/degraded
	$(BIN)/uir degrade examples/clean/rocket.jpg -t low-light -s 0.8 --seed 1 -o out/demo/degraded
	$(BIN)/uir restore out/demo/degraded -o out/demo/restored --compare
	$(BIN)/uir inspect out/demo/degraded out/demo/restored/*.png | tee out/demo/inspection.txt
	$(BIN)/uir degrade --sheet examples/clean/astronaut.png -o out/demo/sheet.png
	@echo "demo: damaged photos in out/demo/degraded/, restored ones and input|restored pictures in out/demo/restored/,"
	@echo "      what uir inspect says of both in out/demo/inspection.txt"

test: $(STAMP)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/ruff check $(CODE)
	# The layers of docs/ARCHITECTURE.md (.importlinter): a new upward import fails here.
	$(BIN)/lint-imports --no-cache
	# Two test processes with one thread each: more threads than cores makes torch's threads wait on each other.
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --durations=5

# The tests' own test: each mutant in scripts/mutants.py is a deliberate bug that its guarding tests must catch.
mutants: $(STAMP)
	$(BIN)/python scripts/mutants.py

lint: $(STAMP)
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

# The contact sheet and the degradation table of the docs, regenerated from the registry.
docs: $(STAMP)
	$(BIN)/uir degrade --sheet examples/clean/astronaut.png -o docs/degradation-sheet.jpg --overwrite
	$(BIN)/python scripts/make_degradation_docs.py docs/degradations.md

bench: $(STAMP)
	$(BIN)/python benchmarks/degradation_speed.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache

# The training images of the shipped recipes, copied into .data/ (git-ignored, ~38 MiB) so that they can travel to
# a machine that cannot see ../shared (a lent GPU: see docs/gpu.md). DATA is where the shared data lives.
DATA ?= ../shared/data
gpu-data:
	mkdir -p .data/train_clean .data/derain_train
	cp -r $(DATA)/train_clean/CBSD432 .data/train_clean/
	cp -r $(DATA)/derain_train/PCNet_train40 .data/derain_train/
	du -sh .data

# A model that left the package (RETIRED_FILES in src/uir/pretrained.py), written from the repository's history:
# `make runs/nafnet-fr-v2.safetensors`, then `--model runs/nafnet-fr-v2.safetensors` (results keep its name).
runs/%.safetensors:
	$(PYTHON) scripts/retired_model.py $* $@

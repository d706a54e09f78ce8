# The README's two commands: `make run` (set up, then build the site) and `make test`.
# Set-up is idempotent: the venv is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch that fits this kind of machine; the package itself asks for a range.
TORCH_PIN ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup run quick test test-fast system-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Experiment numbers come from the results shipped in data/results (computed only when missing);
# two notebooks execute at once. Both editions of the site (teacher's, student's) with slides.
run: setup
	$(BIN)/paperlib build --jobs 2 --edition both --slides

quick: setup
	$(BIN)/paperlib build --quick --jobs 2

system-deps:
	bash tools/ensure-system-deps

test: setup system-deps
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf build .pytest_cache

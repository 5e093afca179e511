# `make book` and `make test` are all the set-up a fresh machine needs: each creates .venv and
# installs requirements.txt when it is missing or has changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JB_FLAGS := -W -n --keep-going

.PHONY: book test lab outputs lint clean

# torch's OpenMP threads spin while they wait; on a shared machine that makes a training step
# 30-60x slower. Passive waiting gives bit-identical results.
export OMP_WAIT_POLICY := PASSIVE

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

# Strict build: notebooks executed (jupyter-cache), any warning or execution error fails it.
book: $(STAMP)
	$(BIN)/jupyter-book build $(JB_FLAGS) .

# The book first (the browser test reads _build/html), then every test layer in one pytest run.
test: book
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Run the notebooks live in JupyterLab: live sliders, MyST rendered by jupyterlab-myst
# (tests/test_lab.py checks both).
lab: $(STAMP)
	$(BIN)/jupyter lab book/

# Re-execute the notebooks and keep only the outputs of cells tagged `nbval-check-output`.
outputs: $(STAMP)
	$(BIN)/python tests/nbtools.py refresh book/*.ipynb

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf _build

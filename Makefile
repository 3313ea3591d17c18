# Two entry points for a fresh machine: `make demo` runs a real search on the
# built-in default network, `make test` runs the test suite. Each creates .venv
# if it is missing and installs torch (CPU wheel) before the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The one pin of torch (pyproject.toml only asks for a range it satisfies). Here pip
# finds its CPU wheel locally; elsewhere give PyTorch's CPU index, or pip pulls a
# multi-GB CUDA build:  make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

# The suite runs in two processes (pytest-xdist), groups of tests per process (see
# tests/conftest.py): most tests wait on subprocesses or use one core. TEST_WORKERS=0 runs it
# in this process only.
TEST_WORKERS ?= 2

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) '$(TORCH)'
	$(BIN)/pip install --quiet -e '.[test,plots,dask,bench,docs]'
	touch $(STAMP)

install: $(STAMP)

# A real search on the built-in `tiny` network, measured with TVM on this CPU.
DEMO_OUT ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)
demo: $(STAMP)
	$(BIN)/evo run --model tiny --population 12 --generations 30 --time-budget 4m \
		--out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/ruff check genomes operators evo tests benchmarks
	$(BIN)/mkdocs build --strict --quiet --site-dir build/docs-site
	$(BIN)/pytest -q -p no:cacheprovider --timeout 900 -n $(TEST_WORKERS) --dist loadgroup --durations 15

lint: $(STAMP)
	$(BIN)/ruff check genomes operators evo tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

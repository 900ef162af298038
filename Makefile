# Two entry points a newcomer needs: `make demo` and `make test`.
VENV ?= .venv
# Wheels of every runtime dependency: the packaging test installs the built wheel from here, offline.
WHEELHOUSE ?= .wheelhouse
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint deps runtime-deps system-deps bench clean policy-test templates fuzz

# The demo needs the runtime dependencies only: no test extras, no wheel house.
demo: runtime-deps
	$(BIN)/sigwarden demo

test: deps system-deps
	$(BIN)/ruff check provider tests scripts
	bash scripts/offline.sh $(BIN)/python -m pytest

lint: deps
	$(BIN)/ruff check provider tests scripts

policy-test: deps
	$(BIN)/sigwarden policy test

# The fuzz tests with many more examples than CI runs (SIGWARDEN_FUZZ_EXAMPLES per test, default 5000).
fuzz: deps
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -m fuzz --timeout=0 -p no:cacheprovider tests

templates: deps
	$(BIN)/python scripts/build_templates.py

bench: deps system-deps
	for f in tests/benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

runtime-deps: $(BIN)/.runtime

$(BIN)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

deps: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) . setuptools wheel
	rm -f $(WHEELHOUSE)/sigwarden-*.whl
	touch $(BIN)/.runtime $@

system-deps:
	bash scripts/install-system-deps.sh

clean:
	rm -rf $(VENV) $(WHEELHOUSE) build *.egg-info .pytest_cache

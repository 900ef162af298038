# Two entry points a newcomer needs: `make demo` and `make test`.
VENV ?= .venv
# Wheels of every runtime dependency: the packaging test installs the built wheel from here, offline.
WHEELHOUSE ?= .wheelhouse
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint deps system-deps bench clean policy-test templates templates-check fuzz

demo: deps
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

# Regenerate every copy built from policies/ (its template.yaml files, constraints/, the chart's files);
# `make templates-check` only reports drift (exit 1).
templates: deps
	$(BIN)/python scripts/build_templates.py

templates-check: deps
	$(BIN)/python scripts/build_templates.py --check

bench: deps system-deps
	for f in tests/benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

deps: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) . setuptools wheel
	rm -f $(WHEELHOUSE)/sigwarden-*.whl
	touch $@

system-deps:
	bash scripts/install-system-deps.sh

clean:
	rm -rf $(VENV) $(WHEELHOUSE) build *.egg-info .pytest_cache

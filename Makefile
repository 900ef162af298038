# Two entry points a newcomer needs: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint deps system-deps bench clean policy-test templates fuzz

demo: deps
	$(BIN)/sigwarden demo

test: deps system-deps
	$(BIN)/ruff check provider tests scripts
	$(BIN)/python -m pytest

lint: deps
	$(BIN)/ruff check provider tests scripts

policy-test: deps
	rm -rf .policy-world && $(BIN)/python -c 'from pathlib import Path; from provider.devkit.fixtures import build_world; build_world(Path(".policy-world"))'
	$(BIN)/sigwarden policy test --config .policy-world/config.yaml policies/*/suite.yaml

# The fuzz tests with many more examples than CI runs (SIGWARDEN_FUZZ_EXAMPLES per test, default 5000).
fuzz: deps
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -m fuzz --timeout=0 -p no:cacheprovider tests

templates: deps
	$(BIN)/python scripts/build_templates.py

bench: deps system-deps
	for f in tests/benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

deps: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

system-deps:
	bash scripts/install-system-deps.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Two entry points a newcomer needs: `make demo` and `make test`. `make lock` after changing dependencies or
# extras in pyproject.toml; `make release` for the signed, reproducible release in dist/release/.
VENV ?= .venv
# Wheels of every runtime dependency: the packaging test installs the built wheel from here, offline.
WHEELHOUSE ?= .wheelhouse
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint deps runtime-deps system-deps bench clean policy-test templates templates-check fuzz lock release

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
	HYPOTHESIS_PROFILE=fuzz bash scripts/offline.sh $(BIN)/python -m pytest -m fuzz --timeout=0 -p no:cacheprovider tests

# Regenerate every copy built from policies/ (its template.yaml files, constraints/, the chart's files);
# `make templates-check` only reports drift (exit 1).
templates: deps
	$(BIN)/python scripts/build_templates.py

templates-check: deps
	$(BIN)/python scripts/build_templates.py --check

bench: deps system-deps
	for f in tests/benchmarks/bench_*.py; do bash scripts/offline.sh $(BIN)/python $$f || exit 1; done

runtime-deps: $(BIN)/.runtime

$(BIN)/.runtime: pyproject.toml requirements/runtime.txt requirements/build.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/runtime.txt -r requirements/build.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

deps: $(BIN)/.installed

# Only what the hashed locks name: requirements/dev.txt is the runtime plus every extra, build.txt the backend.
$(BIN)/.installed: pyproject.toml requirements/dev.txt requirements/build.txt requirements/runtime.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.txt -r requirements/build.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip wheel --quiet --require-hashes --wheel-dir $(WHEELHOUSE) \
		-r requirements/runtime.txt -r requirements/build.txt
	touch $(BIN)/.runtime $@

# Recompile every hashed lock under requirements/ from pyproject.toml (runtime, build, each extra, dev).
lock: deps
	$(BIN)/python -m scripts.release lock

# Wheel and sdist built twice from the committed tree and compared, the image's filesystem, SBOMs, provenance,
# all signed into the OCI image layout dist/release/ (see SECURITY.md for verifying it). RELEASE_KEY=key.pem
# signs with a real key instead of the test key in deploy/release/.
release: deps
	$(BIN)/python -m scripts.release build $(if $(RELEASE_KEY),--key $(RELEASE_KEY))

system-deps:
	bash scripts/install-system-deps.sh

clean:
	rm -rf $(VENV) $(WHEELHOUSE) build dist *.egg-info .pytest_cache

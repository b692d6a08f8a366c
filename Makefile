# crosscheck developer entry points. `make run` and `make test` install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CC     := $(VENV)/bin/crosscheck
DEMO   ?= --orders 300 --seed 6 --faults all=0.02

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install native clean-native wheel chromium run test unit integration lint

## The Rust toolchain (rustup's cargo) builds the native engine: on the PATH, or where rustup
## puts it.
export PATH := $(PATH):$(HOME)/.cargo/bin

## The package, installed editable: pip builds the native engine (native/, Rust, PyO3) with
## maturin, the build backend, into the source tree as streams/_native.abi3.so.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "crosscheck needs Python >= 3.11"'
	@command -v cargo >/dev/null || { echo "crosscheck: building the native engine needs Rust's" \
	  "cargo (https://rustup.rs), which is not on the PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

## After an edit of the Rust sources the engine is rebuilt in place (maturin develop; the
## package itself stays installed). `make native` rebuilds it whatever the sources' times.
NATIVE_SOURCES := native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)
NATIVE := streams/_native.abi3.so
MATURIN_DEVELOP := VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release \
                   --skip-install --quiet

$(NATIVE): $(NATIVE_SOURCES) | $(VENV)/.installed
	$(MATURIN_DEVELOP)
	@touch $@

install: $(VENV)/.installed $(NATIVE)

native: $(VENV)/.installed
	$(MATURIN_DEVELOP)

## Without the library the pure Python engine runs (same outputs, slower): for trying the
## fallback; `make native` (or any make target that installs) builds it again.
clean-native:
	rm -f $(NATIVE)

## The wheel (dist/crosscheck-*.whl: the packages and the engine, for Python 3.11+ on this
## platform), what `pip install .` and the image install; tests/integration/test_wheel.py
## installs it into a fresh virtualenv (and builds one itself when it is missing or older
## than the sources).
## Built for the interpreter pip's editable install built the engine for (the virtualenv's
## python3, which pip runs as): cargo then reuses that build instead of compiling PyO3 and
## the engine again for another interpreter path.
PACKAGE_FILES := $(shell find streams schemas topology -type f -not -path '*/__pycache__/*' \
                   -not -name '*.so' 2>/dev/null)
WHEEL := dist/.built
$(WHEEL): pyproject.toml README.md $(NATIVE_SOURCES) $(PACKAGE_FILES) | $(VENV)/.installed
	rm -f dist/crosscheck-*.whl
	$(VENV)/bin/maturin build --release --quiet --interpreter $(VENV)/bin/python3 --out dist
	@touch $@

wheel: $(WHEEL)

## Headless Chromium for the dashboard test (Debian's package; skipped when one is there).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  command -v google-chrome >/dev/null || \
	  ($(SUDO) apt-get update -qq && \
	   DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null)

## The main job on the embedded default: local broker, topics, simulated traffic, worker.
## (The traffic is examples/sample-traffic.jsonl again: same seed; run twice, it is only
## redelivered, and the worker ignores redeliveries.)
run: install
	$(CC) broker start
	$(CC) topics create
	$(CC) simulate $(DEMO) --expected .crosscheck-demo-expected.jsonl
	$(CC) worker --echo

## Every test, in three processes (pytest-xdist, whole modules per process, the slowest
## first: tests/conftest.py): each starts its own broker for its integration tests. Three
## on two cores, because the integration tests mostly wait (for workers to start, rebalance,
## go idle): with two processes a third of the CPU time was idle, and the tests took 11
## minutes instead of 7. TEST_JOBS=1 runs them in one process. First, the native engine
## must be built and running (the tests compare it with the Python engine); then the
## rules', engine's and stores' tests run once more on the pure Python engine.
TEST_JOBS ?= 3
PURE_TESTS := tests/unit/test_engine_*.py tests/unit/test_rules_*.py \
              tests/unit/test_streaming_equals_batch.py tests/unit/test_batch.py \
              tests/unit/test_overlay.py tests/unit/test_worker_store.py \
              tests/unit/test_worker_due_index.py
NATIVE_CHECK := import sys, streams.native as n; sys.exit(None if n.status() == "native" else \
                f"make test: the native engine is not running: {n.reason()}; `make native` builds it")
test: install wheel chromium
	@$(PY) -c '$(NATIVE_CHECK)'
	cargo test --manifest-path native/Cargo.toml --locked -q
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder --durations=15
	@echo "pure Python run of the rules, engine and store tests:"
	CROSSCHECK_PURE_PYTHON=1 $(PY) -m pytest -q -n $(TEST_JOBS) $(PURE_TESTS)

unit: install
	$(PY) -m pytest -q tests/unit

integration: install chromium
	$(PY) -m pytest -q tests/integration

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

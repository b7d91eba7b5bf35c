# fraudstream: `make demo` runs the main job end to end; `make test` runs the test suite.
# Every target installs what it needs (venv, Python packages, Kafka broker jars) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup test lint demo bench kafka-jars clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

kafka-jars: setup
	$(PY) -m producer.broker ensure-jars

test: setup kafka-jars
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

demo: setup kafka-jars
	bash deploy/demo.sh

# PostgreSQL parts run when FRAUDSTREAM_BENCH_PG_URL names a database reserved for benchmarks
# (it is reset); without it they are skipped with a note.
bench: setup kafka-jars
	$(PY) bench/bench_producer.py
	$(PY) bench/bench_scorer.py
	$(PY) bench/bench_decisions.py --rows 100000
	$(PY) bench/bench_labels.py --rows 200000
	$(PY) bench/bench_counts.py --rows 1000000

clean:
	rm -rf $(VENV) .fraudstream .pytest_cache .ruff_cache *.egg-info

# Two commands do everything on a fresh machine with Python 3.11+ and make:
#   make serve   creates .venv, installs the service, serves the bundled models (PORT=8000)
#   make test    creates .venv, installs the test extras, runs the whole suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
GRPC_PORT ?= 8001
HOST ?= 127.0.0.1
PIP := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: serve test lint bench-cpu clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(VENV)/.serve-installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) -c constraints.txt -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) -c constraints.txt -e '.[test]'
	touch $@ $(VENV)/.serve-installed

serve: $(VENV)/.serve-installed
	FILTERS_HOST=$(HOST) FILTERS_PORT=$(PORT) FILTERS_GRPC_PORT=$(GRPC_PORT) $(PY) -m service

test: $(VENV)/.test-installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(PIP) -c constraints.txt -e '.[dev]'
	$(PY) -m ruff check service tests engines bench
	$(PY) -m mypy

bench-cpu: $(VENV)/.test-installed
	$(PY) bench/cpu_bench.py --out bench/results

clean:
	rm -rf $(VENV) .pytest_cache

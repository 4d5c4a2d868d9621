# One entry point for people and CI. Everything installs itself: a fresh machine needs only python3.11.
SHELL := /bin/bash
PYTHON ?= python3.11
AIRFLOW ?= 3.3
VENV ?= .venv
ifneq ($(AIRFLOW),3.3)
VENV := .venv-airflow-$(AIRFLOW)
endif
REQS := requirements/ci-airflow-$(AIRFLOW).txt
PY := $(VENV)/bin/python
UV := $(PYTHON) -m uv
PYTEST_ARGS ?=

.PHONY: venv test test-compat lint demo emulator bench clean

$(VENV)/.installed: $(REQS) pyproject.toml
	$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) venv --quiet --allow-existing -p $(PYTHON) $(VENV)
	$(UV) pip install --quiet -p $(VENV) -r $(REQS)
	$(UV) pip install --quiet -p $(VENV) --no-deps -e .
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check airflow_provider_celonis tests example_dags benchmarks
	$(VENV)/bin/ruff format --check airflow_provider_celonis tests example_dags benchmarks
	$(VENV)/bin/mypy

## make test: lint, type-check and run every test on the newest Airflow (3.3)
test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

## make test-compat: the same suite on the oldest Airflow we claim (3.2.0)
test-compat:
	$(MAKE) AIRFLOW=3.2 venv
	$(MAKE) AIRFLOW=3.2 _pytest

_pytest: venv
	$(PY) -m pytest $(PYTEST_ARGS)

## make demo: start the emulator, push sample data with an example DAG, print what landed, stop it
demo: venv
	$(PY) scripts/demo.py

## make emulator: run the local Celonis emulator in the foreground
emulator: venv
	$(VENV)/bin/celonis-emulator

bench: venv
	$(PY) benchmarks/push_throughput.py --size 256MB

clean:
	rm -rf .venv .venv-airflow-* .pytest_cache .mypy_cache .ruff_cache

# One entry point for people and CI. Everything installs itself: a fresh machine needs only python3.11.
#
# A lane is one Python x one Airflow: `make test PYTHON=3.13`, `make test AIRFLOW=3.2`. Its pins are
# requirements/ci-py<PYTHON>-airflow-<AIRFLOW>.txt and its environment .venv (the default lane, Python 3.11 and
# Airflow 3.3) or .venv-py<PYTHON>-airflow-<AIRFLOW>. .ci/find-python.sh finds the lane's interpreter (PATH, then
# pyenv) and fails loudly when it is missing.
SHELL := /bin/bash
PYTHON ?= 3.11
AIRFLOW ?= 3.3
PY_VERSION := $(patsubst python%,%,$(notdir $(PYTHON)))
LANE := py$(PY_VERSION)-airflow-$(AIRFLOW)
ifeq ($(LANE),py3.11-airflow-3.3)
VENV ?= .venv
else
VENV ?= .venv-$(LANE)
endif
REQS := requirements/ci-$(LANE).txt
PY := $(VENV)/bin/python
# uv runs from the bootstrap interpreter and builds every lane's venv from the lane's own interpreter.
BOOTSTRAP ?= python3.11
UV := $(BOOTSTRAP) -m uv
# Integration tests run on pytest-xdist workers (each its own AIRFLOW_HOME, SQLite DB and emulators);
# XDIST=0 runs them in one process. Four workers on two cores: the tests mostly wait on emulated runs, retries
# and windows (two workers kept the cores about 35 % busy: 338 s; four: 227 s). End-to-end tests (real Airflow services) run after them, never next to
# integration tests. Their three stacks (LocalExecutor, CeleryExecutor, kill-and-restart; each with its own
# PostgreSQL cluster, ports and AIRFLOW_HOME) run at once, each on an xdist worker of its own: --dist
# loadscope keeps a test class (an executor's stack) or module together. E2E_XDIST=0: one after the other.
XDIST ?= 4
E2E_XDIST ?= 3
PYTEST_ARGS ?=
LINT_PATHS := airflow_provider_celonis tests example_dags benchmarks scripts .ci

.PHONY: venv test test-compat unit integration e2e lint lint-ruff lint-mypy fmt demo emulator bench docs docs-serve wheel-check \
	requirements clean

# --compile-bytecode: compiled once here, so no process compiles Airflow again, even where
# PYTHONDONTWRITEBYTECODE is set (as on our dev machines: `import airflow` took 5 s of CPU, 1.5 s with
# the bytecode; the end-to-end stacks start dozens of Airflow processes).
$(VENV)/.installed: $(REQS) pyproject.toml
	@test -f $(REQS) || { echo "No pins for lane $(LANE): $(REQS) is missing (see 'make requirements')" >&2; exit 1; }
	$(BOOTSTRAP) -m uv --version >/dev/null 2>&1 || $(BOOTSTRAP) -m pip install --quiet uv
	interpreter="$$(.ci/find-python.sh $(PY_VERSION))" && $(UV) venv --quiet --allow-existing -p "$$interpreter" $(VENV)
	$(UV) pip install --quiet --compile-bytecode -p $(VENV) -r $(REQS)
	$(UV) pip install --quiet -p $(VENV) --no-deps -e .
	touch $@

venv: $(VENV)/.installed

lint: lint-ruff lint-mypy

lint-ruff: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

lint-mypy: venv
	$(VENV)/bin/mypy

## make fmt: fix what ruff can fix (imports, pyupgrade, formatting)
fmt: venv
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

## make test: lint, type-check and run every test (unit, integration on xdist workers, then end to end)
test: lint
	$(MAKE) _pytest

## make test-compat: the suite on the oldest Airflow we claim (3.2.0)
test-compat:
	$(MAKE) AIRFLOW=3.2 _pytest

## make unit: the fast layer, tests/unit/ (no emulator, no Airflow DB), in seconds
unit: venv
	@if [ -d tests/unit ]; then set -x; $(PY) -m pytest tests/unit -q -p no:cacheprovider $(PYTEST_ARGS); \
	else echo "tests/unit/ does not exist yet: no unit test to run"; fi

## make integration / make e2e: the two slower layers on their own
integration: venv
	$(PY) -m pytest -m 'not e2e' -n $(XDIST) $(PYTEST_ARGS)

# The end-to-end tests live in tests/e2e/: collect only there (importing the other folders costs each worker
# ~13 s of CPU), unless PYTEST_ARGS names a path of its own (then -m e2e picks them out of that).
E2E_PATHS = $(if $(strip $(foreach a,$(PYTEST_ARGS),$(wildcard $(firstword $(subst ::, ,$(a)))))),,tests/e2e)
e2e: venv
	$(PY) -m pytest $(E2E_PATHS) -m e2e -n $(E2E_XDIST) --dist loadscope $(PYTEST_ARGS); \
	rc=$$?; [ $$rc -eq 5 ] && echo "(no end-to-end test selected)" || exit $$rc

_pytest: venv
	$(MAKE) integration
	$(MAKE) e2e

## make demo: start the emulator, push sample data with an example DAG, print what landed, stop it
demo: venv
	$(PY) scripts/demo.py

## make emulator: run the local Celonis emulator in the foreground
emulator: venv
	$(VENV)/bin/celonis-emulator

bench: venv
	$(PY) benchmarks/push_throughput.py --size 256MB

## make docs: build the documentation site into site/ (strict: a broken link or reference fails)
DOCS_VENV := .venv-docs
$(DOCS_VENV)/.installed: requirements/docs.txt
	$(BOOTSTRAP) -m uv --version >/dev/null 2>&1 || $(BOOTSTRAP) -m pip install --quiet uv
	$(UV) venv --quiet --allow-existing -p $(BOOTSTRAP) $(DOCS_VENV)
	$(UV) pip install --quiet -p $(DOCS_VENV) -r requirements/docs.txt
	touch $@

docs: $(DOCS_VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict

docs-serve: $(DOCS_VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs serve

## make wheel-check: build sdist and wheel, check them, install the wheel with Airflow's constraints, run it
wheel-check:
	BOOTSTRAP=$(BOOTSTRAP) bash .ci/check-wheel.sh

## make requirements: re-pin every lane (keeps existing pins; add a lane by adding its line here)
requirements:
	$(UV) pip compile --quiet --python-version 3.11 requirements/ci.in requirements/airflow-3.3.in -o requirements/ci-py3.11-airflow-3.3.txt
	$(UV) pip compile --quiet --python-version 3.11 requirements/ci.in requirements/airflow-3.2.in -o requirements/ci-py3.11-airflow-3.2.txt
	$(UV) pip compile --quiet --python-version 3.10 requirements/ci.in requirements/airflow-3.3.in -o requirements/ci-py3.10-airflow-3.3.txt
	$(UV) pip compile --quiet --python-version 3.13 requirements/ci.in requirements/airflow-3.3.in -o requirements/ci-py3.13-airflow-3.3.txt
	$(UV) pip compile --quiet --python-version 3.11 requirements/docs.in -o requirements/docs.txt

clean:
	rm -rf .venv .venv-* .pytest_cache .mypy_cache .ruff_cache site dist

# Barrio: `make run` serves the map, `make test` runs the whole suite.
# Every target installs what it needs when missing and is quick the second time.
SHELL := /bin/bash
.DEFAULT_GOAL := run

PYTHON_BASE ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?=
# `make run` serves the product's own error pages; `make run DEBUG=1` shows Django's debug pages.
DEBUG ?= 0
BARRIO_PGPORT ?= 55432
export BARRIO_PGPORT
# A DATABASE_URL from the environment replaces the project-local server entirely.
LOCAL_DATABASE_URL := postgis://barrio:barrio@127.0.0.1:$(BARRIO_PGPORT)/barrio
export DATABASE_URL ?= $(LOCAL_DATABASE_URL)
USE_LOCAL_DB := $(if $(filter $(LOCAL_DATABASE_URL),$(DATABASE_URL)),yes,)
MANAGE := $(PY) manage.py

.PHONY: run test bench lint system venv db-start db-stop db-status migrate demo serve e2e fast-test clean-db help screenshots

help:
	@echo "make run      set everything up, load the demo (or DATA_DIR=... packs), serve http://$(HOST):$(PORT)"
	@echo "make test     set everything up, run the whole test suite (browser tests included)"
	@echo "make bench    benchmarks with ratios against baselines measured in the same run"
	@echo "make screenshots   redraw the README's screenshots of the demo (docs/screenshots/)"
	@echo "make lint     ruff, import contracts (.importlinter), Django system checks, missing migrations"
	@echo "make db-start / db-stop   the project-local PostGIS server (.pgdata, port $(BARRIO_PGPORT))"

system:
	@scripts/bootstrap_debian.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP)

db-start: system
ifeq ($(USE_LOCAL_DB),yes)
	@scripts/db.sh start
else
	@echo "DATABASE_URL is set: using that PostGIS, not the local server"
endif

db-stop:
	@scripts/db.sh stop

db-status:
	@scripts/db.sh status

migrate: venv db-start
	@$(MANAGE) migrate --noinput -v 0
	@$(MANAGE) compilemessages --ignore '.venv/*' --ignore '.pgdata/*' -v 0

demo: migrate
ifeq ($(DATA_DIR),)
	@$(MANAGE) load_demo
else
	@$(MANAGE) load_open_data all --from "$(DATA_DIR)"
endif

# --insecure: runserver serves static/ with DEBUG off too (there is no other static server
# in development; photos have their own view).
run: demo
	@echo "Barrio is serving on http://$(HOST):$(PORT)/  (Ctrl+C to stop)"
	@export DJANGO_DEBUG=$(DEBUG); \
	  $(MANAGE) db_worker --no-startup-delay --no-reload -v 0 & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(MANAGE) runserver --noreload --insecure "$(HOST):$(PORT)"

test: venv db-start
	@$(MANAGE) compilemessages --ignore '.venv/*' --ignore '.pgdata/*' -v 0
	@$(PY) -m pytest $(PYTEST_ARGS)

# The README's pictures of the demo city: tests/e2e/screenshots.py is run by name (it is not
# collected by the suite) and writes docs/screenshots/*.jpg.
screenshots: venv db-start
	@$(MANAGE) compilemessages --ignore '.venv/*' --ignore '.pgdata/*' -v 0
	@$(PY) -m pytest -q -p no:cacheprovider tests/e2e/screenshots.py

fast-test: venv db-start
	@$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

bench: venv db-start
	@$(PY) -m bench $(BENCH_ARGS)

lint: venv db-start
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(VENV)/bin/lint-imports --no-cache
	@DJANGO_SETTINGS_MODULE=config.settings.test $(MANAGE) check
	@DJANGO_SETTINGS_MODULE=config.settings.test $(MANAGE) makemigrations --check --dry-run

clean-db: db-stop
	rm -rf .pgdata .pgdata.log

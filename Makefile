# Conclave Hub. `make run` serves the quick start; `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The suite's PostgreSQL and Redis (the CI machine's; override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/conclave
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: help run test fuzz lint format bench messages screenshots install install-dev system-deps services clean

help:
	@echo "make run    install, migrate, seed demo data, serve web + worker + beat on 127.0.0.1:\$${PORT:-8000}"
	@echo "make test   install, start PostgreSQL/Redis if down, run the suite and the SQLite smoke tests"
	@echo "make fuzz   the API fuzzing of \`make test\` at length (FUZZ_MAX_EXAMPLES, default 200)"
	@echo "make lint   ruff check, ruff format --check, mypy, pip-audit"
	@echo "make messages  gather the mechanic pages' texts into locale/*.po for translation"
	@echo "make screenshots  the README's pictures, into docs/screenshots/"
	@echo "make bench  benchmarks, each with its same-run baseline (bench/results/latest.json)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps: reinstall only when pyproject.toml changes.
$(VENV)/.installed-local: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --editable ".[local]"
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --editable ".[local,dev]"
	@touch $@ $(VENV)/.installed-local

install: $(VENV)/.installed-local
install-dev: $(VENV)/.installed-dev

system-deps:
	@scripts/install-system-deps.sh

services:
	@scripts/ensure-services.sh

run: install
	@scripts/run.sh

test: install-dev system-deps services
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) scripts/test.sh

# Schemathesis over every operation of /api/schema/ as every persona: 200 cases per operation
# instead of `make test`'s 10. The tally is in var/test-reports/fuzz.json.
fuzz: install-dev system-deps services
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-200} \
	  $(BIN)/pytest -q -p no:cacheprovider tests/test_fuzz.py

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pip-audit --skip-editable --progress-spinner off

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-dev system-deps services
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m bench

# The mechanic pages' texts into locale/{he,ru}/LC_MESSAGES/django.po (needs GNU gettext's
# xgettext); translate the new msgstr lines, then `make test` checks that none is missing.
messages: install-dev
	DATABASE_URL=sqlite:///:memory: REDIS_URL= $(BIN)/python manage.py makemessages \
	  --locale he --locale ru --no-location --no-obsolete --no-wrap \
	  --ignore .venv --ignore tests --ignore bench --ignore staticfiles --ignore var \
	  --ignore deploy --ignore scripts

# The README's pictures: the mechanic dashboard (English and Hebrew, classic and refreshed
# looks) and the admin's flags, ceremony and event log pages.
screenshots: install-dev system-deps services
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) SCREENSHOT_DIR=docs/screenshots \
	  $(BIN)/pytest -q -p no:cacheprovider tests/test_mechanic_browser.py -k screenshots
	@DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) SCREENSHOT_DIR=docs/screenshots \
	  $(BIN)/pytest -q -p no:cacheprovider tests/test_admin_browser.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .mypy_cache .ruff_cache

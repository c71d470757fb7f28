# The README's commands. Each target bootstraps .venv on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: run test test-fast dev lint check-defs bench sample clean

$(STAMP): pyproject.toml pipeline/core/coding/_scanner.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# pip byte-compiles what it installs, not an editable install's own sources (Python does
	# that on first import, unless PYTHONDONTWRITEBYTECODE is set): about 0.2 s of every run
	$(BIN)/python -m compileall -q pipeline > /dev/null
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: pipeline/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp pipeline/dagster.yaml $@

## Materialise every asset on the bundled sample into warehouse/survey.duckdb
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/survey-pipeline run

## The whole test suite (pytest exits 5 when it collects nothing: that fails too), in two
## worker processes, one test file per worker at a time (the long end-to-end files overlap)
test: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist loadfile

## The unit tier only: the pure core, no Dagster run, no UI, no model (under a minute)
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not browser"

## Dagster UI + daemon on 127.0.0.1:3000, persistent run history in ./dagster_home
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg dev --host 127.0.0.1 --port 3000

## The same on the PostgreSQL instance (pipeline/dagster.postgres.yaml; docs/operations.md):
## set DAGSTER_PG_HOST, DAGSTER_PG_PORT, DAGSTER_PG_DB, DAGSTER_PG_USER, DAGSTER_PG_PASSWORD first
.PHONY: dev-postgres
dev-postgres: $(STAMP)
	@for v in HOST PORT DB USER PASSWORD; do printenv DAGSTER_PG_$$v >/dev/null || \
	  { echo "set DAGSTER_PG_$$v (docs/operations.md, The instance on PostgreSQL)"; exit 1; }; done
	mkdir -p $(DAGSTER_HOME)/postgres
	cp pipeline/dagster.postgres.yaml $(DAGSTER_HOME)/postgres/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME)/postgres VIRTUAL_ENV=$(CURDIR)/$(VENV) \
	  $(BIN)/dg dev --host 127.0.0.1 --port 3000

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests bench

check-defs: $(STAMP)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs

bench: $(STAMP)
	$(BIN)/python bench/coder.py

## Regenerate the bundled synthetic sample (seeded; the committed files are its output)
sample: $(STAMP)
	$(BIN)/python -m tools.sample.synth --out data/sample

clean:
	rm -rf warehouse/survey.duckdb warehouse/published reports

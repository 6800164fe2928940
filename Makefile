# nodewatch developer / CI entry points.
#
#   make tools   install the external test tools (anvil, ethereum-etl) into .tools/ (git-ignored),
#                only if missing; a re-run is instant.
#   make pg-tools  PostgreSQL 15 from Debian (apt-get, as root) unless its initdb is there.
#   make test    tools + pg-tools + fmt check + clippy + cargo test, with NODEWATCH_ANVIL,
#                NODEWATCH_ETHEREUMETL and NODEWATCH_PG_BIN exported so the integration
#                tests find the tools.
#   make lint    fmt check + clippy
#   make fmt     cargo fmt

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
TOOLS := $(ROOT)/.tools

CARGO ?= cargo
PYTHON ?= python3
NPM ?= npm

ANVIL_VERSION := 1.7.1
ANVIL := $(TOOLS)/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
ANVIL_STAMP := $(TOOLS)/.anvil-$(ANVIL_VERSION).stamp

ETL_VERSION := 2.4.2
# ethereum-etl 2.4.2 resolves (via eth-abi 2.2.0) parsimonious 0.8.1, which does not import on
# Python 3.11 (inspect.getargspec is gone); upgrading to 0.10.0 afterwards works. pip prints a
# resolver warning about eth-abi wanting <0.9 for that step: expected and harmless.
PARSIMONIOUS_VERSION := 0.10.0
VENV := $(TOOLS)/venv
ETHEREUMETL := $(VENV)/bin/ethereumetl
ETL_STAMP := $(VENV)/.ethereum-etl-$(ETL_VERSION).stamp
ETL_CONSTRAINTS := $(ROOT)/scripts/ethereum-etl-constraints.txt

# The integration tests read these (see tests/support/tools.rs). A value already in the
# environment wins, so a developer can point at their own builds.
# PostgreSQL for the stream-to-database tests (tests/support/postgres.rs starts a throwaway
# server from these binaries; nothing is installed as a service or left running).
PG_MAJOR := 15
PG_BIN := /usr/lib/postgresql/$(PG_MAJOR)/bin

NODEWATCH_ANVIL ?= $(ANVIL)
NODEWATCH_ETHEREUMETL ?= $(ETHEREUMETL)
NODEWATCH_PG_BIN ?= $(PG_BIN)
export NODEWATCH_ANVIL NODEWATCH_ETHEREUMETL NODEWATCH_PG_BIN

.PHONY: all tools pg-tools test lint fmt fmt-check clippy cargo-test clean-tools FORCE

all: test

tools: $(ANVIL_STAMP) $(ETL_STAMP)

# The recipes run only when their stamp is missing (or, for ethereum-etl, older than the
# constraints file); a stamp whose binary has disappeared forces a clean re-install too.
$(ANVIL_STAMP): $(if $(wildcard $(ANVIL)),,FORCE)
	@echo "==> installing anvil $(ANVIL_VERSION) into .tools/"
	mkdir -p $(TOOLS)
	@# Start clean: npm would call a package whose binary went missing "up to date".
	rm -rf $(TOOLS)/node_modules $(TOOLS)/package.json $(TOOLS)/package-lock.json
	$(NPM) install --prefix $(TOOLS) --include=optional --no-audit --no-fund --loglevel=error @foundry-rs/anvil@$(ANVIL_VERSION)
	test -x $(ANVIL)
	$(ANVIL) --version | grep -q 'Version: $(ANVIL_VERSION)'
	touch $@

$(ETL_STAMP): $(ETL_CONSTRAINTS) $(if $(wildcard $(ETHEREUMETL)),,FORCE)
	@echo "==> installing ethereum-etl $(ETL_VERSION) into .tools/venv"
	@# A fresh venv each time: no stale packages after a constraints change, no half-broken venv.
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c $(ETL_CONSTRAINTS) ethereum-etl==$(ETL_VERSION)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c $(ETL_CONSTRAINTS) parsimonious==$(PARSIMONIOUS_VERSION)
	@# `ethereumetl stream -o postgresql+pg8000://...` needs these two of its [streaming] extra.
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c $(ETL_CONSTRAINTS) SQLAlchemy pg8000
	$(ETHEREUMETL) --help > /dev/null
	touch $@

FORCE:

# Idempotent: nothing happens when initdb is there. apt-get update only when the first
# install attempt fails (stale or empty package lists). Not root: say so and go on; the tests
# then skip locally and fail under CI=true.
pg-tools:
	@if [ -x $(PG_BIN)/initdb ] && [ -x $(PG_BIN)/postgres ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "warning: PostgreSQL $(PG_MAJOR) is missing and installing it needs root: apt-get install postgresql-$(PG_MAJOR)" >&2; \
	  exit 0; \
	fi; \
	echo "==> installing postgresql-$(PG_MAJOR) (apt)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y --no-install-recommends postgresql-$(PG_MAJOR) \
	  || { apt-get update && apt-get install -y --no-install-recommends postgresql-$(PG_MAJOR); }; \
	test -x $(PG_BIN)/initdb

fmt:
	$(CARGO) fmt

fmt-check:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

lint: fmt-check clippy

cargo-test: tools pg-tools
	$(CARGO) test

# Sequenced (not just prerequisites) so `make -j` still runs the steps in order.
test: tools pg-tools
	$(MAKE) --no-print-directory fmt-check
	$(MAKE) --no-print-directory clippy
	$(MAKE) --no-print-directory cargo-test

clean-tools:
	rm -rf $(TOOLS)

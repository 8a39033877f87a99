# Oshara: `make dev` runs the product, `make test` passes the tests.
# Each target creates or refreshes .venv from pyproject.toml when needed.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every role's extra (pyproject.toml): the token server, the worker, the voice service, and
# the tests and lint. A deployment installs only its own: `pip install '.[server]'`.
EXTRAS := server,worker,voice,dev
HOST ?= 127.0.0.1
PORT ?= 8080
# Debian packages the tests use: speech for the voice pipeline, a browser for the widget,
# ip for the test run's network namespace. (PostgreSQL: scripts/postgres.sh.)
SYSTEM_PACKAGES := espeak-ng chromium iproute2
# The load generator the benchmarks drive servers with.
BENCH_PACKAGES := wrk
# The LiveKit server, pinned here only: `make livekit` uses a livekit-server on PATH, else
# builds this version from its Go module into .tools/ (rebuilt when the version changes).
LIVEKIT_VERSION := v1.13.5
LIVEKIT_MODULE := github.com/livekit/livekit-server/cmd/server
LIVEKIT_BUILT := .tools/livekit-server-$(LIVEKIT_VERSION)/livekit-server
LIVEKIT_SERVER ?= $(or $(shell command -v livekit-server 2>/dev/null),$(LIVEKIT_BUILT))
export LIVEKIT_SERVER

.DEFAULT_GOAL := help
.PHONY: help install system-deps bench-deps livekit postgres dev test lint check-extras format widget widget-check bench bench-quick clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Refreshed when pyproject.toml (the dependencies) or this file (EXTRAS) changes.
# --compile-bytecode: uv, unlike pip, leaves site-packages without .pyc files, and where
# PYTHONDONTWRITEBYTECODE is set (as on our machines) every process then compiles torch,
# transformers and livekit from source each time it starts (15 s of the voice service's 42).
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[$(EXTRAS)]'
	@touch $(STAMP)

install: $(STAMP) ## Create or refresh .venv from pyproject.toml

# $(call apt_install,PACKAGES): install the missing Debian packages (as root; otherwise say which).
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install:$$missing (e.g. sudo apt-get install$$missing)"; exit 1; fi; \
	fi
endef

system-deps: ## Install the Debian packages the tests need (as root; otherwise says which)
	$(call apt_install,$(SYSTEM_PACKAGES))

bench-deps:
	$(call apt_install,$(BENCH_PACKAGES))

livekit: $(LIVEKIT_SERVER) ## Provide livekit-server: the one on PATH, else build the pinned version into .tools/

$(LIVEKIT_BUILT):
	@command -v go >/dev/null || { echo "livekit-server is missing: install Go 1.21 or newer (it fetches the Go 1.26 toolchain the server needs), or put a livekit-server binary on PATH"; exit 1; }
	@echo "building livekit-server $(LIVEKIT_VERSION) from its Go module (a few minutes, once)"
	@rm -rf $(@D).tmp && mkdir -p $(@D).tmp
	GOBIN=$(abspath $(@D).tmp) go install $(LIVEKIT_MODULE)@$(LIVEKIT_VERSION)
	@mkdir -p $(@D) && mv $(@D).tmp/server $@ && rm -rf $(@D).tmp

postgres: ## Install Debian's PostgreSQL if missing and start the tests' own cluster in .tools/postgres
	@scripts/postgres.sh >/dev/null

dev: $(STAMP) livekit ## Run LiveKit (when LIVEKIT_URL is here and none answers), the token server and the worker (Ctrl-C stops all)
	@# python -m dev starts them in that order and stops them in reverse on Ctrl-C or TERM.
	@$(BIN)/python -m dev --host $(HOST) --port $(PORT)

test: $(STAMP) system-deps livekit ## Run the whole test suite (SQLite and PostgreSQL, voice, browser, e2e calls)
	@# Every test runs inside a network namespace of its own: nothing it sends leaves the machine.
	TEST_POSTGRES_ADMIN_URL="$${TEST_POSTGRES_ADMIN_URL:-$$(scripts/postgres.sh)}" \
	  scripts/netns.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint and format check), mypy (types) and deptry (every imported package is declared)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/deptry .

check-extras: $(STAMP) ## Resolve each role's install alone, check what stays out, import server and worker from their own
	$(BIN)/python scripts/check_extras.py

format: $(STAMP) ## ruff: fix what can be fixed and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

widget: ## Rebuild token_server/static/widget.js from widget/ (needs Node.js and npm)
	cd widget && npm ci --no-audit --no-fund && npm run build

widget-check: ## Check the committed widget.js matches its source, type-check and unit-test it
	cd widget && npm ci --no-audit --no-fund && ./check-build.sh && npm run typecheck && npm test

bench: $(STAMP) bench-deps postgres ## Every benchmark section, tables, plots and JSON, against the last recorded run (half an hour or more)
	$(BIN)/python -m bench

bench-quick: $(STAMP) bench-deps postgres ## The short version of the in-process sections (146 s measured on 2 cores); the browser and real-server ones need make bench
	$(BIN)/python -m bench --quick

clean: ## Remove .venv, caches and the local SQLite database (keeps .tools: livekit-server, PostgreSQL)
	rm -rf $(VENV) .pytest_cache .ruff_cache data

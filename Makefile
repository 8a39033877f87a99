# Oshara: `make dev` runs the product, `make test` passes the tests.
# Each target creates or refreshes .venv from pyproject.toml when needed.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
# Debian packages the tests use: speech for the voice pipeline, a browser for the widget.
SYSTEM_PACKAGES := espeak-ng chromium
# The load generator the benchmarks drive servers with.
BENCH_PACKAGES := wrk

.DEFAULT_GOAL := help
.PHONY: help install system-deps bench-deps dev test lint format widget widget-check bench bench-quick clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
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

dev: $(STAMP) ## Run the token server and the agent worker, with its voice service (Ctrl-C stops all)
	@# Ctrl-C reaches both processes from the terminal; a TERM sent to make is passed on.
	@trap 'kill $$(jobs -p) 2>/dev/null' TERM; trap : INT; \
	$(BIN)/python -m token_server --host $(HOST) --port $(PORT) & \
	TOKEN_SERVER_URL=http://$(HOST):$(PORT) $(BIN)/python -m agent dev & \
	wait; wait

test: $(STAMP) system-deps ## Run the whole test suite (SQLite and PostgreSQL, voice, browser)
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff: lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff: fix what can be fixed and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

widget: ## Rebuild token_server/static/widget.js from widget/ (needs Node.js and npm)
	cd widget && npm ci --no-audit --no-fund && npm run build

widget-check: ## Check the committed widget.js matches its source, type-check and unit-test it
	cd widget && npm ci --no-audit --no-fund && ./check-build.sh && npm run typecheck && npm test

bench: $(STAMP) bench-deps ## Every benchmark section, tables and JSON, against the last recorded run (a few minutes)
	$(BIN)/python -m bench

bench-quick: $(STAMP) bench-deps ## The short version of every benchmark section (about a minute)
	$(BIN)/python -m bench --quick

clean: ## Remove .venv, caches and the local SQLite database
	rm -rf $(VENV) .pytest_cache .ruff_cache data

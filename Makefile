# Temporal Flow — the documented interface. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

include hack/versions.env

CACHE_DIR ?= $(or $(TFLOW_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/temporal-flow)
UV_HOME := $(CACHE_DIR)/uv-$(UV_VERSION)
UV := $(UV_HOME)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export UV_PYTHON_DOWNLOADS := never
PYTEST_ARGS ?=

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Setup (each installs only what is missing)

$(UV):
	python3 -m venv "$(UV_HOME)"
	"$(UV_HOME)/bin/pip" install --quiet "uv==$(UV_VERSION)"

.PHONY: venv
venv: $(UV) ## Create .venv with the locked Python dependencies.
	"$(UV)" sync --frozen --extra dev

.PHONY: tools
tools: ## Build etcd, kube-apiserver, kube-controller-manager, kubectl and helm (cached per version).
	hack/tools.sh build all

.PHONY: postgres
postgres: ## Install the PostgreSQL server from Debian's packages if it is missing.
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "PostgreSQL server present"; \
	else \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends postgresql; \
	fi

AZURITE_HOME := $(CACHE_DIR)/azurite-$(AZURITE_VERSION)

.PHONY: azurite
azurite: ## Install the Azurite storage emulator from npm (cached per version).
	@if [ -x "$(AZURITE_HOME)/node_modules/.bin/azurite-blob" ]; then \
	  echo "Azurite $(AZURITE_VERSION) present"; \
	else \
	  rm -rf "$(AZURITE_HOME).partial"; \
	  npm install --prefix "$(AZURITE_HOME).partial" --no-audit --no-fund "azurite@$(AZURITE_VERSION)"; \
	  rm -rf "$(AZURITE_HOME)" && mv "$(AZURITE_HOME).partial" "$(AZURITE_HOME)"; \
	fi

.PHONY: deps
deps: venv tools postgres azurite ## Everything the tests and the dev stack need.

##@ Development

.PHONY: crds
crds: venv ## Generate crds/ and docs/crd-reference.md from the API models.
	$(PY) -m tflow_operator.api.crdgen --out crds --docs docs/crd-reference.md

.PHONY: fmt
fmt: venv ## Format and auto-fix the code.
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: lint
lint: venv ## ruff, mypy, and the generated-files drift check.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	"$(UV)" lock --check
	$(PY) -m tflow_operator.api.crdgen --out crds --docs docs/crd-reference.md --check

##@ Test

.PHONY: test
test: deps lint ## The whole suite: lint, unit and integration tests on real servers.
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: venv ## Unit tests only (no servers).
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

.PHONY: record-histories
record-histories: deps ## Re-record the sample runs' histories that the replay tests check.
	TFLOW_RECORD_HISTORIES=1 $(VENV)/bin/pytest tests/integration/samples $(PYTEST_ARGS)

##@ Local stack

.PHONY: dev
dev: deps ## Run the embedded stack (control plane + Temporal + CRDs) until Ctrl-C.
	$(PY) -m tflow_devstack up

.PHONY: dev-down
dev-down: ## Stop a stack started with `make dev` from another shell.
	$(PY) -m tflow_devstack down

##@ Cleanup

.PHONY: clean
clean: ## Remove the virtualenv, caches and dev-stack state (keeps the built binaries).
	rm -rf $(VENV) .dev .mypy_cache .ruff_cache .pytest_cache

.PHONY: clean-tools
clean-tools: ## Remove every cached binary (the next `make tools` rebuilds them).
	rm -rf "$(CACHE_DIR)/bin"

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
# The suite and the benches start many Python processes (operators, workers, listeners,
# `tflow`); where the environment forbids writing bytecode, each compiles every module it
# imports again, seconds of CPU each. The images compile theirs at build time and keep the
# variable set.
unexport PYTHONDONTWRITEBYTECODE
PYTEST_ARGS ?=

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Setup (each installs only what is missing)

# The uv the image installs too: UV_VERSION, its files' hashes in hack/uv-requirements.txt.
$(UV):
	python3 -m venv "$(UV_HOME)"
	"$(UV_HOME)/bin/pip" install --quiet --require-hashes --no-deps -r hack/uv-requirements.txt

.PHONY: venv
venv: $(UV) ## Create .venv with the locked Python dependencies.
	"$(UV)" sync --frozen --extra dev

.PHONY: tools
tools: ## Build etcd, the Kubernetes control plane and node binaries, kubectl, helm, crictl and pause (cached per version).
	hack/tools.sh build all

.PHONY: keda
keda: ## Build the KEDA operator and copy its CRDs (cached per version).
	hack/tools.sh build keda

.PHONY: postgres
postgres: ## Install the PostgreSQL server from Debian's packages if it is missing.
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "PostgreSQL server present"; \
	else \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends postgresql; \
	fi

IMAGE_PACKAGES := buildah debootstrap containerd

.PHONY: image-tools
image-tools: ## Install buildah, debootstrap and containerd's ctr from Debian's packages if missing.
	@missing=""; for p in $(IMAGE_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "image packages present"; else \
	  $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

# The tests build the images too (tests/integration/test_image.py).
deps: image-tools

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

# The web UI lays out graphs with dagre, from npm, copied next to the page's own files
# (git-ignored; the image build copies it in with the rest of cli/).
UI_VENDOR := cli/tflow_cli/ui/static/vendor
DAGRE_HOME := $(CACHE_DIR)/dagre-$(DAGRE_VERSION)

.PHONY: ui-assets
ui-assets: ## Vendor the web UI's graph layout library (dagre) from npm (cached per version).
	@if [ "$$(cat $(UI_VENDOR)/dagre.version 2>/dev/null)" = "$(DAGRE_VERSION)" ]; then \
	  echo "dagre $(DAGRE_VERSION) present"; \
	else \
	  if [ ! -f "$(DAGRE_HOME)/node_modules/@dagrejs/dagre/dist/dagre.min.js" ]; then \
	    rm -rf "$(DAGRE_HOME).partial"; \
	    npm install --prefix "$(DAGRE_HOME).partial" --no-audit --no-fund "@dagrejs/dagre@$(DAGRE_VERSION)"; \
	    rm -rf "$(DAGRE_HOME)" && mv "$(DAGRE_HOME).partial" "$(DAGRE_HOME)"; \
	  fi; \
	  mkdir -p $(UI_VENDOR); \
	  cp "$(DAGRE_HOME)/node_modules/@dagrejs/dagre/dist/dagre.min.js" $(UI_VENDOR)/dagre.min.js; \
	  cp "$(DAGRE_HOME)/node_modules/@dagrejs/dagre/LICENSE" $(UI_VENDOR)/dagre.LICENSE; \
	  echo "$(DAGRE_VERSION)" > $(UI_VENDOR)/dagre.version; \
	fi

.PHONY: chromium
chromium: ## Install headless Chromium from Debian's packages if missing (the UI's browser tests).
	@if command -v chromium >/dev/null 2>&1; then \
	  echo "Chromium present"; \
	else \
	  $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	fi

NODE_PACKAGES := containerd runc containernetworking-plugins iptables conntrack iproute2 buildah

.PHONY: node-deps
node-deps: ## Install what a real node needs from Debian's packages (containerd, runc, CNI plugins, iptables, buildah).
	@missing=""; for p in $(NODE_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "node packages present"; else \
	  $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

.PHONY: deps
deps: venv tools keda postgres azurite node-deps ui-assets chromium ## Everything the tests and the dev stack need.

##@ Development

.PHONY: crds
crds: venv ## Generate crds/, docs/crd-reference.md, the RBAC manifest and the chart's copies.
	$(PY) -m tflow_operator.api.crdgen --out crds --docs docs/crd-reference.md
	$(PY) -m tflow_operator.rbac --out manifests/rbac/operator.yaml
	$(PY) -m tflow_operator.chartfiles

.PHONY: manifests
manifests: crds tools ## Render manifests/install.yaml from the chart (drift-checked by the tests).
	{ echo "# generated by \`make manifests\` from charts/temporal-flow — do not edit"; \
	  "$$(hack/tools.sh path helm)" template temporal-flow charts/temporal-flow \
	    --namespace temporal-flow --skip-tests; } > manifests/install.yaml

.PHONY: fmt
fmt: venv ## Format and auto-fix the code.
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: lint
lint: venv ## ruff, mypy, the layer contracts (.importlinter), and the generated-files drift check.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	"$(UV)" lock --check
	$(PY) -m tflow_operator.api.crdgen --out crds --docs docs/crd-reference.md --check
	$(PY) -m tflow_operator.rbac --out manifests/rbac/operator.yaml --check
	$(PY) -m tflow_operator.chartfiles --check
	$(PY) -m tflow_workers.dsl.features --docs docs/dsl-support.md --check

##@ Test

.PHONY: test
test: deps lint ## The whole suite: lint, unit and integration tests on real servers.
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: e2e
e2e: deps ## End to end in real pods: a real node (kubelet, containerd, runc), the images built here, the chart installed.
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: venv ## Unit tests only (no servers).
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

.PHONY: test-nothing-lost
test-nothing-lost: deps ## Nothing lost, nothing doubled: 1000 + 1000 events via SQS and the webhook, listener killed, Temporal restarted.
	TFLOW_NOTHING_LOST_EVENTS=1000 $(VENV)/bin/pytest tests/integration/listeners/test_nothing_lost.py -s $(PYTEST_ARGS)

.PHONY: record-histories
record-histories: deps ## Re-record the sample runs' histories that the replay tests check.
	TFLOW_RECORD_HISTORIES=1 $(VENV)/bin/pytest tests/integration/samples tests/integration/engine/test_run_visibility.py \
		tests/integration/orchestrator/test_root_orchestrator.py $(PYTEST_ARGS)

##@ Benchmarks

.PHONY: bench
bench: deps ## Every benchmark against its target; writes bench-results.md (about 16 minutes idle, more when busy; the last needs root).
	$(PY) bench/report.py

##@ Images

.PHONY: image
image: venv image-tools ui-assets ## Build the production and samples images offline with buildah on a Debian base made by debootstrap; print their references.
	$(PY) -m tflow_devstack.images build

##@ Local stack

.PHONY: dev
dev: deps ## Run the embedded stack (control plane + Temporal + CRDs) until Ctrl-C.
	$(PY) -m tflow_devstack up

.PHONY: dev-down
dev-down: ## Stop a stack started with `make dev` from another shell.
	$(PY) -m tflow_devstack down

##@ Real cluster (needs Docker)

.PHONY: kind-up
kind-up: ## Create a kind cluster with KEDA, a Temporal dev server and this chart (image built locally).
	hack/kind-up.sh

.PHONY: kind-down
kind-down: ## Delete the kind cluster made by kind-up.
	kind delete cluster --name $${KIND_CLUSTER:-temporal-flow}

##@ Cleanup

.PHONY: clean
clean: ## Remove the virtualenv, caches and dev-stack state (keeps the built binaries).
	rm -rf $(VENV) .dev .mypy_cache .ruff_cache .pytest_cache

.PHONY: clean-tools
clean-tools: ## Remove every cached binary (the next `make tools` rebuilds them).
	rm -rf "$(CACHE_DIR)/bin"

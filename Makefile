# dgdr — build, test and verify. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO ?= go
export GOTOOLCHAIN := local
export GOFLAGS := -mod=mod

# Control-plane binaries are cached outside the clone so CI on a reused machine does not rebuild them.
ENVTEST_ASSETS ?= $(HOME)/.cache/envtest-assets
export KUBEBUILDER_ASSETS ?= $(ENVTEST_ASSETS)

MODULE  := github.com/dgdr-dev/dgdr
# A "v"-prefixed semver, as krew requires: the tag at a release, else a pseudo-version (hack/version.sh).
VERSION ?= $(shell bash hack/version.sh)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X $(MODULE)/internal/version.Version=$(VERSION) \
	-X $(MODULE)/internal/version.Commit=$(COMMIT) -X $(MODULE)/internal/version.Date=$(DATE)
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"

BINARIES := bin/kubectl-dgdr bin/dgdr-webhook bin/dgdr-profiler

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/kubectl-dgdr, bin/dgdr-webhook and bin/dgdr-profiler
	@mkdir -p bin
	$(GOBUILD) -o bin/kubectl-dgdr ./cmd/kubectl-dgdr
	$(GOBUILD) -o bin/dgdr-webhook ./cmd/webhook
	$(GOBUILD) -o bin/dgdr-profiler ./cmd/dgdr-profiler

# Release artefacts: kubectl-dgdr for linux, darwin and windows on amd64 and arm64 (internal/ship).
DIST_DIR      ?= dist
KREW_MANIFEST ?= krew/dgdr.yaml
IMAGE         ?= ghcr.io/dgdr-dev/dgdr
IMAGE_TAG     ?= $(VERSION)
SHIP          = $(GO) run ./hack/dist -version "$(VERSION)" -out "$(DIST_DIR)" -manifest "$(KREW_MANIFEST)"

.PHONY: dist
dist: ## cross-build dist/kubectl-dgdr_<version>_<os>_<arch>.tar.gz, dist/checksums.txt and krew/dgdr.yaml
	$(SHIP) -go "$(GO)" -ldflags "$(LDFLAGS)"

.PHONY: krew-manifest
krew-manifest: ## re-render krew/dgdr.yaml from the archives already in dist/ (make dist does it too)
	$(SHIP) -manifest-only

.PHONY: image
image: ## build the webhook + profiler image ghcr.io/dgdr-dev/dgdr:<version> with docker, podman or buildah
	bash hack/image.sh "$(IMAGE):$(IMAGE_TAG)" --build-arg LDFLAGS="$(LDFLAGS)"

.PHONY: envtest-assets
envtest-assets: ## build kube-apiserver, kube-controller-manager, etcd and kubectl from source into $(ENVTEST_ASSETS) (cached)
	bash hack/install-assets.sh "$(ENVTEST_ASSETS)" >/dev/null

.PHONY: chromium
chromium: ## headless Chromium for the web UI's browser test: apt-get install it as root, else say what to install
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || \
	[ -n "$$DGDR_CHROMIUM" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		echo "installing chromium with apt-get (the web UI's browser test drives it)" && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium </dev/null; } || \
	{ echo "the web UI's browser test needs Chromium: run 'sudo apt-get install -y chromium' (or set DGDR_CHROMIUM to a Chrome binary)"; exit 1; }

.PHONY: prometheus
prometheus: ## Prometheus for the adaptation tests (pkg/adapt): apt-get install it as root, else say what to install
	@command -v prometheus >/dev/null || [ -n "$$DGDR_PROMETHEUS" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		echo "installing prometheus with apt-get (the adaptation tests scrape a fake Dynamo frontend with it)" && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus </dev/null; } || \
	{ echo "the adaptation tests need Prometheus: run 'sudo apt-get install -y prometheus' (or set DGDR_PROMETHEUS to a prometheus binary)"; exit 1; }

# Under the race detector: the packages whose code runs goroutines against each other (admission and UI
# HTTP servers, the profiler's and lifecycle's watchers and workers, the simulated engine, the
# control-plane harness). It roughly doubles their build; the rest run without it. pkg/bench is not
# here: its 256-stream test needs every stream open at once, which -race's slowdown on 2 busy CPUs
# does not give (129 of 256 seen).
RACE_PKGS := ./internal/webhook/... ./internal/lifecycle/... ./internal/profiler/... ./internal/ui/... \
	./internal/simengine/... ./internal/testenv/...

# The release tests cross-build the plugin for six platforms: on a cold build cache that is most of the
# suite's time on 2 cores (cached, it is six links). They run last, one package at a time, so the image
# test reuses the linux/amd64 build of `make dist`, with a timeout that fits a cold cache.
RELEASE_PKGS := ./test/...

.PHONY: test
test: envtest-assets chromium prometheus ## every test (installs the control plane, Chromium and Prometheus first); RACE_PKGS with -race
	$(GO) test -count=1 -timeout 20m -race $(RACE_PKGS)
	$(GO) test -count=1 -timeout 20m $$(comm -23 <($(GO) list ./... | sort) <($(GO) list $(RACE_PKGS) $(RELEASE_PKGS) | sort))
	$(GO) test -count=1 -timeout 60m -p 1 $(RELEASE_PKGS)

# The end-to-end suite (test/e2e): a single-node cluster built on this machine — the control plane, and
# containerd, kube-proxy and the kubelet in a network namespace — the project's images written as OCI
# archives, the install the README describes, and the user's scenarios. Needs root; not part of make test.
.PHONY: e2e
e2e: ## end-to-end on a real node built here (root): installs kubelet/kube-proxy/scheduler and Debian's containerd, runc, CNI plugins first
	bash hack/install-node.sh "$(ENVTEST_ASSETS)" >/dev/null
	$(GO) test -count=1 -timeout 30m -v -run '^TestE2E$$' ./test/e2e -args -e2e

.PHONY: generate
generate: ## regenerate deepcopy code and the CRD from the API types
	$(GO) tool controller-gen object paths=./pkg/apis/...
	$(GO) tool controller-gen crd:allowDangerousTypes=true paths=./pkg/apis/... output:crd:dir=manifests/crd

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: lint
lint: ## staticcheck (pinned; fetched from the module proxy)
	$(GO) run $(STATICCHECK) ./...

.PHONY: verify
verify: ## fail when generated files drift, code is unformatted, vet or staticcheck complain, or go.mod is untidy
	$(MAKE) generate
	git diff --exit-code -- pkg/apis manifests/crd || { echo "generated files drifted: run make generate and commit"; exit 1; }
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run gofmt -w"; exit 1; }
	$(GO) vet ./...
	$(MAKE) lint
	cp go.mod /tmp/dgdr-go.mod.bak; cp go.sum /tmp/dgdr-go.sum.bak
	$(GO) mod tidy
	git diff --exit-code -- go.mod go.sum || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(MAKE) docs
	git diff --exit-code -- README.md || { echo "README.md's command table is out of date: run make docs and commit"; exit 1; }

.PHONY: docs
docs: ## rewrite the command table in README.md from the plugin's cobra commands
	$(GO) run ./internal/tools/cmdtable -readme README.md

.PHONY: tables
tables: ## re-derive the performance model's kernel tables (pkg/profile/tables) from testdata/gpu-data
	$(GO) run ./internal/tools/tables

.PHONY: calibrate
calibrate: ## refit the performance model's calibration (pkg/profile/tables/calib.json) and its intervals (intervals.json) on testdata/calibration
	$(GO) run ./internal/tools/fit

.PHONY: bench-accuracy
bench-accuracy: ## performance-model TTFT/ITL error, interval coverage and few-shot, left one model out, into docs/accuracy.md
	$(GO) run ./internal/tools/accuracy -write docs/accuracy.md

.PHONY: bench
bench: ## go test -bench figures: the whole rapid search (Qwen3-32B, any backend, agg+disagg, 32 H200s) on 2 CPUs, the Pareto front
	$(GO) test -run '^$$' -bench . -benchmem -cpu 2 ./pkg/pareto ./pkg/profile

.PHONY: bench-admission
bench-admission: ## 200 DGDR creates through the real API server and two webhook replicas, 1, 20 and 200 in flight: webhook p50/p99 (API calls vs own work), end-to-end latency
	$(GO) test -count=1 -run '^TestBenchAdmission$$' -v ./internal/webhook -args -bench-admission

.PHONY: screenshot
screenshot: ## docs/ui.png: the web UI of `plan --ui` (Qwen3-32B, 8 H200) taken with headless chromium
	@command -v chromium >/dev/null || { echo "chromium is not installed: apt-get install -y chromium"; exit 1; }
	@mkdir -p bin docs
	$(GOBUILD) -o bin/kubectl-dgdr ./cmd/kubectl-dgdr
	@set -euo pipefail; tmp=$$(mktemp -d); \
	bin/kubectl-dgdr plan --model Qwen/Qwen3-32B --ui --port 0 >"$$tmp/url" 2>"$$tmp/log" & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; rm -rf "$$tmp"' EXIT; \
	for _ in $$(seq 200); do [ -s "$$tmp/url" ] && break; sleep 0.1; done; \
	url=$$(head -n1 "$$tmp/url"); [ -n "$$url" ] || { cat "$$tmp/log"; exit 1; }; \
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
		--user-data-dir="$$tmp/profile" --window-size=1400,1320 --virtual-time-budget=10000 \
		--screenshot="$(CURDIR)/docs/ui.png" "$$url" >/dev/null 2>&1; \
	test -s docs/ui.png && echo "wrote docs/ui.png from $$url"

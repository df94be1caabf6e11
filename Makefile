# kvsync: Key Vault to Kubernetes Secret sync controller and its simulator.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

GO ?= go
CONTROLLER_GEN ?= $(GO) tool controller-gen
GINKGO ?= $(GO) tool ginkgo
# ENVTEST prints the directory of envtest's kube-apiserver and etcd, building
# them from source on first use (see hack/envtest.sh).
ENVTEST ?= hack/envtest.sh
# AZCLI prints the Azure CLI the tests follow the doctor's az fixes with
# (Debian trixie's, in a root of its own under bin/azcli; see hack/azcli.sh),
# building it on first use; it prints nothing where it cannot (not root),
# and the tests then use az on PATH or report those fixes as not followed.
AZCLI ?= hack/azcli.sh
# NPM prints the directory whose node_modules holds the Azure JavaScript SDKs
# the fakevault tests drive the fake with (pinned in
# fakevault/testdata/js/package-lock.json, installed by npm ci under bin/js;
# see hack/npm.sh) on first use; it prints nothing without node and npm,
# and those tests then skip.
NPM ?= hack/npm.sh
REPORTS ?= _output/reports
# ARTIFACTS receives the conformance reports (JUnit, report.yaml, report.md).
ARTIFACTS ?= _artifacts
FUZZTIME ?= 60s
# GINKGO_PROCS runs the conformance scenarios in parallel processes, each
# with its own control plane (e.g. GINKGO_PROCS=-p).
GINKGO_PROCS ?= --procs=1

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate CRDs and RBAC from the markers, and the kustomize trees from the Helm chart.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=deploy/crds
	$(CONTROLLER_GEN) rbac:roleName=kvsync-controller paths=./controller/... output:rbac:artifacts:config=deploy/rbac
	mkdir -p deploy/chart/kvsync/crds && cp deploy/crds/*_*.yaml deploy/chart/kvsync/crds/
	$(GO) run ./hack/deploy generate --dir deploy

.PHONY: generate
generate: ## Generate deepcopy functions of the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet on every module.
	$(GO) vet ./...
	cd hack/envtest && CGO_ENABLED=0 $(GO) vet ./...

.PHONY: lint
lint: vet ## Check formatting, vet and that generated files are fresh.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) test ./api/ -run TestGeneratedFilesAreFresh

.PHONY: envtest
envtest: ## Build envtest's kube-apiserver and etcd from source into bin/k8s (cached).
	@$(ENVTEST) >/dev/null

# MAX_TRACKED_BYTES bounds the size of a tracked file: sources only, never
# build outputs. Files allowed to be larger are named in LARGE_FILES.
MAX_TRACKED_BYTES ?= 1048576
LARGE_FILES ?=

.PHONY: check-tracked
check-tracked: ## Fail when a tracked file is over MAX_TRACKED_BYTES (a build output committed by mistake).
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		big=$$(git ls-files -z | xargs -0 stat -c '%s %n' 2>/dev/null | awk -v max=$(MAX_TRACKED_BYTES) -v allow=" $(LARGE_FILES) " '$$1 > max && index(allow, " " $$2 " ") == 0 { print "  " $$2 " (" $$1 " bytes)" }'); \
		if [ -n "$$big" ]; then echo "tracked files over $(MAX_TRACKED_BYTES) bytes (build outputs belong in .gitignore):"; echo "$$big"; exit 1; fi; \
	fi

.PHONY: test
test: vet check-tracked ## Run all tests, on envtest for integration suites.
	@mkdir -p $(REPORTS)
	assets=$$($(ENVTEST)); az=$$($(AZCLI)); js=$$($(NPM)); KUBEBUILDER_ASSETS="$$assets" KVSYNC_AZ="$$az" KVSYNC_JS="$$js" $(GO) test -race -count=1 ./... 2>&1 | tee $(REPORTS)/test.log

.PHONY: conformance
conformance: ## Run the scenarios on envtest in process: core+extended against kvsync, then core against kvsync's controller with the upstream-shaped Azure provider double.
	@mkdir -p $(ARTIFACTS)
	assets=$$($(ENVTEST)); az=$$($(AZCLI)); KUBEBUILDER_ASSETS="$$assets" KVSYNC_AZ="$$az" KVSYNC_ARTIFACTS="$$(cd $(ARTIFACTS) && pwd)/embedded" $(GINKGO) $(GINKGO_PROCS) \
		--junit-report=junit.xml --output-dir=$(ARTIFACTS) $(GINKGO_ARGS) ./conformance/
	assets=$$($(ENVTEST)); az=$$($(AZCLI)); KUBEBUILDER_ASSETS="$$assets" KVSYNC_AZ="$$az" KVSYNC_ARTIFACTS="$$(cd $(ARTIFACTS) && pwd)/upstream-shaped" \
		KVSYNC_CONFORMANCE_PROVIDER=upstream-shaped KVSYNC_CONFORMANCE_PROFILES=core $(GINKGO) $(GINKGO_PROCS) \
		--junit-report=junit-upstream-shaped.xml --output-dir=$(ARTIFACTS) $(GINKGO_ARGS) ./conformance/

.PHONY: conformance-external
conformance-external: ## Run the scenarios with the controller, provider and fakevault as separate processes.
	@mkdir -p $(ARTIFACTS)
	assets=$$($(ENVTEST)); az=$$($(AZCLI)); KUBEBUILDER_ASSETS="$$assets" KVSYNC_AZ="$$az" KVSYNC_CONFORMANCE_MODE=external KVSYNC_ARTIFACTS="$$(cd $(ARTIFACTS) && pwd)/external" \
		$(GINKGO) $(GINKGO_PROCS) --junit-report=junit-external.xml --output-dir=$(ARTIFACTS) $(GINKGO_ARGS) ./conformance/

# BENCH_SIZES and BENCH_POLL shape the scale harness (conformance/bench).
BENCH_SIZES ?= 100,1000,5000
BENCH_POLL ?= 20s
# BENCH_OUTAGE is how long every vault is down at 1,000 SecretSyncs; at
# 5,000 every class reads one vault limited as Key Vault is, which is then
# forced to throttle for BENCH_THROTTLE.
BENCH_OUTAGE ?= 5m
BENCH_THROTTLE ?= 30s

# SOAK_DURATION is how long the soak injects faults (CI runs 2m);
# SOAK_RESTART_ROUNDS how many times it makes each restart (0 skips them).
SOAK_DURATION ?= 10m
SOAK_RESTART_ROUNDS ?= 2

# SIM_POLL is the sim's rotation poll interval.
SIM_POLL ?= 30s

.PHONY: sim
sim: ## Run the API server, fakevault, the provider and the controller on this machine, with the demo vault of examples/ (Ctrl-C stops).
	$(GO) build -o bin/kvsync-sim ./cmd/kvsync-sim
	assets=$$($(ENVTEST)); KUBEBUILDER_ASSETS="$$assets" exec bin/kvsync-sim up --poll=$(SIM_POLL)

# FLEET_ARGS size the fleet simulation (see go run ./conformance/fleet -h).
FLEET_ARGS ?= --clusters=10 --secrets=10 --waves=10

.PHONY: fleet
fleet: ## Prove kubectl kvsync plan: restart a fleet of controllers on one throttled vault, wave after wave, with and without the planned jitter.
	@mkdir -p $(ARTIFACTS)
	assets=$$($(ENVTEST)); KUBEBUILDER_ASSETS="$$assets" $(GO) run ./conformance/fleet $(FLEET_ARGS) \
		--out=$(ARTIFACTS)/fleet.json --log=$(ARTIFACTS)/fleet.log

.PHONY: soak
soak: ## Sync 500 SecretSyncs under random faults of every kind, then kill and restart every process, values rotating; check nothing is lost or leaked.
	@mkdir -p $(ARTIFACTS)
	assets=$$($(ENVTEST)); KUBEBUILDER_ASSETS="$$assets" $(GO) run ./conformance/soak --duration=$(SOAK_DURATION) \
		--restart-rounds=$(SOAK_RESTART_ROUNDS) --out=$(ARTIFACTS)/soak.json --log=$(ARTIFACTS)/soak.log

.PHONY: bench
bench: ## Run the micro-benchmarks and the scale harness (speed and memory targets live here, not in timed tests).
	@mkdir -p $(REPORTS) $(ARTIFACTS)
	assets=$$($(ENVTEST)); KUBEBUILDER_ASSETS="$$assets" $(GO) test -run '^$$' -bench . -benchmem ./... 2>&1 | tee $(REPORTS)/bench.txt
	assets=$$($(ENVTEST)); KUBEBUILDER_ASSETS="$$assets" $(GO) run ./conformance/bench --sizes=$(BENCH_SIZES) --poll=$(BENCH_POLL) --outage=$(BENCH_OUTAGE) --throttle=$(BENCH_THROTTLE) \
		--out=$(ARTIFACTS)/bench.json --log=$(ARTIFACTS)/bench.log 2>&1 | tee $(REPORTS)/bench-scale.txt

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 60s).
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME) ./fakevault/
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME) ./fakevault/keyvault/
	$(GO) test -run '^$$' -fuzz '^FuzzLint$$' -fuzztime $(FUZZTIME) ./troubleshoot/
	$(GO) test -run '^$$' -fuzz '^FuzzPlanMounts$$' -fuzztime $(FUZZTIME) ./controller/
	$(GO) test -run '^$$' -fuzz '^FuzzPartialSyncSummary$$' -fuzztime $(FUZZTIME) ./controller/
	$(GO) test -run '^$$' -fuzz '^FuzzCheckSpec$$' -fuzztime $(FUZZTIME) ./controller/
	$(GO) test -run '^$$' -fuzz '^FuzzParseParameters$$' -fuzztime $(FUZZTIME) ./provider/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./scenarios/

##@ Build

.PHONY: build
build: ## Build the binaries into bin/.
	$(GO) build -o bin/ ./cmd/...

IMG_TAG ?= dev

.PHONY: docker-build
docker-build: ## Build the images kvsync-controller, kvsync-provider and fakevault (static binaries on scratch; no base image pulled).
	mkdir -p bin/docker
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w" -o bin/docker/ ./cmd/kvsync-controller ./cmd/kvsync-provider ./cmd/fakevault
	cp /etc/ssl/certs/ca-certificates.crt bin/docker/ca-certificates.crt
	for target in kvsync-controller kvsync-provider fakevault; do \
		docker build --target $$target -t $$target:$(IMG_TAG) . ; \
	done

.PHONY: e2e-docker
e2e-docker: docker-build ## Run scenarios in existing-cluster mode against the images as containers (needs a running dockerd).
	assets=$$($(ENVTEST)); KUBEBUILDER_ASSETS="$$assets" $(GO) run ./hack/e2e-docker --image-tag=$(IMG_TAG) --artifacts=$(ARTIFACTS)/e2e-docker

##@ kind (a node image built here from source modules and Debian packages)

KIND ?= $(GO) run sigs.k8s.io/kind@v0.33.0
KIND_CLUSTER ?= kvsync
KIND_KUBECONFIG ?= bin/kind-$(KIND_CLUSTER).kubeconfig
# KIND_NODE_IMAGE is the node image of kind-up; empty builds one here
# (hack/kind/image.sh), e.g. kindest/node:v1.37.2 where it can be pulled.
# Either way kind's default CNI is off (its kindnetd is not in its module)
# and kind-up installs hack/kind/node's CNI configuration on the node.
KIND_NODE_IMAGE ?=

.PHONY: kind-dockerd
kind-dockerd: ## Start a Docker engine whose runtime can run kind's nodes on this host (hack/kind/dockerd.sh stop stops it).
	hack/kind/dockerd.sh start

.PHONY: kind-image
kind-image: kind-dockerd ## Build the kind node image from source modules and Debian packages; cached by content.
	hack/kind/image.sh

.PHONY: kind-up
kind-up: kind-dockerd ## Create the kind cluster (hack/kind/cluster.yaml) unless it exists; its kubeconfig goes to KIND_KUBECONFIG.
	@mkdir -p bin
	if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
		docker inspect -f '{{.State.Running}}' $(KIND_CLUSTER)-control-plane 2>/dev/null | grep -qx true || \
			{ echo "kind: cluster $(KIND_CLUSTER) exists but its node is not running: make kind-down, then make kind-up" >&2; exit 1; }; \
		echo "kind: cluster $(KIND_CLUSTER) exists"; $(KIND) get kubeconfig --name $(KIND_CLUSTER) >$(KIND_KUBECONFIG); \
	else \
		image="$(KIND_NODE_IMAGE)"; [ -n "$$image" ] || image=$$(hack/kind/image.sh); \
		$(KIND) create cluster --name $(KIND_CLUSTER) --image "$$image" --config hack/kind/cluster.yaml --kubeconfig $(KIND_KUBECONFIG) || exit 1; \
		docker exec $(KIND_CLUSTER)-control-plane mkdir -p /etc/cni/net.d && \
			docker cp hack/kind/node/10-kvsync.conflist $(KIND_CLUSTER)-control-plane:/etc/cni/net.d/10-kvsync.conflist || exit 1; \
	fi
	# fakevault's DNS answers a name the network must not reach with
	# 10.255.0.4 (dns.misroute, a private endpoint) or 203.0.113.4
	# (transport.blackhole, gateway.vault-blocked): the node drops both, as a
	# network that does not route them.
	docker exec $(KIND_CLUSTER)-control-plane sh -c 'for a in 10.255.0.4 203.0.113.4; do for c in FORWARD OUTPUT; do \
		iptables -C $$c -d $$a/32 -j DROP 2>/dev/null || iptables -I $$c -d $$a/32 -j DROP; done; done'

# kind-deploy tags the images by their content (kind-<digest>), so that a
# rebuilt image is a new tag the pods roll to, and an unchanged one loads
# and rolls nothing.
.PHONY: kind-deploy
kind-deploy: kind-up docker-build ## Load the images, deploy fakevault (with CoreDNS forwarding Azure's names to it) and the chart.
	tag=kind-$$(docker image inspect -f '{{.Id}}' kvsync-controller:$(IMG_TAG) kvsync-provider:$(IMG_TAG) fakevault:$(IMG_TAG) | sha256sum | cut -c1-12); \
	for image in kvsync-controller kvsync-provider fakevault; do docker tag $$image:$(IMG_TAG) $$image:$$tag || exit 1; done; \
	$(KIND) load docker-image --name $(KIND_CLUSTER) kvsync-controller:$$tag kvsync-provider:$$tag fakevault:$$tag && \
	$(GO) run ./hack/kind deploy --kubeconfig $(KIND_KUBECONFIG) --image-tag $$tag

.PHONY: kind-conformance
kind-conformance: kind-deploy ## Create the kind cluster if needed, deploy, and run the conformance suite against it in existing-cluster mode (report in _artifacts/kind/).
	@mkdir -p $(ARTIFACTS)
	assets=$$($(ENVTEST)); KUBEBUILDER_ASSETS="$$assets" \
	KVSYNC_KUBECONFIG=$(abspath $(KIND_KUBECONFIG)) KVSYNC_FAKEVAULT_ADMIN=http://127.0.0.1:30080 KVSYNC_ARTIFACTS=$(abspath $(ARTIFACTS))/kind \
		KVSYNC_METRICS_SERVICE=kvsync-system/kvsync-metrics:metrics KVSYNC_CONFORMANCE_POD_LOGS=kvsync-system,kvsync-sim \
		$(GINKGO) --junit-report=junit-kind.xml --output-dir=$(ARTIFACTS) $(GINKGO_ARGS) ./conformance/

.PHONY: kind-down
kind-down: ## Delete the kind cluster.
	$(KIND) delete cluster --name $(KIND_CLUSTER)
	rm -f $(KIND_KUBECONFIG)

##@ Run

.PHONY: run
run: ## Run the controller against the cluster of the current kubeconfig.
	$(GO) run ./cmd/kvsync-controller --namespace=$${POD_NAMESPACE:-kvsync-system} --provider-socket-dir=$${PROVIDER_SOCKET_DIR:-/tmp/kvsync-providers}

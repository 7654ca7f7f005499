# Build, lint and test entry points. CI runs `make test` (see .ci/run).
#
# Tools (golangci-lint, goreleaser) are pinned in the separate module
# hack/tools/go.mod and run with `go tool -modfile=...`: nothing is installed
# into GOPATH/bin, and the built tools are cached in the Go build cache.

GO ?= go

TOOLS_MODFILE = hack/tools/go.mod
# -modfile cannot be used in workspace mode, so tools always run with GOWORK=off.
GOTOOL = GOWORK=off $(GO) tool -modfile=$(TOOLS_MODFILE)
GOLANGCI_LINT = $(GOTOOL) golangci-lint
GORELEASER = $(GOTOOL) goreleaser
# h2spec, the HTTP/2 conformance suite the proxy's tests run (hack/conformance.sh).
H2SPEC = bin/h2spec

LINT_FLAGS = --timeout 10m
GO_TEST_FLAGS = -count=1

# Package path segments the module must not have (depguard cannot express it).
FORBIDDEN_SEGMENTS = pkg|util|utils|common

TESTENV = hack/testenv.sh
CLUSTER = hack/cluster.sh
IMAGES_DIR = _output/images
# apt-get as root, or through sudo -n otherwise.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

.PHONY: all tools build images lint lint-layout release-check unit test go-test go-test-cluster e2e-node generate check-generated fmt fuzz-short

all: build

## tools: build the pinned golangci-lint and goreleaser (cached by `go tool`).
tools: $(H2SPEC)
	$(GOLANGCI_LINT) version
	$(GORELEASER) --version

$(H2SPEC): hack/conformance/go.mod
	GOWORK=off $(GO) build -modfile=hack/conformance/go.mod -o $@ github.com/summerwind/h2spec/cmd/h2spec

## build: compile every package.
build:
	$(GO) build ./...

## images: the release images (controller, proxy) and the test node's (pause, CoreDNS,
## demo app, load generator) as docker-archive tarballs in _output/images, built from
## the Go binaries without a container engine (build/images; reproducible).
images:
	$(GO) run ./build/images -o $(IMAGES_DIR)

## lint: golangci-lint (.golangci.yml, incl. the depguard layout rules) + lint-layout.
lint: lint-layout
	$(GOLANGCI_LINT) run $(LINT_FLAGS) ./...

## lint-layout: no package path segment named pkg, util, utils or common.
lint-layout:
	@bad=`$(GO) list -f '{{.ImportPath}}' ./... | grep -E '/($(FORBIDDEN_SEGMENTS))(/|$$)' || true`; \
	if [ -n "$$bad" ]; then \
		echo "packages with a forbidden path segment ($(FORBIDDEN_SEGMENTS)):"; \
		echo "$$bad"; \
		exit 1; \
	fi

## release-check: validate .goreleaser.yaml, and check that the images it builds are the
## ones `mesh install` renders (build/release_test.go).
release-check:
	$(GORELEASER) check
	$(GO) test $(GO_TEST_FLAGS) ./build

## unit: run the Go tests (cached results allowed).
unit:
	$(GO) test ./...

## fuzz-short: run each fuzz target in ./proxy/... for FUZZTIME (default 20s), then
## each one in ./render/... for RENDER_FUZZTIME (default 15s: inject's two targets,
## the reader and the property, together about 30 s), one after another; the seed
## corpora (testdata/fuzz) also run in every go test.
FUZZTIME ?= 20s
RENDER_FUZZTIME ?= 15s
fuzz-short:
	@set -e; fuzz() { \
		for pkg in `$(GO) list $$1`; do \
			for target in `$(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true`; do \
				echo "fuzz $$pkg $$target ($$2)"; \
				$(GO) test $$pkg -run '^$$' -fuzz "^$$target$$" -fuzztime $$2; \
			done; \
		done; \
	}; \
	fuzz ./proxy/... $(FUZZTIME); \
	fuzz ./render/... $(RENDER_FUZZTIME)

## test: what CI runs. Steps run one after another, in this order, even
## under `make -j`. Add further steps (e.g. starting a test cluster) before
## the go-test line.
test:
	$(MAKE) tools
	$(MAKE) lint
	$(MAKE) release-check
	$(MAKE) check-generated
	$(TESTENV) install
	$(MAKE) go-test-cluster
	$(MAKE) fuzz-short FUZZTIME=30s
	$(MAKE) e2e-node

## go-test-cluster: start the test cluster (hack/testenv.sh), run go-test against it with
## MESH_REQUIRE_TEST_CLUSTER=1, MESH_REQUIRE_NETNS=1, MESH_REQUIRE_CONFORMANCE=1 and
## MESH_REQUIRE_PROMETHEUS=1 and MESH_REQUIRE_CHROMIUM=1 (tests that need the cluster, root
## with network namespaces, h2spec, Debian's prometheus or chromium fail instead of skipping), and stop it at the end, even
## on failure or Ctrl-C.
go-test-cluster: $(H2SPEC)
	@trap '$(TESTENV) stop' EXIT; trap 'exit 130' INT TERM; \
	$(TESTENV) start && eval "$$($(TESTENV) env)" && \
	MESH_REQUIRE_TEST_CLUSTER=1 MESH_REQUIRE_NETNS=1 MESH_REQUIRE_CONFORMANCE=1 MESH_REQUIRE_PROMETHEUS=1 MESH_REQUIRE_CHROMIUM=1 MESH_H2SPEC=$(CURDIR)/$(H2SPEC) $(MAKE) go-test

## go-test: every Go test, under the race detector.
go-test:
	$(GO) test $(GO_TEST_FLAGS) -race ./...

## e2e-node: bring up the real node (hack/cluster.sh: kubelet, containerd, CNI, CoreDNS;
## root), import the images, run the end-to-end suite (e2e/node) on it with
## MESH_REQUIRE_NODE=1 and MESH_REQUIRE_CHROMIUM=1 (the dashboard's browser test fails
## rather than skips without chromium), and tear the node down, even on failure or Ctrl-C.
e2e-node: images
	@trap '$(CLUSTER) down' EXIT; trap 'exit 130' INT TERM; \
	$(CLUSTER) up && eval "$$($(CLUSTER) env)" && \
	MESH_REQUIRE_NODE=1 MESH_REQUIRE_CHROMIUM=1 $(GO) test $(GO_TEST_FLAGS) -timeout 30m -v ./e2e/node

## generate: regenerate code (the gRPC API) with the pinned protoc plugins and Debian's protoc.
generate: bin/protoc-gen-go bin/protoc-gen-go-grpc
	@{ command -v protoc && test -f /usr/include/google/protobuf/timestamp.proto; } >/dev/null || { \
		echo "installing protoc and its well-known types (Debian's protobuf-compiler, libprotobuf-dev)"; \
		$(SUDO) apt-get update -q >/dev/null && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q protobuf-compiler libprotobuf-dev >/dev/null </dev/null; }
	$(GO) generate ./...

bin/protoc-gen-go bin/protoc-gen-go-grpc: $(TOOLS_MODFILE)
	GOWORK=off $(GO) build -modfile=$(TOOLS_MODFILE) -o bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	GOWORK=off $(GO) build -modfile=$(TOOLS_MODFILE) -o bin/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc

## check-generated: the committed generated code is what `make generate` makes.
check-generated: generate
	@git diff --exit-code -- '*.pb.go' || { echo "generated code is stale: run make generate and commit"; exit 1; }

## fmt: format the code with the formatters enabled in .golangci.yml (gofmt -s).
fmt:
	$(GOLANGCI_LINT) fmt ./...

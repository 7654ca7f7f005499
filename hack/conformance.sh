#!/usr/bin/env bash
# Conformance suites nobody here wrote, against the proxy's HTTP engines:
#   - h2spec 2.2.1 (github.com/summerwind/h2spec, pinned in hack/conformance/go.mod),
#     all 146 cases (145 and the strict one), against the outbound h2c listener, the
#     inbound listener, and outbound → mTLS → inbound (TestH2Spec);
#   - grpc-go's interop client and server (google.golang.org/grpc/interop, the
#     version in go.mod) through two proxies with mTLS (TestGRPCInterop).
# Every case must pass. `make test` runs both through go-test (it builds h2spec and
# sets MESH_H2SPEC); this script runs just them.
#
# Usage: hack/conformance.sh [go test flags...]   e.g. -v
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p bin
GOWORK=off go build -modfile=hack/conformance/go.mod -o bin/h2spec github.com/summerwind/h2spec/cmd/h2spec
MESH_H2SPEC="$PWD/bin/h2spec" MESH_REQUIRE_CONFORMANCE=1 \
	go test -count=1 -run '^(TestH2Spec|TestH2SpecEngine|TestGRPCInterop)$' "$@" ./proxy/dataplane ./proxy/h2

// Package e2e holds the mesh's end-to-end tests: the real binaries working together, the
// control plane against the project's test cluster (hack/testenv.sh) and the proxies in
// transparent mode inside Linux network namespaces. The tests drive the user-facing
// demo (hack/demo.sh) and assert on what it prints, so the demo and the proof are one.
//
// They need Linux, root, iproute2, iptables, curl, jq and setpriv, and a running
// test cluster. Without them they skip, unless MESH_REQUIRE_TEST_CLUSTER=1 (no cluster)
// or MESH_REQUIRE_NETNS=1 (no root or tools) turns the skip into a failure.
package e2e

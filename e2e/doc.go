// Package e2e holds the end-to-end test of the proxies' transparent mode: the real
// binaries working together, the control plane against the project's test cluster
// (hack/testenv.sh) and the proxies inside Linux network namespaces, with no kubelet.
// The primary proof, on a real node, is e2e/node. The tests drive the user-facing
// demo (hack/demo.sh) and assert on what it prints, so the demo and the proof are one.
//
// They need Linux, root, iproute2, iptables, curl, jq and setpriv, and a running
// test cluster. Without them they skip, unless MESH_REQUIRE_TEST_CLUSTER=1 (no cluster)
// or MESH_REQUIRE_NETNS=1 (no root or tools) turns the skip into a failure.
package e2e

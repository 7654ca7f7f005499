// Package node is the end-to-end proof on a real Kubernetes node (hack/cluster.sh): the
// images built here, `mesh install | kubectl apply`, the demo app meshed by the webhook
// and by `mesh inject --manual`, mTLS traffic, balancing, a ServiceProfile, failures and
// uninjecting. It needs the node up and its environment (eval "$(hack/cluster.sh env)");
// without it the test skips, unless MESH_REQUIRE_NODE=1 turns the skip into a failure.
package node

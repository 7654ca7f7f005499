// Package netnstest creates throwaway Linux network namespaces for tests:
// namespaces named mesh-test-<random> (`ip netns add`), pairs of them joined
// by a veth link with addresses, and helpers to run commands (`ip netns
// exec`) or Go code (setns on a locked OS thread) inside one. Everything is
// deleted in t.Cleanup.
//
// It needs Linux, root and iproute2. Without them tests skip, unless the
// environment variable MESH_REQUIRE_NETNS=1 is set (as `make test` does):
// then they fail.
package netnstest

import (
	"fmt"
	"os"
	"testing"
)

// RequireEnv is the environment variable that turns "skip, no network
// namespaces here" into a test failure when set to 1.
const RequireEnv = "MESH_REQUIRE_NETNS"

// Unavailable skips the test with the reason, or fails it if RequireEnv is set.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (required: %s=1)", msg, RequireEnv)
	}
	t.Skipf("%s (set %s=1 to make this a failure)", msg, RequireEnv)
}

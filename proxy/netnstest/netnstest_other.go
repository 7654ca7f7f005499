//go:build !linux

package netnstest

import "testing"

// Require calls Unavailable: network namespaces need Linux.
func Require(t testing.TB, _ ...string) {
	t.Helper()
	Unavailable(t, "network namespace tests need Linux")
}

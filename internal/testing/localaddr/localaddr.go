// Package localaddr gives tests IP addresses of this machine that are neither
// loopback nor link-local, for servers the test cluster's API server must dial (it
// refuses to proxy to loopback and link-local addresses, e.g. for pods/proxy).
//
// The addresses are random, in 100.127.0.0/16 (carrier-grade NAT space, unrouted
// here), on a new veth link of the host's network namespace, deleted in t.Cleanup.
// It needs root and iproute2. Without them tests skip, unless MESH_REQUIRE_NETNS=1
// (as `make test` sets): then they fail.
package localaddr

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// IPs adds n addresses to a new link and returns them.
func IPs(t testing.TB, n int) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "a local non-loopback address needs root (ip link add)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		unavailable(t, "a local non-loopback address needs iproute2: %v", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	link := "vz" + hex.EncodeToString(b[:])
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("link", "add", link, "type", "veth", "peer", "name", link+"p")
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", link).CombinedOutput(); err != nil {
			t.Errorf("ip link del %s: %v: %s", link, err, out)
		}
	})
	ip("link", "set", link, "up")
	var ips []string
	for i := range n {
		a := fmt.Sprintf("100.127.%d.%d", b[2], 1+(int(b[3])+i)%254)
		ip("addr", "add", a+"/32", "dev", link)
		ips = append(ips, a)
	}
	return ips
}

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("MESH_REQUIRE_NETNS") == "1" {
		t.Fatalf("%s (required: MESH_REQUIRE_NETNS=1)", msg)
	}
	t.Skipf("%s (set MESH_REQUIRE_NETNS=1 to make this a failure)", msg)
}

//go:build linux

package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require checks that network namespaces can be used (root and the ip
// command) and that the given commands are installed, and otherwise calls
// Unavailable.
func Require(t testing.TB, commands ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "network namespace tests need root")
	}
	for _, c := range append([]string{"ip"}, commands...) {
		if _, err := exec.LookPath(c); err != nil {
			Unavailable(t, "network namespace tests need %s: %v", c, err)
		}
	}
}

// NS is a named network namespace (/var/run/netns/<Name>).
type NS struct {
	Name string
}

// New creates a namespace with lo up, deleted in t.Cleanup. It calls
// Require first.
func New(t testing.TB) *NS {
	t.Helper()
	Require(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := &NS{Name: "mesh-test-" + hex.EncodeToString(b[:])}
	if out, err := exec.Command("ip", "netns", "add", n.Name).CombinedOutput(); err != nil {
		Unavailable(t, "ip netns add %s: %v: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.Name, err, out)
		}
	})
	n.Run(t, "ip", "link", "set", "lo", "up")
	return n
}

// Path is the namespace's file, for setns(2).
func (n *NS) Path() string { return "/var/run/netns/" + n.Name }

// Command is argv run inside the namespace with `ip netns exec`.
func (n *NS) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, argv...)...)
}

// Prefix is the argv prefix that runs a command inside the namespace.
func (n *NS) Prefix() []string { return []string{"ip", "netns", "exec", n.Name} }

// Run runs argv inside the namespace and returns its standard output,
// failing the test if it fails.
func (n *NS) Run(t testing.TB, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := n.Command(ctx, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("in %s: %s: %v: %s", n.Name, strings.Join(argv, " "), err, stderr.String())
	}
	return string(out)
}

// Do runs fn on an OS thread switched into the namespace. Sockets fn creates
// belong to the namespace and can be used anywhere afterwards. The thread is
// never switched back: it stays locked and exits with its goroutine (the
// runtime parks the main thread forever instead of ending it, so
// /proc/self/ns/net, the main thread's, may show the namespace afterwards;
// use /proc/thread-self).
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // No unlock: see above.
		f, err := os.Open(n.Path())
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", n.Name, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Listen is net.Listen inside the namespace.
func (n *NS) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// Dial is d.DialContext inside the namespace (d nil: a zero net.Dialer).
func (n *NS) Dial(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// AddAddr adds an address to a link of the namespace (IPv6 without
// duplicate address detection, so it is usable at once).
func (n *NS) AddAddr(t testing.TB, link string, p netip.Prefix) {
	t.Helper()
	argv := []string{"ip", "addr", "add", p.String(), "dev", link}
	if p.Addr().Is6() {
		argv = append(argv, "nodad")
	}
	n.Run(t, argv...)
}

// Pair is two namespaces joined by a veth link.
type Pair struct {
	A, B         *NS
	LinkA, LinkB string // the veth's ends, in A and in B
}

// NewPair creates two namespaces joined by a veth link that is up, with
// addrsA on A's end and addrsB on B's end (e.g. 10.99.0.1/24 and
// 10.99.0.2/24), all deleted in t.Cleanup.
func NewPair(t testing.TB, addrsA, addrsB []netip.Prefix) *Pair {
	t.Helper()
	p := &Pair{A: New(t), B: New(t)}
	suffix := strings.TrimPrefix(p.A.Name, "mesh-test-")
	p.LinkA, p.LinkB = "mt"+suffix+"a", "mt"+suffix+"b"
	// Created in A, then B's end moved to B; deleting A deletes both ends.
	p.A.Run(t, "ip", "link", "add", p.LinkA, "type", "veth", "peer", "name", p.LinkB)
	p.A.Run(t, "ip", "link", "set", p.LinkB, "netns", p.B.Name)
	for _, side := range []struct {
		ns    *NS
		link  string
		addrs []netip.Prefix
	}{{p.A, p.LinkA, addrsA}, {p.B, p.LinkB, addrsB}} {
		for _, a := range side.addrs {
			side.ns.AddAddr(t, side.link, a)
		}
		side.ns.Run(t, "ip", "link", "set", side.link, "up")
	}
	return p
}

//go:build linux && !386

package iptables

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshplane/mesh/proxy/netnstest"
)

// Environment of the helper process (see TestMain) that dials from inside
// the pod namespace as another user.
const (
	helperDialEnv = "MESH_IPTABLES_TEST_DIAL" // address to dial
	helperUIDEnv  = "MESH_IPTABLES_TEST_UID"
	helperGIDEnv  = "MESH_IPTABLES_TEST_GID"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(helperDialEnv); addr != "" {
		os.Exit(helperDial(addr))
	}
	os.Exit(m.Run())
}

// helperDial drops to the UID and GID of the environment, dials addr and
// prints the server's banner.
func helperDial(addr string) int {
	uid, err1 := strconv.Atoi(os.Getenv(helperUIDEnv))
	gid, err2 := strconv.Atoi(os.Getenv(helperGIDEnv))
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "helper: bad UID or GID")
		return 1
	}
	// Since Go 1.16 these apply to every thread of the process.
	for _, err := range []error{syscall.Setgroups(nil), syscall.Setgid(gid), syscall.Setuid(uid)} {
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper: dropping privileges:", err)
			return 1
		}
	}
	banner, err := readBanner(net.Dial("tcp", addr))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Print(banner)
	return 0
}

// readBanner reads what the server sends before closing.
func readBanner(c net.Conn, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// serve accepts connections on l until the test ends and sends each the
// banner name, followed by " <original destination>" if withDst.
func serve(t *testing.T, l net.Listener, name string, withDst bool) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			msg := name
			if withDst {
				dst, err := OriginalDst(c.(*net.TCPConn))
				if err != nil {
					msg += " error: " + err.Error()
				} else {
					msg += " " + dst.String()
				}
			}
			_, _ = io.WriteString(c, msg)
			c.Close()
		}
	}()
}

func listen(t *testing.T, ns *netnstest.NS, network, addr, name string, withDst bool) {
	t.Helper()
	l, err := ns.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns.Name, err)
	}
	serve(t, l, name, withDst)
}

// natTables is iptables-save -t nat and ip6tables-save -t nat, without
// comments and counters.
func natTables(t *testing.T, ns *netnstest.NS, mode Mode) string {
	t.Helper()
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	var b strings.Builder
	for _, bin := range []string{"iptables-", "ip6tables-"} {
		for line := range strings.Lines(ns.Run(t, bin+string(mode)+"-save", "-t", "nat")) {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(counters.ReplaceAllString(line, "[0:0]"))
			}
		}
	}
	return b.String()
}

func TestRedirect(t *testing.T) {
	for _, mode := range []Mode{ModeNFT, ModeLegacy} {
		t.Run(string(mode), func(t *testing.T) {
			netnstest.Require(t, "iptables-"+string(mode)+"-restore", "ip6tables-"+string(mode)+"-restore")
			testRedirect(t, mode)
		})
	}
}

// testRedirect applies the rules in a "pod" namespace joined to a "peer"
// namespace by a veth link, and checks with real connections what is
// redirected to the proxy's listeners and what goes straight through.
func testRedirect(t *testing.T, mode Mode) {
	podV4, peerV4 := netip.MustParsePrefix("10.99.0.1/24"), netip.MustParsePrefix("10.99.0.2/24")
	skippedV4 := netip.MustParsePrefix("10.99.0.3/24") // a second peer address, in the skipped subnets
	podV6, peerV6 := netip.MustParsePrefix("fd00:99::1/64"), netip.MustParsePrefix("fd00:99::2/64")
	pair := netnstest.NewPair(t, []netip.Prefix{podV4, podV6}, []netip.Prefix{peerV4, skippedV4, peerV6})
	pod, peer := pair.A, pair.B

	// Someone else's rules, which must survive Apply and Remove.
	pod.Run(t, "iptables-"+string(mode), "-t", "nat", "-A", "OUTPUT", "-d", "192.0.2.1/32", "-m", "comment", "--comment", "not ours", "-j", "RETURN")
	pod.Run(t, "ip6tables-"+string(mode), "-t", "nat", "-A", "OUTPUT", "-d", "2001:db8::1/128", "-j", "RETURN")
	before := natTables(t, pod, mode)

	o := DefaultOptions()
	o.Mode = mode
	o.ProxyGID = 2103
	o.SkipInboundPorts = []string{"4190", "4191"}
	o.SkipOutboundPorts = []string{"5432", "6000-6010"}
	o.SkipSubnets = []netip.Prefix{netip.PrefixFrom(skippedV4.Addr(), 32)}
	var log strings.Builder
	o.Log = &log
	runner := ExecRunner{Prefix: pod.Prefix()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if err := Apply(ctx, o, runner); err != nil {
		t.Fatalf("Apply: %v\n%s", err, log.String())
	}
	applied := natTables(t, pod, mode)
	if err := Apply(ctx, o, runner); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if again := natTables(t, pod, mode); again != applied {
		t.Errorf("Apply is not idempotent:\n--- after one\n%s--- after two\n%s", applied, again)
	}
	for _, want := range []string{"-A PREROUTING", "-A OUTPUT -m comment"} {
		if n := strings.Count(applied, want); n != 2 { // IPv4 and IPv6
			t.Errorf("%d %q jumps, want one per family:\n%s", n, want, applied)
		}
	}
	t.Logf("nat tables:\n%s", applied)

	// The proxy's listeners, the app's and the peer's servers.
	listen(t, pod, "tcp4", "127.0.0.1:4140", "proxy-out", true)
	listen(t, pod, "tcp6", "[::1]:4140", "proxy-out", true)
	listen(t, pod, "tcp", ":4143", "proxy-in", true) // dual-stack socket
	for _, port := range []string{"4190", "4191", "8080"} {
		listen(t, pod, "tcp", ":"+port, "app-"+port, false)
	}
	for _, port := range []string{"80", "5432", "6005"} {
		listen(t, peer, "tcp", ":"+port, "peer-"+port, false)
	}

	dial := func(ns *netnstest.NS, from netip.Addr, addr string) string {
		d := &net.Dialer{Timeout: 5 * time.Second}
		if from.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
		}
		banner, err := readBanner(ns.Dial(ctx, d, "tcp", addr))
		if err != nil {
			return "error: " + err.Error()
		}
		return banner
	}
	asUser := func(uid, gid int, addr string) string {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := pod.Command(ctx, exe)
		cmd.Env = append(os.Environ(), helperDialEnv+"="+addr, helperUIDEnv+"="+strconv.Itoa(uid), helperGIDEnv+"="+strconv.Itoa(gid))
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				stderr = ee.Stderr
			}
			return fmt.Sprintf("error: %v: %s", err, stderr)
		}
		return string(out)
	}

	none := netip.Addr{}
	for _, tc := range []struct {
		name, got, want string
	}{
		{"outbound is redirected", dial(pod, none, "10.99.0.2:80"), "proxy-out 10.99.0.2:80"},
		{"outbound IPv6 is redirected", dial(pod, none, "[fd00:99::2]:80"), "proxy-out [fd00:99::2]:80"},
		{"skipped outbound port", dial(pod, none, "10.99.0.2:5432"), "peer-5432"},
		{"skipped outbound range", dial(pod, none, "10.99.0.2:6005"), "peer-6005"},
		{"loopback", dial(pod, none, "127.0.0.1:8080"), "app-8080"},
		{"own pod IP", dial(pod, none, "10.99.0.1:8080"), "app-8080"},
		{"proxy UID", asUser(2102, 2102, "10.99.0.2:80"), "peer-80"},
		{"proxy GID", asUser(1000, 2103, "10.99.0.2:80"), "peer-80"},
		{"other user", asUser(1000, 1000, "10.99.0.2:80"), "proxy-out 10.99.0.2:80"},
		{"inbound is redirected", dial(peer, none, "10.99.0.1:8080"), "proxy-in 10.99.0.1:8080"},
		{"inbound IPv6 is redirected", dial(peer, none, "[fd00:99::1]:8080"), "proxy-in [fd00:99::1]:8080"},
		{"skipped inbound port 4190", dial(peer, none, "10.99.0.1:4190"), "app-4190"},
		{"skipped inbound port 4191", dial(peer, none, "10.99.0.1:4191"), "app-4191"},
		{"skipped subnet", dial(peer, skippedV4.Addr(), "10.99.0.1:8080"), "app-8080"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}

	if err := Remove(ctx, o, runner); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if after := natTables(t, pod, mode); after != before {
		t.Errorf("Remove did not restore the nat tables:\n--- before Apply\n%s--- after Remove\n%s", before, after)
	}
	if got := dial(pod, none, "10.99.0.2:80"); got != "peer-80" {
		t.Errorf("after Remove: got %q, want peer-80", got)
	}
	if err := Remove(ctx, o, runner); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

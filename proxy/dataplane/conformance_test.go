package dataplane

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// h2specBinary is the h2spec to run (hack/conformance.sh builds it and sets
// MESH_H2SPEC). Without it the test skips, unless MESH_REQUIRE_CONFORMANCE=1.
func h2specBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("MESH_H2SPEC")
	if bin == "" {
		if os.Getenv("MESH_REQUIRE_CONFORMANCE") == "1" {
			t.Fatal("MESH_H2SPEC is not set (hack/conformance.sh sets it)")
		}
		t.Skip("MESH_H2SPEC is not set: run hack/conformance.sh")
	}
	return bin
}

// junit is the part of h2spec's JUnit report the test reads.
type junit struct {
	Suites []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string    `xml:"classname,attr"`
			Package string    `xml:"package,attr"`
			Failure *struct { // present when the case failed
				Message string `xml:",chardata"`
			} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// runH2Spec runs every h2spec case (strict ones included) against addr and returns
// the number of cases and the failures, by case name.
func runH2Spec(t *testing.T, bin string, addr netip.AddrPort) (int, []string) {
	t.Helper()
	report := t.TempDir() + "/report.xml"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// /echo reads the whole request body before it answers, so a case that sends a
	// frame after its HEADERS finds the stream still open however the processes
	// are scheduled (a handler that answers at once may close it first).
	args := []string{"--strict", "-P", "/echo", "-h", addr.Addr().String(), "-p", fmt.Sprint(addr.Port()), "-o", "2", "-j", report}
	// MESH_H2SPEC_CASES picks cases to rerun while debugging (e.g. "http2/5.1/3").
	args = append(args, strings.Fields(os.Getenv("MESH_H2SPEC_CASES"))...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // exits non-zero when a case fails; the report says which
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("h2spec wrote no report: %v\n%s", err, out.String())
	}
	var j junit
	if err := xml.Unmarshal(raw, &j); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	n := 0
	var failed []string
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			n++
			if c.Failure != nil || c.Skipped != nil {
				failed = append(failed, fmt.Sprintf("%s %s: %s", c.Package, c.Name, strings.TrimSpace(func() string {
					if c.Failure != nil {
						return c.Failure.Message
					}
					return "skipped"
				}())))
			}
		}
	}
	if len(failed) > 0 {
		t.Logf("h2spec output:\n%s", out.String())
	}
	return n, failed
}

// TestH2Spec runs h2spec (github.com/summerwind/h2spec) against every HTTP/2 surface
// of the proxy: the outbound h2c listener, the inbound listener, and the outbound →
// mTLS → inbound chain, each on a port declared HTTP/2 (MESH_PROXY_HTTP2_PORTS) and
// on a port left to protocol detection. On a declared port every case must pass. On
// a detecting port every case but one must: h2spec 3.5/2 sends
// "INVALID CONNECTION PREFACE\r\n\r\n", which is not HTTP/2 (nor anything else
// the proxy knows), so detection forwards it as opaque TCP and the application
// answers; closing it would break every text protocol a client speaks first.
func TestH2Spec(t *testing.T) {
	bin := h2specBinary(t)
	cp := startCP(t)
	appAddr := app(t)
	appPort := map[uint16]bool{appAddr.Port(): true}
	client, server, svc := meshPair(t, cp, appAddr)
	outbound := startProxy(t, cp, clientID, appAddr, appAddr) // to an address outside the mesh
	declared := func(ports map[uint16]bool) func(*Options) {
		return func(o *Options) { o.HTTP2Ports = ports }
	}
	h2Outbound := startProxy(t, cp, clientID, appAddr, appAddr, declared(appPort))
	h2Inbound := startProxy(t, cp, serverID, appAddr, netip.AddrPort{}, declared(appPort), func(o *Options) {
		// As if redirected by iptables from the application's port.
		o.OrigDst = func(*net.TCPConn) (netip.AddrPort, error) { return appAddr, nil }
	})
	h2Client := startProxy(t, cp, clientID, netip.AddrPort{}, svc, declared(map[uint16]bool{svc.Port(): true}))
	const invalidPreface = "http2/3.5 Sends invalid connection preface"
	for _, tc := range []struct {
		name     string
		addr     netip.AddrPort
		detected bool
	}{
		{"outbound-http2-port", netip.MustParseAddrPort(h2Outbound.out.Addr().String()), false},
		{"inbound-http2-port", h2Inbound.inAddr(), false},
		{"chain-http2-port", netip.MustParseAddrPort(h2Client.out.Addr().String()), false},
		{"outbound-detected", netip.MustParseAddrPort(outbound.out.Addr().String()), true},
		{"inbound-detected", server.inAddr(), true},
		{"chain-detected", netip.MustParseAddrPort(client.out.Addr().String()), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, failed := runH2Spec(t, bin, tc.addr)
			t.Logf("h2spec %s: %d/%d passed", tc.name, n-len(failed), n)
			for _, f := range failed {
				if tc.detected && strings.HasPrefix(f, invalidPreface+":") {
					continue
				}
				t.Errorf("failed: %s", f)
			}
			if n < 146 && os.Getenv("MESH_H2SPEC_CASES") == "" {
				t.Errorf("h2spec ran %d cases, want 146 (145 and the strict one)", n)
			}
		})
	}
}

package proxytest

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// H2SpecBinary is the h2spec to run (hack/conformance.sh builds it and sets
// MESH_H2SPEC). Without it the test skips, unless MESH_REQUIRE_CONFORMANCE=1.
func H2SpecBinary(t testing.TB) string {
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

// RunH2Spec runs every h2spec case (strict ones included) against addr and returns
// the number of cases and the failures, by case name.
func RunH2Spec(t testing.TB, bin string, addr netip.AddrPort) (int, []string) {
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

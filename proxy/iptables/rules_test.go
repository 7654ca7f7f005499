package iptables

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// golden compares got with testdata/name; MESH_UPDATE_GOLDEN=1 rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("MESH_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (MESH_UPDATE_GOLDEN=1 writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (MESH_UPDATE_GOLDEN=1 rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestRulesGolden(t *testing.T) {
	many := make([]string, 0, 20)
	for p := 9000; p < 9020; p++ {
		many = append(many, strconv.Itoa(p))
	}
	withSkips := DefaultOptions()
	withSkips.ProxyGID = 2103
	withSkips.SkipInboundPorts = append([]string{"4190", "4191", "4567", "4568", "4190"}, many...)
	withSkips.SkipOutboundPorts = []string{"443", "5000-5100", "6000-6100", "6200-6300", "6400-6500", "6600-6700", "6800-6900", "7000-7100", "8080"}
	withSkips.SkipSubnets = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("192.168.0.1/32")}

	for _, tc := range []struct {
		name string
		o    Options
		f    Family
	}{
		{"default.v4", DefaultOptions(), IPv4},
		{"skips.v4", withSkips, IPv4},
		{"skips.v6", withSkips, IPv6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name+".restore", restoreInput(RulesFor(tc.o, tc.f), JumpRules()))
		})
	}
}

func TestMultiportChunks(t *testing.T) {
	var ports []string
	for p := 1; p <= 31; p++ {
		ports = append(ports, strconv.Itoa(p))
	}
	chunks := multiportChunks(ports)
	if len(chunks) != 3 || strings.Count(chunks[0], ",") != 14 || chunks[2] != "31" {
		t.Errorf("31 ports: %q, want 15+15+1", chunks)
	}
	// A range counts as two ports.
	chunks = multiportChunks([]string{"1-2", "3-4", "5-6", "7-8", "9-10", "11-12", "13-14", "15", "16-17"})
	if len(chunks) != 2 || chunks[1] != "16:17" {
		t.Errorf("ranges: %q, want the last range in a second rule", chunks)
	}
	if got := multiportChunks(nil); got != nil {
		t.Errorf("no ports: %q", got)
	}
}

func TestRuleString(t *testing.T) {
	r := Rule{Chain: "C", Name: "a b", Match: []string{"-s", "10.0.0.0/8", "-j", "RETURN"}}
	want := `-A C -s 10.0.0.0/8 -m comment --comment "mesh-proxy-init/a b" -j RETURN`
	if got := r.String(); got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}

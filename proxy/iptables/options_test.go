package iptables

import (
	"errors"
	"flag"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	var stderr strings.Builder
	// The init container's arguments as render/inject writes them.
	got, err := ParseFlags([]string{
		"--inbound-port=4143", "--outbound-port=4140", "--proxy-uid=2102",
		"--skip-inbound-ports=4190,4191,4567,4568", "--skip-outbound-ports=4567,4568,5000-5100",
		"--skip-subnets=10.0.0.0/8, 192.168.1.7,fd00::/8", "--iptables-mode=legacy",
	}, &stderr)
	if err != nil {
		t.Fatalf("ParseFlags: %v\n%s", err, stderr.String())
	}
	want := Options{
		InboundPort: 4143, OutboundPort: 4140, ProxyUID: 2102, ProxyGID: NoGID,
		SkipInboundPorts:  []string{"4190", "4191", "4567", "4568"},
		SkipOutboundPorts: []string{"4567", "4568", "5000-5100"},
		SkipSubnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("fd00::/8")},
		Mode: ModeLegacy, IPv6: true, Log: &stderr,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseFlags:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	// Empty lists (as rendered when nothing is skipped) are fine.
	got, err := ParseFlags([]string{"--skip-outbound-ports=", "--skip-subnets=", "--proxy-gid=2103", "--remove", "--dry-run", "--ipv6=false"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultOptions()
	want.ProxyGID, want.Remove, want.DryRun, want.IPv6 = 2103, true, true, false
	got.Log = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseFlags:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--inbound-port=abc"},
		{"--inbound-port=0"},
		{"--outbound-port=65536"},
		{"--proxy-uid=-5"},
		{"--proxy-gid=-2"},
		{"--skip-inbound-ports=80,http"},
		{"--skip-inbound-ports=0"},
		{"--skip-outbound-ports=5100-5000"},
		{"--skip-outbound-ports=1-70000"},
		{"--skip-subnets=10.0.0.0/33"},
		{"--skip-subnets=not-a-subnet"},
		{"--iptables-mode=ebpf"},
		{"extra-arg"},
	} {
		var stderr strings.Builder
		_, err := ParseFlags(args, &stderr)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("ParseFlags(%q) = %v, want an ErrUsage error", args, err)
		}
		if !strings.Contains(stderr.String(), "-inbound-port") {
			t.Errorf("ParseFlags(%q) printed no usage: %q", args, stderr.String())
		}
	}
	_, err := ParseFlags([]string{"-h"}, &strings.Builder{})
	if !errors.Is(err, flag.ErrHelp) || errors.Is(err, ErrUsage) {
		t.Errorf("ParseFlags(-h) = %v, want flag.ErrHelp", err)
	}
}

func TestCommand(t *testing.T) {
	var stderr strings.Builder
	if code := Command(t.Context(), []string{"--bad"}, &stderr); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	if code := Command(t.Context(), []string{"-h"}, &stderr); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	// A dry run works without root or iptables.
	stderr.Reset()
	if code := Command(t.Context(), []string{"--dry-run", "--skip-inbound-ports=4190,4191"}, &stderr); code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"dry run", "--dports 4190,4191", "--to-port 4143", "--to-port 4140", "-j MESH_PROXY_INIT_OUTPUT"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stderr.String())
		}
	}
	stderr.Reset()
	if code := Command(t.Context(), []string{"--dry-run", "--remove", "--ipv6=false"}, &stderr); code != 0 || !strings.Contains(stderr.String(), "-X MESH_PROXY_INIT_REDIRECT") {
		t.Errorf("dry run --remove: exit %d:\n%s", code, stderr.String())
	}
}

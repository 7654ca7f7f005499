// Package iptables programs the pod's nat table so that TCP traffic goes
// through the proxy (the job of the proxy-init container, like Linkerd's
// proxy-init), and reads a redirected connection's original destination
// (SO_ORIGINAL_DST).
//
// Two chains are installed in the nat table, for IPv4 with iptables and, when
// the system supports it, for IPv6 with ip6tables:
//
//   - MESH_PROXY_INIT_REDIRECT, jumped to from PREROUTING: inbound TCP is
//     redirected to the proxy's inbound port, except for the skipped inbound
//     ports and the skipped source subnets.
//   - MESH_PROXY_INIT_OUTPUT, jumped to from OUTPUT: outbound TCP is
//     redirected to the proxy's outbound port, except for the proxy's own
//     traffic (its UID, and GID if given), traffic leaving through the
//     loopback interface and the skipped outbound ports.
//
// Apply installs them atomically with iptables-restore --noflush and is
// idempotent; Remove takes them out again. Both run the iptables binaries
// through a Runner, so tests can check what would be run without root.
package iptables

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshplane/mesh/controlplane/api/proxyenv"
)

// Mode selects the iptables backend.
type Mode string

// The iptables backends. ModeDefault runs the plain iptables binaries (the
// system's default backend).
const (
	ModeNFT     Mode = "nft"
	ModeLegacy  Mode = "legacy"
	ModeDefault Mode = ""
)

// Default values of the flags (Linkerd's ports and proxy UID).
const (
	DefaultInboundPort  = proxyenv.DefaultInboundPort
	DefaultOutboundPort = proxyenv.DefaultOutboundPort
	DefaultProxyUID     = 2102
)

// NoGID is the ProxyGID meaning "do not exempt traffic by group".
const NoGID = -1

// ErrUsage is wrapped by the errors ParseFlags returns for bad command lines;
// the caller should exit with status 2. A -h/--help request returns
// flag.ErrHelp instead.
var ErrUsage = errors.New("usage error")

// Options configures the redirection rules.
type Options struct {
	// InboundPort is the proxy's inbound port, where inbound TCP is redirected.
	InboundPort int
	// OutboundPort is the proxy's outbound port, where outbound TCP is redirected.
	OutboundPort int
	// ProxyUID is the proxy's user ID: its traffic is not redirected.
	ProxyUID int
	// ProxyGID, unless NoGID, is a group ID whose traffic is not redirected.
	ProxyGID int
	// SkipInboundPorts are destination ports ("4190") or ranges ("5000-5100")
	// of inbound traffic that is not redirected.
	SkipInboundPorts []string
	// SkipOutboundPorts are destination ports or ranges of outbound traffic
	// that is not redirected.
	SkipOutboundPorts []string
	// SkipSubnets are source subnets of inbound traffic that is not redirected.
	SkipSubnets []netip.Prefix
	// Mode selects the iptables binaries: iptables-nft, iptables-legacy or
	// (ModeDefault, or when the specific one is missing) iptables.
	Mode Mode
	// IPv6 also programs ip6tables, if the system supports IPv6 nat.
	IPv6 bool
	// Remove asks the caller to run Remove instead of Apply.
	Remove bool
	// DryRun prints what would be done, and runs nothing.
	DryRun bool
	// Log receives the rules applied and the resulting tables; nil discards.
	Log io.Writer
}

// DefaultOptions are the options of an empty command line.
func DefaultOptions() Options {
	return Options{
		InboundPort:  DefaultInboundPort,
		OutboundPort: DefaultOutboundPort,
		ProxyUID:     DefaultProxyUID,
		ProxyGID:     NoGID,
		Mode:         ModeNFT,
		IPv6:         true,
	}
}

// ParseFlags parses the init container's arguments (without the program name
// and the "init" subcommand), e.g.
//
//	--inbound-port=4143 --outbound-port=4140 --proxy-uid=2102
//	--skip-inbound-ports=4190,4191 --skip-outbound-ports=443,5000-5100
//	--skip-subnets=10.0.0.0/8 --iptables-mode=nft
//
// Usage, help and errors go to stderr (the caller may send help elsewhere: it
// is all there is on stderr when -h returns). Bad arguments return an error wrapping
// ErrUsage; -h returns flag.ErrHelp.
func ParseFlags(args []string, stderr io.Writer) (Options, error) {
	o := DefaultOptions()
	var skipIn, skipOut, subnets, mode string
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: mesh-proxy init [flags]\n\nInstalls (or with --remove removes) the iptables rules that redirect the pod's\nTCP traffic to the proxy.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.InboundPort, "inbound-port", o.InboundPort, "proxy port that inbound TCP is redirected to")
	fs.IntVar(&o.OutboundPort, "outbound-port", o.OutboundPort, "proxy port that outbound TCP is redirected to")
	fs.IntVar(&o.ProxyUID, "proxy-uid", o.ProxyUID, "user ID of the proxy, whose traffic is not redirected")
	fs.IntVar(&o.ProxyGID, "proxy-gid", o.ProxyGID, "group ID whose traffic is not redirected (-1: none)")
	fs.StringVar(&skipIn, "skip-inbound-ports", "", "comma-separated inbound ports or ranges (a-b) not to redirect")
	fs.StringVar(&skipOut, "skip-outbound-ports", "", "comma-separated outbound ports or ranges (a-b) not to redirect")
	fs.StringVar(&subnets, "skip-subnets", "", "comma-separated source subnets (CIDR) of inbound traffic not to redirect")
	fs.StringVar(&mode, "iptables-mode", string(o.Mode), "iptables backend: nft or legacy (empty: the system's iptables)")
	fs.BoolVar(&o.IPv6, "ipv6", o.IPv6, "also program ip6tables when the system supports IPv6 nat")
	fs.BoolVar(&o.Remove, "remove", false, "remove the rules instead of installing them")
	fs.BoolVar(&o.DryRun, "dry-run", false, "print the rules, change nothing")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Options{}, err
		}
		return Options{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	usage := func(err error) (Options, error) {
		fmt.Fprintf(stderr, "init: %v\n", err)
		fs.Usage()
		return Options{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return usage(fmt.Errorf("unknown command %q (init takes flags only)", fs.Arg(0)))
	}
	o.SkipInboundPorts, o.SkipOutboundPorts = splitList(skipIn), splitList(skipOut)
	o.Mode = Mode(mode)
	for _, s := range splitList(subnets) {
		p, err := parsePrefix(s)
		if err != nil {
			return usage(fmt.Errorf("--skip-subnets: %w", err))
		}
		o.SkipSubnets = append(o.SkipSubnets, p)
	}
	if err := o.Validate(); err != nil {
		return usage(err)
	}
	o.Log = stderr
	return o, nil
}

// Validate checks the ports, port ranges and mode.
func (o Options) Validate() error {
	if err := checkPort("inbound port", o.InboundPort); err != nil {
		return err
	}
	if err := checkPort("outbound port", o.OutboundPort); err != nil {
		return err
	}
	if o.ProxyUID < 0 {
		return fmt.Errorf("proxy UID %d: must not be negative", o.ProxyUID)
	}
	if o.ProxyGID < NoGID {
		return fmt.Errorf("proxy GID %d: must not be negative (or %d for none)", o.ProxyGID, NoGID)
	}
	for _, l := range []struct {
		name  string
		ports []string
	}{{"skip inbound ports", o.SkipInboundPorts}, {"skip outbound ports", o.SkipOutboundPorts}} {
		for _, p := range l.ports {
			if _, _, err := parsePortRange(p); err != nil {
				return fmt.Errorf("%s: %w", l.name, err)
			}
		}
	}
	for _, p := range o.SkipSubnets {
		if !p.IsValid() {
			return errors.New("skip subnets: invalid prefix")
		}
	}
	switch o.Mode {
	case ModeNFT, ModeLegacy, ModeDefault:
	default:
		return fmt.Errorf("iptables mode %q: want %q or %q", o.Mode, ModeNFT, ModeLegacy)
	}
	return nil
}

func checkPort(what string, p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%s %d: must be in 1-65535", what, p)
	}
	return nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parsePortRange parses "80" or "5000-5100".
func parsePortRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err = strconv.Atoi(a)
	if err != nil || lo < 1 || lo > 65535 {
		return 0, 0, fmt.Errorf("port %q: want a port in 1-65535 or a range a-b", s)
	}
	if !isRange {
		return lo, lo, nil
	}
	hi, err = strconv.Atoi(b)
	if err != nil || hi < lo || hi > 65535 {
		return 0, 0, fmt.Errorf("port range %q: want a-b with 1 <= a <= b <= 65535", s)
	}
	return lo, hi, nil
}

// parsePrefix parses a CIDR, or a bare address as a single-address prefix,
// and masks it ("10.1.2.3/8" is 10.0.0.0/8).
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("subnet %q: %w", s, err)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet %q: %w", s, err)
	}
	return p.Masked(), nil
}

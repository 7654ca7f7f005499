package iptables

import (
	"fmt"
	"strconv"
	"strings"
)

// The chains installed in the nat table, and the built-in chains that jump
// to them.
const (
	RedirectChain = "MESH_PROXY_INIT_REDIRECT"
	OutputChain   = "MESH_PROXY_INIT_OUTPUT"

	commentPrefix = "mesh-proxy-init/"
	// maxMultiport is how many ports one multiport match takes; a range
	// counts as two (iptables-extensions(8)).
	maxMultiport = 15
)

// Family is an IP family: IPv4 (iptables) or IPv6 (ip6tables).
type Family int

// The IP families.
const (
	IPv4 Family = iota
	IPv6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// Rule is one rule appended to a chain of the nat table.
type Rule struct {
	// Chain is the chain the rule is appended to.
	Chain string
	// Name is the rule's comment, without the "mesh-proxy-init/" prefix.
	Name string
	// Match are the rule's matches and target, without the comment, e.g.
	// ["-p", "tcp", "-j", "REDIRECT", "--to-port", "4143"].
	Match []string
}

// Comment is the rule's full comment, "mesh-proxy-init/<name>".
func (r Rule) Comment() string { return commentPrefix + r.Name }

// Args is the rule specification after "-A CHAIN": the matches, the comment
// and the target.
func (r Rule) Args() []string {
	// Put the comment before the target so the rule reads as iptables-save
	// prints it.
	jump := len(r.Match)
	for i, a := range r.Match {
		if a == "-j" {
			jump = i
			break
		}
	}
	out := make([]string, 0, len(r.Match)+4)
	out = append(out, r.Match[:jump]...)
	out = append(out, "-m", "comment", "--comment", r.Comment())
	return append(out, r.Match[jump:]...)
}

// String is the rule as an iptables-restore line: "-A CHAIN ...".
func (r Rule) String() string {
	words := append([]string{"-A", r.Chain}, r.Args()...)
	for i, w := range words {
		words[i] = quote(w)
	}
	return strings.Join(words, " ")
}

// quote quotes a word for iptables-restore if it needs it.
func quote(w string) string {
	if w != "" && !strings.ContainsAny(w, " \t\"'\\") {
		return w
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(w) + `"`
}

// Rules are the IPv4 rules of the two chains; RulesFor(o, IPv6) are the
// IPv6 ones. The jumps from PREROUTING and OUTPUT are JumpRules.
func Rules(o Options) []Rule { return RulesFor(o, IPv4) }

// RulesFor are the rules of the two chains for one IP family (skip subnets
// of the other family are left out), in order: first the inbound chain, then
// the outbound one.
func RulesFor(o Options, f Family) []Rule {
	var rules []Rule
	// Inbound.
	for _, ports := range multiportChunks(o.SkipInboundPorts) {
		rules = append(rules, Rule{RedirectChain, "ignore-port-" + ports,
			[]string{"-p", "tcp", "-m", "multiport", "--dports", ports, "-j", "RETURN"}})
	}
	for _, p := range o.SkipSubnets {
		if p.Addr().Is4() != (f == IPv4) {
			continue
		}
		rules = append(rules, Rule{RedirectChain, "ignore-subnet-" + p.String(),
			[]string{"-s", p.String(), "-j", "RETURN"}})
	}
	rules = append(rules, Rule{RedirectChain, "redirect-all-incoming-to-proxy-port",
		[]string{"-p", "tcp", "-j", "REDIRECT", "--to-port", strconv.Itoa(o.InboundPort)}})

	// Outbound.
	rules = append(rules, Rule{OutputChain, "ignore-proxy-uid",
		[]string{"-m", "owner", "--uid-owner", strconv.Itoa(o.ProxyUID), "-j", "RETURN"}})
	if o.ProxyGID != NoGID {
		rules = append(rules, Rule{OutputChain, "ignore-proxy-gid",
			[]string{"-m", "owner", "--gid-owner", strconv.Itoa(o.ProxyGID), "-j", "RETURN"}})
	}
	// Like Linkerd: whatever leaves through lo (the app calling localhost or
	// its own pod IP) goes straight to its destination.
	rules = append(rules, Rule{OutputChain, "ignore-loopback", []string{"-o", "lo", "-j", "RETURN"}})
	for _, ports := range multiportChunks(o.SkipOutboundPorts) {
		rules = append(rules, Rule{OutputChain, "ignore-port-" + ports,
			[]string{"-p", "tcp", "-m", "multiport", "--dports", ports, "-j", "RETURN"}})
	}
	rules = append(rules, Rule{OutputChain, "redirect-all-outgoing-to-proxy-port",
		[]string{"-p", "tcp", "-j", "REDIRECT", "--to-port", strconv.Itoa(o.OutboundPort)}})
	return rules
}

// JumpRules are the rules that send traffic from the built-in chains to
// ours: PREROUTING to RedirectChain and OUTPUT to OutputChain.
func JumpRules() []Rule {
	return []Rule{
		{"PREROUTING", "install-prerouting", []string{"-j", RedirectChain}},
		{"OUTPUT", "install-output", []string{"-j", OutputChain}},
	}
}

// multiportChunks turns ports and ranges ("5000-5100") into multiport lists
// ("80,443,5000:5100") of at most maxMultiport ports each, a range counting
// as two. Duplicates are dropped.
func multiportChunks(ports []string) []string {
	var chunks []string
	var cur []string
	weight := 0
	seen := map[string]bool{}
	for _, p := range ports {
		lo, hi, err := parsePortRange(p)
		if err != nil {
			continue // Validate reports it.
		}
		w, s := 1, strconv.Itoa(lo)
		if hi != lo {
			w, s = 2, fmt.Sprintf("%d:%d", lo, hi)
		}
		if seen[s] {
			continue
		}
		seen[s] = true
		if weight+w > maxMultiport {
			chunks = append(chunks, strings.Join(cur, ","))
			cur, weight = nil, 0
		}
		cur = append(cur, s)
		weight += w
	}
	if len(cur) > 0 {
		chunks = append(chunks, strings.Join(cur, ","))
	}
	return chunks
}

// restoreInput is the iptables-restore --noflush input that (re)creates our
// chains (declaring an existing chain flushes it) with the rules, and
// appends the given jumps.
func restoreInput(rules, jumps []Rule) string {
	var b strings.Builder
	b.WriteString("*nat\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n:%s - [0:0]\n", RedirectChain, OutputChain)
	for _, r := range rules {
		b.WriteString(r.String() + "\n")
	}
	for _, r := range jumps {
		b.WriteString(r.String() + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

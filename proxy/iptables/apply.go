package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
)

// Runner runs the iptables binaries.
type Runner interface {
	// Run runs argv with stdin (nil: none) and returns its standard output;
	// the error of a failed command includes its standard error.
	Run(ctx context.Context, stdin []byte, argv ...string) ([]byte, error)
	// LookPath reports whether a binary exists, like exec.LookPath.
	LookPath(file string) (string, error)
}

// ExecRunner runs commands with os/exec, each prefixed with Prefix (e.g.
// ["ip", "netns", "exec", "NAME"] to run them in a network namespace).
type ExecRunner struct {
	Prefix []string
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, stdin []byte, argv ...string) ([]byte, error) {
	full := append(slices.Clip(r.Prefix), argv...)
	if len(full) == 0 {
		return nil, errors.New("run: empty command")
	}
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// LookPath implements Runner.
func (ExecRunner) LookPath(file string) (string, error) { return exec.LookPath(file) }

// binaries are the iptables commands of one family and backend.
type binaries struct {
	family              Family
	iptables, save, rst string
}

// findBinaries picks iptables-nft / iptables-legacy (ip6tables-... for IPv6)
// after the mode, falling back to the plain iptables binaries.
func findBinaries(r Runner, mode Mode, f Family) (binaries, error) {
	base := "iptables"
	if f == IPv6 {
		base = "ip6tables"
	}
	candidates := []string{base}
	if mode != ModeDefault {
		candidates = []string{base + "-" + string(mode), base}
	}
	for _, c := range candidates {
		b := binaries{f, c, c + "-save", c + "-restore"}
		if _, err := r.LookPath(b.rst); err != nil {
			continue
		}
		if _, err := r.LookPath(b.save); err != nil {
			continue
		}
		if _, err := r.LookPath(b.iptables); err != nil {
			continue
		}
		return b, nil
	}
	err := fmt.Errorf("%s: none of %s (with -save and -restore) found", f, strings.Join(candidates, ", "))
	c := candidates[0]
	return binaries{f, c, c + "-save", c + "-restore"}, err
}

// families are the families to program: IPv4 always, IPv6 if asked for and
// supported (ip6tables found and its nat table readable).
func families(ctx context.Context, o Options, r Runner, log io.Writer) ([]binaries, error) {
	v4, err := findBinaries(r, o.Mode, IPv4)
	if err != nil && !o.DryRun { // A dry run shows the preferred binaries.
		return nil, err
	}
	out := []binaries{v4}
	if !o.IPv6 {
		return out, nil
	}
	v6, err := findBinaries(r, o.Mode, IPv6)
	if err != nil && !o.DryRun {
		fmt.Fprintf(log, "skipping IPv6: %v\n", err)
		return out, nil
	}
	if !o.DryRun {
		if _, err := r.Run(ctx, nil, v6.save, "-t", "nat"); err != nil {
			fmt.Fprintf(log, "skipping IPv6, no IPv6 nat table: %v\n", err)
			return out, nil
		}
	}
	return append(out, v6), nil
}

// Apply installs the rules (see the package documentation). It is
// idempotent: existing chains are flushed and refilled, and the jumps to
// them are added only if missing, in one iptables-restore --noflush per IP
// family, so other rules of the nat table are kept. It logs the rules and
// the resulting nat table to o.Log. With o.DryRun it only logs the
// iptables-restore input, assuming no jumps exist yet.
func Apply(ctx context.Context, o Options, r Runner) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	log := logWriter(o)
	fams, err := families(ctx, o, r, log)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	for _, b := range fams {
		if err := apply(ctx, o, r, b, log); err != nil {
			return fmt.Errorf("apply %s: %w", b.family, err)
		}
	}
	return nil
}

func apply(ctx context.Context, o Options, r Runner, b binaries, log io.Writer) error {
	jumps := JumpRules()
	if !o.DryRun {
		saved, err := r.Run(ctx, nil, b.save, "-t", "nat")
		if err != nil {
			return fmt.Errorf("reading the nat table: %w", err)
		}
		st := parseSave(saved)
		jumps = slices.DeleteFunc(jumps, func(j Rule) bool { return len(st.jumps[j.Chain+" "+j.Match[1]]) > 0 })
	}
	input := restoreInput(RulesFor(o, b.family), jumps)
	argv := []string{b.rst, "--noflush", "-w"}
	if o.DryRun {
		fmt.Fprintf(log, "# dry run, would pipe into %s:\n%s", strings.Join(argv, " "), input)
		return nil
	}
	fmt.Fprintf(log, "# %s <<EOF\n%sEOF\n", strings.Join(argv, " "), input)
	if _, err := r.Run(ctx, []byte(input), argv...); err != nil {
		return fmt.Errorf("installing the rules: %w", err)
	}
	after, err := r.Run(ctx, nil, b.save, "-t", "nat")
	if err != nil {
		return fmt.Errorf("reading the nat table back: %w", err)
	}
	fmt.Fprintf(log, "# %s -t nat\n%s", b.save, after)
	return nil
}

// Remove deletes every jump to our chains from the built-in chains, then
// the chains, in one iptables-restore --noflush per IP family. Without any
// of them it does nothing. With o.DryRun it only logs what it would run.
func Remove(ctx context.Context, o Options, r Runner) error {
	log := logWriter(o)
	fams, err := families(ctx, o, r, log)
	if err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	for _, b := range fams {
		if err := remove(ctx, o, r, b, log); err != nil {
			return fmt.Errorf("remove %s: %w", b.family, err)
		}
	}
	return nil
}

func remove(ctx context.Context, o Options, r Runner, b binaries, log io.Writer) error {
	argv := []string{b.rst, "--noflush", "-w"}
	if o.DryRun {
		st := saveState{jumps: map[string][]string{}, chains: map[string]bool{RedirectChain: true, OutputChain: true}}
		for _, j := range JumpRules() {
			st.jumps[j.Chain+" "+j.Match[1]] = []string{j.String()}
		}
		fmt.Fprintf(log, "# dry run, would pipe into %s:\n%s", strings.Join(argv, " "), removeInput(st))
		return nil
	}
	saved, err := r.Run(ctx, nil, b.save, "-t", "nat")
	if err != nil {
		return fmt.Errorf("reading the nat table: %w", err)
	}
	input := removeInput(parseSave(saved))
	if input == "" {
		fmt.Fprintf(log, "# %s: no %s rules to remove\n", b.family, commentPrefix)
		return nil
	}
	fmt.Fprintf(log, "# %s <<EOF\n%sEOF\n", strings.Join(argv, " "), input)
	if _, err := r.Run(ctx, []byte(input), argv...); err != nil {
		return fmt.Errorf("removing the rules: %w", err)
	}
	return nil
}

// removeInput is the iptables-restore --noflush input deleting the jumps
// and chains found, or "" if there are none.
func removeInput(st saveState) string {
	var lines []string
	for _, key := range slices.Sorted(maps.Keys(st.jumps)) {
		for _, line := range st.jumps[key] {
			lines = append(lines, "-D"+strings.TrimPrefix(line, "-A"))
		}
	}
	for _, c := range []string{RedirectChain, OutputChain} {
		if st.chains[c] {
			lines = append(lines, "-F "+c, "-X "+c)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "*nat\n" + strings.Join(lines, "\n") + "\nCOMMIT\n"
}

// saveState is what matters to us in iptables-save -t nat output.
type saveState struct {
	// jumps maps "BUILTIN OURCHAIN" to the "-A BUILTIN ... -j OURCHAIN"
	// lines, as printed.
	jumps map[string][]string
	// chains holds those of our chains that exist.
	chains map[string]bool
}

func parseSave(out []byte) saveState {
	st := saveState{jumps: map[string][]string{}, chains: map[string]bool{}}
	ours := func(c string) bool { return c == RedirectChain || c == OutputChain }
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if name, ok := strings.CutPrefix(line, ":"); ok {
			if name, _, _ = strings.Cut(name, " "); ours(name) {
				st.chains[name] = true
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" || ours(f[1]) {
			continue
		}
		for i := 2; i+1 < len(f); i++ {
			if (f[i] == "-j" || f[i] == "-g") && ours(f[i+1]) {
				key := f[1] + " " + f[i+1]
				st.jumps[key] = append(st.jumps[key], line)
				break
			}
		}
	}
	return st
}

func logWriter(o Options) io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

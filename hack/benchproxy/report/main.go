// Command report summarises a hack/bench-proxy.sh run: it reads OUT/runs.tsv (one row
// per case and round, written by the script) and the fortio/ghz JSON files it names,
// and writes
//
//   - a markdown table (stdout and OUT/results.md): medians over rounds of p50/p90/p99,
//     added p50 over the baseline, CPU seconds and RSS per hop, max loadavg;
//   - OUT/bench-proxy.svg: a grouped bar chart of p50/p90/p99 per case;
//   - a last line: mesh-proxy/haproxy added-p50=R1 cpu=R2 rss=R3.
//
// Usage: report OUT_DIR
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// row is one line of runs.tsv.
type row struct {
	round      int
	caseName   string
	label      string
	base       string // the baseline case for "added p50"
	kind       string // fortio or ghz
	status     string // ok or failed
	jsonPath   string
	load1      float64 // max of loadavg1 at start and end
	cpu        []float64
	rssKiB     []float64
	note       string
	p50, p90   float64 // ms
	p99, qps   float64
	ok, total  int
	parseError string
}

const header = "round\tcase\tlabel\tbase\tkind\tstatus\tjson\tload1_start\tload1_end\tcpu_s\trss_kib\tnote"

func parseFloats(s string) []float64 {
	if s == "" || s == "-" {
		return nil
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil
		}
		out = append(out, v)
	}
	return out
}

func readRows(dir string) ([]*row, error) {
	f, err := os.Open(filepath.Join(dir, "runs.tsv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []*row
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "round\t") {
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) < 12 {
			return nil, fmt.Errorf("runs.tsv: %d columns in %q, want 12 (%s)", len(c), line, header)
		}
		r := &row{caseName: c[1], label: c[2], base: c[3], kind: c[4], status: c[5], jsonPath: c[6], note: c[11]}
		r.round, _ = strconv.Atoi(c[0])
		l0, _ := strconv.ParseFloat(c[7], 64)
		l1, _ := strconv.ParseFloat(c[8], 64)
		r.load1 = math.Max(l0, l1)
		r.cpu = parseFloats(c[9])
		r.rssKiB = parseFloats(c[10])
		if r.status == "ok" {
			if err := r.load(); err != nil {
				r.status, r.parseError = "failed", err.Error()
			}
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

type fortioResult struct {
	ActualQPS         float64
	RetCodes          map[string]int
	DurationHistogram struct {
		Count       int
		Percentiles []struct{ Percentile, Value float64 }
	}
}

type ghzResult struct {
	Count                  int
	Rps                    float64
	StatusCodeDistribution map[string]int
	LatencyDistribution    []struct {
		Percentage int
		Latency    float64 // ns
	}
}

func (r *row) load() error {
	data, err := os.ReadFile(r.jsonPath)
	if err != nil {
		return err
	}
	switch r.kind {
	case "fortio":
		var f fortioResult
		if err := json.Unmarshal(data, &f); err != nil {
			return err
		}
		for _, p := range f.DurationHistogram.Percentiles {
			switch p.Percentile {
			case 50:
				r.p50 = p.Value * 1e3
			case 90:
				r.p90 = p.Value * 1e3
			case 99:
				r.p99 = p.Value * 1e3
			}
		}
		r.qps, r.total, r.ok = f.ActualQPS, f.DurationHistogram.Count, f.RetCodes["200"]
	case "ghz":
		var g ghzResult
		if err := json.Unmarshal(data, &g); err != nil {
			return err
		}
		for _, p := range g.LatencyDistribution {
			switch p.Percentage {
			case 50:
				r.p50 = p.Latency / 1e6
			case 90:
				r.p90 = p.Latency / 1e6
			case 99:
				r.p99 = p.Latency / 1e6
			}
		}
		r.qps, r.total, r.ok = g.Rps, g.Count, g.StatusCodeDistribution["OK"]
	default:
		return fmt.Errorf("unknown kind %q", r.kind)
	}
	if r.total == 0 || r.p50 == 0 {
		return errors.New("no requests completed")
	}
	// A run where most requests failed measures error paths, not the proxy.
	if float64(r.ok) < 0.99*float64(r.total) {
		return fmt.Errorf("only %d of %d requests succeeded", r.ok, r.total)
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

// summary is one case over its rounds.
type summary struct {
	name, label, base string
	rounds, okRounds  int
	p50, p90, p99     float64
	qps               float64
	cpu, rssMiB       []float64 // per hop, median over rounds
	load1             float64   // max over rounds
	errors            []string
	ok, total         int
}

func (s *summary) failed() bool { return s.okRounds == 0 }

func summarise(rows []*row) []*summary {
	var order []string
	byCase := map[string][]*row{}
	for _, r := range rows {
		if _, seen := byCase[r.caseName]; !seen {
			order = append(order, r.caseName)
		}
		byCase[r.caseName] = append(byCase[r.caseName], r)
	}
	var out []*summary
	for _, name := range order {
		rs := byCase[name]
		s := &summary{name: name, label: rs[0].label, base: rs[0].base, rounds: len(rs)}
		var p50, p90, p99, qps []float64
		hops := 0
		for _, r := range rs {
			s.load1 = math.Max(s.load1, r.load1)
			if r.status != "ok" {
				msg := r.note
				if r.parseError != "" {
					msg = r.parseError
				}
				s.errors = append(s.errors, fmt.Sprintf("round %d: %s", r.round, msg))
				continue
			}
			if r.note != "" {
				s.errors = append(s.errors, fmt.Sprintf("round %d (ok): %s", r.round, r.note))
			}
			s.okRounds++
			p50, p90, p99, qps = append(p50, r.p50), append(p90, r.p90), append(p99, r.p99), append(qps, r.qps)
			s.ok += r.ok
			s.total += r.total
			hops = max(hops, len(r.cpu))
		}
		if s.okRounds > 0 {
			s.p50, s.p90, s.p99, s.qps = median(p50), median(p90), median(p99), median(qps)
			for h := 0; h < hops; h++ {
				var cpu, rss []float64
				for _, r := range rs {
					if r.status == "ok" && h < len(r.cpu) && h < len(r.rssKiB) {
						cpu, rss = append(cpu, r.cpu[h]), append(rss, r.rssKiB[h]/1024)
					}
				}
				s.cpu, s.rssMiB = append(s.cpu, median(cpu)), append(s.rssMiB, median(rss))
			}
		}
		out = append(out, s)
	}
	return out
}

func fmtHops(xs []float64, prec int) string {
	if len(xs) == 0 {
		return "–"
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', prec, 64)
	}
	return strings.Join(parts, " / ")
}

func markdown(sums []*summary, byName map[string]*summary, seconds float64) string {
	var b strings.Builder
	b.WriteString("| case | rounds ok | p50 ms | p90 ms | p99 ms | added p50 ms | rps | CPU s per hop | cores per 1k rps per hop | RSS MiB per hop | max load1 |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range sums {
		if s.failed() {
			fmt.Fprintf(&b, "| %s | 0/%d | failed | | | | | | | | %.1f |\n", s.label, s.rounds, s.load1)
			continue
		}
		added := "–"
		if base := byName[s.base]; base != nil && base != s && !base.failed() {
			added = fmt.Sprintf("%+.3f", s.p50-base.p50)
		}
		cores := "–"
		if len(s.cpu) > 0 && seconds > 0 && s.qps > 0 {
			var cs []float64
			for _, c := range s.cpu {
				cs = append(cs, c/seconds/(s.qps/1000))
			}
			cores = fmtHops(cs, 3)
		}
		fmt.Fprintf(&b, "| %s | %d/%d | %.3f | %.3f | %.3f | %s | %.0f | %s | %s | %s | %.1f |\n",
			s.label, s.okRounds, s.rounds, s.p50, s.p90, s.p99, added, s.qps,
			fmtHops(s.cpu, 2), cores, fmtHops(s.rssMiB, 1), s.load1)
	}
	return b.String()
}

// svg draws grouped bars (p50, p90, p99) per case on a logarithmic axis, so that
// sub-millisecond medians and multi-millisecond tails are both readable.
func svg(sums []*summary, title, subtitle string) string {
	const (
		left, right, top, bottom = 60.0, 150.0, 62.0, 150.0
		groupW, barW, height     = 100.0, 24.0, 320.0
	)
	lo, hi := math.Inf(1), 0.0
	for _, s := range sums {
		if !s.failed() {
			lo, hi = math.Min(lo, s.p50), math.Max(hi, math.Max(s.p90, s.p99))
		}
	}
	if hi == 0 {
		lo, hi = 0.1, 1
	}
	// Axis bounds on the 1-2-5 grid around the data.
	ticks := []float64{}
	for e := -3; e <= 4; e++ {
		for _, m := range []float64{1, 2, 5} {
			ticks = append(ticks, m*math.Pow(10, float64(e)))
		}
	}
	ymin, ymax := ticks[0], ticks[len(ticks)-1]
	for _, t := range ticks {
		if t <= lo/1.5 {
			ymin = t
		}
	}
	for i := len(ticks) - 1; i >= 0; i-- {
		if ticks[i] >= hi {
			ymax = ticks[i]
		}
	}
	y := func(v float64) float64 {
		v = math.Min(math.Max(v, ymin), ymax)
		return top + height - (math.Log(v)-math.Log(ymin))/(math.Log(ymax)-math.Log(ymin))*height
	}
	width := left + right + groupW*float64(max(len(sums), 1))
	colors := []string{"#4c78a8", "#f58518", "#e45756"}
	names := []string{"p50", "p90", "p99"}
	var b strings.Builder
	total := top + height + bottom
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", width, total, width, total)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="36" fill="#555">%s</text>`+"\n", left, html.EscapeString(subtitle))
	for i, n := range names {
		x := left + float64(i)*70
		fmt.Fprintf(&b, `<rect x="%.0f" y="44" width="12" height="12" fill="%s"/><text x="%.0f" y="54">%s</text>`+"\n", x, colors[i], x+16, n)
	}
	for _, t := range ticks {
		if t < ymin || t > ymax {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, width-right, y(t), y(t), left-6, y(t)+4, strconv.FormatFloat(t, 'f', -1, 64))
	}
	fmt.Fprintf(&b, `<text transform="translate(16,%.0f) rotate(-90)" text-anchor="middle">latency, ms (log scale)</text>`+"\n", top+height/2)
	for gi, s := range sums {
		gx := left + float64(gi)*groupW + (groupW-3*barW)/2
		if s.failed() {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#999">failed</text>`+"\n", gx+1.5*barW, top+height-6)
		} else {
			for i, v := range []float64{s.p50, s.p90, s.p99} {
				x := gx + float64(i)*barW
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s %.3f ms</title></rect>`+"\n",
					x, y(v), barW-2, top+height-y(v), colors[i], html.EscapeString(s.label), names[i], v)
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%s</text>`+"\n", x+(barW-2)/2, y(v)-3, strconv.FormatFloat(v, 'f', 2, 64))
			}
		}
		cx := left + float64(gi)*groupW + groupW/2
		fmt.Fprintf(&b, `<text transform="translate(%.1f,%.0f) rotate(35)" font-size="10">%s</text>`+"\n", cx-24, top+height+14, html.EscapeString(s.label))
	}
	fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, width-right, top+height, top+height)
	b.WriteString("</svg>\n")
	return b.String()
}

// perRound is p50 (and load1) of every case in every round, to show the spread.
func perRound(rows []*row) string {
	rounds := 0
	var order []string
	cells := map[string]map[int]string{}
	labels := map[string]string{}
	for _, r := range rows {
		rounds = max(rounds, r.round)
		if cells[r.caseName] == nil {
			cells[r.caseName] = map[int]string{}
			order = append(order, r.caseName)
			labels[r.caseName] = r.label
		}
		cell := "failed"
		if r.status == "ok" {
			cell = fmt.Sprintf("%.3f / %.3f / %.3f", r.p50, r.p90, r.p99)
		}
		cells[r.caseName][r.round] = fmt.Sprintf("%s (load1 %.1f)", cell, r.load1)
	}
	var b strings.Builder
	b.WriteString("Per round, p50 / p90 / p99 ms (max loadavg1 at the start and end of the measured run):\n\n| case |")
	for i := 1; i <= rounds; i++ {
		fmt.Fprintf(&b, " round %d |", i)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", rounds) + "\n")
	for _, c := range order {
		b.WriteString("| " + labels[c] + " |")
		for i := 1; i <= rounds; i++ {
			v := cells[c][i]
			if v == "" {
				v = "–"
			}
			b.WriteString(" " + v + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}

func run() error {
	if len(os.Args) != 2 {
		return errors.New("usage: report OUT_DIR")
	}
	dir := os.Args[1]
	rows, err := readRows(dir)
	if err != nil {
		return err
	}
	sums := summarise(rows)
	byName := map[string]*summary{}
	for _, s := range sums {
		byName[s.name] = s
	}
	seconds, _ := strconv.ParseFloat(os.Getenv("BENCH_SECONDS"), 64)
	title := os.Getenv("REPORT_TITLE")
	if title == "" {
		title = "client → proxy → proxy → server on loopback: latency percentiles"
	}
	subtitle := os.Getenv("REPORT_SUBTITLE")
	table := markdown(sums, byName, seconds)
	var failures strings.Builder
	for _, s := range sums {
		for _, e := range s.errors {
			fmt.Fprintf(&failures, "- %s, %s\n", s.label, e)
		}
	}

	// The ratio line: HTTP mTLS, mesh-proxy 2 hops vs haproxy 2 hops, same run.
	mesh, hap, direct := byName["http-mesh"], byName["http-haproxy"], byName["http-direct"]
	r1, r2, r3 := "n/a", "n/a", "n/a"
	if mesh != nil && hap != nil && direct != nil && !mesh.failed() && !hap.failed() && !direct.failed() {
		r1 = ratio(mesh.p50-direct.p50, hap.p50-direct.p50)
		r2 = ratio(mean(mesh.cpu), mean(hap.cpu))
		r3 = ratio(mean(mesh.rssMiB), mean(hap.rssMiB))
	} else if mesh == nil || mesh.failed() {
		r1, r2, r3 = "failed", "failed", "failed"
	}
	last := fmt.Sprintf("mesh-proxy/haproxy added-p50=%s cpu=%s rss=%s", r1, r2, r3)

	md := table + "\n" + perRound(rows)
	if failures.Len() > 0 {
		md += "\nFailed rounds and notes:\n\n" + failures.String()
	}
	md += "\n`" + last + "`\n"
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-proxy.svg"), []byte(svg(sums, title, subtitle)), 0o644); err != nil {
		return err
	}
	fmt.Print(table)
	if failures.Len() > 0 {
		fmt.Print("\nFailed rounds and notes:\n" + failures.String())
	}
	fmt.Printf("\nwrote %s and %s\n", filepath.Join(dir, "results.md"), filepath.Join(dir, "bench-proxy.svg"))
	fmt.Println(last)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

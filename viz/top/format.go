package top

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Output formats of Write.
const (
	FormatTable = "table"
	FormatJSON  = "json"
)

// Write writes rows as linkerd top's table (SOURCE DESTINATION METHOD PATH COUNT
// BEST WORST LAST SUCCESS_RATE; without SOURCE with o.HideSources, ROUTE instead of
// METHOD and PATH with o.Routes), or as one JSON array on one line (latencies in
// nanoseconds, as the tap records). An empty table says so in one line.
func Write(w io.Writer, format string, o Options, rows []Row) error {
	switch format {
	case FormatJSON:
		out := make([]jsonRow, 0, len(rows))
		for _, r := range rows {
			out = append(out, jsonRow{Row: r, SuccessRate: r.SuccessRate()})
		}
		b, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case FormatTable:
	default:
		return fmt.Errorf("unknown output format %q", format)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "No requests tapped yet.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	cols := func(r *Row) []string {
		var c []string
		if !o.HideSources {
			c = append(c, pick(r, "SOURCE", func() string { return r.Source }))
		}
		c = append(c, pick(r, "DESTINATION", func() string { return r.Destination }))
		if o.Routes {
			c = append(c, pick(r, "ROUTE", func() string { return r.Route }))
		} else {
			c = append(c, pick(r, "METHOD", func() string { return r.Method }), pick(r, "PATH", func() string { return r.Path }))
		}
		return append(c,
			pick(r, "COUNT", func() string { return fmt.Sprint(r.Count) }),
			pick(r, "BEST", func() string { return Duration(r.Best) }),
			pick(r, "WORST", func() string { return Duration(r.Worst) }),
			pick(r, "LAST", func() string { return Duration(r.Last) }),
			pick(r, "SUCCESS_RATE", func() string { return fmt.Sprintf("%.2f%%", 100*r.SuccessRate()) }))
	}
	line := func(c []string) {
		for i, s := range c {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, s)
		}
		fmt.Fprintln(tw)
	}
	line(cols(nil))
	for i := range rows {
		line(cols(&rows[i]))
	}
	return tw.Flush()
}

// pick is the header when r is nil, else the value.
func pick(r *Row, header string, value func() string) string {
	if r == nil {
		return header
	}
	if v := value(); v != "" {
		return v
	}
	return "-"
}

type jsonRow struct {
	Row
	SuccessRate float64 `json:"successRate"`
}

// Duration is a latency as the table shows it: whole microseconds under 1 ms,
// whole milliseconds under 1 s, else seconds with one decimal.
func Duration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	case d < time.Second:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

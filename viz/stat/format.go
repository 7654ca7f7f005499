package stat

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
)

// Output formats of Write.
const (
	FormatTable = "table"
	FormatWide  = "wide"
	FormatJSON  = "json"
)

// Formats are the output formats, for help and validation.
func Formats() []string { return []string{FormatTable, FormatWide, FormatJSON} }

// Write writes rows as a table like `linkerd viz stat` (NAME MESHED SUCCESS RPS
// LATENCY_P50 LATENCY_P95 LATENCY_P99 TCP_CONN, and TLS in wide; NAMESPACE first
// when namespaces is set), or as a JSON array with the same content. A figure that
// is NaN (no request, or not measured) is "-" in tables and null in JSON. An
// empty table says so in one line.
func Write(w io.Writer, format string, namespaces bool, rows []Row) error {
	switch format {
	case FormatJSON:
		out := make([]jsonRow, 0, len(rows))
		for _, r := range rows {
			out = append(out, toJSON(r))
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case FormatTable, FormatWide:
	default:
		return fmt.Errorf("unknown output format %q", format)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "No resources with traffic found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	if namespaces {
		fmt.Fprint(tw, "NAMESPACE\t")
	}
	fmt.Fprint(tw, "NAME\tMESHED\tSUCCESS\tRPS\tLATENCY_P50\tLATENCY_P95\tLATENCY_P99\tTCP_CONN")
	if format == FormatWide {
		fmt.Fprint(tw, "\tTLS")
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		if namespaces {
			fmt.Fprintf(tw, "%s\t", orDash(r.Resource.Namespace))
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%s", r.Resource.Name, r.MeshedPods, r.TotalPods,
			percent(r.SuccessRate, 2), rps(r.RPS), ms(r.LatencyP50), ms(r.LatencyP95), ms(r.LatencyP99), count(r.TCPConnections))
		if format == FormatWide {
			fmt.Fprintf(tw, "\t%s", percent(r.TLSShare, 0))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func percent(v float64, prec int) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v*100, 'f', prec, 64) + "%"
}

func rps(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "rps"
}

// ms is a latency as Linkerd prints it: whole milliseconds.
func ms(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64) + "ms"
}

func count(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// jsonRow is a Row in JSON: stable field names (Linkerd's where it has one), null
// for NaN.
type jsonRow struct {
	Namespace      string   `json:"namespace"`
	Kind           string   `json:"kind"`
	Name           string   `json:"name"`
	MeshedPods     int      `json:"meshed_pods"`
	TotalPods      int      `json:"total_pods"`
	Requests       *float64 `json:"requests"`
	Success        *float64 `json:"success"`
	RPS            *float64 `json:"rps"`
	LatencyP50     *float64 `json:"latency_ms_p50"`
	LatencyP95     *float64 `json:"latency_ms_p95"`
	LatencyP99     *float64 `json:"latency_ms_p99"`
	TCPConnections *float64 `json:"tcp_open_connections"`
	TLS            *float64 `json:"tls"`
}

func toJSON(r Row) jsonRow {
	return jsonRow{
		Namespace: r.Resource.Namespace, Kind: r.Resource.Kind, Name: r.Resource.Name,
		MeshedPods: r.MeshedPods, TotalPods: r.TotalPods,
		Requests: jsonNum(r.Requests), Success: jsonNum(r.SuccessRate), RPS: jsonNum(r.RPS),
		LatencyP50: jsonNum(r.LatencyP50), LatencyP95: jsonNum(r.LatencyP95), LatencyP99: jsonNum(r.LatencyP99),
		TCPConnections: jsonNum(r.TCPConnections), TLS: jsonNum(r.TLSShare),
	}
}

func jsonNum(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

package stat

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteEdges writes edges as `linkerd viz edges` does (SRC DST SRC_NS DST_NS
// SECURED; wide adds CLIENT_ID SERVER_ID REQUESTS RPS MSG), or as a JSON array.
// A caller without a proxy is "-"; a destination that is a service (no workload
// of the kind owns the pod) is "svc/NAME".
func WriteEdges(w io.Writer, format string, edges []Edge) error {
	switch format {
	case FormatJSON:
		out := make([]jsonEdge, 0, len(edges))
		for _, e := range edges {
			out = append(out, jsonEdge{
				Src: jsonRef(e.Src), Dst: jsonRef(e.Dst), ClientID: e.ClientID, ServerID: e.ServerID,
				Secured: e.Secured, NoTLSReason: e.NoTLSReason, Requests: jsonNum(e.Requests), RPS: jsonNum(e.RPS),
			})
		}
		return writeJSON(w, out)
	case FormatTable, FormatWide:
	default:
		return fmt.Errorf("unknown output format %q", format)
	}
	if len(edges) == 0 {
		_, err := fmt.Fprintln(w, "No edges found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprint(tw, "SRC\tDST\tSRC_NS\tDST_NS\tSECURED")
	if format == FormatWide {
		fmt.Fprint(tw, "\tCLIENT_ID\tSERVER_ID\tREQUESTS\tRPS\tMSG")
	}
	fmt.Fprintln(tw)
	for _, e := range edges {
		secured := "no"
		if e.Secured {
			secured = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", edgeName(e.Src, e.Dst), edgeName(e.Dst, e.Src), orDash(e.Src.Namespace), orDash(e.Dst.Namespace), secured)
		if format == FormatWide {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s", orDash(e.ClientID), orDash(e.ServerID), count(e.Requests), rps(e.RPS), orDash(e.NoTLSReason))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// edgeName is r's name, "svc/NAME" for a service at the end of an edge between
// workloads, "-" for an unknown (unmeshed) caller.
func edgeName(r, other Resource) string {
	if r.Name == "" {
		return "-"
	}
	if r.Kind == KindService && other.Kind != KindService {
		return "svc/" + r.Name
	}
	return r.Name
}

type jsonResource struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func jsonRef(r Resource) *jsonResource {
	if r.Name == "" {
		return nil
	}
	return &jsonResource{r.Kind, r.Namespace, r.Name}
}

type jsonEdge struct {
	Src         *jsonResource `json:"src"` // null: a caller without a proxy
	Dst         *jsonResource `json:"dst"`
	ClientID    string        `json:"client_id"`
	ServerID    string        `json:"server_id"`
	Secured     bool          `json:"secured"`
	NoTLSReason string        `json:"no_tls_reason,omitempty"`
	Requests    *float64      `json:"requests"`
	RPS         *float64      `json:"rps"`
}

// WriteRoutes writes route rows as `linkerd viz routes` does (ROUTE SERVICE
// SUCCESS RPS LATENCY_P50 LATENCY_P95 LATENCY_P99; wide adds TLS), or as a JSON
// array. A figure without traffic is "-" (null in JSON).
func WriteRoutes(w io.Writer, format string, rows []RouteRow) error {
	switch format {
	case FormatJSON:
		out := make([]jsonRoute, 0, len(rows))
		for _, r := range rows {
			out = append(out, jsonRoute{Route: r.Route, Service: r.Service, Requests: jsonNum(r.Requests),
				Success: jsonNum(r.SuccessRate), RPS: jsonNum(r.RPS), LatencyP50: jsonNum(r.LatencyP50),
				LatencyP95: jsonNum(r.LatencyP95), LatencyP99: jsonNum(r.LatencyP99), TLS: jsonNum(r.TLSShare)})
		}
		return writeJSON(w, out)
	case FormatTable, FormatWide:
	default:
		return fmt.Errorf("unknown output format %q", format)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "No routes found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprint(tw, "ROUTE\tSERVICE\tSUCCESS\tRPS\tLATENCY_P50\tLATENCY_P95\tLATENCY_P99")
	if format == FormatWide {
		fmt.Fprint(tw, "\tTLS")
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s", r.Route, orDash(r.Service), percent(r.SuccessRate, 2), rps(r.RPS),
			ms(r.LatencyP50), ms(r.LatencyP95), ms(r.LatencyP99))
		if format == FormatWide {
			fmt.Fprintf(tw, "\t%s", percent(r.TLSShare, 0))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

type jsonRoute struct {
	Route      string   `json:"route"`
	Service    string   `json:"service"`
	Requests   *float64 `json:"requests"`
	Success    *float64 `json:"success"`
	RPS        *float64 `json:"rps"`
	LatencyP50 *float64 `json:"latency_ms_p50"`
	LatencyP95 *float64 `json:"latency_ms_p95"`
	LatencyP99 *float64 `json:"latency_ms_p99"`
	TLS        *float64 `json:"tls"`
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

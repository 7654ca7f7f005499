// Package tap is `mesh tap`'s client: it finds the meshed pods of a resource, opens
// each proxy's tap API (GET /tap on the proxy's loopback tap port, reached through
// the Kubernetes API's pods/portforward as the user), merges their NDJSON streams
// and prints the events (controlplane/api/tap is the schema) as a table, a wide
// table or NDJSON (Stream), or hands them to a function (Follow: `mesh top`).
package tap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
)

// Pod is one meshed pod whose proxy is tapped.
type Pod struct {
	Namespace, Name string
}

func (p Pod) String() string { return p.Namespace + "/" + p.Name }

// Dialer opens a connection to a pod's tap port. PortForward is the real one.
type Dialer interface {
	DialTap(ctx context.Context, pod Pod) (net.Conn, error)
}

// Outputs of Options.Output.
const (
	OutputTable = "table"
	OutputWide  = "wide"
	OutputJSON  = "json"
)

// Options of one tap.
type Options struct {
	Match  api.Match
	MaxRPS float64 // per proxy; 0: the proxy's own cap only
	// MaxEvents stops after this many events (0: no limit); Timeout after this long
	// (0: until the context ends). Neither is an error.
	MaxEvents int
	Timeout   time.Duration
	Output    string // table (default), wide or json
}

// Stream taps pods through d and writes the events to out until MaxEvents, Timeout or
// the end of ctx; warnings (a proxy's dropped events, a stream that ended) go to
// errOut. It fails when no pod's stream could be opened, or when every stream failed.
func Stream(ctx context.Context, o Options, pods []Pod, d Dialer, out, errOut io.Writer) error {
	return Follow(ctx, o, pods, d, func(ev *api.Event) error {
		if err := Print(out, o.Output, ev); err != nil {
			return fmt.Errorf("writing the events: %w", err)
		}
		return nil
	}, errOut)
}

// Follow is Stream with each "http" event given to handle (mesh top aggregates
// them) instead of printed; o.Output is not used. An error of handle stops it and
// is returned.
func Follow(ctx context.Context, o Options, pods []Pod, d Dialer, handle func(*api.Event) error, errOut io.Writer) error {
	if len(pods) == 0 {
		return errors.New("no meshed pod to tap")
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	events := make(chan api.Event)
	errs := make(chan error, len(pods))
	for _, p := range pods {
		go func() { errs <- follow(ctx, p, o, d, events) }()
	}
	// The readers stop when ctx does (stop, deferred): they never block on events then.
	var n, ended int
	var failed []error
	for {
		select {
		case err := <-errs:
			ended++
			if err != nil {
				failed = append(failed, err)
				if len(pods) > 1 {
					fmt.Fprintf(errOut, "warning: %v\n", err)
				}
			}
			if ended < len(pods) {
				continue
			}
			if len(failed) == len(pods) {
				if len(pods) > 1 {
					return errors.New("no proxy's tap stream could be read (see the warnings)")
				}
				return failed[0]
			}
			return nil
		case ev := <-events:
			if ev.Type == api.TypeDropped {
				fmt.Fprintf(errOut, "warning: %s: %d events dropped (rate limits or a slow reader)\n", ev.Proxy, ev.Dropped)
				continue
			}
			if ev.Type != api.TypeHTTP {
				continue // a record type of a newer proxy
			}
			if err := handle(&ev); err != nil {
				return err
			}
			if n++; o.MaxEvents > 0 && n >= o.MaxEvents {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// follow reads one pod's stream into events until it ends or ctx does. It returns
// nil when ctx ended it.
func follow(ctx context.Context, p Pod, o Options, d Dialer, events chan<- api.Event) error {
	c, err := d.DialTap(ctx, p)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("pod %s: reaching the proxy's tap port: %w", p, err)
	}
	defer func() { _ = c.Close() }()
	go func() { <-ctx.Done(); _ = c.Close() }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+api.Path+"?"+o.Match.Query(o.MaxRPS).Encode(), nil)
	if err != nil {
		return fmt.Errorf("pod %s: %w", p, err)
	}
	req.Header.Set("Accept", api.ContentType)
	if err := req.Write(c); err != nil {
		return ignoreIfDone(ctx, fmt.Errorf("pod %s: sending the tap request: %w", p, err))
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return ignoreIfDone(ctx, fmt.Errorf("pod %s: the tap API's answer: %w (is the proxy of a version with the tap API?)", p, err))
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("pod %s: the tap API answered %s: %s", p, resp.Status, strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev api.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("pod %s: a tap record that is not JSON: %w", p, err)
		}
		ev.Proxy = p.String()
		select {
		case events <- ev:
		case <-ctx.Done():
			return nil
		}
	}
	if err := ignoreIfDone(ctx, sc.Err()); err != nil {
		return fmt.Errorf("pod %s: reading the tap stream: %w", p, err)
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("pod %s: the tap stream ended (the proxy restarted?)", p)
}

func ignoreIfDone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Print writes one event in the output format: NDJSON for json, else the lines of
// linkerd tap (req, rsp, end).
func Print(w io.Writer, output string, ev *api.Event) error {
	if output == OutputJSON {
		return json.NewEncoder(w).Encode(ev)
	}
	id := fmt.Sprintf("%s:%d", ev.Proxy, ev.ID)
	common := fmt.Sprintf("id=%s proxy=%s src=%s dst=%s tls=%t", id, dirShort(ev.Direction), ev.SrcAddr, ev.DstAddr, ev.TLS)
	var wide string
	if output == OutputWide {
		var b strings.Builder
		if ev.ClientID != "" {
			fmt.Fprintf(&b, " src_id=%s", ev.ClientID)
		}
		if ev.ServerID != "" {
			fmt.Fprintf(&b, " dst_id=%s", ev.ServerID)
		}
		if k, n := ev.Dst["workloadKind"], ev.Dst["workloadName"]; k != "" {
			fmt.Fprintf(&b, " dst_res=%s/%s", k, n)
		}
		if s := ev.Dst["service"]; s != "" {
			fmt.Fprintf(&b, " dst_svc=%s", s)
		}
		if ns := ev.Dst["namespace"]; ns != "" {
			fmt.Fprintf(&b, " dst_ns=%s", ns)
		}
		if ev.Route != "" {
			fmt.Fprintf(&b, " route=%s", ev.Route)
		}
		wide = b.String()
	}
	lines := []string{
		fmt.Sprintf("req %s%s :method=%s :authority=%s :path=%s", common, wide, ev.Method, ev.Authority, ev.Path),
	}
	if ev.Status != 0 {
		lines = append(lines, fmt.Sprintf("rsp %s :status=%d latency=%s", common, ev.Status, micros(ev.LatencyToHeadersNs)))
	}
	end := fmt.Sprintf("end %s", common)
	if ev.GRPCStatus != "" {
		end += " grpc-status=" + ev.GRPCStatus
	}
	end += fmt.Sprintf(" duration=%s response-length=%dB", micros(ev.LatencyToEndNs), ev.ResponseBytes)
	if ev.Error != "" {
		end += fmt.Sprintf(" error=%q", ev.Error)
	}
	lines = append(lines, end)
	_, err := io.WriteString(w, strings.Join(lines, "\n")+"\n")
	return err
}

func dirShort(d string) string {
	switch d {
	case api.Inbound:
		return "in"
	case api.Outbound:
		return "out"
	}
	return d
}

func micros(ns int64) string { return fmt.Sprintf("%dµs", ns/1000) }

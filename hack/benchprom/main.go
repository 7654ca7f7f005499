// Command benchprom is a helper of hack/bench-prometheus.sh: a benchmark helper, not
// a product. It has two subcommands.
//
// config reads `mesh install --set prometheus.enabled=true` on stdin and writes, into
// --dir, the Prometheus that the install renders, for a run outside Kubernetes:
//
//   - prometheus.yml: the rendered scrape config (global intervals, relabelling,
//     metric relabelling, rule file) with each kubernetes_sd_configs replaced by a
//     file_sd_configs of targets.json, and the rule file's path pointed at --dir;
//   - recording-rules.yml: the rendered recording rules, unchanged;
//   - targets.json: --proxies targets on 127.0.0.1 from --port-base on, each with the
//     __meta_kubernetes_* labels that kubernetes_sd would give a meshed pod of a
//     Deployment, so the rendered relabelling runs as it would in a cluster;
//   - flags: the rendered container's --storage.tsdb.* and scrape arguments, one a
//     line (the retention among them), for the script to pass to Prometheus;
//   - resources: the rendered container resources, as JSON.
//
// serve serves --proxies /metrics endpoints on 127.0.0.1:PORT_BASE+i, each a
// proxy/metrics Registry (the proxy's own exposition code, with its process and Go
// collectors) that records simulated traffic every second: inbound requests from
// --clients client identities, and outbound requests to --dsts destinations of
// --endpoints endpoints each over --routes ServiceProfile routes, with TCP series
// for every peer. It runs until --duration passes or it is signalled.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/proxy/metrics"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchprom config|serve [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "config":
		err = runConfig(os.Args[2:], os.Stdin)
	case "serve":
		err = runServe(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchprom:", err)
		os.Exit(1)
	}
}

// layout places proxy i in a namespace, a Deployment and a pod name: 10 pods per
// Deployment, 5 Deployments per namespace.
func layout(i int) (ns, deploy, hash, pod string) {
	ns = fmt.Sprintf("bench-%d", i/50)
	deploy = fmt.Sprintf("app-%d", i/10%5)
	hash = "5d8f9c7b4"
	pod = fmt.Sprintf("%s-%s-%05d", deploy, hash, i)
	return ns, deploy, hash, pod
}

type configOptions struct {
	dir       string
	proxies   int
	portBase  int
	manifests io.Reader
}

func runConfig(args []string, stdin io.Reader) error {
	o := configOptions{manifests: stdin}
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "output directory (required)")
	fs.IntVar(&o.proxies, "proxies", 100, "simulated proxies")
	fs.IntVar(&o.portBase, "port-base", 31000, "first proxy's port on 127.0.0.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.dir == "" {
		return errors.New("--dir is required")
	}
	return writeConfig(o)
}

// rendered is what config takes from the install's manifests.
type rendered struct {
	promYML, rulesYML string
	args              []string
	resources         any
}

func readRendered(r io.Reader) (rendered, error) {
	var out rendered
	data, err := io.ReadAll(r)
	if err != nil {
		return out, fmt.Errorf("reading manifests: %w", err)
	}
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Data map[string]string `json:"data"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Name      string   `json:"name"`
							Args      []string `json:"args"`
							Resources any      `json:"resources"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return out, fmt.Errorf("parsing a manifest: %w", err)
		}
		switch {
		case obj.Kind == "ConfigMap" && obj.Metadata.Name == "mesh-prometheus-config":
			out.promYML, out.rulesYML = obj.Data["prometheus.yml"], obj.Data["recording-rules.yml"]
		case obj.Kind == "Deployment" && obj.Metadata.Name == "mesh-prometheus":
			for _, c := range obj.Spec.Template.Spec.Containers {
				if c.Name == "prometheus" {
					out.args, out.resources = c.Args, c.Resources
				}
			}
		}
	}
	if out.promYML == "" || out.args == nil {
		return out, errors.New("no mesh-prometheus ConfigMap and Deployment in the manifests: was prometheus.enabled=true set?")
	}
	return out, nil
}

// fileSD rewrites the rendered scrape config for file-based discovery.
func fileSD(promYML, dir string) ([]byte, error) {
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(promYML), &cfg); err != nil {
		return nil, fmt.Errorf("parsing prometheus.yml: %w", err)
	}
	cfg["rule_files"] = []any{filepath.Join(dir, "recording-rules.yml")}
	scs, _ := cfg["scrape_configs"].([]any)
	n := 0
	for _, sc := range scs {
		m, ok := sc.(map[string]any)
		if !ok {
			continue
		}
		if _, ok := m["kubernetes_sd_configs"]; ok {
			delete(m, "kubernetes_sd_configs")
			m["file_sd_configs"] = []any{map[string]any{"files": []any{filepath.Join(dir, "targets.json")}}}
			n++
		}
	}
	if n == 0 {
		return nil, errors.New("prometheus.yml has no kubernetes_sd_configs to replace")
	}
	return yaml.Marshal(cfg)
}

// targets are the file_sd targets with the pod metadata kubernetes_sd would add.
func targets(proxies, portBase int) []map[string]any {
	var out []map[string]any
	for i := range proxies {
		ns, deploy, hash, pod := layout(i)
		out = append(out, map[string]any{
			"targets": []string{fmt.Sprintf("127.0.0.1:%d", portBase+i)},
			"labels": map[string]string{
				"__meta_kubernetes_namespace":                   ns,
				"__meta_kubernetes_pod_name":                    pod,
				"__meta_kubernetes_pod_container_name":          "mesh-proxy",
				"__meta_kubernetes_pod_container_port_name":     "mesh-admin",
				"__meta_kubernetes_pod_controller_kind":         "ReplicaSet",
				"__meta_kubernetes_pod_controller_name":         deploy + "-" + hash,
				"__meta_kubernetes_pod_label_pod_template_hash": hash,
			},
		})
	}
	return out
}

func writeConfig(o configOptions) error {
	r, err := readRendered(o.manifests)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	prom, err := fileSD(r.promYML, dir)
	if err != nil {
		return err
	}
	tj, err := json.MarshalIndent(targets(o.proxies, o.portBase), "", "  ")
	if err != nil {
		return fmt.Errorf("encoding targets: %w", err)
	}
	var flags []string
	for _, a := range r.args {
		if strings.HasPrefix(a, "--storage.tsdb.retention") || strings.HasPrefix(a, "--query.") || strings.HasPrefix(a, "--storage.tsdb.wal") {
			flags = append(flags, a)
		}
	}
	res, err := json.Marshal(r.resources)
	if err != nil {
		return fmt.Errorf("encoding resources: %w", err)
	}
	files := map[string][]byte{
		"prometheus.yml":      prom,
		"recording-rules.yml": []byte(r.rulesYML),
		"targets.json":        tj,
		"flags":               []byte(strings.Join(flags, "\n") + "\n"),
		"resources":           append(res, '\n'),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

type serveOptions struct {
	proxies, portBase                int
	clients, dsts, endpoints, routes int
	rps                              int
	duration                         time.Duration
	readyFile                        string
}

func runServe(args []string) error {
	var o serveOptions
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.IntVar(&o.proxies, "proxies", 100, "simulated proxies")
	fs.IntVar(&o.portBase, "port-base", 31000, "first proxy's port on 127.0.0.1")
	fs.IntVar(&o.clients, "clients", 3, "client workloads calling each proxy's app (inbound)")
	fs.IntVar(&o.dsts, "dsts", 3, "destination services each proxy's app calls (outbound)")
	fs.IntVar(&o.endpoints, "endpoints", 3, "endpoints (pods) of each destination")
	fs.IntVar(&o.routes, "routes", 2, "ServiceProfile routes of each destination")
	fs.IntVar(&o.rps, "rps", 20, "simulated requests per second per proxy, inbound and outbound each")
	fs.DurationVar(&o.duration, "duration", 2*time.Hour, "stop after this long")
	fs.StringVar(&o.readyFile, "ready-file", "", "written once every endpoint listens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, o.duration)
	defer cancelT()
	return serve(ctx, o)
}

// proxy is one simulated proxy: its registry and the series its traffic uses.
type proxy struct {
	reg      *metrics.Registry
	inbound  []*metrics.HTTPSeries
	outbound []*metrics.HTTPSeries
	tcp      []*metrics.TCPSeries
}

func newProxy(i int, o serveOptions) *proxy {
	ns, deploy, _, _ := layout(i)
	td := "cluster.local"
	p := &proxy{reg: metrics.New()}
	self := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
	for c := range o.clients {
		id := fmt.Sprintf("client-%d.%s.serviceaccount.identity.%s", c, ns, td)
		l := metrics.HTTPLabels{Direction: "inbound", Authority: fmt.Sprintf("%s.%s.svc.%s:80", deploy, ns, td),
			TargetAddr: self + ":8080", TLS: true, PeerID: id}
		p.inbound = append(p.inbound, p.reg.HTTP(l))
		p.tcp = append(p.tcp, p.reg.TCP(metrics.TCPLabels{Direction: "inbound", Peer: "src", TargetAddr: self + ":8080", TLS: true, PeerID: id}))
	}
	for d := range o.dsts {
		svc := fmt.Sprintf("dst-%d", d)
		id := fmt.Sprintf("%s.%s.serviceaccount.identity.%s", svc, ns, td)
		for e := range o.endpoints {
			addr := fmt.Sprintf("10.2.%d.%d:8080", d, e+1)
			pod := fmt.Sprintf("%s-6c9d8b7f5-%05d", svc, e)
			p.tcp = append(p.tcp, p.reg.TCP(metrics.TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: addr, TLS: true, PeerID: id}))
			for r := range o.routes {
				l := metrics.HTTPLabels{Direction: "outbound", Authority: fmt.Sprintf("%s.%s.svc.%s:80", svc, ns, td),
					TargetAddr: addr, TLS: true, PeerID: id, DstNamespace: ns, DstService: svc, DstPod: pod,
					DstWorkloadKind: "replicaset", DstWorkloadName: svc + "-6c9d8b7f5",
					Route: fmt.Sprintf("GET /api/v1/%s/r%d", svc, r)}
				p.outbound = append(p.outbound, p.reg.HTTP(l))
			}
		}
	}
	for _, t := range p.tcp {
		t.Open()
	}
	return p
}

// tick records one second of traffic: rps requests inbound and outbound, spread over
// the series, 1% of them 500s, latencies log-uniform in 1-200 ms.
func (p *proxy) tick(rps int, rnd *rand.Rand) {
	one := func(s *metrics.HTTPSeries) {
		s.Request()
		status := 200
		if rnd.IntN(100) == 0 {
			status = 500
		}
		lat := time.Duration(float64(time.Millisecond) * pow200(rnd.Float64()))
		s.Response(status, "", lat)
		s.End(status, "")
	}
	for range rps {
		one(p.inbound[rnd.IntN(len(p.inbound))])
		one(p.outbound[rnd.IntN(len(p.outbound))])
	}
	for _, t := range p.tcp {
		t.Read(int64(rnd.IntN(20000)))
		t.Write(int64(rnd.IntN(20000)))
	}
}

// pow200 maps [0,1) to [1,200) log-uniformly.
func pow200(f float64) float64 { return math.Pow(200, f) }

func serve(ctx context.Context, o serveOptions) error {
	proxies := make([]*proxy, o.proxies)
	var servers []*http.Server
	for i := range o.proxies {
		p := newProxy(i, o)
		proxies[i] = p
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.portBase+i))
		if err != nil {
			return fmt.Errorf("proxy %d: %w", i, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", p.reg.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
	}
	if o.readyFile != "" {
		if err := os.WriteFile(o.readyFile, []byte("ready\n"), 0o644); err != nil {
			return fmt.Errorf("ready file: %w", err)
		}
	}
	w := bufio.NewWriter(os.Stderr)
	fmt.Fprintf(w, "benchprom: %d proxies on 127.0.0.1:%d-%d\n", o.proxies, o.portBase, o.portBase+o.proxies-1)
	_ = w.Flush()
	rnd := rand.New(rand.NewPCG(1, 2))
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			for _, s := range servers {
				_ = s.Close()
			}
			return nil
		case <-t.C:
			for _, p := range proxies {
				p.tick(o.rps, rnd)
			}
		}
	}
}

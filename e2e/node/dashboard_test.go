package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meshplane/mesh/internal/testing/browser"
)

// testDashboard is issue 14's browser proof on the real node: the built `mesh
// dashboard`, on 127.0.0.1 with an ephemeral port and the node's kubeconfig, in
// Debian's headless chromium. The namespace page shows the demo's workloads with
// non-zero RPS and the topology graph has exactly the edges `mesh edges` prints
// (load and client to web over mTLS, the unmeshed callers); web's page streams
// its live tap through the API server's pods/portforward and kubelet: the load
// generator's requests, over mTLS with its identity, and events of every web pod, with
// one port-forward per pod that Stop closes and Start opens again; interrupted
// with that tap open, the dashboard exits 0. With -update it writes the
// screenshots docs/img/node-dashboard-*.png.
func (n *node) testDashboard(t *testing.T) {
	start := time.Now()
	bctx := browser.New(t, 4*time.Minute) // skips here when chromium is missing
	url, proc := n.dashboard(t)
	id := "default." + auto + ".serviceaccount.identity.cluster.local"
	load := n.onePod(auto, "load")
	d := func(name string) string { return auto + "/deployment/" + name }

	// The namespace page: the workloads' RPS (the load sends web 40 requests a
	// second, kubelet's probes reach every proxy; one window on this shared
	// machine may see less, so only > 0 is asserted) and the topology.
	var rps map[string]string
	var edges []string
	var shot []byte
	err := chromedp.Do(bctx,
		chromedp.Navigate(url+"#/ns/"+auto),
		browser.Into(new(bool), chromedp.Poll[bool](`(() => {
			const rps = (n) => { const c = document.querySelector('#workloads-table tr[data-name="' + n + '"] td.rps');
				return c ? parseFloat(c.textContent) : 0; };
			return rps("web") > 0 && rps("load") > 0 && rps("client") > 0 && document.querySelectorAll("#topology path.edge").length > 0;
		})()`, chromedp.WithPollingTimeout(2*time.Minute))),
		browser.Into(&rps, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll("#workloads-table tbody tr[data-name]")]
			.map((r) => [r.dataset.name, r.querySelector("td.rps").textContent]))`)),
		browser.Into(&edges, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#topology path.edge")]
			.map((e) => e.dataset.src + " -> " + e.dataset.dst + (e.dataset.secured === "true" ? " mTLS" : " plain"))`)),
		browser.Into(&shot, chromedp.FullScreenshot(100)),
	)
	if err != nil {
		t.Fatalf("the namespace page: %v", err)
	}
	t.Logf("%s: the workload table's RPS: %v", since(start), rps) // the poll above waited for each to be > 0
	slices.Sort(edges)
	want := n.edges(t)
	t.Logf("the topology's edges: %q", edges)
	if !slices.Equal(edges, want) {
		t.Errorf("the topology's edges:\n got %q\nwant %q (mesh edges deploy -n %s)", edges, want, auto)
	}
	for _, e := range []string{d("load") + " -> " + d("web") + " mTLS", "unmeshed -> " + d("web") + " plain"} {
		if !slices.Contains(edges, e) {
			t.Errorf("the topology has no edge %s: %q", e, edges)
		}
	}
	browser.Screenshot(t, filepath.Join(n.root, "docs", "img", "node-dashboard-namespace.png"), shot)

	// web's page: its row, its edges and the live tap of the load's requests (path
	// "/", from the load pod's address, with its identity), and events from each web
	// pod (the balancer may leave one out of the load's for a while; kubelet probes
	// every pod each 2 s).
	webs := len(n.pods(auto, "app=web"))
	var tapped tapView
	var graph []string
	err = chromedp.Do(bctx,
		chromedp.Navigate(url+"#/ns/"+auto+"/deployment/web"),
		browser.Into(new(bool), chromedp.Poll[bool](fmt.Sprintf(`(() => {
			const all = [...document.querySelectorAll("#tap tr.tap-event")];
			const rows = all.filter((r) => r.dataset.direction === "inbound" &&
				r.dataset.path === "/" && r.dataset.status === "200" && r.dataset.tls === "true" && r.dataset.peer === %q &&
				r.dataset.src.startsWith(%q));
			const c = document.querySelector('#workload-table tr[data-name="web"] td.rps');
			return rows.length >= 20 && new Set(all.map((r) => r.dataset.proxy)).size >= %d &&
				!!c && parseFloat(c.textContent) > 0 && document.querySelectorAll("#topology path.edge").length > 0;
		})()`, id, load.Status.PodIP+":", webs), chromedp.WithPollingTimeout(2*time.Minute))),
		browser.Into(&tapped, chromedp.Evaluate[tapView](`(() => { const rows = [...document.querySelectorAll("#tap tr.tap-event")];
			return { events: rows.length, proxies: [...new Set(rows.map((r) => r.dataset.proxy))].sort(),
				status: document.getElementById("tap-status").textContent }; })()`)),
		browser.Into(&graph, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#topology path.edge")].map((e) => e.dataset.src + " -> " + e.dataset.dst)`)),
		browser.Into(&shot, chromedp.CaptureScreenshot()),
	)
	if err != nil {
		t.Fatalf("web's page: %v", err)
	}
	t.Logf("%s: web's live tap: %d events from %v; %s", since(start), tapped.Events, tapped.Proxies, tapped.Status)
	if !slices.Contains(graph, d("load")+" -> "+d("web")) {
		t.Errorf("web's edges: %q, want load -> web", graph)
	}
	browser.Screenshot(t, filepath.Join(n.root, "docs", "img", "node-dashboard-workload.png"), shot)

	// Stop ends the tap: the dashboard closes its port-forward to each web pod.
	// (The eventual checks poll the process's sockets: there is nothing to wait on.)
	forwards := func() int {
		l, err := loopbackListeners(proc.Pid)
		if err != nil {
			t.Fatalf("mesh dashboard's sockets: %v", err)
		}
		return l - 1 // its own
	}
	if got := forwards(); got != webs {
		t.Errorf("mesh dashboard, tapping web: %d port-forwards open, want %d (one per pod)", got, webs)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS("#tap-toggle"))); err != nil {
		t.Fatalf("clicking Stop: %v", err)
	}
	eventually(t, 30*time.Second, func() string {
		if got := forwards(); got != 0 {
			return fmt.Sprintf("mesh dashboard: %d port-forwards still open after Stop", got)
		}
		return ""
	})
	// Start taps again; the interrupt at the end finds this tap open.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS("#tap-toggle"))); err != nil {
		t.Fatalf("clicking Start: %v", err)
	}
	eventually(t, 30*time.Second, func() string {
		if got := forwards(); got != webs {
			return fmt.Sprintf("mesh dashboard: %d port-forwards open after Start, want %d", got, webs)
		}
		return ""
	})
	t.Logf("%s: Stop and Start done; the dashboard in chromium took that long", since(start))
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// tapView is what the test reads of the live tap's table: its rows, the proxies
// they came from and the tap's status line.
type tapView struct {
	Events  int      `json:"events"`
	Proxies []string `json:"proxies"`
	Status  string   `json:"status"`
}

// edges is what `mesh edges deploy -n demo-auto -o json` prints, as the dashboard's
// topology names its edges: "SRC -> DST mTLS|plain", sorted.
func (n *node) edges(t *testing.T) []string {
	t.Helper()
	type ref struct{ Kind, Namespace, Name string }
	var list []struct {
		Src, Dst *ref
		Secured  bool
	}
	o := n.mustMesh(nil, "edges", "deploy", "-n", auto, "-o", "json")
	if err := json.Unmarshal([]byte(o), &list); err != nil {
		t.Fatalf("mesh edges -o json: %v\n%s", err, o)
	}
	// No src: callers without a proxy; no dst: requests the proxy could send
	// nowhere (no endpoints: the load starts before web is ready).
	key := func(r *ref, none string) string {
		if r == nil {
			return none
		}
		return r.Namespace + "/" + r.Kind + "/" + r.Name
	}
	var out []string
	for _, e := range list {
		tls := " plain"
		if e.Secured {
			tls = " mTLS"
		}
		out = append(out, key(e.Src, "unmeshed")+" -> "+key(e.Dst, "unknown")+tls)
	}
	slices.Sort(out)
	return out
}

// dashboard starts the built `mesh dashboard` for demo-auto on 127.0.0.1 with a
// port the kernel picks, and returns the URL it prints and its process. At the end
// of the test it is interrupted, as Ctrl-C does: it must exit 0.
func (n *node) dashboard(t *testing.T) (string, *os.Process) {
	t.Helper()
	cmd := exec.Command(n.mesh, "dashboard", "-n", auto, "--address", "127.0.0.1", "--port", "0", "-t", "5s")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+n.kubeconfig)
	stderr := &urlWriter{url: make(chan string, 1)}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("mesh dashboard, interrupted: %v (want exit 0)\nstderr:\n%s", err, stderr)
				return
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("mesh dashboard still runs 30 s after an interrupt\nstderr:\n%s", stderr)
			return
		}
		t.Logf("mesh dashboard's stderr:\n%s", stderr)
	})
	select {
	case u := <-stderr.url:
		return u, cmd.Process
	case err := <-exited:
		exited <- err
		t.Fatalf("mesh dashboard exited: %v\nstderr:\n%s", err, stderr)
	case <-time.After(time.Minute):
		t.Fatalf("mesh dashboard printed no URL in a minute\nstderr:\n%s", stderr)
	}
	return "", nil
}

// loopbackListeners counts the TCP sockets pid listens on at 127.0.0.1: the
// dashboard's own and one per open port-forward (viz/tap.PortForward).
func loopbackListeners(pid int) (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	sockets := map[string]bool{}
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			sockets[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		// sl local_address rem_address st ... inode: 0100007F is 127.0.0.1, 0A LISTEN.
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasPrefix(f[1], "0100007F:") && f[3] == "0A" && sockets[f[9]] {
			n++
		}
	}
	return n, nil
}

// urlWriter keeps a command's stderr and sends the URL of its first line "mesh
// dashboard: serving namespace NS on http://HOST:PORT/ (...)".
type urlWriter struct {
	mu   sync.Mutex
	b    bytes.Buffer
	url  chan string
	sent bool
}

func (w *urlWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	for line := range strings.Lines(w.b.String()) {
		_, rest, ok := strings.Cut(line, " on http://")
		if w.sent || !ok || !strings.HasSuffix(line, "\n") {
			continue
		}
		hostport, _, _ := strings.Cut(rest, "/")
		if host, _, err := net.SplitHostPort(hostport); err == nil && host == "127.0.0.1" {
			w.url <- "http://" + hostport + "/"
			w.sent = true
		}
	}
	return len(p), nil
}

func (w *urlWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

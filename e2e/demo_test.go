package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/proxy/netnstest"
)

// requests is how many calls of each kind (by name, by cluster IP) the demo's client makes.
const requests = 3

// series is one metric line of the demo's output: name{labels} value.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	seriesRE = regexp.MustCompile(`^\s*([a-z_]+)\{(.*)\} (\S+)$`)
	labelRE  = regexp.MustCompile(`([a-z_]+)="((?:[^"\\]|\\.)*)"`)
	nsRE     = regexp.MustCompile(`namespaces (mesh-demo-cp-[0-9a-f]+) \(control plane\) and (mesh-demo-[0-9a-f]+) \(app\)`)
	ipRE     = regexp.MustCompile(`Service web: cluster IP (\S+) port 80 -> targetPort 8080`)
	workRE   = regexp.MustCompile(`logs and files: (/\S+)\)`)
	epRE     = regexp.MustCompile(`EndpointSlice: (\S+:8080) ready`)
)

// sum adds up the values of the name series that have every label in want ("" matches
// an absent label: the demo leaves empty labels out).
func sum(all []series, name string, want map[string]string) float64 {
	var s float64
	for _, x := range all {
		if x.name != name {
			continue
		}
		ok := true
		for k, v := range want {
			if x.labels[k] != v {
				ok = false
			}
		}
		if ok {
			s += x.value
		}
	}
	return s
}

// TestDemo runs hack/demo.sh, the transparent-mode demo: an unmodified client (curl) in
// one network namespace calls a plain HTTP server in another by its Service address,
// through two mesh-proxies whose iptables rules, environment and volumes come from the
// pod specs `mesh inject --manual` wrote. The proxies' certificates come from the real
// identity service (with real ServiceAccount tokens of the test cluster) and the route
// from the real destination service. The test asserts on what the demo printed: every
// answer came from the app; the server's proxy counted the requests inbound with
// tls="true" and the client's identity; the client's proxy counted them outbound with
// tls="true" and the server's identity as the destination service named it; a plaintext
// caller is counted with tls="false"; and everything the demo made is gone afterwards.
func TestDemo(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the demo needs Linux network namespaces")
	}
	cs := testcluster.Clientset(t) // skips (or fails when required) without the test cluster
	if os.Geteuid() != 0 {
		netnstest.Unavailable(t, "the demo needs root (ip netns, iptables)")
	}
	for _, tool := range []string{"ip", "iptables", "curl", "jq", "setpriv", "flock", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			netnstest.Unavailable(t, "the demo needs %s on PATH", tool)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a bound, not a speed goal
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../hack/demo.sh")
	cmd.Env = append(os.Environ(), "MESH_DEMO_REQUESTS="+strconv.Itoa(requests), "MESH_DEMO_LOCK_WAIT=180", "MESH_DEMO_KEEP=")
	// On timeout, SIGTERM: the script's trap removes what it made.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	text := string(out)
	t.Logf("hack/demo.sh (%s):\n%s", time.Since(start).Round(time.Second), text)
	if err != nil {
		t.Fatalf("hack/demo.sh: %v", err)
	}
	if !strings.Contains(text, "\ndemo: PASS: ") {
		t.Fatal(`no "demo: PASS" line`)
	}

	m := nsRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no namespaces line")
	}
	cpNS, appNS := m[1], m[2]
	ipm := ipRE.FindStringSubmatch(text)
	if ipm == nil {
		t.Fatal("no cluster IP line")
	}
	clusterIP := ipm[1]
	epm := epRE.FindStringSubmatch(text)
	if epm == nil {
		t.Fatal("no EndpointSlice line")
	}
	endpoint := epm[1] // the server pod's address, as the EndpointSlice lists it
	clientID := "client." + appNS + ".serviceaccount.identity.cluster.local"
	serverID := "server." + appNS + ".serviceaccount.identity.cluster.local"
	svcName := "web." + appNS + ".svc.cluster.local"

	var all []series
	var answers int
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "-> HTTP 200: hello from web: GET /by-") {
			answers++
		}
		if s := seriesRE.FindStringSubmatch(line); s != nil {
			v, err := strconv.ParseFloat(s[3], 64)
			if err != nil {
				continue
			}
			x := series{name: s[1], labels: map[string]string{}, value: v}
			for _, l := range labelRE.FindAllStringSubmatch(s[2], -1) {
				x.labels[l[1]] = l[2]
			}
			all = append(all, x)
		}
	}
	if answers != 2*requests {
		t.Errorf("the client got %d answers from the app, want %d", answers, 2*requests)
	}

	// Both proxies were certified by the identity service of this run (its issuer).
	for _, id := range []string{clientID, serverID} {
		for _, want := range []string{"certificate: subject=CN = " + id, "certificate: DNS:" + id} {
			if !strings.Contains(text, want) {
				t.Errorf("no %q line: the proxy's certificate", want)
			}
		}
	}
	if n := strings.Count(text, "certificate: issuer=CN = identity."+cpNS+".cluster.local"); n != 2 {
		t.Errorf("%d certificates issued by identity.%s.cluster.local, want 2", n, cpNS)
	}
	if !strings.Contains(text, "mesh_identity_certificates_issued_total 3 ") {
		t.Error("identity did not report 3 certificates issued (destination, web, client)")
	}

	// The server's proxy saw the client's identity over TLS, for both ways of addressing the Service.
	for _, authority := range []string{svcName, clusterIP} {
		in := map[string]string{"direction": "inbound", "tls": "true", "client_id": clientID, "authority": authority, "target_addr": "127.0.0.1:8080"}
		if got := sum(all, "request_total", in); got != requests {
			t.Errorf("server proxy request_total%v = %v, want %d", in, got, requests)
		}
		in["status_code"], in["classification"] = "200", "success"
		if got := sum(all, "response_total", in); got != requests {
			t.Errorf("server proxy response_total%v = %v, want %d", in, got, requests)
		}
		// The client's proxy: routed by the destination service to the pod, over mTLS to the server's identity.
		out := map[string]string{"direction": "outbound", "tls": "true", "server_id": serverID, "authority": authority,
			"target_addr": endpoint, "dst_service": "web", "dst_namespace": appNS, "dst_pod": "web"}
		if got := sum(all, "request_total", out); got != requests {
			t.Errorf("client proxy request_total%v = %v, want %d", out, got, requests)
		}
	}
	// No request went out or came in without TLS, except the host's plaintext one.
	if got := sum(all, "request_total", map[string]string{"direction": "outbound", "tls": "false"}); got != 0 {
		t.Errorf("client proxy: %v outbound requests without TLS", got)
	}
	plain := map[string]string{"direction": "inbound", "tls": "false", "client_id": "", "no_tls_reason": "no_tls_from_remote"}
	if got := sum(all, "request_total", plain); got != 1 {
		t.Errorf("server proxy request_total%v = %v, want 1 (the host's plaintext request)", plain, got)
	}

	// Cleaned up: processes, network namespaces, bridge, Kubernetes namespaces (deleting) and Node.
	if wm := workRE.FindStringSubmatch(text); wm == nil {
		t.Error("no work directory line")
	} else {
		procs, _ := filepath.Glob("/proc/[0-9]*/environ")
		for _, p := range procs {
			if env, err := os.ReadFile(p); err == nil && bytes.Contains(env, []byte("\x00MESH_DEMO_RUN="+wm[1]+"\x00")) {
				t.Errorf("a process of the demo is left: %s", filepath.Dir(p))
			}
		}
		if _, err := os.Stat(wm[1]); err == nil {
			t.Errorf("work directory %s left", wm[1])
		}
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err != nil || strings.Contains(string(out), "mesh-demo-") {
		t.Errorf("network namespaces left: %s %v", out, err)
	}
	for _, dev := range []string{"meshdemo0", "mdc", "mds"} {
		if exec.Command("ip", "link", "show", dev).Run() == nil {
			t.Errorf("network device %s left", dev)
		}
	}
	for _, ns := range []string{cpNS, appNS} {
		n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err == nil && n.DeletionTimestamp == nil {
			t.Errorf("namespace %s left", ns)
		} else if err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "meshplane.io/demo"})
	if err != nil || len(nodes.Items) != 0 {
		t.Errorf("demo Nodes left: %v %v", nodes, err)
	}
}

package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// node is the cluster of hack/cluster.sh, as `hack/cluster.sh env` describes it, and the
// mesh CLI built from this checkout.
type node struct {
	t          testing.TB
	kubeconfig string
	kubectl    string
	mesh       string
	version    string // the images' tag
	dir        string // scratch files
	root       string // this checkout
	injected   []byte // the demo as mesh inject --manual wrote it
}

func newNode(t testing.TB) *node {
	t.Helper()
	kc, kubectl := os.Getenv("MESH_NODE_KUBECONFIG"), os.Getenv("MESH_NODE_KUBECTL")
	if kc == "" || kubectl == "" {
		msg := "no real node: run hack/cluster.sh up and eval \"$(hack/cluster.sh env)\" (MESH_NODE_KUBECONFIG, MESH_NODE_KUBECTL)"
		if os.Getenv("MESH_REQUIRE_NODE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	n := &node{t: t, kubeconfig: kc, kubectl: kubectl, version: os.Getenv("MESH_NODE_IMAGE_VERSION"), dir: t.TempDir()}
	if n.version == "" {
		n.version = "dev"
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	n.root = root
	n.mesh = filepath.Join(n.dir, "mesh")
	// An unstamped CLI renders the version "dev", the images' tag by default.
	build := exec.Command("go", "build", "-o", n.mesh, "./cli/mesh")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cli/mesh: %v\n%s", err, out)
	}
	return n
}

// sub makes f a subtest whose helpers (n.must, n.kc, ...) fail that subtest, not its
// parent. Subtests of this package run one after another.
func (n *node) sub(f func(*testing.T)) func(*testing.T) {
	return func(t *testing.T) {
		parent := n.t
		n.t = t
		defer func() { n.t = parent }()
		f(t)
	}
}

// run runs a command with the node's kubeconfig; stdin may be nil.
func (n *node) run(stdin []byte, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+n.kubeconfig)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// must runs a command that has to succeed and returns its stdout.
func (n *node) must(stdin []byte, name string, args ...string) string {
	n.t.Helper()
	o, e, err := n.run(stdin, name, args...)
	if err != nil {
		n.t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, o, e)
	}
	return o
}

func (n *node) kc(args ...string) string { n.t.Helper(); return n.must(nil, n.kubectl, args...) }

func (n *node) apply(ns string, manifest []byte, extra ...string) {
	n.t.Helper()
	args := append([]string{"apply", "-f", "-"}, extra...)
	if ns != "" {
		args = append(args, "-n", ns)
	}
	n.must(manifest, n.kubectl, args...)
}

// meshCmd runs the mesh CLI and returns its exit code, stdout and stderr.
func (n *node) meshCmd(stdin []byte, args ...string) (int, string, string) {
	o, e, err := n.run(stdin, n.mesh, args...)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatalf("mesh %s: %v", strings.Join(args, " "), err)
	}
	return code, o, e
}

// mustMesh runs the mesh CLI, which has to exit 0.
func (n *node) mustMesh(stdin []byte, args ...string) string {
	n.t.Helper()
	code, o, e := n.meshCmd(stdin, args...)
	if code != 0 {
		n.t.Fatalf("mesh %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, o, e)
	}
	return o
}

// demo is testdata/demo.yaml for the images' version.
func (n *node) demo() []byte {
	n.t.Helper()
	b, err := os.ReadFile("testdata/demo.yaml")
	if err != nil {
		n.t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte(":dev\n"), []byte(":"+n.version+"\n"))
}

// waitAvailable waits for every Deployment of ns to be rolled out and available.
func (n *node) waitAvailable(ns string) {
	n.t.Helper()
	for _, d := range strings.Fields(n.kc("get", "deploy", "-n", ns, "-o", "name")) {
		n.kc("rollout", "status", "-n", ns, d, "--timeout=240s")
	}
	n.kc("wait", "-n", ns, "--for=condition=Available", "deploy", "--all", "--timeout=240s")
}

// pod is what the tests read of a pod.
type pod struct {
	Metadata struct {
		Name        string            `json:"name"`
		UID         string            `json:"uid"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		Owners      []struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"ownerReferences"`
		Owner    struct{ Kind, Name string } `json:"-"` // the first of Owners
		Deletion *string                     `json:"deletionTimestamp"`
	} `json:"metadata"`
	Spec struct {
		InitContainers []struct {
			Name          string `json:"name"`
			Image         string `json:"image"`
			RestartPolicy string `json:"restartPolicy"`
		} `json:"initContainers"`
		Containers []struct {
			Name  string `json:"name"`
			Image string `json:"image"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		ContainerStatuses []struct {
			Name         string `json:"name"`
			Ready        bool   `json:"ready"`
			RestartCount int    `json:"restartCount"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

func (p pod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// containers lists the names of the init containers and containers.
func (p pod) containers() (init, main []string) {
	for _, c := range p.Spec.InitContainers {
		init = append(init, c.Name)
	}
	for _, c := range p.Spec.Containers {
		main = append(main, c.Name)
	}
	return init, main
}

// pods lists the running (not terminating) pods of ns matching the label selector.
func (n *node) pods(ns, selector string) []pod {
	n.t.Helper()
	var list struct{ Items []pod }
	if err := json.Unmarshal([]byte(n.kc("get", "pods", "-n", ns, "-l", selector, "-o", "json")), &list); err != nil {
		n.t.Fatal(err)
	}
	var out []pod
	for _, p := range list.Items {
		if len(p.Metadata.Owners) > 0 {
			p.Metadata.Owner.Kind, p.Metadata.Owner.Name = p.Metadata.Owners[0].Kind, p.Metadata.Owners[0].Name
		}
		if p.Metadata.Deletion == nil && p.Status.Phase == "Running" {
			out = append(out, p)
		}
	}
	return out
}

// onePod is the one running pod of a Deployment's label app=name.
func (n *node) onePod(ns, app string) pod {
	n.t.Helper()
	ps := n.pods(ns, "app="+app)
	if len(ps) != 1 {
		n.t.Fatalf("%s: %d running pods of app=%s, want 1", ns, len(ps), app)
	}
	return ps[0]
}

// stats is loadgen's /stats and /run answer.
type stats struct {
	Requests  int                `json:"requests"`
	OK        int                `json:"ok"`
	Failed    int                `json:"failed"`
	Errors    map[string]int     `json:"errors"`
	ByPod     map[string]int     `json:"byPod"`
	LatencyMs map[string]float64 `json:"latencyMs"`
}

// podHTTP makes a request to a pod's IP from this machine (on the node's bridge).
func podHTTP(method, url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// load sends count requests from a loadgen pod (POST /run) and returns its counters.
func (n *node) load(client pod, mode, target string, count, concurrency int, rps float64) stats {
	n.t.Helper()
	s, err := runLoad(client, mode, target, count, concurrency, rps)
	if err != nil {
		n.t.Fatal(err)
	}
	return s
}

// runLoad is load for any goroutine: it reports failures as an error.
func runLoad(client pod, mode, target string, count, concurrency int, rps float64) (stats, error) {
	url := fmt.Sprintf("http://%s:8081/run?mode=%s&target=%s&count=%d&concurrency=%d&rps=%g", client.Status.PodIP, mode, target, count, concurrency, rps)
	var s stats
	code, body, err := podHTTP(http.MethodPost, url)
	if err != nil || code != http.StatusOK {
		return s, fmt.Errorf("POST %s: %d %v %s", url, code, err, body)
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("POST %s: %w: %s", url, err, body)
	}
	return s, nil
}

// loadStats reads (reset: and zeroes) the counters of the continuous load generator.
func (n *node) loadStats(load pod, reset bool) stats {
	n.t.Helper()
	method, path := http.MethodGet, "/stats"
	if reset {
		method, path = http.MethodPost, "/reset"
	}
	code, body, err := podHTTP(method, "http://"+load.Status.PodIP+":8081"+path)
	if err != nil || code != http.StatusOK {
		n.t.Fatalf("%s %s: %d %v %s", method, path, code, err, body)
	}
	var s stats
	if err := json.Unmarshal(body, &s); err != nil {
		n.t.Fatal(err)
	}
	return s
}

// metrics is a proxy's Prometheus text from its admin port.
func metrics(t testing.TB, p pod) string {
	t.Helper()
	code, body, err := podHTTP(http.MethodGet, "http://"+p.Status.PodIP+":4191/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s metrics: %d %v", p.Metadata.Name, code, err)
	}
	return string(body)
}

// samples are the lines of metric name whose labels include every one of labels.
func samples(text, name string, labels ...string) []string {
	var out []string
	for l := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(l, name+"{") {
			continue
		}
		all := true
		for _, want := range labels {
			all = all && strings.Contains(l, want)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

// eventually retries f (which reports what is not yet true) until it returns "" or
// the timeout passes.
func eventually(t testing.TB, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(time.Second) // polling a cluster: there is nothing to wait on
	}
}

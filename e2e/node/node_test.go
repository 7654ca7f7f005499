package node

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	auto   = "demo-auto"   // meshed by the webhook (namespace annotation)
	manual = "demo-manual" // meshed by mesh inject --manual
	plain  = "demo-plain"  // never meshed
)

// TestMeshOnNode is a user's path on a real node, in order: install with kubectl,
// mesh diff and mesh prune of new renders, the demo app meshed both ways, mTLS
// traffic of HTTP/1, gRPC and opaque TCP, mesh stat, mesh tap, mesh dashboard in a
// headless browser, balancing, a ServiceProfile, failures of the control plane and
// of the app, mesh version, an upgrade from the previous release and a
// trust-anchor rotation under load, uninjecting and uninstalling.
func TestMeshOnNode(t *testing.T) {
	n := newNode(t)
	n.reset()

	if !t.Run("install", n.sub(n.testInstall)) {
		return
	}
	t.Run("day-two", n.sub(n.testDayTwo))
	if !t.Run("demo", n.sub(n.testDemo)) {
		return
	}
	t.Run("traffic", n.sub(n.testTraffic))
	t.Run("stat", n.sub(n.testStat))
	t.Run("stat-sources", n.sub(n.testStatSources))
	t.Run("tap", n.sub(n.testTap))
	t.Run("dashboard", n.sub(n.testDashboard))
	t.Run("balancing", n.sub(n.testBalancing))
	t.Run("profile", n.sub(n.testProfile))
	t.Run("rolling-restart", n.sub(n.testRollingRestart))
	t.Run("control-plane-restart", n.sub(n.testControlPlaneRestart))
	t.Run("injector-down", n.sub(n.testInjectorDown))
	t.Run("version", n.sub(n.testVersion))
	t.Run("upgrade", n.sub(n.testUpgrade))
	t.Run("rotate-anchor", n.sub(n.testRotate))
	t.Run("uninstall-refused", n.sub(n.testUninstallRefused))
	t.Run("uninject", n.sub(n.testUninject))
	t.Run("uninstall", n.sub(n.testUninstall))
}

// reset removes what an earlier run left (the cluster may be reused locally).
func (n *node) reset() {
	for _, ns := range []string{auto, manual, plain} {
		n.kc("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=180s")
	}
	manifests := n.mustMesh(nil, "install")
	n.must([]byte(manifests), n.kubectl, "delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=180s")
}

func (n *node) testInstall(t *testing.T) {
	if code, o, e := n.meshCmd(nil, "check", "--pre"); code != 0 {
		t.Fatalf("mesh check --pre on an empty cluster: exit %d\n%s%s", code, o, e)
	}
	manifests := []byte(n.mustMesh(nil, "install"))
	check := func() {
		eventually(t, 90*time.Second, func() string {
			if code, o, e := n.meshCmd(nil, "check"); code != 0 {
				return fmt.Sprintf("mesh check: exit %d\n%s%s", code, o, e)
			}
			return ""
		})
	}
	// Server-side apply on the empty cluster (as Flux applies), then uninstall.
	n.must(manifests, n.kubectl, "apply", "--server-side", "--field-manager=mesh-e2e", "-f", "-")
	n.waitAvailable("mesh-system")
	check()
	n.must(manifests, n.kubectl, "delete", "-f", "-", "--wait=true", "--timeout=180s")
	// kubectl apply on the empty cluster, as the README says; then the same manifests
	// through server-side apply: no conflict with kubectl's client-side apply.
	n.apply("", manifests)
	n.waitAvailable("mesh-system")
	n.must(manifests, n.kubectl, "apply", "--server-side", "--field-manager=mesh-e2e", "-f", "-")
	n.waitAvailable("mesh-system")
	check()
}

func (n *node) testDemo(t *testing.T) {
	demo := n.demo()
	n.apply("", []byte(fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  annotations:\n    meshplane.io/inject: enabled\n", auto)))
	n.apply(auto, demo)
	n.kc("create", "namespace", manual)
	n.injected = []byte(n.mustMesh(demo, "inject", "--manual", "-f", "-"))
	n.apply(manual, n.injected)
	n.kc("create", "namespace", plain)
	n.apply(plain, demo, "-l", "app=client")
	for _, ns := range []string{auto, manual, plain} {
		n.waitAvailable(ns)
	}
	for _, ns := range []string{auto, manual} {
		for _, p := range n.pods(ns, "app") {
			init, main := p.containers()
			if !slices.Contains(init, "mesh-init") || !slices.Contains(append(init, main...), "mesh-proxy") || !slices.Contains(main, "app") || !p.ready() {
				t.Errorf("%s/%s: init containers %v, containers %v, ready %v; want mesh-init, mesh-proxy and app, ready", ns, p.Metadata.Name, init, main, p.ready())
			}
		}
	}
	for _, p := range n.pods(plain, "app") {
		if init, main := p.containers(); len(init) != 0 || !slices.Equal(main, []string{"app"}) {
			t.Errorf("%s/%s is meshed: %v %v", plain, p.Metadata.Name, init, main)
		}
	}
	eventually(t, 60*time.Second, func() string {
		if code, o, e := n.meshCmd(nil, "check", "--proxy"); code != 0 {
			return fmt.Sprintf("mesh check --proxy: exit %d\n%s%s", code, o, e)
		}
		return ""
	})
}

func (n *node) testTraffic(t *testing.T) {
	for _, ns := range []string{auto, manual} {
		t.Run(ns, n.sub(func(t *testing.T) {
			client := n.onePod(ns, "client")
			webs := n.pods(ns, "app=web")
			clusterIP := strings.TrimSpace(n.kc("get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}"))
			for _, c := range []struct {
				what, mode, target string
				count, pods        int
			}{
				{"HTTP/1 by name", "http", "http://web:8080/", 90, len(webs)},
				{"HTTP/1 by cluster IP", "http", "http://" + clusterIP + ":8080/", 60, len(webs)},
				{"gRPC", "grpc", "web:9090", 60, 2},
				{"opaque TCP, server first", "tcp", "web:7070", 30, 1},
			} {
				// Every request succeeds; discovery may take a moment to list the last
				// endpoint that became ready, so the spread is awaited.
				eventually(t, 30*time.Second, func() string {
					s := n.load(client, c.mode, c.target, c.count, 3, 0)
					if s.OK != c.count {
						t.Fatalf("%s (%s): %d of %d ok, errors %v", c.what, c.target, s.OK, c.count, s.Errors)
					}
					if len(s.ByPod) < c.pods {
						return fmt.Sprintf("%s (%s): by pod %v, want at least %d pods", c.what, c.target, s.ByPod, c.pods)
					}
					return ""
				})
			}
			// mTLS between the proxies, with both identities.
			clientID := fmt.Sprintf(`client_id="default.%s.serviceaccount.identity.`, ns)
			serverID := fmt.Sprintf(`server_id="default.%s.serviceaccount.identity.`, ns)
			var opaque []string
			for _, w := range webs {
				m := metrics(t, w)
				if len(samples(m, "request_total", `direction="inbound"`, `tls="true"`, clientID)) == 0 {
					t.Errorf("%s: no inbound mTLS request_total with %s...; request_total:\n%s", w.Metadata.Name, clientID, strings.Join(samples(m, "request_total"), "\n"))
				}
				opaque = append(opaque, samples(m, "tcp_open_total", `direction="inbound"`, `tls="true"`, clientID, `:7070"`)...)
			}
			if len(opaque) == 0 {
				t.Errorf("no web pod counts inbound mTLS TCP connections to the opaque port 7070 from %s...", clientID)
			}
			if m := metrics(t, client); len(samples(m, "response_total", `direction="outbound"`, `tls="true"`, serverID)) == 0 {
				t.Errorf("client: no outbound mTLS response_total with %s...:\n%s", serverID, strings.Join(samples(m, "response_total"), "\n"))
			}
		}))
	}
	t.Run("unmeshed client", n.sub(func(t *testing.T) {
		client := n.onePod(plain, "client")
		for _, c := range []struct{ mode, target string }{
			{"http", "http://web." + auto + ":8080/"},
			{"grpc", "web." + auto + ":9090"},
			{"tcp", "web." + auto + ":7070"},
		} {
			if s := n.load(client, c.mode, c.target, 30, 2, 0); s.OK != 30 {
				t.Errorf("unmeshed %s to %s: %d of 30 ok, errors %v", c.mode, c.target, s.OK, s.Errors)
			}
		}
	}))
	t.Run("probes", n.sub(func(t *testing.T) {
		for _, ns := range []string{auto, manual} {
			for _, p := range n.pods(ns, "app=web") {
				for _, c := range p.Status.ContainerStatuses {
					if !c.Ready || c.RestartCount != 0 {
						t.Errorf("%s/%s %s: ready %v, restarts %d (HTTP readiness and TCP liveness probes through the proxy)", ns, p.Metadata.Name, c.Name, c.Ready, c.RestartCount)
					}
				}
			}
		}
	}))
}

// Requests spread over every endpoint; one slowed down loses its share.
func (n *node) testBalancing(t *testing.T) {
	client := n.onePod(auto, "client")
	webs := n.pods(auto, "app=web")
	// Peak-EWMA spreads by latency, not evenly: every replica takes a part.
	s := n.load(client, "http", "http://web:8080/", 300, 6, 0)
	t.Logf("all replicas alike: %v", s.ByPod)
	for _, w := range webs {
		if got := s.ByPod[w.Metadata.Name]; got < 15 {
			t.Errorf("all replicas alike: %s got %d of 300, want at least 5%% (%v)", w.Metadata.Name, got, s.ByPod)
		}
	}
	slow := webs[0]
	setDelay := func(d string) {
		if code, body, err := podHTTP("GET", "http://"+slow.Status.PodIP+":8080/delay?d="+d); err != nil || code != 200 {
			t.Fatalf("delay %s on %s: %d %v %s", d, slow.Metadata.Name, code, err, body)
		}
	}
	setDelay("250ms")
	defer setDelay("0")
	n.load(client, "http", "http://web:8080/", 100, 6, 0) // the balancer learns the latency
	s = n.load(client, "http", "http://web:8080/", 300, 6, 0)
	t.Logf("%s 250 ms slower: %v", slow.Metadata.Name, s.ByPod)
	if share := float64(s.ByPod[slow.Metadata.Name]) / float64(s.Requests); s.OK != 300 || share >= 0.05 {
		t.Errorf("with %s 250 ms slower it still got %.1f%% of the requests (%v, errors %v); want under 5%%", slow.Metadata.Name, share*100, s.ByPod, s.Errors)
	}
}

// A ServiceProfile's retry and timeout take effect.
func (n *node) testProfile(t *testing.T) {
	client := n.onePod(auto, "client")
	before := n.load(client, "http", "http://web:8080/flaky", 40, 1, 20)
	if before.OK > 32 {
		t.Fatalf("/flaky without a profile: %d of 40 ok; the app should fail every other request", before.OK)
	}
	n.apply(auto, []byte(`apiVersion: policy.meshplane.io/v1alpha1
kind: ServiceProfile
metadata:
  name: web.`+auto+`.svc.cluster.local
spec:
  routes:
  - name: flaky
    condition: {method: GET, pathRegex: /flaky}
    isRetryable: true
  - name: sleep
    condition: {method: GET, pathRegex: /sleep}
    timeout: 300ms
`))
	eventually(t, 60*time.Second, func() string {
		s := n.load(client, "http", "http://web:8080/flaky", 40, 1, 20)
		if s.OK < 38 {
			return fmt.Sprintf("/flaky with isRetryable: %d of 40 ok (%v)", s.OK, s.Errors)
		}
		return ""
	})
	eventually(t, 60*time.Second, func() string {
		s := n.load(client, "http", "http://web:8080/sleep%3Fd%3D3s", 3, 3, 0)
		if s.OK != 0 || s.Errors["504"] != 3 || s.LatencyMs["p99"] > 2000 {
			return fmt.Sprintf("/sleep?d=3s with a 300ms timeout: ok %d, errors %v, latency %v; want three 504s well before 3 s", s.OK, s.Errors, s.LatencyMs)
		}
		return ""
	})
}

// A rolling restart of the server under load loses no request.
func (n *node) testRollingRestart(t *testing.T) {
	load := n.onePod(auto, "load")
	n.loadStats(load, true)
	n.kc("rollout", "restart", "deploy/web", "-n", auto)
	n.kc("rollout", "status", "deploy/web", "-n", auto, "--timeout=300s")
	// Then 100 more requests on the new pods alone.
	after := n.loadStats(load, false).Requests
	eventually(t, 60*time.Second, func() string {
		if got := n.loadStats(load, false).Requests; got < after+100 {
			return fmt.Sprintf("the load sent %d requests since the rollout ended, want 100", got-after)
		}
		return ""
	})
	s := n.loadStats(load, false)
	if s.Failed != 0 || s.OK < 100 {
		t.Errorf("rolling restart under load: %d ok, %d failed %v", s.OK, s.Failed, s.Errors)
	}
}

// Deleting the destination and identity pods keeps traffic flowing; new pods still
// get certificates once identity is back.
func (n *node) testControlPlaneRestart(t *testing.T) {
	load := n.onePod(auto, "load")
	n.loadStats(load, true)
	n.kc("delete", "pod", "-n", "mesh-system", "-l", "app.kubernetes.io/name in (mesh-destination,mesh-identity)", "--wait=false")
	n.waitAvailable("mesh-system")
	n.kc("scale", "deploy/web", "-n", auto, "--replicas=4")
	n.waitAvailable(auto)
	client := n.onePod(auto, "client")
	eventually(t, 30*time.Second, func() string {
		s := n.load(client, "http", "http://web:8080/", 80, 4, 0)
		if s.OK != 80 {
			t.Fatalf("after the control plane restarted: %d of 80 ok, errors %v", s.OK, s.Errors)
		}
		if len(s.ByPod) != 4 {
			return fmt.Sprintf("after the control plane restarted: by pod %v, want all 4 pods (the new one meshed)", s.ByPod)
		}
		return ""
	})
	if s := n.loadStats(load, false); s.Failed != 0 || s.OK < 50 {
		t.Errorf("traffic while destination and identity restarted: %d ok, %d failed %v", s.OK, s.Failed, s.Errors)
	}
	n.kc("scale", "deploy/web", "-n", auto, "--replicas=3")
	n.waitAvailable(auto)
}

// The injector down: with failurePolicy Fail pod creation is refused with a clear
// message; with Ignore (the default) pods start unmeshed and mesh check says so.
func (n *node) testInjectorDown(t *testing.T) {
	stop := func() {
		n.kc("scale", "deploy/mesh-injector", "-n", "mesh-system", "--replicas=0")
		n.kc("wait", "pod", "-n", "mesh-system", "-l", "app.kubernetes.io/name=mesh-injector", "--for=delete", "--timeout=120s")
	}
	defer func() {
		n.apply("", []byte(n.mustMesh(nil, "install")))
		n.waitAvailable("mesh-system")
	}()
	pod := []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: lonely\n  labels: {app: lonely}\nspec:\n  containers:\n  - name: app\n    image: mesh.local/demoapp:" + n.version + "\n    imagePullPolicy: IfNotPresent\n")

	n.apply("", []byte(n.mustMesh(nil, "install", "--set", "injector.failurePolicy=Fail")))
	stop()
	eventually(t, 30*time.Second, func() string {
		_, e, err := n.run(pod, n.kubectl, "create", "-n", auto, "-f", "-")
		if err == nil {
			n.kc("delete", "pod", "lonely", "-n", auto, "--wait=true")
			return "a pod was created with the injector down and failurePolicy Fail"
		}
		if !strings.Contains(e, "proxy-injector.meshplane.io") {
			return "the refusal does not name the webhook: " + e
		}
		return ""
	})

	n.apply("", []byte(n.mustMesh(nil, "install")))
	stop()
	eventually(t, 30*time.Second, func() string {
		if _, e, err := n.run(pod, n.kubectl, "create", "-n", auto, "-f", "-"); err != nil {
			return "failurePolicy Ignore, injector down: " + e
		}
		return ""
	})
	n.kc("wait", "pod/lonely", "-n", auto, "--for=condition=Ready", "--timeout=120s")
	if init, main := n.onePod(auto, "lonely").containers(); len(init) != 0 || !slices.Equal(main, []string{"app"}) {
		t.Errorf("lonely, made with the injector down: %v %v, want only app", init, main)
	}
	code, o, e := n.meshCmd(nil, "check", "--proxy", "-n", auto)
	if code == 0 || !strings.Contains(o+e, auto+"/lonely") {
		t.Errorf("mesh check --proxy with an unmeshed pod in a meshed namespace: exit %d\n%s%s", code, o, e)
	}
	n.kc("delete", "pod", "lonely", "-n", auto, "--wait=true")
}

// Uninjecting returns the app to plain traffic, both ways it was meshed.
func (n *node) testUninject(t *testing.T) {
	n.apply(manual, []byte(n.mustMesh(n.injected, "uninject", "-f", "-")))
	n.kc("annotate", "namespace", auto, "meshplane.io/inject-")
	n.kc("rollout", "restart", "deploy", "-n", auto)
	for _, ns := range []string{auto, manual} {
		n.waitAvailable(ns)
		for _, p := range n.pods(ns, "app") {
			if init, main := p.containers(); len(init) != 0 || !slices.Equal(main, []string{"app"}) {
				t.Errorf("%s/%s still meshed after uninject: %v %v", ns, p.Metadata.Name, init, main)
			}
		}
		client := n.onePod(ns, "client")
		if s := n.load(client, "http", "http://web:8080/", 30, 2, 0); s.OK != 30 {
			t.Errorf("%s: plain traffic after uninject: %d of 30 ok, %v", ns, s.OK, s.Errors)
		}
	}
}

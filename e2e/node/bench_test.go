package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The figures of docs/benchmarks.md ("The mesh on a real node"), measured on the node
// of hack/cluster.sh with mesh installed by these benchmarks:
//
//	go test ./e2e/node -run '^$' -bench . -benchtime 1x
//
// Each part measures once per run (PodReady: the mean of 10 pods one after another), so
// -benchtime 1x; b.N is not used.
// PodReady: creation to Ready of a pod with an HTTP readiness probe, meshed (webhook,
// init container, proxy, certificate) and plain. ControlPlane: RSS and CPU of the
// mesh-controller processes idle, while 50 meshed pods start, and with them running. Proxy1000: the resident
// memory of the proxies of a client and a server pod at 1,000 requests per second (rps
// reports the rate reached).
func BenchmarkNode(b *testing.B) {
	n := newNode(b)
	n.apply("", []byte(n.mustMesh(nil, "install")))
	n.waitAvailable("mesh-system")
	const meshed, unmeshed = "bench-meshed", "bench-plain"
	n.apply("", []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+meshed+"\n  annotations:\n    meshplane.io/inject: enabled\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+unmeshed+"\n"))
	b.Cleanup(func() {
		_, _, _ = n.run(nil, n.kubectl, "delete", "namespace", meshed, unmeshed, "--wait=false")
	})
	cs := n.clientset()
	const pods = 10

	for _, ns := range []string{unmeshed, meshed} {
		b.Run("PodReady/"+strings.TrimPrefix(ns, "bench-"), func(b *testing.B) {
			var total time.Duration
			for i := range pods {
				total += podReady(b, cs, ns, fmt.Sprintf("ready-%d", i), n.version)
			}
			b.ReportMetric(float64(total.Milliseconds())/pods, "ms/pod")
		})
	}

	b.Run("ControlPlane", func(b *testing.B) {
		time.Sleep(20 * time.Second) // past the start-up of the pods above: a window, not a wait
		idleRSS, idleCPU := sampleProcs(b, "mesh-controller", 10*time.Second)
		n.apply(meshed, n.demo(), "-l", "app=web")
		n.waitAvailable(meshed)
		// The control plane's work while 50 meshed pods start: certificates, discovery.
		cpu0, t0 := procCPU(b, "mesh-controller"), time.Now()
		n.kc("scale", "deploy/web", "-n", meshed, "--replicas=50")
		n.waitAvailable(meshed)
		cpu1, took := procCPU(b, "mesh-controller"), time.Since(t0)
		var used float64
		for pid, c := range cpu1 {
			used += c - cpu0[pid]
		}
		b.ReportMetric(used/took.Seconds()*1000, "scaleup-millicores")
		b.ReportMetric(took.Seconds(), "scaleup-s")
		time.Sleep(20 * time.Second) // let the start-up of 50 proxies settle: a window, not a wait
		rss, cpu := sampleProcs(b, "mesh-controller", 10*time.Second)
		b.ReportMetric(idleRSS, "idle-MiB")
		b.ReportMetric(idleCPU, "idle-millicores")
		b.ReportMetric(rss, "50pods-MiB")
		b.ReportMetric(cpu, "50pods-millicores")
		n.kc("scale", "deploy/web", "-n", meshed, "--replicas=1")
		n.waitAvailable(meshed)
	})

	b.Run("Proxy1000", func(b *testing.B) {
		n.apply(meshed, n.demo())
		n.kc("scale", "deploy/web", "-n", meshed, "--replicas=1")
		n.kc("scale", "deploy/load", "-n", meshed, "--replicas=0")
		n.waitAvailable(meshed)
		client, web := n.onePod(meshed, "client"), n.onePod(meshed, "web")
		type result struct {
			s   stats
			d   time.Duration
			err error
		}
		done := make(chan result, 1)
		go func() {
			start := time.Now()
			s, err := runLoad(client, "http", "http://web:8080/", 10000, 16, 1000)
			done <- result{s, time.Since(start), err}
		}()
		var clientMax, webMax float64
		for {
			select {
			case r := <-done:
				s := r.s
				if r.err != nil {
					b.Fatal(r.err)
				}
				b.ReportMetric(float64(s.Requests)/r.d.Seconds(), "rps")
				if s.OK != s.Requests {
					b.Errorf("at 1,000 rps: %d of %d ok, %v", s.OK, s.Requests, s.Errors)
				}
				b.ReportMetric(clientMax, "client-proxy-MiB")
				b.ReportMetric(webMax, "server-proxy-MiB")
				b.ReportMetric(s.LatencyMs["p50"], "p50-ms")
				b.ReportMetric(s.LatencyMs["p99"], "p99-ms")
				return
			case <-time.After(time.Second):
				clientMax = max(clientMax, proxyRSS(b, client))
				webMax = max(webMax, proxyRSS(b, web))
			}
		}
	})
}

func (n *node) clientset() kubernetes.Interface {
	n.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", n.kubeconfig)
	if err != nil {
		n.t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	return cs
}

// podReady creates a pod of the demo app, waits until it is Ready (watching), deletes
// it, and returns the time from the create call to the Ready event.
func podReady(b *testing.B, cs kubernetes.Interface, ns, name, version string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "app", Image: "mesh.local/demoapp:" + version, ImagePullPolicy: corev1.PullIfNotPresent,
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
			}},
		},
	}
	start := time.Now()
	created, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cs.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	}()
	// From the created pod's resourceVersion: a watch "from now" needs etcd progress
	// notifications, which the node's etcd 3.4 lacks.
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
		ResourceVersion: created.ResourceVersion,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			b.Fatalf("%s/%s: watch event %s: %v", ns, name, ev.Type, ev.Object)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return time.Since(start)
			}
		}
	}
	b.Fatalf("%s/%s never became Ready", ns, name)
	return 0
}

// sampleProcs sums the resident memory (MiB, at the end) and CPU (millicores over the
// window) of every process on this machine whose command line starts with the name.
func sampleProcs(b *testing.B, name string, window time.Duration) (rssMiB, millicores float64) {
	b.Helper()
	cpu0 := procCPU(b, name)
	time.Sleep(window) // CPU is a rate over this window
	cpu1 := procCPU(b, name)
	var used float64
	for pid, t1 := range cpu1 {
		used += t1 - cpu0[pid] // a process that is new in the window counts from 0
	}
	for pid := range cpu1 {
		rssMiB += procRSS(pid)
	}
	if len(cpu1) == 0 {
		b.Fatalf("no %s process", name)
	}
	return rssMiB, used / window.Seconds() * 1000
}

// procCPU is user+system CPU seconds by PID of the processes running name.
func procCPU(b *testing.B, name string) map[string]float64 {
	b.Helper()
	out := map[string]float64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(d + "/cmdline")
		if err != nil || !strings.Contains(string(bytes.SplitN(cmd, []byte{0}, 2)[0]), name) {
			continue
		}
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		out[filepath.Base(d)] = (ut + st) / 100 // USER_HZ
	}
	return out
}

func procRSS(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// proxyRSS is a proxy's resident memory (MiB) from its own metrics.
func proxyRSS(b *testing.B, p pod) float64 {
	b.Helper()
	for l := range strings.SplitSeq(metrics(b, p), "\n") {
		if v, ok := strings.CutPrefix(l, "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f / (1 << 20)
		}
	}
	b.Fatalf("%s: no process_resident_memory_bytes", p.Metadata.Name)
	return 0
}

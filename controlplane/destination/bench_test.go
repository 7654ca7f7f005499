package destination

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// The scale of BenchmarkEndpointChange (docs/benchmarks.md, "Destination at scale").
const (
	benchServices   = 1000
	benchEndpoints  = 10 // per service: 10,000 endpoints (and pods)
	benchNamespaces = 10
)

func benchNS(i int) string { return "bench-" + strconv.Itoa(i%benchNamespaces) }
func benchIP(i, j int) string {
	return fmt.Sprintf("10.%d.%d.%d", i/256, i%256, j+1)
}

// benchPod is a meshed pod as the injector leaves it (the proxy's environment is
// most of its size).
func benchPod(i, j int) *corev1.Pod {
	always := corev1.ContainerRestartPolicyAlways
	var env []corev1.EnvVar
	for k := range 25 {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("MESH_PROXY_SETTING_%d", k), Value: "some-value-of-a-realistic-length:4191"})
	}
	yes := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d-%d", i, j), Namespace: benchNS(i), UID: "uid",
			Labels:          map[string]string{"app": "svc-" + strconv.Itoa(i), "pod-template-hash": "5d4f8b7c9"},
			Annotations:     map[string]string{"meshplane.io/proxy-version": "v1.2.3", "meshplane.io/inject": "enabled"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "svc-" + strconv.Itoa(i) + "-5d4f8b7c9", Controller: &yes}}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "svc-" + strconv.Itoa(i),
			InitContainers: []corev1.Container{{Name: "mesh-proxy", Image: "ghcr.io/meshplane/proxy:v1.2.3", RestartPolicy: &always, Env: env,
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1.0", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: benchIP(i, j), PodIPs: []corev1.PodIP{{IP: benchIP(i, j)}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

func benchSlice(i int) *discoveryv1.EndpointSlice {
	name, port, yes, zone := "http", int32(8080), true, "zone-a"
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d-abcde", i), Namespace: benchNS(i),
			Labels: map[string]string{discoveryv1.LabelServiceName: "svc-" + strconv.Itoa(i)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
	}
	for j := range benchEndpoints {
		r := yes
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{benchIP(i, j)}, Zone: &zone,
			Conditions: discoveryv1.EndpointConditions{Ready: &r},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: benchNS(i), Name: fmt.Sprintf("svc-%d-%d", i, j)}})
	}
	return sl
}

// benchWorld is the API's objects: namespaces, Services, pods and EndpointSlices.
func benchWorld() ([]k8sruntime.Object, []*discoveryv1.EndpointSlice) {
	var objs []k8sruntime.Object
	for n := range benchNamespaces {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNS(n)}})
	}
	var sls []*discoveryv1.EndpointSlice
	for i := range benchServices {
		objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc-" + strconv.Itoa(i), Namespace: benchNS(i)},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "svc-" + strconv.Itoa(i)},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}})
		for j := range benchEndpoints {
			objs = append(objs, benchPod(i, j))
		}
		sl := benchSlice(i)
		sls = append(sls, sl)
		objs = append(objs, sl.DeepCopy())
	}
	return objs, sls
}

// procStatus reads VmHWM and VmRSS (bytes) from /proc/self/status (0 where unknown).
func procStatus() (hwm, rss float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmHWM":
			hwm = kb * 1024
		case "VmRSS":
			rss = kb * 1024
		}
	}
	return hwm, rss
}

// liveHeap is the heap in use after a collection, and the goroutine stacks (bytes).
func liveHeap() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc + ms.StackInuse)
}

// BenchmarkEndpointChange: 10,000 endpoints (meshed pods) in 1,000 Services, one Get
// stream per Service: 1,000 streams, each on its own loopback gRPC connection as
// proxies would be, opened by a child process (this test binary, running
// TestBenchClients) so that this process holds only the server and the fake API.
// Each iteration updates one Service's EndpointSlice (an endpoint turns not ready, or
// ready again) through the fake clientset that feeds the server's shared informers,
// and waits until that Service's watcher has the update; burst=50 makes 50 changes
// (50 Services) back to back before waiting (the fake API buffers only 100 watch
// events). Reported: the latency's p50/p99/max, this process's peak and final RSS,
// and the RSS before the server started (the test binary and the fake API's
// objects): server-MiB is RSS minus it, an upper bound (the garbage collector lets the
// heap grow in proportion to all live memory, the fake API's included);
// server-live-heap-MiB is the server's live heap and stacks after a collection.
//
//	go test ./controlplane/destination -run '^$' -bench EndpointChange -benchtime 5s
func BenchmarkEndpointChange(b *testing.B) {
	objs, sls := benchWorld()
	// The simple tracker: NewClientset's field management rebuilds a REST mapper on
	// every write, which would be most of what this measures.
	cs := fake.NewSimpleClientset(objs...)
	runtime.GC()
	_, baseline := procStatus()
	baseHeap := liveHeap()

	srv, _, _ := fakeServerWith(b, cs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !srv.Start(ctx) {
		b.Fatal("not synced")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer(ServerOptions()...)
	meshv1.RegisterDestinationServer(g, srv)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBenchClients$")
	child.Env = append(os.Environ(), "MESH_BENCH_DESTINATION="+lis.Addr().String())
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cancel(); _ = child.Wait() }()
	got := make([]chan time.Time, benchServices)
	for i := range got {
		got[i] = make(chan time.Time, 16)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				continue
			}
			is, ns, _ := strings.Cut(sc.Text(), " ")
			i, _ := strconv.Atoi(is)
			n, _ := strconv.ParseInt(ns, 10, 64)
			if i >= 0 && i < benchServices {
				got[i] <- time.Unix(0, n)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Minute):
		b.Fatal("the clients did not get their first updates")
	}
	runtime.GC()

	k := 0 // changes made: Service k%1000, endpoint (k/1000)%10
	for _, burst := range []int{1, 50} {
		b.Run(fmt.Sprintf("burst=%d", burst), func(b *testing.B) {
			type change struct {
				i  int
				t0 time.Time
			}
			var lat []time.Duration
			for b.Loop() {
				changes := make([]change, 0, burst)
				for range burst {
					i, j := k%benchServices, (k/benchServices)%benchEndpoints
					k++
					sl := sls[i]
					r := !*sl.Endpoints[j].Conditions.Ready
					sl.Endpoints[j].Conditions.Ready = &r
					t0 := time.Now()
					if _, err := cs.DiscoveryV1().EndpointSlices(sl.Namespace).Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
						b.Fatal(err)
					}
					changes = append(changes, change{i, t0})
					cs.ClearActions() // the fake records every call otherwise
				}
				for _, c := range changes {
					select {
					case t1 := <-got[c.i]:
						lat = append(lat, t1.Sub(c.t0))
					case <-time.After(30 * time.Second):
						b.Fatalf("svc-%d: no update", c.i)
					}
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(float64(len(lat)), "changes")
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(1), "max-ms")
			hwm, rss := procStatus()
			b.ReportMetric(hwm/(1<<20), "VmHWM-MiB")
			b.ReportMetric(rss/(1<<20), "VmRSS-MiB")
			b.ReportMetric(baseline/(1<<20), "before-server-MiB")
			b.ReportMetric((rss-baseline)/(1<<20), "server-MiB")
			b.ReportMetric((liveHeap()-baseHeap)/(1<<20), "server-live-heap-MiB")
		})
	}
}

// TestBenchClients is BenchmarkEndpointChange's child process: with
// MESH_BENCH_DESTINATION set it opens one Get stream per Service, each on its own
// connection, prints "ready" once every stream has its endpoints, then "I UNIX-NANOS"
// for each further addition or removal for Service I.
func TestBenchClients(t *testing.T) {
	addr := os.Getenv("MESH_BENCH_DESTINATION")
	if addr == "" {
		t.Skip("BenchmarkEndpointChange's child process")
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var started sync.WaitGroup
	for i := range benchServices {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		stream, err := meshv1.NewDestinationClient(conn).Get(t.Context(), &meshv1.GetDestination{
			Path: fmt.Sprintf("svc-%d.%s.svc.cluster.local:80", i, benchNS(i))})
		if err != nil {
			t.Fatal(err)
		}
		started.Add(1)
		go func() {
			first := true
			for {
				u, err := stream.Recv()
				if err != nil {
					os.Exit(0) // the benchmark is over
				}
				now := time.Now().UnixNano()
				if first {
					if n := len(u.GetAdd().GetAddrs()); n != benchEndpoints {
						panic(fmt.Sprintf("svc-%d: first update has %d addresses", i, n))
					}
					first = false
					started.Done()
					continue
				}
				if u.GetNoEndpoints() != nil {
					continue // follows the removal of the last endpoint: not a change of its own
				}
				mu.Lock()
				fmt.Fprintf(w, "%d %d\n", i, now)
				_ = w.Flush()
				mu.Unlock()
			}
		}()
	}
	started.Wait()
	mu.Lock()
	fmt.Fprintln(w, "ready")
	_ = w.Flush()
	mu.Unlock()
	select {}
}

// BenchmarkPodEvent: what a pod update costs the server with 1,000 streams open (100
// per namespace). Only the streams of the pod's own Services are woken, not its
// namespace's.
func BenchmarkPodEvent(b *testing.B) {
	objs, _ := benchWorld()
	srv, _, _ := fakeServerWith(b, fake.NewSimpleClientset(objs...))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !srv.Start(ctx) {
		b.Fatal("not synced")
	}
	woken := make([]<-chan struct{}, benchServices)
	for i := range benchServices {
		ch, unsubscribe := srv.hub.subscribe(endpointsKey(benchNS(i), "svc-"+strconv.Itoa(i)))
		defer unsubscribe()
		woken[i] = ch
	}
	pod := benchPod(0, 0)
	old, _ := trimPod(pod)
	pod.Annotations[opaqueAnnotation] = "8080" // a change the streams show
	cur, _ := trimPod(pod)
	for b.Loop() {
		srv.onPod(old, cur)
	}
	n := 0
	for _, ch := range woken {
		select {
		case <-ch:
			n++
		default:
		}
	}
	if n != 1 {
		b.Fatalf("%d streams woken, want 1", n)
	}
}

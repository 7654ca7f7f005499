package stat

import (
	"math"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// scenario is a small meshed app in one namespace, shared by the tests with a fake
// clientset and with the real API server: deployment web (web-1 and web-2 meshed,
// web-3 not), deployment api (api-1 meshed) and service api. web-1 calls api-1.
// Each meshed pod serves two samples, known counts, from which the expected rows
// below are worked out by hand.
type scenario struct {
	ns           string
	ipWeb, ipAPI string
	ports        map[string]int // admin port of each meshed pod
}

// meshedPods are the scenario's pods with a proxy.
var meshedPods = []string{"web-1", "web-2", "api-1"}

func newScenario(ns, ipWeb, ipAPI string, ports map[string]int) scenario {
	return scenario{ns: ns, ipWeb: ipWeb, ipAPI: ipAPI, ports: ports}
}

// fakePorts are admin ports for the fake clientset, one per pod.
var fakePorts = map[string]int{"web-1": 4191, "web-2": 4192, "api-1": 4193}

func (s scenario) pod(name, app, ip string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns, Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: "app"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
	if port, ok := s.ports[name]; ok {
		proxy := corev1.Container{Name: "mesh-proxy", Image: "proxy", Ports: []corev1.ContainerPort{
			{Name: "mesh-proxy", ContainerPort: 4143}, {Name: "mesh-admin", ContainerPort: int32(port)}}}
		if name == "web-2" {
			// A native sidecar: the proxy is an init container that keeps running.
			always := corev1.ContainerRestartPolicyAlways
			proxy.RestartPolicy = &always
			p.Spec.InitContainers = append(p.Spec.InitContainers, proxy)
		} else {
			p.Spec.Containers = append(p.Spec.Containers, proxy)
		}
	}
	return p
}

func (s scenario) pods() []*corev1.Pod {
	return []*corev1.Pod{s.pod("web-1", "web", s.ipWeb), s.pod("web-2", "web", s.ipWeb), s.pod("web-3", "web", s.ipWeb), s.pod("api-1", "api", s.ipAPI)}
}

func (s scenario) workloads() []runtime.Object {
	deploy := func(name string) *appsv1.Deployment {
		sel := map[string]string{"app": name}
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: new(int32), // nothing runs them: the test creates the pods
				Selector: &metav1.LabelSelector{MatchLabels: sel},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: sel},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "app"}}},
				},
			},
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: s.ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	return []runtime.Object{deploy("web"), deploy("api"), svc}
}

// samples are each meshed pod's two scrapes.
func (s scenario) samples() map[string][2]proxyCounts {
	ok200 := func(l map[string]string) map[string]string {
		return with(l, "classification", "success", "status_code", "200")
	}
	toAPI := out(s.ns, "api", "api-1")
	return map[string][2]proxyCounts{
		"web-1": {
			{
				responses: []counted{{ok200(in("true")), 10}},
				latency:   []observed{{with(in("true"), "status_code", "200"), obs(10, 7)}},
				tcpOpen:   []counted{{in("true", "peer", "src", "target_addr", s.ipWeb+":8080"), 1}},
			},
			{
				responses: []counted{
					{ok200(in("true")), 40}, // +30
					{with(in("false"), "classification", "failure", "status_code", "500"), 10}, // new: +10
					{ok200(toAPI), 20}, // new: +20 to api-1
				},
				latency: []observed{
					{with(in("true"), "status_code", "200"), obs(40, 7)}, // +30 in (5,10]
					{with(in("false"), "status_code", "500"), obs(10, 7)},
					{with(toAPI, "status_code", "200"), obs(20, 15)}, // 20 in (10,20]
				},
				tcpOpen: []counted{
					{in("true", "peer", "src", "target_addr", s.ipWeb+":8080"), 3},
					{with(toAPI, "peer", "dst", "target_addr", s.ipAPI+":8080"), 4},
				},
			},
		},
		"web-2": { // the proxy restarted inside the window: every counter went down
			{
				responses: []counted{{ok200(in("true")), 100}},
				latency:   []observed{{with(in("true"), "status_code", "200"), obs(100, 0.5)}},
			},
			{
				responses: []counted{{ok200(in("true")), 5}},                                 // reset: +5
				latency:   []observed{{with(in("true"), "status_code", "200"), obs(5, 0.5)}}, // 5 in (0,1]
				tcpOpen:   []counted{{in("true", "peer", "src", "target_addr", s.ipWeb+":8080"), 2}},
			},
		},
		"api-1": {
			{},
			{
				responses: []counted{{ok200(in("true")), 20}},
				latency:   []observed{{with(in("true"), "status_code", "200"), obs(20, 3)}}, // 20 in (2,3]
				tcpOpen:   []counted{{in("true", "peer", "src", "target_addr", s.ipAPI+":8080"), 1}},
			},
		},
	}
}

// window is the scenario's window: RPS are requests / 10.
const window = 10 * time.Second

// The expected rows, worked out by hand (see Quantile for the interpolation).
func (s scenario) want() map[string]Row {
	nan := math.NaN()
	res := func(kind, ns, name string) Resource { return Resource{Kind: kind, Namespace: ns, Name: name} }
	return map[string]Row{
		// web-1: 30 ok (mTLS) + 10 failed (plain); web-2 after its restart: 5 ok (mTLS).
		// Latency: 40 in (5,10], 5 in (0,1]: p50 rank 22.5 = 5 + 5*17.5/40.
		"deploy/web": {Resource: res(KindDeployment, s.ns, "web"), MeshedPods: 2, TotalPods: 3,
			Requests: 45, Successes: 35, SuccessRate: 35.0 / 45, RPS: 4.5,
			LatencyP50: 5 + 5*17.5/40, LatencyP95: 5 + 5*37.75/40, LatencyP99: 5 + 5*39.55/40,
			TCPConnections: 5, TLSRequests: 35, TLSShare: 35.0 / 45},
		// 20 in (2,3]: p50 = 2 + 1*10/20.
		"deploy/api": {Resource: res(KindDeployment, s.ns, "api"), MeshedPods: 1, TotalPods: 1,
			Requests: 20, Successes: 20, SuccessRate: 1, RPS: 2,
			LatencyP50: 2.5, LatencyP95: 2.95, LatencyP99: 2.99,
			TCPConnections: 1, TLSRequests: 20, TLSShare: 1},
		// web's outbound to api-1: 20 in (10,20], 4 connections to api-1's IP.
		"deploy/web --to deploy/api": {Resource: res(KindDeployment, s.ns, "web"), MeshedPods: 2, TotalPods: 3,
			Requests: 20, Successes: 20, SuccessRate: 1, RPS: 2,
			LatencyP50: 15, LatencyP95: 19.5, LatencyP99: 19.9,
			TCPConnections: 4, TLSRequests: 20, TLSShare: 1},
		"deploy --from deploy/web": {Resource: res(KindDeployment, s.ns, "api"), MeshedPods: 1, TotalPods: 1,
			Requests: 20, Successes: 20, SuccessRate: 1, RPS: 2,
			LatencyP50: 15, LatencyP95: 19.5, LatencyP99: 19.9,
			TCPConnections: 4, TLSRequests: 20, TLSShare: 1},
		// Everyone's outbound to service api; Linkerd gives services no TCP figure.
		"svc/api": {Resource: res(KindService, s.ns, "api"), MeshedPods: 1, TotalPods: 1,
			Requests: 20, Successes: 20, SuccessRate: 1, RPS: 2,
			LatencyP50: 15, LatencyP95: 19.5, LatencyP99: 19.9,
			TCPConnections: nan, TLSRequests: 20, TLSShare: 1},
		// Every pod's inbound: 5 in (0,1], 20 in (2,3], 40 in (5,10]; p50 rank 32.5.
		"ns/" + s.ns: {Resource: res(KindNamespace, "", s.ns), MeshedPods: 3, TotalPods: 4,
			Requests: 65, Successes: 55, SuccessRate: 55.0 / 65, RPS: 6.5,
			LatencyP50: 5 + 5*7.5/40, LatencyP95: 5 + 5*36.75/40, LatencyP99: 5 + 5*39.35/40,
			TCPConnections: 6, TLSRequests: 55, TLSShare: 55.0 / 65},
		// Not meshed: nothing to scrape.
		"po/web-3": {Resource: res(KindPod, s.ns, "web-3"), MeshedPods: 0, TotalPods: 1,
			SuccessRate: nan, RPS: nan, LatencyP50: nan, LatencyP95: nan, LatencyP99: nan,
			TCPConnections: nan, TLSShare: nan},
	}
}

func (s scenario) port(name string) string { return strconv.Itoa(s.ports[name]) }

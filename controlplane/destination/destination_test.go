package destination

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/internal/testing/testcluster"
)

// ready creates a pod bound to node with the status a kubelet reports, so the
// EndpointSlice controller publishes it.
func ready(t *testing.T, cs kubernetes.Interface, ns, node, name, ip string, meshed, isReady bool) {
	t.Helper()
	ctx := context.Background()
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}
		if meshed {
			always := corev1.ContainerRestartPolicyAlways
			spec.InitContainers = []corev1.Container{{Name: "mesh-proxy", Image: "ghcr.io/meshplane/proxy:v1", RestartPolicy: &always}}
		}
		if _, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}}, Spec: spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := cs.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if pod, err = cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	status := corev1.ConditionFalse
	if isReady {
		status = corev1.ConditionTrue
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP, pod.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}, {Type: corev1.ContainersReady, Status: status}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// describe is an update as text: "add 10.9.0.1:8080 id=... h2", "remove ...", "none exists=true".
func describe(u *meshv1.Update) string {
	switch x := u.Update.(type) {
	case *meshv1.Update_NoEndpoints:
		return fmt.Sprintf("none exists=%v", x.NoEndpoints.Exists)
	case *meshv1.Update_Add:
		var parts []string
		for _, a := range x.Add.Addrs {
			s := fmt.Sprintf("%s:%d", net.IP(a.Addr.Ip), a.Addr.Port)
			if a.TlsIdentity != nil {
				s += " id=" + a.TlsIdentity.Name
			}
			if a.ProtocolHint.GetH2() != nil {
				s += " h2"
			}
			s += " pod=" + a.MetricLabels["pod"]
			parts = append(parts, s)
		}
		return "add " + strings.Join(parts, ", ")
	case *meshv1.Update_Remove:
		var parts []string
		for _, a := range x.Remove.Addrs {
			parts = append(parts, fmt.Sprintf("%s:%d", net.IP(a.Addr.Ip), a.Addr.Port))
		}
		return "remove " + strings.Join(parts, ", ")
	}
	return "?"
}

func TestGetFollowsEndpointSlices(t *testing.T) {
	cs := testcluster.Clientset(t)
	ctx := context.Background()
	ns := testcluster.Namespace(t, cs)
	node := "node-" + ns
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) })
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	dyn := dynamicClient(t)
	ensureCRD(t, dyn)
	sctx, client := serve(t, cs, dyn)
	updates := func(path string) <-chan string {
		stream, err := client.Get(sctx, &meshv1.GetDestination{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return recv(t, stream.Recv, describe)
	}
	expect := func(ch <-chan string, want string) { t.Helper(); expect(t, ch, want) }

	expect(updates("nothing."+ns+".svc.cluster.local:80"), "none exists=false")
	expect(updates("ext."+ns+".svc.cluster.local:80"), "none exists=false")
	expect(updates("192.0.2.1:80"), "none exists=false") // no pod, no Service has it

	webSvc, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byClusterIP := updates(webSvc.Spec.ClusterIP + ":80") // a Service's cluster IP resolves as the Service
	expect(byClusterIP, "none exists=true")

	web := updates("web." + ns + ".svc.cluster.local:80")
	expect(web, "none exists=true")
	id := "default." + ns + ".serviceaccount.identity.cluster.local"
	ready(t, cs, ns, node, "a", "10.9.0.1", true, true)
	expect(web, "add 10.9.0.1:8080 id="+id+" h2 pod=a")
	expect(byClusterIP, "add 10.9.0.1:8080 id="+id+" h2 pod=a")
	// A pod IP authority: that pod, with its identity and labels.
	byIP := updates("10.9.0.1:8080")
	expect(byIP, "add 10.9.0.1:8080 id="+id+" h2 pod=a")
	ready(t, cs, ns, node, "b", "10.9.0.2", false, true)
	expect(web, "add 10.9.0.2:8080 pod=b")
	ready(t, cs, ns, node, "a", "10.9.0.1", true, false)
	expect(web, "remove 10.9.0.1:8080")
	zero := int64(0)
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "b", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	expect(web, "remove 10.9.0.2:8080")
	expect(web, "none exists=true")
	// The pod IP stream follows the pod: gone, it is not a mesh destination any more.
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "a", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	expect(byIP, "remove 10.9.0.1:8080")
	expect(byIP, "none exists=false")
}

// Close ends the open Get and GetProfile streams at once with Unavailable, and those
// opened after it: a stopping replica must not keep streams no update comes on.
func TestCloseEndsStreams(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	dyn := dynamicClient(t)
	ensureCRD(t, dyn)
	srv := New(Options{Client: cs, Dynamic: dyn, ClusterDomain: "cluster.local", TrustDomain: "cluster.local"})
	sctx, client := serveServer(t, srv)
	sctx, cancel := context.WithTimeout(sctx, 30*time.Second) // a stream Close left open fails, not hangs
	defer cancel()
	get, err := client.Get(sctx, &meshv1.GetDestination{Path: "web." + ns + ".svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get.Recv(); err != nil { // the first answer: the stream is being followed
		t.Fatal(err)
	}
	prof, err := client.GetProfile(sctx, &meshv1.GetDestination{Path: "web." + ns + ".svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prof.Recv(); err != nil {
		t.Fatal(err)
	}
	other, err := client.GetProfile(sctx, &meshv1.GetDestination{Path: "not-a-name"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Recv(); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	srv.Close() // twice is fine
	for name, recv := range map[string]func() error{
		"Get":                  func() error { _, err := get.Recv(); return err },
		"GetProfile":           func() error { _, err := prof.Recv(); return err },
		"GetProfile (no name)": func() error { _, err := other.Recv(); return err },
	} {
		if err := recv(); status.Code(err) != codes.Unavailable {
			t.Errorf("%s after Close: %v, want Unavailable", name, err)
		}
	}
	late, err := client.Get(sctx, &meshv1.GetDestination{Path: "web." + ns + ".svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = late.Recv(); err != nil {
			break
		}
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("a Get opened after Close: %v, want Unavailable after its first answer", err)
	}
}

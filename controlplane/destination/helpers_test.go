package destination

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/install"
)

// ensureCRD creates the ServiceProfile CRD as mesh install renders it, unless it
// exists (it is cluster-scoped and shared with other tests: never deleted), and waits
// until it is served.
func ensureCRD(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	res, err := install.Render(install.Options{Version: "v0.0.0-test", Part: install.CRDs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, o := range res.Objects {
		if o.Kind != "CustomResourceDefinition" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(o.YAML, &u.Object); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(crds).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := dyn.Resource(ServiceProfiles()).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ServiceProfile CRD not served: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serve runs a Server over the test cluster on a loopback gRPC server (plaintext: the
// TLS path is tested in mtls_test.go and the process test).
func serve(t *testing.T, cs kubernetes.Interface, dyn dynamic.Interface) (context.Context, meshv1.DestinationClient) {
	t.Helper()
	return serveServer(t, New(Options{Client: cs, Dynamic: dyn, ClusterDomain: "cluster.local", TrustDomain: "cluster.local"}))
}

// serveServer is serve for a Server the test made.
func serveServer(t *testing.T, srv *Server) (context.Context, meshv1.DestinationClient) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if !srv.Start(ctx) {
		t.Fatal("informers did not sync")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	meshv1.RegisterDestinationServer(g, srv)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return ctx, meshv1.NewDestinationClient(conn)
}

// recv turns a stream into a channel of described messages.
func recv[M any](t *testing.T, next func() (M, error), describe func(M) string) <-chan string {
	ch := make(chan string, 100)
	go func() {
		for {
			m, err := next()
			if err != nil {
				close(ch)
				return
			}
			ch <- describe(m)
		}
	}()
	return ch
}

// expect waits for the next message and compares it.
func expect(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no update; want %q", want)
	}
}

// describeProfile is a profile as text.
func describeProfile(p *meshv1.DestinationProfile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name=%q opaque=%v", p.FullyQualifiedName, p.OpaqueProtocol)
	for _, r := range p.Routes {
		fmt.Fprintf(&b, " route=%s:%s:%s", r.Name, r.Condition.GetMethod(), r.Condition.GetPathRegex())
		if r.IsRetryable {
			b.WriteString(":retry")
		}
		if r.Timeout != nil {
			b.WriteString(":" + r.Timeout.AsDuration().String())
		}
	}
	if rb := p.RetryBudget; rb != nil {
		fmt.Fprintf(&b, " budget=%g/%d/%s", rb.RetryRatio, rb.MinRetriesPerSecond, rb.Ttl.AsDuration())
	}
	return b.String()
}

func dynamicClient(t *testing.T) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(testcluster.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

// fakeServer is a Server over fake clients (the same shared informers).
func fakeServer(t testing.TB, objs ...runtime.Object) (*Server, *fake.Clientset, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	return fakeServerWith(t, fake.NewClientset(objs...))
}

func fakeServerWith(t testing.TB, cs *fake.Clientset) (*Server, *fake.Clientset, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{ServiceProfiles(): "ServiceProfileList"})
	return New(Options{Client: cs, Dynamic: dyn, ClusterDomain: "cluster.local", TrustDomain: "cluster.local"}), cs, dyn
}

func waitUntil(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

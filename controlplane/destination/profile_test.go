package destination

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/internal/testing/testcluster"
)

func profileObject(ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.meshplane.io/v1alpha1", "kind": "ServiceProfile",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     spec,
	}}
}

func TestConvertProfile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  map[string]any
		want  string
		warns int
	}{
		{"empty", map[string]any{}, `name="web.default.svc.cluster.local" opaque=false budget=0.2/10/10s`, 0},
		{"routes and budget", map[string]any{
			"routes": []any{
				map[string]any{"name": "get-book", "condition": map[string]any{"method": "get", "pathRegex": "/books/[^/]+"}, "isRetryable": true, "timeout": "300ms"},
				map[string]any{"name": "any", "condition": map[string]any{}},
			},
			"retryBudget": map[string]any{"retryRatio": 0.5, "minRetriesPerSecond": int64(5), "ttl": "20s"},
		}, `name="web.default.svc.cluster.local" opaque=false route=get-book:GET:/books/[^/]+:retry:300ms route=any:: budget=0.5/5/20s`, 0},
		{"bad routes are skipped", map[string]any{
			"routes": []any{
				map[string]any{"name": "bad-regex", "condition": map[string]any{"pathRegex": "/books/("}},
				map[string]any{"name": "bad-timeout", "condition": map[string]any{}, "timeout": "soon"},
				map[string]any{"name": "negative-timeout", "condition": map[string]any{}, "timeout": "-1s"},
				map[string]any{"name": "malformed", "condition": "GET /"},
				map[string]any{"condition": map[string]any{}},
				map[string]any{"name": "ok", "condition": map[string]any{"pathRegex": "/ok"}},
			},
		}, `name="web.default.svc.cluster.local" opaque=false route=ok::/ok budget=0.2/10/10s`, 5},
		{"bad budget is the default", map[string]any{
			"retryBudget": map[string]any{"retryRatio": 0.5, "minRetriesPerSecond": int64(5), "ttl": "forever"},
		}, `name="web.default.svc.cluster.local" opaque=false budget=0.2/10/10s`, 1},
		{"malformed spec", map[string]any{"routes": "all"}, `name="web.default.svc.cluster.local" opaque=false budget=0.2/10/10s`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warns := 0
			p := convertProfile(profileObject("default", "web.default.svc.cluster.local", tc.spec), func(string, ...any) { warns++ })
			if got := describeProfile(p); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if warns != tc.warns {
				t.Errorf("%d warnings, want %d", warns, tc.warns)
			}
		})
	}
}

func TestOpaque(t *testing.T) {
	for _, tc := range []struct {
		annotation string
		port       int32
		want       bool
	}{
		{"", 80, false}, {"3306", 3306, true}, {"3306", 3307, false}, {"25, 5432-5434", 5433, true},
		{"5432-5434", 5435, false}, {"x,80", 80, true}, {"90-80", 85, false},
	} {
		if got := opaque(tc.annotation, tc.port); got != tc.want {
			t.Errorf("opaque(%q, %d) = %v", tc.annotation, tc.port, got)
		}
	}
}

// GetProfile over the real API: the ServiceProfile's routes and budget, updated and
// deleted; opaque ports from the Service, the namespace and a pod.
func TestGetProfile(t *testing.T) {
	cs := testcluster.Clientset(t)
	dyn := dynamicClient(t)
	ensureCRD(t, dyn)
	ctx := context.Background()
	ns := testcluster.Namespace(t, cs)
	node := "node-" + ns
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) })
	for name, ann := range map[string]map[string]string{"web": {opaqueAnnotation: "3306"}, "api": nil} {
		if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "db", Port: 3306}, {Name: "alt", Port: 8080}},
		}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sctx, client := serve(t, cs, dyn)
	profiles := func(path string) <-chan string {
		stream, err := client.GetProfile(sctx, &meshv1.GetDestination{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return recv(t, stream.Recv, describeProfile)
	}
	fqn := "web." + ns + ".svc.cluster.local"
	const empty = `name="" opaque=false budget=0.2/10/10s`
	web := profiles(fqn + ":80")
	expect(t, web, empty)
	expect(t, profiles(fqn+":3306"), `name="" opaque=true budget=0.2/10/10s`)
	expect(t, profiles("example.com:443"), empty)

	spRes := dyn.Resource(ServiceProfiles()).Namespace(ns)
	sp := profileObject(ns, fqn, map[string]any{
		"routes": []any{
			map[string]any{"name": "bad", "condition": map[string]any{"pathRegex": "("}},
			map[string]any{"name": "get-book", "condition": map[string]any{"method": "GET", "pathRegex": "/books/[^/]+"}, "isRetryable": true, "timeout": "300ms"},
		},
		"retryBudget": map[string]any{"retryRatio": 0.5, "minRetriesPerSecond": int64(5), "ttl": "20s"},
	})
	sp, err := spRes.Create(ctx, sp, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, web, `name="`+fqn+`" opaque=false route=get-book:GET:/books/[^/]+:retry:300ms budget=0.5/5/20s`)
	// The profile of a service's cluster IP is the service's.
	svc, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, profiles(svc.Spec.ClusterIP+":80"), `name="`+fqn+`" opaque=false route=get-book:GET:/books/[^/]+:retry:300ms budget=0.5/5/20s`)

	unstructured.RemoveNestedField(sp.Object, "spec", "retryBudget")
	if _, err := spRes.Update(ctx, sp, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(t, web, `name="`+fqn+`" opaque=false route=get-book:GET:/books/[^/]+:retry:300ms budget=0.2/10/10s`)
	if err := spRes.Delete(ctx, fqn, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(t, web, empty)

	// The namespace's opaque ports apply to a Service without its own annotation.
	api := profiles("api." + ns + ".svc.cluster.local:8080")
	expect(t, api, empty)
	ready(t, cs, ns, node, "db", "10.9.1.1", true, true)
	pod := profiles("10.9.1.1:3306")
	expect(t, pod, empty)
	patch := `{"metadata":{"annotations":{"` + opaqueAnnotation + `":"8080"}}}`
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(t, api, `name="" opaque=true budget=0.2/10/10s`)
	// A pod IP: its own annotation.
	patch = strings.ReplaceAll(patch, "8080", "3306")
	if _, err := cs.CoreV1().Pods(ns).Patch(ctx, "db", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(t, pod, `name="" opaque=true budget=0.2/10/10s`)
}

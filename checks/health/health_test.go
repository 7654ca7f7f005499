package health

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

const pki = "../../render/install/testdata/pki/"

// apply creates the objects on the cluster and deletes them at the end of the test. A
// CRD is created unless it exists and never deleted: it is cluster-scoped and shared
// with other tests.
func apply(t *testing.T, c *Cluster, objs []manifest.Object) {
	t.Helper()
	ctx := context.Background()
	var created []func()
	t.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			created[i]()
		}
	})
	for _, o := range objs {
		// Discovery again after CRDs: their kinds appear only then.
		groups, err := restmapper.GetAPIGroupResources(c.Clientset.Discovery())
		if err != nil {
			t.Fatal(err)
		}
		mapper := restmapper.NewDiscoveryRESTMapper(groups)
		gv, _ := schema.ParseGroupVersion(o.APIVersion)
		m, err := mapper.RESTMapping(gv.WithKind(o.Kind).GroupKind(), gv.Version)
		if err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		var body map[string]any
		if err := yaml.Unmarshal(o.YAML, &body); err != nil {
			t.Fatal(err)
		}
		var ri dynamic.ResourceInterface = c.Dynamic.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = c.Dynamic.Resource(m.Resource).Namespace(o.Namespace)
		}
		_, err = ri.Create(ctx, &unstructured.Unstructured{Object: body}, metav1.CreateOptions{})
		// The CRDs and their ApplySet parent (kube-system/mesh-crds-applyset) are one
		// per cluster, shared with the other packages' tests: another may have made them.
		if o.Kind == "CustomResourceDefinition" || o.Namespace == "kube-system" {
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("create %s: %v", o, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("create %s: %v", o, err)
		}
		name := o.Name
		created = append(created, func() { _ = ri.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
}

// scopeWebhook renames the injector's webhook (it is cluster-scoped and other tests
// install their own), makes it select only the given namespaces (other tests share the
// cluster), and, when url is set, points it at url instead of the Service (the test
// cluster has no kube-proxy). It returns the objects to apply and to check.
func scopeWebhook(t *testing.T, objs []manifest.Object, ns, url string, namespaces ...string) (apply, check []manifest.Object) {
	t.Helper()
	for _, o := range objs {
		if o.Kind == "MutatingWebhookConfiguration" {
			var body map[string]any
			if err := yaml.Unmarshal(o.YAML, &body); err != nil {
				t.Fatal(err)
			}
			o.Name = o.Name + "-" + ns
			body["metadata"].(map[string]any)["name"] = o.Name
			for _, w := range body["webhooks"].([]any) {
				w := w.(map[string]any)
				w["namespaceSelector"] = map[string]any{"matchExpressions": []any{map[string]any{
					"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}}}
				if url != "" {
					w["clientConfig"] = map[string]any{"url": url}
				}
			}
			b, err := yaml.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			o.YAML = b
		}
		apply = append(apply, o)
		// The CRDs are shared with other tests, which may have created them at another version.
		if o.Kind != "CustomResourceDefinition" {
			check = append(check, o)
		}
	}
	return apply, check
}

func run(c *Cluster, o Options) map[string]checks.Result {
	r := checks.Run(context.Background(), Suite(c, o), checks.Options{Now: o.Now})
	out := map[string]checks.Result{}
	for _, res := range r.Results {
		out[res.Check.ID] = res
	}
	return out
}

// `mesh install` output applied to the real test cluster: the checks that need only
// API objects pass; those that need the control plane running (there is no kubelet, and
// the controller comes with the control-plane work) fail with their own messages.
func TestHealthOfAppliedInstall(t *testing.T) {
	cfg := testcluster.RESTConfig(t)
	cs := testcluster.Clientset(t)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Clientset: cs, Dynamic: dyn}
	ns := fmt.Sprintf("mesh-health-%d", time.Now().UnixNano()%100000)
	res, err := install.Render(install.Options{Version: "v1.2.3", Namespace: ns,
		TrustAnchorsFile: pki + "ca.crt", IssuerCertFile: pki + "issuer.crt", IssuerKeyFile: pki + "issuer.key"}, fileReader{})
	if err != nil {
		t.Fatal(err)
	}
	objs, checked := scopeWebhook(t, res.Objects, ns, "", ns)
	apply(t, c, objs)
	o := Options{Namespace: ns, Version: "v1.2.3", Objects: checked, MinCertValidity: 60 * 24 * time.Hour, Now: time.Now}

	got := run(c, o)
	want := map[string]struct {
		status checks.Status
		text   string
	}{
		"health.objects":         {checks.Passed, ""},
		"health.identity-issuer": {checks.Passed, ""},
		"health.deployments":     {checks.Failed, "0 of 1 replicas available"},
		"health.webhook-ca":      {checks.Failed, "no caBundle yet"},
		"health.injector":        {checks.Skipped, "depends on health.deployments"},
	}
	for id, w := range want {
		if r := got[id]; r.Status != w.status || !strings.Contains(r.Message, w.text) {
			t.Errorf("%s: %s %q, want %s %q", id, r.Status, r.Message, w.status, w.text)
		}
	}

	// Another CLI version: the objects are not of it.
	o.Version = "v9.9.9"
	if r := run(c, o)["health.objects"]; r.Status != checks.Failed || !strings.Contains(r.Message, "not of this CLI's version v9.9.9") {
		t.Errorf("version drift: %s %q", r.Status, r.Message)
	}
	o.Version = "v1.2.3"
	// An issuer that expires within the minimum validity.
	o.MinCertValidity = 20 * 365 * 24 * time.Hour
	if r := run(c, o)["health.identity-issuer"]; r.Status != checks.Failed || !strings.Contains(r.Message, "in less than") {
		t.Errorf("short issuer: %s %q", r.Status, r.Message)
	}
	o.MinCertValidity = 60 * 24 * time.Hour
	// A deleted Deployment is missing.
	if err := cs.AppsV1().Deployments(ns).Delete(context.Background(), "mesh-destination", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := run(c, o)["health.objects"]; r.Status != checks.Failed || !strings.Contains(r.Message, "Deployment/"+ns+"/mesh-destination") {
		t.Errorf("missing Deployment: %s %q", r.Status, r.Message)
	}
}

type fileReader struct{}

func (fileReader) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (fileReader) Stdin() io.Reader                     { return strings.NewReader("") }

package diff_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/render/manifest"
)

// objects reads a YAML stream, as mesh diff -f does.
func objects(t *testing.T, yaml string) []diff.Object {
	t.Helper()
	objs, err := diff.Read(context.Background(), manifest.Inputs{Filenames: []string{"-"}}, manifest.Env{Stdin: strings.NewReader(yaml)})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

const web = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1
`

// Another manager's field (an HPA scaling a Deployment whose manifest sets no
// replicas) is no drift; a field the input drops is removed; a field another manager
// took by force is a conflict that names it.
func TestOtherManagers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	objs := objects(t, web)
	objs[0].Namespace = ns
	e.apply(t, diff.FieldManager, objs)
	e.patch(t, objs[0], types.MergePatchType, `{"spec":{"replicas":4}}`, "hpa", "scale")

	o := diff.Options{Namespace: ns}
	if r := run(t, e, objects(t, web), o); r.ExitCode() != diff.ExitSame || r.Objects[0].Status != diff.Unchanged {
		t.Errorf("after the HPA: exit %d, %s %v", r.ExitCode(), r.Objects[0].Status, r.Objects[0].Changes)
	}

	r := run(t, e, objects(t, strings.Replace(web, ", tier: front", "", 1)), o)
	if got := r.Objects[0]; got.Status != diff.Changed || len(got.Changes) != 1 || got.Changes[0] != (diff.Change{Path: ".metadata.labels.tier", Op: diff.Remove, Live: "front"}) {
		t.Errorf("label dropped: %s %+v", got.Status, got.Changes)
	}
	if out := output(t, r); !strings.Contains(out, "\n-    tier: front\n") || strings.Count(out, "\n-") != 2 || strings.Count(out, "\n+") != 1 {
		t.Errorf("label dropped: diff\n%s", out)
	}

	e.patch(t, objs[0], types.ApplyPatchType, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"`+ns+`","labels":{"app":"other"}}}`, "other-tool")
	r = run(t, e, objects(t, web), o)
	got := r.Objects[0]
	if got.Status != diff.Conflict || len(got.Conflicts) != 1 || got.Conflicts[0].Manager != "other-tool" || got.Conflicts[0].Field != ".metadata.labels.app" {
		t.Fatalf("conflict: %s %+v", got.Status, got.Conflicts)
	}
	if len(got.Changes) != 1 || got.Changes[0] != (diff.Change{Path: ".metadata.labels.app", Op: diff.Replace, Live: "other", Merged: "web"}) {
		t.Errorf("conflict: changes %+v, want app: other replaced by web (as a forced apply would)", got.Changes)
	}
	if r.ExitCode() != diff.ExitDiffers {
		t.Errorf("conflict: exit %d", r.ExitCode())
	}
	var sum strings.Builder
	if err := diff.Summary(&sum, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), `Conflict: Deployment/`+ns+`/web: .metadata.labels.app is owned by "other-tool"`) {
		t.Errorf("summary:\n%s", sum.String())
	}
}

// A Secret's values show as hashes, in the diff and the JSON, never as values.
func TestSecretHashed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	secret := func(v string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  password: " + base64.StdEncoding.EncodeToString([]byte(v)) + "\n  user: " + base64.StdEncoding.EncodeToString([]byte("admin")) + "\n"
	}
	objs := objects(t, secret("s3cr3t-one"))
	objs[0].Namespace = ns
	e.apply(t, diff.FieldManager, objs)

	r := run(t, e, objects(t, secret("s3cr3t-two")), diff.Options{Namespace: ns})
	got := r.Objects[0]
	want := diff.Change{Path: ".data.password", Op: diff.Replace, Live: diff.Hash([]byte("s3cr3t-one")), Merged: diff.Hash([]byte("s3cr3t-two"))}
	if got.Status != diff.Changed || len(got.Changes) != 1 || got.Changes[0] != want {
		t.Errorf("%s %+v, want %+v", got.Status, got.Changes, want)
	}
	var js strings.Builder
	if err := diff.Write(&js, diff.FormatJSON, r); err != nil {
		t.Fatal(err)
	}
	out := output(t, r)
	for _, text := range []string{out, js.String()} {
		for _, v := range []string{"s3cr3t", "admin", base64.StdEncoding.EncodeToString([]byte("s3cr3t-one")), base64.StdEncoding.EncodeToString([]byte("s3cr3t-two")), base64.StdEncoding.EncodeToString([]byte("admin"))} {
			if strings.Contains(text, v) {
				t.Errorf("the output holds %q:\n%s", v, text)
			}
		}
	}
	if !strings.Contains(out, "-  password: "+want.Live.(string)+"\n+  password: "+want.Merged.(string)+"\n") {
		t.Errorf("diff:\n%s", out)
	}
}

// New objects are added; custom resources whose CRD is not installed are pending (in
// -n when their CRD in the input is namespaced; as given when the scope is unknown),
// after their CRD when the input holds it; an object in a namespace that does not
// exist yet is added as given.
func TestPendingAndAdded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	group := ns + ".example.com"
	r := run(t, e, objects(t, `apiVersion: `+group+`/v1
kind: Widget
metadata: {name: w}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: new}
data: {a: "1"}
---
apiVersion: gadgets.example.com/v1
kind: Gadget
metadata: {name: g}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: elsewhere, namespace: `+ns+`-missing}
data: {b: "2"}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.`+group+`}
spec:
  group: `+group+`
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object}}
`), diff.Options{Namespace: ns})
	type row struct {
		name   string
		status diff.Status
		reason string
	}
	want := []row{
		{"CustomResourceDefinition/widgets." + group, diff.Added, ""},
		{"ConfigMap/" + ns + "/new", diff.Added, ""},
		{"ConfigMap/" + ns + "-missing/elsewhere", diff.Added, "namespace " + ns + "-missing does not exist yet"},
		{"Gadget/g", diff.Pending, "the cluster serves no kind Gadget in gadgets.example.com/v1"},
		{"Widget/" + ns + "/w", diff.Pending, "its CustomResourceDefinition widgets." + group + " is in the input and not installed yet"},
	}
	if len(r.Objects) != len(want) {
		t.Fatalf("%d results, want %d", len(r.Objects), len(want))
	}
	for i, w := range want {
		got := r.Objects[i]
		if got.String() != w.name || got.Status != w.status || !strings.Contains(got.Reason, w.reason) || (w.reason == "") != (got.Reason == "") {
			t.Errorf("result %d: %s %s %q, want %s %s %q", i, got, got.Status, got.Reason, w.name, w.status, w.reason)
		}
	}
	if r.ExitCode() != diff.ExitDiffers {
		t.Errorf("exit %d", r.ExitCode())
	}
	out := output(t, r)
	if !strings.Contains(out, "+++ merged/ConfigMap/"+ns+"/new\n@@ -0,0 +1,") || !strings.Contains(out, "\n+  a: \"1\"\n") {
		t.Errorf("diff:\n%s", out)
	}
	var sum strings.Builder
	if err := diff.Summary(&sum, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "Pending: Widget/"+ns+"/w: its CustomResourceDefinition") || !strings.HasSuffix(sum.String(), "5 objects: 0 changed, 3 added, 2 pending, 0 conflicting, 0 unchanged\n") {
		t.Errorf("summary:\n%s", sum.String())
	}
}

type pruneList []diff.Ref

func (p pruneList) PruneCandidates(context.Context, []diff.Object) ([]diff.Ref, error) { return p, nil }

// Prune candidates from the hook are reported and are a difference.
func TestPruneHook(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	objs := objects(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
	objs[0].Namespace = ns
	e.apply(t, diff.FieldManager, objs)
	gone := diff.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: "old"}
	r := run(t, e, objs, diff.Options{Prune: pruneList{gone}})
	if r.ExitCode() != diff.ExitDiffers || len(r.Prune) != 1 || r.Prune[0] != gone {
		t.Errorf("exit %d, prune %v", r.ExitCode(), r.Prune)
	}
	if r := run(t, e, objs, diff.Options{}); r.ExitCode() != diff.ExitSame || r.Prune != nil {
		t.Errorf("no hook: exit %d, prune %v", r.ExitCode(), r.Prune)
	}
}

// Errors: an object the server rejects is bad input (2); a user the server refuses,
// or a server that does not answer, is a cluster error (3).
func TestErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	ctx := context.Background()
	bad := objects(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_A_Name}\n")
	_, err := diff.Run(ctx, e.c, bad, diff.Options{Namespace: ns})
	var input *diff.InputError
	if !errors.As(err, &input) || input.ExitCode() != diff.ExitInput || !strings.Contains(err.Error(), "ConfigMap/Not_A_Name (stdin: document 1)") {
		t.Errorf("invalid object: %v", err)
	}
	dup := objects(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
	if _, err := diff.Run(ctx, e.c, dup, diff.Options{Namespace: ns}); !errors.As(err, &input) || !strings.Contains(err.Error(), "is also in stdin: document 1") {
		t.Errorf("duplicate: %v", err)
	}

	cfg := rest.AnonymousClientConfig(testcluster.RESTConfig(t))
	cfg.BearerToken = testcluster.ViewerToken(t, e.cs, ns)
	viewer := cluster(t, cfg)
	cm := objects(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
	_, err = diff.Run(ctx, viewer, cm, diff.Options{Namespace: ns})
	var ce *checks.ClusterError
	if !errors.As(err, &ce) || !ce.Unauthorized || ce.ExitCode() != diff.ExitCluster {
		t.Errorf("viewer: %v", err)
	}

	gone := cluster(t, &rest.Config{Host: "https://127.0.0.1:1"})
	_, err = diff.Run(ctx, gone, cm, diff.Options{Namespace: ns})
	if !errors.As(err, &ce) || ce.Unauthorized || ce.ExitCode() != diff.ExitCluster {
		t.Errorf("unreachable: %v", err)
	}
}

func cluster(t *testing.T, cfg *rest.Config) *diff.Cluster {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return diff.NewCluster(dyn, cs.Discovery(), cfg.Host)
}

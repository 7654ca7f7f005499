package applyset

import (
	"strings"
	"testing"

	"github.com/meshplane/mesh/render/manifest"
)

// The IDs were computed apart from this code (Python's hashlib and base64), by the
// formula of KEP-3659 and kubectl: base64url(sha256(name.namespace.kind.group)).
func TestID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    Parent
		want string
	}{
		{ConfigMap("mesh-system", "mesh-control-plane-applyset"), "applyset-3XDAESGMVXdmZ4AxB4yzsTYKz_-e5pFwRA3Zo7vAOUA-v1"},
		{ConfigMap("kube-system", "mesh-crds-applyset"), "applyset-sy8oZaRea9Udn3RVVOYxcKItL2sb5mTwj38SjPbRw-k-v1"},
		{Parent{Kind: "ApplySet", Group: "example.com", Namespace: "shop", Name: "web"}, "applyset-VuC5Vilc1NddTIld_RGdBwpEPYNAtHcbRVxKahNew3Y-v1"},
	} {
		if got := tc.p.ID(); got != tc.want {
			t.Errorf("%s: ID %s, want %s", tc.p, got, tc.want)
		}
		if len(tc.want) > 63 {
			t.Errorf("%s: %d characters: too long for a label value", tc.want, len(tc.want))
		}
	}
}

func TestGroupKinds(t *testing.T) {
	t.Parallel()
	gks := []GroupKind{{Group: "apps", Kind: "Deployment"}, {Kind: "ConfigMap"}, {Group: "apps", Kind: "Deployment"}, {Group: "policy", Kind: "PodDisruptionBudget"}}
	s := FormatGroupKinds(gks)
	if want := "ConfigMap,Deployment.apps,PodDisruptionBudget.policy"; s != want {
		t.Fatalf("FormatGroupKinds = %q, want %q", s, want)
	}
	back := ParseGroupKinds(s)
	if len(back) != 3 || back[1] != (GroupKind{Group: "apps", Kind: "Deployment"}) || back[0] != (GroupKind{Kind: "ConfigMap"}) {
		t.Errorf("ParseGroupKinds(%q) = %v", s, back)
	}
	if got := ParseGroupKinds(""); got != nil {
		t.Errorf("empty annotation: %v, want the empty set", got)
	}
	if got := ParseGroupKind("MutatingWebhookConfiguration.admissionregistration.k8s.io"); got.Group != "admissionregistration.k8s.io" {
		t.Errorf("group %q", got.Group)
	}
}

func split(t *testing.T, s string) []manifest.Object {
	t.Helper()
	objs, err := manifest.SplitYAML("test.yaml", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestApply(t *testing.T) {
	t.Parallel()
	in := split(t, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: a
  namespace: mesh
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: b
  labels:
    x: "1"
    y: "2"
  annotations:
    z: "3"
rules: []
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: c
  namespace: other
  labels:
    x: "1"
spec:
  template:
    metadata:
      labels:
        app: c
`)
	set := Set{Parent: ConfigMap("mesh", "p"), Version: "v1.2.3", Kinds: []GroupKind{{Group: "policy", Kind: "PodDisruptionBudget"}}}
	out, err := Apply(in, set)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 4 {
		t.Fatalf("%d objects, want 3 and the parent", len(out))
	}
	id := set.Parent.ID()
	wantYAML := []string{
		"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  labels:\n    applyset.kubernetes.io/part-of: " + id + "\n  name: a\n  namespace: mesh\n",
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: b\n  labels:\n    x: \"1\"\n    y: \"2\"\n    applyset.kubernetes.io/part-of: " + id + "\n  annotations:\n    z: \"3\"\nrules: []\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: c\n  namespace: other\n  labels:\n    x: \"1\"\n    applyset.kubernetes.io/part-of: " + id + "\nspec:\n  template:\n    metadata:\n      labels:\n        app: c\n",
		`apiVersion: v1
kind: ConfigMap
metadata:
  name: p
  namespace: mesh
  labels:
    app.kubernetes.io/part-of: mesh
    applyset.kubernetes.io/id: ` + id + `
  annotations:
    applyset.kubernetes.io/additional-namespaces: "other"
    applyset.kubernetes.io/contains-group-kinds: "ClusterRole.rbac.authorization.k8s.io,Deployment.apps,PodDisruptionBudget.policy,ServiceAccount"
    applyset.kubernetes.io/tooling: "mesh/v1.2.3"
`,
	}
	for i, o := range out {
		if string(o.YAML) != wantYAML[i] {
			t.Errorf("object %d:\n%s\nwant:\n%s", i, o.YAML, wantYAML[i])
		}
	}
	// The parent is a valid object, read back as the set.
	labels, ann, err := Labels(out[3])
	if err != nil || labels[IDLabel] != id || ann[ToolingAnnotation] != "mesh/v1.2.3" {
		t.Errorf("parent reads as %v %v %v", labels, ann, err)
	}
	// Pure: the same input, the same bytes; the input is not changed.
	again, _ := Apply(in, set)
	for i := range out {
		if string(out[i].YAML) != string(again[i].YAML) {
			t.Errorf("object %d differs between two runs", i)
		}
	}
	if strings.Contains(string(in[0].YAML), PartOfLabel) {
		t.Error("Apply changed its input")
	}
}

func TestApplyErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"already a member", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    applyset.kubernetes.io/part-of: x\n", "already carries the label"},
		{"flow labels", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {x: y}\n", "could not add the label"},
		{"flow metadata", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", "no block metadata"},
		{"the parent itself", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p\n  namespace: mesh\n", "is the ApplySet's parent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Apply(split(t, tc.doc), Set{Parent: ConfigMap("mesh", "p"), Version: "v1"})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.yaml (document 1)") {
				t.Errorf("error %v, want %q naming the document", err, tc.want)
			}
		})
	}
}

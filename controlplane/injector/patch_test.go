package injector

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/install"
)

// The webhook's JSON patch, applied to the pod it was asked about, gives the injected
// pod, whatever the pod's annotations are: missing ("add"), null or {} ("replace": the
// member exists), or the user's own (kept). inject's round-trip marker, which it adds
// for null and {} and to record the mesh annotations a pod already had, stays out of
// live pods; a marker the pod came with is left as it came.
func TestReviewPatchAnnotations(t *testing.T) {
	t.Parallel()
	vals, err := install.EffectiveValues(install.Options{Version: "v1.2.3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := inject.New(inject.Options{Manual: &inject.Manual{Version: "v1.2.3", Namespace: "mesh-system", Values: vals}})
	if err != nil {
		t.Fatal(err)
	}
	wh := &Webhook{Injector: in, NamespaceAnnotations: func(context.Context, string) (map[string]string, error) {
		return map[string]string{inject.InjectAnnotation: inject.Enabled}, nil
	}}
	for _, c := range []struct {
		name, ann, op string
		want          map[string]string
	}{
		{"missing", ``, "add", nil},
		{"null", `,"annotations":null`, "replace", nil},
		{"empty", `,"annotations":{}`, "replace", nil},
		{"the user's", `,"annotations":{"team":"web"}`, "replace", map[string]string{"team": "web"}},
		{"the user's marker", `,"annotations":{"meshplane.io/original-annotations":"~"}`, "replace", map[string]string{inject.OriginalAnnotations: "~"}},
		{"the user's config", `,"annotations":{"config.meshplane.io/proxy-log-level":"warn"}`, "replace", map[string]string{"config.meshplane.io/proxy-log-level": "warn"}},
		{"the user's record", `,"annotations":{"config.meshplane.io/proxy-log-level":"warn","meshplane.io/original-annotations":"{\"added\":[\"meshplane.io/inject\"]}"}`, "replace",
			map[string]string{"config.meshplane.io/proxy-log-level": "warn", inject.OriginalAnnotations: `{"added":["meshplane.io/inject"]}`}},
	} {
		raw := `{"metadata":{"name":"p"` + c.ann + `},"spec":{"containers":[{"name":"app","image":"app:1"}]}}`
		resp := wh.Review(context.Background(), &admissionv1.AdmissionRequest{Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Operation: admissionv1.Create, Namespace: "meshed", Object: runtime.RawExtension{Raw: []byte(raw)}})
		if resp.Patch == nil {
			t.Errorf("%s: no patch (%v)", c.name, resp.Warnings)
			continue
		}
		var ops []patchOp
		if err := json.Unmarshal(resp.Patch, &ops); err != nil {
			t.Fatal(err)
		}
		var annOp string
		for _, op := range ops {
			if op.Path == "/metadata/annotations" {
				annOp = op.Op
			}
		}
		if annOp != c.op {
			t.Errorf("%s: annotations by %q, want %q: %s", c.name, annOp, c.op, resp.Patch)
		}
		patched, err := applyPatch([]byte(raw), ops)
		if err != nil {
			t.Errorf("%s: %v: %s", c.name, err, resp.Patch)
			continue
		}
		var p corev1.Pod
		if err := json.Unmarshal(patched, &p); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{inject.InjectAnnotation: inject.Enabled, inject.ProxyVersion: "v1.2.3"}
		for k, v := range c.want {
			want[k] = v
		}
		if fmt.Sprint(p.Annotations) != fmt.Sprint(want) {
			t.Errorf("%s: annotations %v, want %v", c.name, p.Annotations, want)
		}
		if !strings.Contains(string(patched), `"name":"`+inject.ProxyContainer+`"`) {
			t.Errorf("%s: no proxy: %s", c.name, patched)
		}
	}
}

// applyPatch applies the webhook's operations (add and replace of a field of a
// top-level object) as RFC 6902 says: add needs the parent, replace needs the member
// (a null one is there).
func applyPatch(doc []byte, ops []patchOp) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, err
	}
	for _, op := range ops {
		parts := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		if len(parts) != 2 {
			return nil, fmt.Errorf("path %s: not parent/field", op.Path)
		}
		parent, ok := m[parts[0]].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s %s: no parent", op.Op, op.Path)
		}
		switch op.Op {
		case "add":
		case "replace":
			if _, ok := parent[parts[1]]; !ok {
				return nil, fmt.Errorf("replace %s: no such member", op.Path)
			}
		default:
			return nil, fmt.Errorf("op %s", op.Op)
		}
		parent[parts[1]] = op.Value
	}
	return json.Marshal(m)
}

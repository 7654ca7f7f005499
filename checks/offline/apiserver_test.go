package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/manifest"
)

var wantRE = regexp.MustCompile(`(?m)^# want: (.+)$`)

// mesh check -f agrees with the API server: every object of the corpus that a
// server-side dry-run create (with strict field validation) rejects is rejected
// offline, with a finding naming the file, document, object and field, and every
// object the API server accepts passes offline.
func TestAgreesWithAPIServer(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	ctx := context.Background()
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	rc := cs.Discovery().RESTClient()

	bad := 0
	for _, file := range []string{"good.yaml", "bad.yaml"} {
		path := filepath.Join("testdata", "apiserver", file)
		s, err := Load(ctx, manifest.Inputs{Filenames: []string{path}}, manifest.Env{}, testOptions)
		if err != nil {
			t.Fatal(err)
		}
		var findings []string
		for _, c := range objectCheckers() {
			findings = append(findings, s.Findings(c.id)...)
		}
		docs := 0
		err = manifest.Inputs{Filenames: []string{path}}.Each(ctx, manifest.Env{}, func(d manifest.Doc) error {
			docs++
			var body map[string]any
			if err := yaml.Unmarshal(d.Raw, &body); err != nil {
				return err
			}
			var mine []string
			for _, f := range findings {
				if strings.HasPrefix(f, d.String()+": ") {
					mine = append(mine, f)
				}
			}
			obj := objectOf(d, body)
			name := fmt.Sprintf("%s (%s)", d, describe(obj))
			var serverErr error
			if obj.Kind == "" {
				// The API server takes the kind from the URL; what refuses a document
				// without one is kubectl, which must find the resource first.
				serverErr = kubectlDryRun(t, ns, d.Raw)
			} else {
				serverErr = dryRun(ctx, t, rc, mapper, ns, body)
			}
			switch {
			case serverErr != nil && len(mine) == 0:
				t.Errorf("%s: the API server rejects it, mesh check passes it: %v", name, serverErr)
			case serverErr == nil && len(mine) > 0:
				t.Errorf("%s: the API server accepts it, mesh check rejects it: %s", name, strings.Join(mine, "; "))
			}
			if file == "good.yaml" {
				return nil
			}
			bad++
			if serverErr == nil {
				t.Errorf("%s is in bad.yaml, but the API server accepts it", name)
			}
			m := wantRE.FindSubmatch(d.Raw)
			if m == nil {
				return fmt.Errorf("%s: no # want: comment", d)
			}
			want := describe(obj) + ": " + string(m[1])
			found := false
			for _, f := range mine {
				found = found || strings.HasPrefix(f, want)
			}
			if !found && len(mine) > 0 {
				t.Errorf("%s: no finding starts with %q: %s", name, want, strings.Join(mine, "; "))
			}
			t.Logf("%s\n  server:  %v\n  offline: %s", name, serverErr, strings.Join(mine, "; "))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if docs < 15 {
			t.Errorf("%s: only %d documents", file, docs)
		}
	}
	if bad < 40 {
		t.Errorf("only %d bad objects, want at least 40", bad)
	}
}

// objectOf is the Object that Load makes of a document's body.
func objectOf(d manifest.Doc, body map[string]any) Object {
	o := Object{Doc: d, Body: body}
	o.Kind, _ = body["kind"].(string)
	o.Name = str(body, "metadata", "name")
	o.Namespace = str(body, "metadata", "namespace")
	o.Source = d.String()
	return o
}

// kubectlDryRun is `kubectl create --dry-run=server --validate=strict -f -` in ns.
func kubectlDryRun(t *testing.T, ns string, doc []byte) error {
	t.Helper()
	cmd := exec.Command(testcluster.Kubectl(t), "--kubeconfig", testcluster.Kubeconfig(t), "-n", ns, "create", "--dry-run=server", "--validate=strict", "-f", "-")
	cmd.Stdin = bytes.NewReader(doc)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// dryRun creates the object with a server-side dry run and strict field validation,
// in namespace ns unless it names its own, and returns the API server's refusal.
// A Service that asks for a nodePort is created for real, and deleted: a dry run
// allocates no node ports, so it does not check them against the node-port range.
func dryRun(ctx context.Context, t *testing.T, rc rest.Interface, mapper meta.RESTMapper, ns string, body map[string]any) error {
	t.Helper()
	apiVersion, _ := body["apiVersion"].(string)
	kind, _ := body["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	mapping, err := mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	gvr := mapping.Resource
	namespaced := mapping.Scope.Name() == meta.RESTScopeNameNamespace
	target := ns
	if namespaced {
		md, _ := body["metadata"].(map[string]any)
		if md == nil {
			md = map[string]any{}
			body["metadata"] = md
		}
		if own, _ := md["namespace"].(string); own != "" {
			target = own
		} else {
			md["namespace"] = ns
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	segments := []string{"/api", gvr.Version}
	if gvr.Group != "" {
		segments = []string{"/apis", gvr.Group, gvr.Version}
	}
	if namespaced {
		segments = append(segments, "namespaces", target)
	}
	segments = append(segments, gvr.Resource)
	req := rc.Post().AbsPath(segments...).Param("fieldValidation", "Strict").SetHeader("Content-Type", "application/json").Body(b)
	if kind != "Service" || !hasNodePort(body) {
		return req.Param("dryRun", "All").Do(ctx).Error()
	}
	if err := req.Do(ctx).Error(); err != nil {
		return err
	}
	name := str(body, "metadata", "name")
	if err := rc.Delete().AbsPath(append(segments, name)...).Do(ctx).Error(); err != nil {
		t.Fatalf("delete Service %s: %v", name, err)
	}
	return nil
}

// hasNodePort: a Service's body asks for a node port.
func hasNodePort(body map[string]any) bool {
	spec, _ := body["spec"].(map[string]any)
	ports, _ := spec["ports"].([]any)
	for _, p := range ports {
		if m, _ := p.(map[string]any); m != nil && m["nodePort"] != nil {
			return true
		}
	}
	return false
}

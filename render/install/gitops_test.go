package install

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/values"
)

// --argocd-sync-waves adds one annotation to every object and changes nothing else:
// each document is the plain render's with exactly one line more, in the same order,
// and the waves put the CRDs before the configuration, the configuration before the
// workloads and the workloads before the webhook configurations.
func TestArgoCDSyncWaves(t *testing.T) {
	t.Parallel()
	withProm := values.Options{Values: []string{"prometheus.enabled=true,prometheus.podMonitor.enabled=true"}}
	for _, o := range []Options{{}, {HA: true}, {Part: CRDs}, {Values: withProm}} {
		plain := render(t, o)
		o.ArgoCDSyncWaves = true
		waved := render(t, o)
		if len(plain.Objects) != len(waved.Objects) {
			t.Fatalf("%+v: %d objects, want %d", o, len(waved.Objects), len(plain.Objects))
		}
		highest := map[string]int{}
		lowest := map[string]int{}
		for i, w := range waved.Objects {
			p := plain.Objects[i]
			if w.String() != p.String() {
				t.Fatalf("object %d: %s, want %s (the order changed)", i, w, p)
			}
			var m struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(w.YAML, &m); err != nil {
				t.Fatal(err)
			}
			wave, err := strconv.Atoi(m.Metadata.Annotations[SyncWaveAnnotation])
			if err != nil || wave != SyncWave(p) {
				t.Errorf("%s: sync wave %q, want %d", w, m.Metadata.Annotations[SyncWaveAnnotation], SyncWave(p))
			}
			// Exactly one line more: the annotation (and an annotations: key if none).
			extra := diffLines(string(p.YAML), string(w.YAML))
			if len(extra) == 0 || len(extra) > 2 || !strings.Contains(extra[len(extra)-1], SyncWaveAnnotation) {
				t.Errorf("%s: lines added %q, want only the sync wave", w, extra)
			}
			class := w.Kind
			switch w.Kind {
			case "CustomResourceDefinition", "Deployment", "MutatingWebhookConfiguration":
			case "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "Secret", "Service":
				class = "config"
			case "ConfigMap":
				class = "config"
				if w.Name == CRDsApplySetName {
					class = "CustomResourceDefinition" // the CRDs' parent goes with them
				}
			default:
				continue // Namespace, PodDisruptionBudget, PodMonitor: checked by SyncWave's table
			}
			if _, ok := highest[class]; !ok || wave > highest[class] {
				highest[class] = wave
			}
			if _, ok := lowest[class]; !ok || wave < lowest[class] {
				lowest[class] = wave
			}
		}
		order := []string{"CustomResourceDefinition", "config", "Deployment", "MutatingWebhookConfiguration"}
		for i := 1; i < len(order); i++ {
			a, b := order[i-1], order[i]
			if _, ok := highest[a]; !ok {
				continue
			}
			if _, ok := lowest[b]; ok && highest[a] >= lowest[b] {
				t.Errorf("%+v: %s reach wave %d, %s start at %d: want %s first", o, a, highest[a], b, lowest[b], a)
			}
		}
	}
}

// diffLines returns the lines of b that a lacks, for documents that differ only by
// inserted lines.
func diffLines(a, b string) []string {
	al, bl := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	var extra []string
	i := 0
	for _, l := range bl {
		if i < len(al) && al[i] == l {
			i++
			continue
		}
		extra = append(extra, l)
	}
	if i != len(al) {
		return append(extra, "(lines removed)")
	}
	return extra
}

// docs/gitops.md's Flux health checks name every Deployment of the default render,
// and only those: the guidance stays true when the chart changes.
func TestGitOpsDocHealthChecks(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/gitops.md")
	if err != nil {
		t.Fatal(err)
	}
	var checks []string
	for _, block := range strings.Split(string(doc), "```yaml\n")[1:] {
		block = block[:strings.Index(block, "```")]
		for _, d := range strings.Split(block, "\n---\n") {
			var k struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
				Spec struct {
					HealthChecks []struct {
						Kind, Name, Namespace string
					} `json:"healthChecks"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal([]byte(d), &k); err != nil {
				t.Fatalf("docs/gitops.md: a YAML block does not parse: %v\n%s", err, d)
			}
			if k.Kind == "Kustomization" && k.Metadata.Name == "mesh-control-plane" {
				for _, h := range k.Spec.HealthChecks {
					checks = append(checks, h.Kind+"/"+h.Namespace+"/"+h.Name)
				}
			}
		}
	}
	var want []string
	for _, o := range render(t, Options{}).Objects {
		if o.Kind == "Deployment" {
			want = append(want, o.Kind+"/"+o.Namespace+"/"+o.Name)
		}
	}
	slices.Sort(checks)
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(checks, want) {
		t.Errorf("docs/gitops.md's Flux health checks %v, want the render's Deployments %v", checks, want)
	}
}

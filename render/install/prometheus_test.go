package install

import (
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

const prometheusName = "mesh-prometheus"

func renderPrometheus(t *testing.T, set string) map[string]manifest.Object {
	t.Helper()
	res := render(t, Options{Part: ControlPlane, Values: values.Options{Values: []string{set}}})
	out := map[string]manifest.Object{}
	for _, o := range res.Objects {
		out[o.Kind+"/"+o.Name] = o
	}
	return out
}

func decode(t *testing.T, o manifest.Object) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(o.YAML, &m); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
	return m
}

func lookup(t *testing.T, m map[string]any, path string) any {
	t.Helper()
	v, ok := values.Lookup(m, path)
	if !ok {
		t.Fatalf("no %s", path)
	}
	return v
}

// The Prometheus the install renders scrapes with the shared relabelling, records
// the stat rules, keeps the retention asked for, and its PodMonitor carries the same
// relabelling in the operator's spelling.
func TestPrometheusObjects(t *testing.T) {
	t.Parallel()
	objs := renderPrometheus(t, "prometheus.enabled=true,prometheus.retention=2d,prometheus.podMonitor.enabled=true,prometheus.podMonitor.labels.release=kube-prometheus")
	for _, name := range []string{"ServiceAccount/" + prometheusName, "ClusterRole/mesh-mesh-system-prometheus",
		"ClusterRoleBinding/mesh-mesh-system-prometheus", "ConfigMap/" + prometheusName + "-config",
		"Deployment/" + prometheusName, "Service/" + prometheusName, "PodMonitor/mesh-proxy"} {
		if _, ok := objs[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	shared, err := PrometheusRelabeling()
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(shared, &want); err != nil {
		t.Fatal(err)
	}

	cm := decode(t, objs["ConfigMap/"+prometheusName+"-config"])
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(lookup(t, cm, "data").(map[string]any)["prometheus.yml"].(string)), &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	job := cfg["scrape_configs"].([]any)[0].(map[string]any)
	for _, k := range []string{"relabel_configs", "metric_relabel_configs"} {
		if !reflect.DeepEqual(job[k], want[k]) {
			t.Errorf("prometheus.yml %s differs from %s:\n%v\nwant\n%v", k, PrometheusRelabelFile, job[k], want[k])
		}
	}
	if sd := job["kubernetes_sd_configs"]; !reflect.DeepEqual(sd, []any{map[string]any{"role": "pod"}}) {
		t.Errorf("kubernetes_sd_configs = %v", sd)
	}
	rules, err := PrometheusRecordingRules()
	if err != nil {
		t.Fatal(err)
	}
	if got := lookup(t, cm, "data").(map[string]any)["recording-rules.yml"]; got != string(rules) {
		t.Errorf("recording-rules.yml differs from %s:\n%v", PrometheusRulesFile, got)
	}

	dep := decode(t, objs["Deployment/"+prometheusName])
	c := lookup(t, dep, "spec.template.spec.containers").([]any)[0].(map[string]any)
	args := c["args"].([]any)
	if !containsAny(args, "--storage.tsdb.retention.time=2d") {
		t.Errorf("args %v lack the retention", args)
	}
	if img := c["image"].(string); !strings.Contains(img, ":v") || strings.HasSuffix(img, ":latest") {
		t.Errorf("image %s is not pinned to a version", img)
	}

	pm := decode(t, objs["PodMonitor/mesh-proxy"])
	if l := lookup(t, pm, "metadata.labels.release"); l != "kube-prometheus" {
		t.Errorf("PodMonitor label release = %v", l)
	}
	ep := lookup(t, pm, "spec.podMetricsEndpoints").([]any)[0].(map[string]any)
	for k, op := range map[string]string{"relabel_configs": "relabelings", "metric_relabel_configs": "metricRelabelings"} {
		if got := ep[op]; !reflect.DeepEqual(got, operatorSpelling(want[k].([]any))) {
			t.Errorf("PodMonitor %s:\n%v\nwant\n%v", op, got, operatorSpelling(want[k].([]any)))
		}
	}
}

// The defaults the chart applies are the ones the schema documents.
func TestPrometheusDefaultsMatchSchema(t *testing.T) {
	t.Parallel()
	objs := renderPrometheus(t, "prometheus.enabled=true")
	if _, ok := objs["PodMonitor/mesh-proxy"]; ok {
		t.Error("a PodMonitor without prometheus.podMonitor.enabled")
	}
	ch, err := LoadChart("mesh-control-plane", "")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := yaml.Unmarshal(ch.Schema, &schema); err != nil {
		t.Fatal(err)
	}
	def := func(path string) any {
		p := "properties.prometheus.properties." + strings.ReplaceAll(path, ".", ".properties.") + ".default"
		return lookup(t, schema, p)
	}
	dep := decode(t, objs["Deployment/"+prometheusName])
	c := lookup(t, dep, "spec.template.spec.containers").([]any)[0].(map[string]any)
	if !containsAny(c["args"].([]any), "--storage.tsdb.retention.time="+def("retention").(string)) {
		t.Errorf("args %v: not the schema's default retention %v", c["args"], def("retention"))
	}
	if c["image"] != def("image") {
		t.Errorf("image %v, schema default %v", c["image"], def("image"))
	}
	res := c["resources"].(map[string]any)
	if !reflect.DeepEqual(res["requests"], def("resources.requests")) || !reflect.DeepEqual(res["limits"], def("resources.limits")) {
		t.Errorf("resources %v, schema defaults %v %v", res, def("resources.requests"), def("resources.limits"))
	}
	cm := decode(t, objs["ConfigMap/"+prometheusName+"-config"])
	if !strings.Contains(lookup(t, cm, "data").(map[string]any)["prometheus.yml"].(string), "scrape_interval: "+def("scrapeInterval").(string)) {
		t.Errorf("scrape interval is not the schema's default %v", def("scrapeInterval"))
	}
}

// Without prometheus values the render has none of it (the goldens pin the rest).
func TestPrometheusOffByDefault(t *testing.T) {
	t.Parallel()
	for _, o := range render(t, Options{}).Objects {
		if strings.Contains(o.Name, "prometheus") || o.Kind == "PodMonitor" {
			t.Errorf("default render has %s", o)
		}
	}
}

func containsAny(list []any, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// operatorSpelling is a relabel list as the Prometheus Operator spells it.
func operatorSpelling(rules []any) []any {
	names := map[string]string{"source_labels": "sourceLabels", "target_label": "targetLabel", "action": "action", "regex": "regex"}
	out := make([]any, 0, len(rules))
	for _, r := range rules {
		m := map[string]any{}
		for k, v := range r.(map[string]any) {
			m[names[k]] = v
		}
		out = append(out, m)
	}
	return out
}

package schema

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/checks/preinstall"
	"github.com/meshplane/mesh/checks/schema/gen"
	"github.com/meshplane/mesh/render/install"
)

type noFiles struct{}

func (noFiles) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (noFiles) Stdin() io.Reader                     { return strings.NewReader("") }

func render(t testing.TB, part install.Part) []map[string]any {
	return renderOpts(t, install.Options{Version: "v0.0.0-test", Part: part})
}

func renderOpts(t testing.TB, o install.Options) []map[string]any {
	t.Helper()
	res, err := install.Render(o, noFiles{})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	var objs []map[string]any
	for _, o := range res.Objects {
		var m map[string]any
		if err := yaml.Unmarshal(o.YAML, &m); err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		objs = append(objs, m)
	}
	return objs
}

func obj(t testing.TB, y string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func newValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := New(Default)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVersions(t *testing.T) {
	vs := Versions()
	if !slices.Contains(vs, Default) {
		t.Fatalf("Versions() = %v, want %s among them", vs, Default)
	}
	if !slices.IsSortedFunc(vs, func(a, b string) int { return cmp.Compare(minorOf(t, b), minorOf(t, a)) }) {
		t.Errorf("Versions() = %v, want newest first", vs)
	}
	// Every minor `mesh check --pre` accepts has its schemas, and the index of each
	// says it is that minor.
	lo, hi := minorOf(t, preinstall.MinVersion), minorOf(t, preinstall.MaxVersion)
	for m := lo; m <= hi; m++ {
		want := fmt.Sprintf("1.%d", m)
		v, err := New(want)
		if err != nil {
			t.Errorf("--pre accepts Kubernetes %s, but: %v", want, err)
			continue
		}
		k, err := v.KubernetesVersion()
		if err != nil || !strings.HasPrefix(k, "v"+want+".") {
			t.Errorf("schemas of %s come from %q (%v)", want, k, err)
		}
	}
	for _, s := range []string{"1.36", "v1.36", "1.36.3"} {
		if _, err := New(s); err != nil {
			t.Errorf("New(%q): %v", s, err)
		}
	}
	if _, err := New("1.12"); err == nil {
		t.Error("New(1.12): no error")
	}
	k, err := newValidator(t).KubernetesVersion()
	if err != nil || k != "v1.36.3" {
		t.Errorf("KubernetesVersion() = %q, %v", k, err)
	}
}

func minorOf(t *testing.T, v string) int {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) < 2 {
		t.Fatalf("version %q", v)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatalf("version %q: %v", v, err)
	}
	return n
}

// mesh's install output is valid for every embedded version, and each version checks
// against its own schemas: a field added after 1.29 is unknown there.
func TestEveryVersion(t *testing.T) {
	objs := render(t, install.All)
	pod := obj(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  resources: {limits: {cpu: 1}}\n  containers: [{name: a, image: a}]\n")
	for _, version := range Versions() {
		v, err := New(version)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if strings.HasPrefix(o["apiVersion"].(string), "cert-manager.io/") {
				continue
			}
			for _, e := range v.Validate(o) {
				t.Errorf("%s: %s %s: %s", version, o["kind"], lookup(o, "metadata", "name"), e)
			}
		}
		// PodSpec.resources (pod-level resources) is in the schemas from 1.32 on.
		errs := v.Validate(pod)
		unknown := len(errs) == 1 && errs[0].Path == "spec.resources" && strings.Contains(errs[0].Message, "unknown field")
		if want := minorOf(t, version) < 32; unknown != want {
			t.Errorf("%s: pod-level resources: %v, want unknown field: %v", version, errs, want)
		}
	}
}

func TestInstallOutputValid(t *testing.T) {
	v := newValidator(t)
	objs := render(t, install.All)
	checked := 0
	for _, o := range objs {
		if strings.HasPrefix(o["apiVersion"].(string), "cert-manager.io/") {
			continue
		}
		checked++
		for _, e := range v.Validate(o) {
			t.Errorf("%s %s: %s", o["kind"], lookup(o, "metadata", "name"), e)
		}
	}
	if checked < 10 {
		t.Errorf("only %d objects checked", checked)
	}
	// Speed is proven by BenchmarkInstall, not asserted here.

	// Other modes, and strictness on every kind mesh installs.
	for _, o := range renderOpts(t, install.Options{Version: "v0.0.0-test", HA: true, IssuerMode: "cert-manager"}) {
		if strings.HasPrefix(o["apiVersion"].(string), "cert-manager.io/") {
			if errs := v.Validate(o); len(errs) != 1 || !strings.HasPrefix(errs[0].Message, "no schema for apiVersion cert-manager.io/") {
				t.Errorf("%s: %v, want no schema", o["kind"], errs)
			}
			continue
		}
		for _, e := range v.Validate(o) {
			t.Errorf("HA, cert-manager: %s %s: %s", o["kind"], lookup(o, "metadata", "name"), e)
		}
		o["sepc"] = map[string]any{}
		o["metadata"].(map[string]any)["lables"] = map[string]any{}
		errs := v.Validate(o)
		if len(errs) != 2 || errs[0].Path != "metadata.lables" || errs[1].Path != "sepc" {
			t.Errorf("%s with unknown fields: %v", o["kind"], errs)
		}
	}
}

const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
  annotations: {checksum/config: abc}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx
          imagePullPolicy: IfNotPresent
          ports: [{containerPort: 80, name: http}]
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {memory: 1}
          readinessProbe:
            httpGet: {path: /, port: http}
`

func mutate(t *testing.T, y string, f func(m map[string]any)) map[string]any {
	m := obj(t, y)
	f(m)
	return m
}

func container(m map[string]any) map[string]any {
	return lookup(m, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
}

func TestValidate(t *testing.T) {
	v := newValidator(t)
	cases := []struct {
		name string
		obj  map[string]any
		want []FieldError // nil: valid; Message "" matches any message
	}{
		{"valid deployment", obj(t, deployment), nil},
		{"unknown field", mutate(t, deployment, func(m map[string]any) {
			c := container(m)
			c["imagePullPolcy"] = c["imagePullPolicy"]
			delete(c, "imagePullPolicy")
		}), []FieldError{{Path: "spec.template.spec.containers[0].imagePullPolcy", Message: `unknown field "imagePullPolcy"`}}},
		{"mistyped replicas", mutate(t, deployment, func(m map[string]any) {
			m["spec"].(map[string]any)["replicas"] = "three"
		}), []FieldError{{Path: "spec.replicas", Message: `must be an integer, got string "three"`}}},
		{"fractional replicas", mutate(t, deployment, func(m map[string]any) {
			m["spec"].(map[string]any)["replicas"] = 1.5
		}), []FieldError{{Path: "spec.replicas"}}},
		{"missing container name", mutate(t, deployment, func(m map[string]any) {
			delete(container(m), "name")
		}), []FieldError{{Path: "spec.template.spec.containers[0].name", Message: "required field missing"}}},
		{"missing selector", mutate(t, deployment, func(m map[string]any) {
			delete(m["spec"].(map[string]any), "selector")
		}), []FieldError{{Path: "spec.selector", Message: "required field missing"}}},
		{"bad quantity", mutate(t, deployment, func(m map[string]any) {
			lookup(container(m), "resources", "requests").(map[string]any)["cpu"] = "lots"
		}), []FieldError{{Path: "spec.template.spec.containers[0].resources.requests.cpu"}}},
		{"bool where int-or-string", mutate(t, deployment, func(m map[string]any) {
			lookup(m, "spec", "strategy", "rollingUpdate").(map[string]any)["maxSurge"] = true
		}), []FieldError{{Path: "spec.strategy.rollingUpdate.maxSurge", Message: "must be an integer or a string, got boolean"}}},
		{"non-string annotation", mutate(t, deployment, func(m map[string]any) {
			lookup(m, "metadata", "annotations").(map[string]any)["replicas"] = 3.0
			lookup(m, "metadata", "annotations").(map[string]any)["mesh.io/inject"] = true
		}), []FieldError{
			{Path: `metadata.annotations["mesh.io/inject"]`, Message: "must be a string, got boolean"},
			{Path: "metadata.annotations.replicas", Message: "must be a string, got integer"},
		}},
		{"service port name", obj(t, `
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: "http", targetPort: http}]
`), []FieldError{{Path: "spec.ports[0].port", Message: `must be an integer, got string "http"`}}},
		{"service int-or-string targetPort", obj(t, `
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: https, port: 443, targetPort: 8443}
`), nil},
		{"secret data not base64", obj(t, `
apiVersion: v1
kind: Secret
metadata: {name: s}
data: {key: "not base64!"}
`), []FieldError{{Path: "data.key"}}},
		{"unknown top-level field", obj(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
date: {a: b}
`), []FieldError{{Path: "date", Message: `unknown field "date"`}}},
		{"unknown kind", obj(t, `
apiVersion: policy.meshplane.io/v1alpha1
kind: ServiceProfile
metadata: {name: x}
`), []FieldError{{Message: "no schema for apiVersion policy.meshplane.io/v1alpha1, kind ServiceProfile in Kubernetes 1.36"}}},
		{"kind of another version", obj(t, `
apiVersion: apps/v1beta1
kind: Deployment
metadata: {name: x}
`), []FieldError{{Message: "no schema for apiVersion apps/v1beta1, kind Deployment in Kubernetes 1.36"}}},
		{"no apiVersion", obj(t, `
kind: Deployment
metadata: {name: x}
`), []FieldError{{Path: "apiVersion", Message: "required field missing"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := v.Validate(tc.obj)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors %v, want %v", len(got), got, tc.want)
			}
			for i, w := range tc.want {
				if got[i].Path != w.Path || w.Message != "" && got[i].Message != w.Message {
					t.Errorf("error %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	v := newValidator(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs := v.Validate(obj(t, deployment)); len(errs) != 0 {
				t.Errorf("errors: %v", errs)
			}
		}()
	}
	wg.Wait()
}

func serviceProfileCRD(t *testing.T) map[string]any {
	t.Helper()
	for _, o := range render(t, install.CRDs) {
		if lookup(o, "metadata", "name") == "serviceprofiles.policy.meshplane.io" {
			return o
		}
	}
	t.Fatal("no ServiceProfile CRD in the CRDs render")
	return nil
}

const serviceProfile = `
apiVersion: policy.meshplane.io/v1alpha1
kind: ServiceProfile
metadata:
  name: web.default.svc.cluster.local
  namespace: default
  labels: {app: web}
spec:
  routes:
    - name: get-root
      condition: {method: GET, pathRegex: "/"}
      isRetryable: true
      timeout: 300ms
  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 10s}
`

func TestValidateCustom(t *testing.T) {
	crd := serviceProfileCRD(t)
	route := func(m map[string]any) map[string]any {
		return lookup(m, "spec", "routes").([]any)[0].(map[string]any)
	}
	cases := []struct {
		name string
		obj  map[string]any
		want []string // paths
	}{
		{"valid", obj(t, serviceProfile), nil},
		{"unknown field", mutate(t, serviceProfile, func(m map[string]any) { route(m)["retries"] = 3.0 }), []string{"spec.routes[0].retries"}},
		{"unknown top-level field", mutate(t, serviceProfile, func(m map[string]any) { m["status"] = map[string]any{} }), []string{"status"}},
		{"timeout pattern", mutate(t, serviceProfile, func(m map[string]any) { route(m)["timeout"] = "fast" }), []string{"spec.routes[0].timeout"}},
		{"missing required", mutate(t, serviceProfile, func(m map[string]any) { delete(route(m), "condition") }), []string{"spec.routes[0].condition"}},
		{"minimum", mutate(t, serviceProfile, func(m map[string]any) {
			lookup(m, "spec", "retryBudget").(map[string]any)["retryRatio"] = -1.0
		}), []string{"spec.retryBudget.retryRatio"}},
		{"metadata", mutate(t, serviceProfile, func(m map[string]any) {
			lookup(m, "metadata", "labels").(map[string]any)["n"] = 1.0
			lookup(m, "metadata").(map[string]any)["lables"] = map[string]any{}
		}), []string{"metadata.labels.n", "metadata.lables"}},
		{"other version", mutate(t, serviceProfile, func(m map[string]any) { m["apiVersion"] = "policy.meshplane.io/v1" }), []string{"apiVersion"}},
		{"other kind", mutate(t, serviceProfile, func(m map[string]any) { m["kind"] = "ServerProfile" }), []string{""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValidateCustom(crd, tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, e := range got {
				paths = append(paths, e.Path)
			}
			if strings.Join(paths, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %v, want paths %q", got, tc.want)
			}
		})
	}
	if _, err := ValidateCustom(obj(t, deployment), obj(t, serviceProfile)); err == nil {
		t.Error("ValidateCustom with a Deployment as CRD: no error")
	}
}

// The CRDs mesh installs are themselves valid CustomResourceDefinitions.
func TestCRDsValid(t *testing.T) {
	v := newValidator(t)
	for _, o := range render(t, install.CRDs) {
		for _, e := range v.Validate(o) {
			t.Errorf("%s: %s", lookup(o, "metadata", "name"), e)
		}
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func kubernetesModule(t *testing.T, version string) string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env GOMODCACHE: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "k8s.io", "kubernetes@"+version)
	if _, err := os.Stat(gen.SpecDir(dir)); err != nil {
		t.Skipf("k8s.io/kubernetes@%s not in the module cache", version)
	}
	return dir
}

// The generator is deterministic, and the committed data is what it generates.
func TestGenerate(t *testing.T) {
	committed := readTree(t, "data")
	total := 0
	for _, x := range committed {
		total += len(x)
	}
	// Every minor in about 400 KB; keep the binary small.
	if total > 1<<20 {
		t.Errorf("embedded data is %d bytes, want < 1 MB", total)
	}
	for _, minor := range Versions() {
		b, err := os.ReadFile(filepath.Join("data", "v"+minor, "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		var idx gen.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			t.Fatal(err)
		}
		t.Run(idx.KubernetesVersion, func(t *testing.T) {
			testGenerate(t, idx.KubernetesVersion, committed)
		})
	}
}

func testGenerate(t *testing.T, version string, committed map[string][]byte) {
	spec := gen.SpecDir(kubernetesModule(t, version))
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := gen.Generate(spec, d, version); err != nil {
			t.Fatal(err)
		}
	}
	ta, tb := readTree(t, a), readTree(t, b)
	if len(ta) != len(gen.GroupVersions)+1 {
		t.Errorf("generated %d files, want %d", len(ta), len(gen.GroupVersions)+1)
	}
	for name, x := range ta {
		if !bytes.Equal(x, tb[name]) {
			t.Errorf("%s differs between two runs", name)
		}
		if !bytes.Equal(x, committed[name]) {
			t.Errorf("data/%s is not what go run ./hack/genschemas -kubernetes-version %s generates", name, version)
		}
	}
}

func BenchmarkInstall(b *testing.B) {
	objs := render(b, install.All)
	for b.Loop() {
		v, _ := New(Default)
		for _, o := range objs {
			v.Validate(o)
		}
	}
}

// One valid object of each group-version: no false positives.
const validObjects = `
apiVersion: v1
kind: Pod
metadata: {name: p, creationTimestamp: null, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: r, uid: "1234", controller: true}]}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  volumes:
  - {name: tmp, emptyDir: {sizeLimit: 1Gi}}
  - {name: cfg, configMap: {name: c, defaultMode: 0444, items: [{key: a, path: a}]}}
  containers:
  - name: c
    image: busybox
    args: [sleep, "3600"]
    env:
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    resources: {limits: {cpu: 0.5, memory: 128974848}}
    volumeMounts: [{name: tmp, mountPath: /tmp}]
    livenessProbe: {tcpSocket: {port: 8080}, periodSeconds: 10}
    lifecycle: {preStop: {exec: {command: [sh, -c, sleep 5]}}}
  tolerations: [{key: k, operator: Exists, effect: NoSchedule}]
  affinity:
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchExpressions: [{key: app, operator: In, values: [a]}]}}
status: {}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      backoffLimit: 2
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: h}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
  - type: Pods
    pods: {metric: {name: rps}, target: {type: AverageValue, averageValue: 100m}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: i}
spec:
  ingressClassName: nginx
  tls: [{hosts: [a.example], secretName: s}]
  rules:
  - host: a.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: [{ports: [{port: http}, {port: 8080, protocol: TCP}], from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: e, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], conditions: {ready: true}}]
ports: [{name: http, port: 80}]
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: l}
spec: {holderIdentity: x, leaseDurationSeconds: 15, renewTime: "2026-01-02T03:04:05.000000Z"}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pdb}
spec: {minAvailable: 50%, selector: {matchLabels: {app: a}}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: v}
webhooks:
- name: v.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig: {service: {name: s, namespace: ns, path: /validate, port: 443}, caBundle: Zm9v}
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods], scope: Namespaced}]
  matchConditions: [{name: m, expression: "true"}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-validations: [{rule: "self.spec.size > 0"}]
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            properties:
              size: {type: integer, default: 5, enum: [1, 5]}
              mode: {type: string, default: fast}
              port: {x-kubernetes-int-or-string: true, anyOf: [{type: integer}, {type: string}]}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
type: Opaque
data: {a: Zm9v}
stringData: {b: plain}
`

func TestValidObjects(t *testing.T) {
	v := newValidator(t)
	for i, doc := range strings.Split(validObjects, "\n---\n") {
		o := obj(t, doc)
		for _, e := range v.Validate(o) {
			t.Errorf("object %d, %s: %s", i, o["kind"], e)
		}
	}
}

func TestValidateCustomNotStructural(t *testing.T) {
	crd := serviceProfileCRD(t)
	v := lookup(crd, "spec", "versions").([]any)[0].(map[string]any)
	delete(lookup(v, "schema", "openAPIV3Schema", "properties", "spec").(map[string]any), "type")
	_, err := newValidator(t).ValidateCustom(crd, obj(t, serviceProfile))
	if err == nil || !strings.Contains(err.Error(), "not structural") {
		t.Errorf("err = %v, want not structural", err)
	}
}

func TestKnown(t *testing.T) {
	v := newValidator(t)
	for _, c := range []struct {
		apiVersion, kind string
		want             bool
	}{
		{"apps/v1", "Deployment", true},
		{"v1", "Service", true},
		{"apps/v1beta1", "Deployment", false},
		{"policy.meshplane.io/v1alpha1", "ServiceProfile", false},
		{"cert-manager.io/v1", "Certificate", false},
	} {
		if got := v.Known(c.apiVersion, c.kind); got != c.want {
			t.Errorf("Known(%s, %s) = %v", c.apiVersion, c.kind, got)
		}
	}
}

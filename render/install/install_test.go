package install

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

type fileReader struct{ stdin io.Reader }

func (r fileReader) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (r fileReader) Stdin() io.Reader                     { return r.stdin }

const testVersion = "v1.2.3"

// renderCases are the golden renders: every identity mode, HA, and each half alone.
var renderCases = []struct {
	name string
	opts Options
}{
	{"default", Options{}},
	{"ha", Options{HA: true}},
	{"external", Options{TrustAnchorsFile: "testdata/pki/ca.crt"}},
	{"external-issuer-secret", Options{
		TrustAnchorsFile: "testdata/pki/ca.crt", IssuerCertFile: "testdata/pki/issuer.crt", IssuerKeyFile: "testdata/pki/issuer.key",
	}},
	{"cert-manager", Options{IssuerMode: IssuerCertManager}},
	{"custom", Options{Namespace: "linkerd-like", Registry: "registry.example.com/mesh", ImageTag: "abc123", TrustDomain: "example.org",
		Values: values.Options{Values: []string{"proxy.logLevel=debug,controller.tolerations[0].operator=Exists"}}}},
	{"crds", Options{Part: CRDs}},
	{"control-plane", Options{Part: ControlPlane}},
	// The optional Prometheus and the PodMonitor, with a label for an operator's selector.
	{"prometheus", Options{Part: ControlPlane, Values: values.Options{Values: []string{
		"prometheus.enabled=true,prometheus.retention=2d,prometheus.podMonitor.enabled=true,prometheus.podMonitor.labels.release=kube-prometheus"}}}},
}

type objectT manifest.Object

func (o objectT) JSONOrFail(t testing.TB) []byte {
	t.Helper()
	j, err := manifest.Object(o).JSON()
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func render(t testing.TB, o Options) *Result {
	t.Helper()
	if o.Version == "" {
		o.Version = testVersion
	}
	res, err := Render(o, fileReader{strings.NewReader("")})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return res
}

func yamlOf(t testing.TB, objs []manifest.Object) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := manifest.WriteYAML(&b, objs); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			golden.Assert(t, "golden/"+tc.name+".yaml", yamlOf(t, render(t, tc.opts).Objects))
		})
	}
}

// The same inputs give the same bytes, render after render: no clock, no randomness,
// no map order leaking into the output.
func TestRenderIsDeterministic(t *testing.T) {
	for _, tc := range renderCases {
		first := yamlOf(t, render(t, tc.opts).Objects)
		for range 5 {
			if got := yamlOf(t, render(t, tc.opts).Objects); !bytes.Equal(got, first) {
				t.Fatalf("%s: two renders differ", tc.name)
			}
		}
	}
}

// Every built-in object decodes strictly into its k8s.io/api type: an unknown or
// mistyped field fails.
func TestRenderDecodesStrictly(t *testing.T) {
	sch := runtime.NewScheme()
	if err := clientscheme.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	dec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, sch, sch, kjson.SerializerOptions{Yaml: true, Strict: true})
	for _, tc := range renderCases {
		for _, o := range render(t, tc.opts).Objects {
			if o.Group() == "cert-manager.io" || o.Group() == "monitoring.coreos.com" {
				continue // not k8s.io/api types; checked by TestCertManagerObjects and TestPrometheusObjects
			}
			if _, _, err := dec.Decode(o.YAML, nil, nil); err != nil {
				t.Errorf("%s: %s: %v", tc.name, o, err)
			}
		}
	}
}

// The strict decoder must reject what it is meant to catch, or the test above proves nothing.
func TestStrictDecoderRejectsUnknownField(t *testing.T) {
	sch := runtime.NewScheme()
	_ = clientscheme.AddToScheme(sch)
	dec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, sch, sch, kjson.SerializerOptions{Yaml: true, Strict: true})
	_, _, err := dec.Decode([]byte("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\nautomountServiceAccountTokn: true\n"), nil, nil)
	if err == nil {
		t.Fatal("strict decoding accepted an unknown field")
	}
}

func TestOutputInvariants(t *testing.T) {
	for _, tc := range renderCases {
		res := render(t, tc.opts)
		out := string(yamlOf(t, res.Objects))
		// No private key unless the user passed one in.
		if hasKey := strings.Contains(out, "tls.key:"); hasKey != (tc.opts.IssuerKeyFile != "") {
			t.Errorf("%s: output holds a private key: %v", tc.name, hasKey)
		}
		if strings.Contains(out, "PRIVATE KEY") {
			t.Errorf("%s: output holds a PEM private key in clear", tc.name)
		}
		// The webhook carries no caBundle: the injector or cert-manager fills it in.
		for _, o := range res.Objects {
			if o.Kind == "MutatingWebhookConfiguration" && strings.Contains(string(objectT(o).JSONOrFail(t)), `"caBundle"`) {
				t.Errorf("%s: the webhook has a caBundle", tc.name)
			}
		}
		// Objects are in apply order.
		for i := 1; i < len(res.Objects); i++ {
			if manifest.Compare(res.Objects[i-1], res.Objects[i]) > 0 {
				t.Errorf("%s: %s before %s", tc.name, res.Objects[i-1], res.Objects[i])
			}
		}
		// Images are pinned to the version (or the tag given).
		tag := testVersion
		if tc.opts.ImageTag != "" {
			tag = tc.opts.ImageTag
		}
		for _, o := range res.Objects {
			if o.Kind != "Deployment" || o.Name == prometheusName {
				continue // Prometheus's own image: TestPrometheusObjects
			}
			for _, line := range strings.Split(string(o.YAML), "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "image: ") && !strings.HasSuffix(line, ":"+tag) {
					t.Errorf("%s: image not pinned to %s: %s", tc.name, tag, strings.TrimSpace(line))
				}
			}
		}
	}
}

func TestHA(t *testing.T) {
	count := func(objs []manifest.Object, kind, text string) int {
		n := 0
		for _, o := range objs {
			if o.Kind == kind && strings.Contains(string(o.YAML), text) {
				n++
			}
		}
		return n
	}
	ha, def := render(t, Options{HA: true}).Objects, render(t, Options{}).Objects
	for _, c := range []struct {
		kind, text string
		ha, def    int
	}{
		{"PodDisruptionBudget", "maxUnavailable: 1", 3, 0},
		{"Deployment", "replicas: 3", 3, 0},
		{"Deployment", "replicas: 1", 0, 3},
		{"Deployment", "podAntiAffinity:", 3, 0},
		{"MutatingWebhookConfiguration", "failurePolicy: Fail", 1, 0},
		{"MutatingWebhookConfiguration", "failurePolicy: Ignore", 0, 1},
	} {
		if got := count(ha, c.kind, c.text); got != c.ha {
			t.Errorf("HA: %d %s with %q, want %d", got, c.kind, c.text, c.ha)
		}
		if got := count(def, c.kind, c.text); got != c.def {
			t.Errorf("default: %d %s with %q, want %d", got, c.kind, c.text, c.def)
		}
	}
}

func TestCertManagerObjects(t *testing.T) {
	res := render(t, Options{IssuerMode: IssuerCertManager})
	var got []string
	for _, o := range res.Objects {
		if o.Group() == "cert-manager.io" {
			got = append(got, o.String())
		}
	}
	want := "Certificate/mesh-system/mesh-identity-issuer Certificate/mesh-system/mesh-injector-tls Issuer/mesh-system/mesh-trust-anchor Issuer/mesh-system/mesh-webhook-selfsigned"
	if strings.Join(got, " ") != want {
		t.Errorf("cert-manager objects:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if !strings.Contains(string(yamlOf(t, res.Objects)), "cert-manager.io/inject-ca-from: mesh-system/mesh-injector-tls") {
		t.Error("webhook lacks the CA injection annotation")
	}
}

// The namespace: -n, else the one the values record (as --print-values writes it),
// else mesh-system; printed values record it.
func TestNamespace(t *testing.T) {
	dir := t.TempDir()
	recorded := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(recorded, []byte("namespace: shop-mesh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"default", Options{}, DefaultNamespace},
		{"-n", Options{Namespace: "mesh"}, "mesh"},
		{"from the values", Options{Values: values.Options{ValueFiles: []string{recorded}}}, "shop-mesh"},
		{"-n agreeing with the values", Options{Namespace: "shop-mesh", Values: values.Options{ValueFiles: []string{recorded}}}, "shop-mesh"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Version = testVersion
			v, err := EffectiveValues(tc.opts, fileReader{strings.NewReader("")})
			if err != nil {
				t.Fatal(err)
			}
			if v["namespace"] != tc.want {
				t.Errorf("values record namespace %v, want %s", v["namespace"], tc.want)
			}
			res, err := Render(tc.opts, fileReader{strings.NewReader("")})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.Objects {
				if o.Namespace != "" && o.Namespace != tc.want && o.Name != CRDsApplySetName {
					t.Errorf("%s is in %s, want %s", o, o.Namespace, tc.want)
				}
				if o.Kind == "ConfigMap" && o.Name == "mesh-config" && !strings.Contains(string(o.YAML), "    namespace: "+tc.want+"\n") {
					t.Errorf("mesh-config does not record namespace %s:\n%s", tc.want, o.YAML)
				}
			}
		})
	}
}

// WithoutPrivateKey drops the issuer's key, and only that, from a copy.
func TestWithoutPrivateKey(t *testing.T) {
	o := Options{Version: testVersion, TrustAnchorsFile: "testdata/pki/ca.crt", IssuerCertFile: "testdata/pki/issuer.crt", IssuerKeyFile: "testdata/pki/issuer.key"}
	v, err := EffectiveValues(o, fileReader{strings.NewReader("")})
	if err != nil {
		t.Fatal(err)
	}
	out, had := WithoutPrivateKey(v)
	if !had {
		t.Fatal("no key found")
	}
	if k, _ := values.Lookup(out, PrivateKeyPath); k != nil {
		t.Errorf("key still there: %v", k)
	}
	if c, _ := values.Lookup(out, "identity.issuer.tls.crtPEM"); c == "" || c == nil {
		t.Error("certificate dropped too")
	}
	if k, _ := values.Lookup(v, PrivateKeyPath); k == nil || k == "" {
		t.Error("the input lost its key")
	}
	if _, had := WithoutPrivateKey(out); had {
		t.Error("a key found in values without one")
	}
}

func TestRenderErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := write("unknown.yaml", "proxy:\n  logLevl: debug\n")
	malformed := write("malformed.yaml", "proxy: [\n")
	scalar := write("scalar.yaml", "just a string\n")
	tests := []struct {
		name string
		opts Options
		want []string // every one must appear in the error
	}{
		{"unknown key in file", Options{Values: values.Options{ValueFiles: []string{unknown}}}, []string{unknown, "proxy.logLevl", "unknown key"}},
		{"malformed file", Options{Values: values.Options{ValueFiles: []string{malformed}}}, []string{malformed}},
		{"non-mapping file", Options{Values: values.Options{ValueFiles: []string{scalar}}}, []string{scalar, "mapping"}},
		{"missing file", Options{Values: values.Options{ValueFiles: []string{dir + "/nope.yaml"}}}, []string{"nope.yaml", "no such file"}},
		{"unknown --set key", Options{Values: values.Options{Values: []string{"proxy.nope=1"}}}, []string{"--set proxy.nope=1", "proxy.nope"}},
		{"mistyped --set", Options{Values: values.Options{Values: []string{"controller.replicas=many"}}}, []string{"controller.replicas", "needs an integer", `"many"`}},
		{"fraction by --set", Options{Values: values.Options{Values: []string{"controller.replicas=2.5"}}}, []string{"--set controller.replicas=2.5: controller.replicas: needs an integer, not \"2.5\""}},
		{"fraction in a file", Options{Values: values.Options{ValueFiles: []string{write("fraction.yaml", "controller:\n  replicas: 2.5\n")}}}, []string{"fraction.yaml: controller.replicas: needs an integer, not 2.5"}},
		{"quantity by --set", Options{Values: values.Options{Values: []string{"controller.resources.requests.cpu=lots"}}}, []string{"--set controller.resources.requests.cpu=lots: controller.resources.requests.cpu:", `"lots" is not a Kubernetes quantity`}},
		{"quantity in a file", Options{Values: values.Options{ValueFiles: []string{write("quantity.yaml", "proxy:\n  resources:\n    limits: {memory: 1GB}\n")}}}, []string{"quantity.yaml: proxy.resources.limits.memory:", `"1GB" is not a Kubernetes quantity`}},
		{"tap rate 0", Options{Values: values.Options{Values: []string{"proxy.tap.maxEventsPerSecond=0"}}}, []string{"--set proxy.tap.maxEventsPerSecond=0: proxy.tap.maxEventsPerSecond: must be above 0, not 0"}},
		{"tap rate unbounded", Options{Values: values.Options{ValueFiles: []string{write("rate.yaml", "proxy:\n  tap: {maxEventsPerSecond: 2000000}\n")}}}, []string{"rate.yaml: proxy.tap.maxEventsPerSecond: must be at most 1000000, not 2000000"}},
		{"tap rate not a number", Options{Values: values.Options{Values: []string{"proxy.tap.maxEventsPerSecond=lots"}}}, []string{"proxy.tap.maxEventsPerSecond: is a string, want number"}},
		{"tap header not a name", Options{Values: values.Options{Values: []string{"proxy.tap.redactHeaders={X-Api-Key,a:b}"}}}, []string{"proxy.tap.redactHeaders.1: \"a:b\" does not match"}},
		{"tap headers not a list", Options{Values: values.Options{Values: []string{"proxy.tap.redactHeaders=X-Api-Key"}}}, []string{"proxy.tap.redactHeaders: is a string, want array"}},
		{"invalid -n", Options{Namespace: "Bad_NS"}, []string{`--namespace (-n) "Bad_NS" is not a valid namespace name`, "RFC 1123"}},
		{"-n with dots", Options{Namespace: "mesh.system"}, []string{`--namespace (-n) "mesh.system"`}},
		{"invalid -n for the CRDs", Options{Part: CRDs, Namespace: "Bad_NS"}, []string{`--namespace (-n) "Bad_NS"`}},
		{"invalid namespace in values", Options{Values: values.Options{Values: []string{"namespace=Bad_NS"}}}, []string{"--set namespace=Bad_NS: namespace:"}},
		{"-n against the values", Options{Namespace: "shop", Values: values.Options{ValueFiles: []string{write("ns.yaml", "namespace: mesh\n")}}}, []string{"--namespace shop", "ns.yaml sets namespace to mesh"}},
		{"crds --set", Options{Part: CRDs, Values: values.Options{Values: []string{"anything=1"}}}, []string{"mesh install crds takes no values", "--set anything=1: anything: unknown key"}},
		{"crds -f", Options{Part: CRDs, Values: values.Options{ValueFiles: []string{write("proxy.yaml", "proxy: {logLevel: debug}\n")}}}, []string{"mesh install crds takes no values", "proxy.yaml: proxy: unknown key"}},
		{"crds --set-string", Options{Part: CRDs, Values: values.Options{StringValues: []string{"a=b"}}}, []string{"mesh install crds takes no values", "--set-string a=b"}},
		{"crds --ha", Options{Part: CRDs, HA: true}, []string{"--ha does not apply to mesh install crds"}},
		{"crds --registry", Options{Part: CRDs, Registry: "r.example"}, []string{"--registry does not apply to mesh install crds"}},
		{"bad --set syntax", Options{Values: values.Options{Values: []string{"proxy"}}}, []string{"--set", "proxy"}},
		{"enum", Options{Values: values.Options{StringValues: []string{"injector.failurePolicy=Sometimes"}}}, []string{"--set-string", "injector.failurePolicy"}},
		{"missing --set-file", Options{Values: values.Options{FileValues: []string{"identity.trustAnchorsPEM=" + dir + "/none.pem"}}}, []string{"--set-file", "none.pem"}},
		{"bad issuer mode", Options{IssuerMode: "vault"}, []string{"--identity-issuer", "identity.issuer.mode"}},
		{"external without anchors", Options{IssuerMode: IssuerExternal}, []string{"external", "--identity-trust-anchors-file"}},
		{"anchors with bootstrap", Options{IssuerMode: IssuerBootstrap, TrustAnchorsFile: "testdata/pki/ca.crt"}, []string{"bootstrap", "identity.trustAnchorsPEM"}},
		{"key as anchors", Options{TrustAnchorsFile: "testdata/pki/issuer.key"}, []string{"testdata/pki/issuer.key", "private key"}},
		{"leaf-less anchors", Options{TrustAnchorsFile: write("empty.pem", "nothing here")}, []string{"empty.pem", "no PEM certificate"}},
		{"issuer from another anchor", Options{TrustAnchorsFile: "testdata/pki-other/ca.crt", IssuerCertFile: "testdata/pki/issuer.crt"},
			[]string{"testdata/pki/issuer.crt", "testdata/pki-other/ca.crt", "not signed by any trust anchor"}},
		{"key of another issuer", Options{TrustAnchorsFile: "testdata/pki/ca.crt", IssuerCertFile: "testdata/pki/issuer.crt", IssuerKeyFile: "testdata/pki-other/issuer.key"},
			[]string{"testdata/pki-other/issuer.key", "not the private key"}},
		{"key without certificate", Options{TrustAnchorsFile: "testdata/pki/ca.crt", IssuerKeyFile: "testdata/pki/issuer.key"}, []string{"--identity-issuer-key-file", "certificate"}},
		{"issuer with cert-manager", Options{IssuerMode: IssuerCertManager, IssuerCertFile: "testdata/pki/issuer.crt"}, []string{"cert-manager"}},
		{"unknown part", Options{Part: "everything"}, []string{"everything"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Version = testVersion
			_, err := Render(tc.opts, fileReader{strings.NewReader("")})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestValuesLayering(t *testing.T) {
	dir := t.TempDir()
	a, b := dir+"/a.yaml", dir+"/b.yaml"
	_ = os.WriteFile(a, []byte("proxy:\n  logLevel: a\n  uid: 1000\n"), 0o644)
	_ = os.WriteFile(b, []byte("proxy:\n  logLevel: b\n"), 0o644)
	v, err := EffectiveValues(Options{Version: testVersion, HA: true, Registry: "r.example",
		Values: values.Options{ValueFiles: []string{a, b}, Values: []string{"controller.replicas=5"}}}, fileReader{})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"proxy.logLevel":         "b",             // later file wins
		"proxy.uid":              float64(1000),   // earlier file still applies
		"controller.replicas":    int64(5),        // --set beats --ha
		"injector.failurePolicy": "Fail",          // --ha applies
		"image.registry":         "r.example",     // flag
		"clusterDomain":          "cluster.local", // chart default
	} {
		if got, _ := values.Lookup(v, path); got != want {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
}

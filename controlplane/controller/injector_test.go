package controller

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshplane/mesh/controlplane/api/proxyenv"
	"github.com/meshplane/mesh/internal/testing/testcluster"
)

// mesh-controller injector as a real process: it creates its serving certificate, fills
// the webhook's caBundle, and the API server then injects the pods of a meshed
// namespace's Deployment through it, with the install's tap settings (proxy.tap.*),
// which a pod's annotation overrides; a pod with an invalid tap annotation is admitted
// without the proxy, with a warning naming it. It stops on SIGTERM with exit code 0.
func TestInjectorController(t *testing.T) {
	kubeconfig := testcluster.Kubeconfig(t)
	cs := testcluster.Clientset(t)
	ctx := context.Background()
	ns, meshed, plain := testcluster.Namespace(t, cs), testcluster.Namespace(t, cs), testcluster.Namespace(t, cs)
	mns, err := cs.CoreV1().Namespaces().Get(ctx, meshed, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mns.Annotations = map[string]string{"meshplane.io/inject": "enabled"}
	if _, err := cs.CoreV1().Namespaces().Update(ctx, mns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	bin, cfg := build(t, dir), writeValues(t, dir, ns, "proxy.tap.maxEventsPerSecond=250", "proxy.tap.redactHeaders={X-Api-Key,X-Session}")

	addr, adminAddr := freePort(t), freePort(t)
	// The webhook as mesh install renders it, but calling 127.0.0.1 and scoped to this
	// test's namespaces (other tests share the cluster). No caBundle: the injector sets it.
	whName := "mesh-test-" + ns
	url := "https://" + addr + "/inject"
	fail, none := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone
	_, err = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: whName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "proxy-injector.meshplane.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			FailurePolicy: &fail, SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{meshed, plain}}}},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), whName, metav1.DeleteOptions{})
	})

	cmd, log := start(t, bin, "injector", "--config", cfg, "--kubeconfig", kubeconfig, "--namespace", ns, "--listen-addr", addr,
		"--admin-addr", adminAddr, "--webhook", whName, "--serving-names", "127.0.0.1", "--mesh-version", "v1.2.3")
	waitReady(t, adminAddr, log)
	wh, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, whName, metav1.GetOptions{})
	if err != nil || len(wh.Webhooks[0].ClientConfig.CABundle) == 0 {
		t.Fatalf("caBundle not set: %v", err)
	}
	if _, err := cs.CoreV1().Secrets(ns).Get(ctx, "mesh-injector-tls", metav1.GetOptions{}); err != nil {
		t.Fatalf("serving Secret: %v", err)
	}

	podOf := func(namespace string) *corev1.Pod {
		one := int32(1)
		labels := map[string]string{"app": "web"}
		if _, err := cs.AppsV1().Deployments(namespace).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var pod *corev1.Pod
		waitFor(t, "a pod in "+namespace, func() error {
			pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
			if err != nil || len(pods.Items) == 0 {
				return fmt.Errorf("none yet (%v); injector log:\n%s", err, log)
			}
			pod = &pods.Items[0]
			return nil
		})
		return pod
	}
	hasProxy := func(p *corev1.Pod) bool {
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			if c.Name == "mesh-proxy" && c.Image == "ghcr.io/meshplane/proxy:v1.2.3" {
				return true
			}
		}
		return false
	}
	if p := podOf(meshed); !hasProxy(p) {
		t.Errorf("the meshed namespace's pod has no proxy; log:\n%s", log)
	} else {
		checkTapEnv(t, p, "250", "X-Api-Key,X-Session")
	}
	if p := podOf(plain); hasProxy(p) {
		t.Error("the unmeshed namespace's pod got the proxy")
	}
	// Pods with tap annotations (server dry runs, which call the webhook too).
	warnings := &warningLog{}
	rc := rest.CopyConfig(testcluster.RESTConfig(t))
	rc.WarningHandler = warnings
	wcs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	annotated := func(name, rate string) *corev1.Pod {
		p, err := wcs.CoreV1().Pods(meshed).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"config.meshplane.io/tap-max-events-per-second": rate}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
		}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := annotated("tap-override", "7"); !hasProxy(p) {
		t.Errorf("the annotated pod has no proxy; log:\n%s", log)
	} else {
		checkTapEnv(t, p, "7", "X-Api-Key,X-Session")
	}
	if p := annotated("tap-invalid", "0"); hasProxy(p) {
		t.Error("a pod with an invalid tap annotation got the proxy")
	}
	if w := warnings.String(); !strings.Contains(w, `mesh: not injected: Pod/tap-invalid: config.meshplane.io/tap-max-events-per-second "0": want a number of events per second above 0`) {
		t.Errorf("warnings %q do not name the invalid annotation", w)
	}

	// /metrics: the two admissions by result, and the expiry of the certificate served.
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "mesh-injector-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(sec.Data["tls.crt"])
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	m := scrape(t, adminAddr)
	for name, want := range map[string]float64{
		`mesh_injector_admission_requests_total{result="injected"}`: 2,
		`mesh_injector_admission_requests_total{result="skipped"}`:  1,
		`mesh_injector_admission_requests_total{result="error"}`:    1,
		`mesh_injector_serving_cert_expiry_timestamp_seconds`:       float64(leaf.NotAfter.Unix()),
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}

	stopGracefully(t, cmd, log)
}

// checkTapEnv checks the tap settings in the environment of p's proxy.
func checkTapEnv(t *testing.T, p *corev1.Pod, rate, redact string) {
	t.Helper()
	env := map[string]string{}
	for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
		for _, e := range c.Env {
			if c.Name == "mesh-proxy" {
				env[e.Name] = e.Value
			}
		}
	}
	if env[proxyenv.TapMaxEventsPerSecond] != rate || env[proxyenv.TapRedactHeaders] != redact {
		t.Errorf("%s: the proxy's tap cap %q and redacted headers %q, want %q and %q", p.Name,
			env[proxyenv.TapMaxEventsPerSecond], env[proxyenv.TapRedactHeaders], rate, redact)
	}
}

// warningLog keeps the API server's warnings (rest.WarningHandler).
type warningLog struct {
	mu   sync.Mutex
	text []string
}

func (w *warningLog) HandleWarningHeader(_ int, _, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.text = append(w.text, text)
}

func (w *warningLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.text, "\n")
}

// scrape reads the admin /metrics as sample name (with labels) to value.
func scrape(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

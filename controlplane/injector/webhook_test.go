package injector

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/install"
)

// servingTLS is a CA and a serving certificate for 127.0.0.1, as the injector makes.
func servingTLS(t *testing.T) (*tls.Config, []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mesh-injector"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// The webhook on 127.0.0.1, registered with the real API server: a Deployment in a
// meshed namespace gets pods with the proxy (created by the ReplicaSet controller), one
// in an unmeshed namespace does not, and a pod opted out stays as it is.
func TestInjectorWithAPIServer(t *testing.T) {
	cs := testcluster.Clientset(t)
	ctx := context.Background()
	meshed, plain := testcluster.Namespace(t, cs), testcluster.Namespace(t, cs)
	ns, err := cs.CoreV1().Namespaces().Get(ctx, meshed, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Annotations = map[string]string{inject.InjectAnnotation: inject.Enabled}
	if _, err := cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	vals, err := install.EffectiveValues(install.Options{Version: "v1.2.3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := inject.New(inject.Options{Manual: &inject.Manual{Version: "v1.2.3", Namespace: "mesh-system", Values: vals}})
	if err != nil {
		t.Fatal(err)
	}
	wh := &Webhook{Injector: in, NamespaceAnnotations: func(ctx context.Context, name string) (map[string]string, error) {
		n, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return n.Annotations, nil
	}}
	srv := httptest.NewUnstartedServer(wh)
	tlsCfg, caPEM := servingTLS(t)
	srv.TLS = tlsCfg
	srv.StartTLS()
	defer srv.Close()

	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	url := srv.URL + "/inject"
	name := "mesh-test-" + meshed
	_, err = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "proxy-injector.meshplane.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			// Only this test's namespaces: other tests share the cluster.
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{meshed, plain}}}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
	})

	deploy := func(namespace string, annotations map[string]string) {
		one := int32(1)
		labels := map[string]string{"app": "web"}
		_, err := cs.AppsV1().Deployments(namespace).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	pod := func(namespace string) *corev1.Pod {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
			if err == nil && len(pods.Items) > 0 {
				return &pods.Items[0]
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("no pod in %s", namespace)
		return nil
	}
	hasProxy := func(p *corev1.Pod) bool {
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			if c.Name == inject.ProxyContainer {
				return true
			}
		}
		return false
	}
	deploy(meshed, nil)
	deploy(plain, nil)
	if p := pod(meshed); !hasProxy(p) || p.Annotations[inject.ProxyVersion] != "v1.2.3" {
		t.Errorf("the pod in the meshed namespace has no proxy: %+v", p.Spec.InitContainers)
	} else if env := fmt.Sprint(p.Spec.InitContainers[1].Env); !strings.Contains(env, "MESH_PROXY_INBOUND_PORTS 8080") {
		t.Errorf("the proxy does not know the app's ports: %s", env)
	}
	if p := pod(plain); hasProxy(p) {
		t.Error("the pod in the unmeshed namespace got the proxy")
	}
	// A pod that opts out in a meshed namespace is admitted unchanged.
	opted, err := cs.CoreV1().Pods(meshed).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "opted-out", Annotations: map[string]string{inject.InjectAnnotation: inject.Disabled}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hasProxy(opted) {
		t.Error("an opted-out pod got the proxy")
	}
	// A hostNetwork pod with the inject annotation is admitted unchanged, with a warning.
	hn, err := cs.CoreV1().Pods(plain).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "host", Annotations: map[string]string{inject.InjectAnnotation: inject.Enabled}},
		Spec:       corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	if hasProxy(hn) {
		t.Error("a hostNetwork pod got the proxy")
	}
	// A pod sent as JSON with null annotations: the API server decodes them away, and
	// the webhook's patch applies; inject's round-trip marker stays out of the pod.
	var nullAnn corev1.Pod
	body := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"null-annotations","annotations":null},"spec":{"containers":[{"name":"app","image":"app:1"}]}}`
	if err := cs.CoreV1().RESTClient().Post().Namespace(meshed).Resource("pods").Param("dryRun", metav1.DryRunAll).
		SetHeader("Content-Type", "application/json").Body([]byte(body)).Do(ctx).Into(&nullAnn); err != nil {
		t.Fatal(err)
	}
	if !hasProxy(&nullAnn) || nullAnn.Annotations[inject.InjectAnnotation] != inject.Enabled {
		t.Errorf("the pod with null annotations was not injected: %v", nullAnn.Annotations)
	}
	if _, ok := nullAnn.Annotations[inject.OriginalAnnotations]; ok {
		t.Errorf("the live pod got the round-trip marker: %v", nullAnn.Annotations)
	}
}

package injector

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const (
	testNS      = "mesh-system"
	testWebhook = "mesh-proxy-injector"
	serviceName = "mesh-injector.mesh-system.svc"
)

// clock is the injected time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newFakeCluster() (*fake.Clientset, *[]string) {
	cs := fake.NewClientset(&admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: testWebhook},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "a.meshplane.io"}, {Name: "b.meshplane.io"}},
	})
	var writes []string // the writes, in order: "verb resource"
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if v := a.GetVerb(); v == "create" || v == "update" || v == "patch" {
			writes = append(writes, v+" "+a.GetResource().Resource)
		}
		return false, nil, nil
	})
	return cs, &writes
}

func caBundles(t *testing.T, cs *fake.Clientset) [][]byte {
	t.Helper()
	wh, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), testWebhook, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, w := range wh.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

func countCerts(bundle []byte) int {
	n := 0
	for {
		var b *pem.Block
		if b, bundle = pem.Decode(bundle); b == nil {
			return n
		}
		n++
	}
}

// handshake connects a TLS client that trusts caBundle (at the clock's time) to a
// server whose certificate comes from s.GetCertificate, and returns the leaf served.
func handshake(t *testing.T, s *ServingCert, caBundle []byte, now time.Time) (*x509.Certificate, error) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caBundle)
	cConn, sConn := net.Pipe()
	defer cConn.Close()
	defer sConn.Close()
	srv := tls.Server(sConn, &tls.Config{GetCertificate: s.GetCertificate, MinVersion: tls.VersionTLS12})
	go func() { _ = srv.Handshake() }()
	cli := tls.Client(cConn, &tls.Config{RootCAs: roots, ServerName: serviceName, Time: func() time.Time { return now }, MinVersion: tls.VersionTLS12})
	if err := cli.Handshake(); err != nil {
		return nil, err
	}
	return cli.ConnectionState().PeerCertificates[0], nil
}

// The serving certificate is made once for all replicas, rotated at two thirds of its
// life by the injected clock and served without a restart; during the overlap the
// caBundle trusts the old and the new leaf; the caBundle is updated before the Secret;
// an expired CA leaves the caBundle.
func TestServingCertRotation(t *testing.T) {
	ctx := context.Background()
	cs, writes := newFakeCluster()
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	var loaded []*x509.Certificate
	replica := func() *ServingCert {
		return &ServingCert{Client: cs, Namespace: testNS, Names: []string{serviceName, "127.0.0.1"}, Webhook: testWebhook, Create: true, Now: clk.now,
			OnLoad: func(leaf *x509.Certificate) { loaded = append(loaded, leaf) }}
	}
	a, b := replica(), replica()
	if a.Ready() == nil {
		t.Error("ready before the first sync")
	}
	if _, err := a.GetCertificate(nil); err == nil {
		t.Error("a certificate before the first sync")
	}
	for _, r := range []*ServingCert{a, b} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a.Ready() != nil || len(loaded) != 2 || !loaded[0].Equal(loaded[1]) {
		t.Fatalf("both replicas should serve the one certificate: ready %v, loaded %d", a.Ready(), len(loaded))
	}
	leaf1 := loaded[0]
	if want := clk.t.Add(DefaultServingLifetime); !leaf1.NotAfter.Equal(want) {
		t.Errorf("leaf expires %s, want %s", leaf1.NotAfter, want)
	}
	sec, err := cs.CoreV1().Secrets(testNS).Get(ctx, ServingSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, bundle := range caBundles(t, cs) {
		if !bytes.Equal(bundle, sec.Data["ca.crt"]) {
			t.Errorf("webhook %d: caBundle is not the Secret's ca.crt", i)
		}
	}
	bundle := caBundles(t, cs)[0]
	if got, err := handshake(t, a, bundle, clk.t); err != nil || !got.Equal(leaf1) {
		t.Fatalf("handshake: %v", err)
	}

	// Before two thirds of its life: nothing changes.
	clk.t = leaf1.NotBefore.Add(leaf1.NotAfter.Sub(leaf1.NotBefore) * 6 / 10)
	*writes = nil
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 2 || len(*writes) != 0 {
		t.Fatalf("rotated early: loaded %d, writes %v", len(loaded), *writes)
	}

	// Past two thirds: a new CA and leaf, the caBundle first, then the Secret.
	clk.t = leaf1.NotBefore.Add(leaf1.NotAfter.Sub(leaf1.NotBefore) * 7 / 10)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []string{"patch mutatingwebhookconfigurations", "update secrets"}; fmt.Sprint(*writes) != fmt.Sprint(want) {
		t.Errorf("writes %v, want %v (the caBundle must trust the new CA before the Secret holds the new leaf)", *writes, want)
	}
	if len(loaded) != 3 || loaded[2].Equal(leaf1) {
		t.Fatalf("no new certificate loaded (%d loads)", len(loaded))
	}
	leaf2 := loaded[2]
	if !leaf2.NotAfter.After(leaf1.NotAfter) {
		t.Errorf("the new leaf expires %s, not after the old one's %s", leaf2.NotAfter, leaf1.NotAfter)
	}
	bundle = caBundles(t, cs)[0]
	if n := countCerts(bundle); n != 2 {
		t.Errorf("caBundle holds %d CAs during the overlap, want 2 (old and new)", n)
	}
	// The same listener serves the new leaf, and the caBundle trusts both leaves.
	if got, err := handshake(t, a, bundle, clk.t); err != nil || !got.Equal(leaf2) {
		t.Fatalf("after rotation, handshake: %v (new leaf served: %v)", err, err == nil && got.Equal(leaf2))
	}
	if got, err := handshake(t, b, bundle, clk.t); err != nil || !got.Equal(leaf1) {
		t.Fatalf("the replica not yet synced should still serve the old leaf, trusted: %v", err)
	}
	// The other replica picks up the new leaf and does not rotate again.
	*writes = nil
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if len(*writes) != 0 || len(loaded) != 4 || !loaded[3].Equal(leaf2) {
		t.Errorf("replica b: writes %v, loaded %d", *writes, len(loaded))
	}

	// Once the old CA has expired it leaves the caBundle; the new leaf is not due yet.
	clk.t = leaf1.NotAfter.Add(time.Hour)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for i, bundle := range caBundles(t, cs) {
		if n := countCerts(bundle); n != 1 {
			t.Errorf("webhook %d: caBundle holds %d CAs after the old one expired, want 1", i, n)
		}
		if _, err := handshake(t, a, bundle, clk.t); err != nil {
			t.Errorf("webhook %d: %v", i, err)
		}
	}
	if len(loaded) != 4 {
		t.Errorf("rotated again too early")
	}
}

// A replica that read the Secret before another rotated must not remove the new CA
// from the caBundle.
func TestPatchCABundleKeepsValidCAs(t *testing.T) {
	ctx := context.Background()
	cs, _ := newFakeCluster()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	old, err := newServingCert([]string{serviceName}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := newServingCert([]string{serviceName}, now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := PatchCABundle(ctx, cs, testWebhook, append(fresh["ca.crt"], old["ca.crt"]...), now); err != nil {
		t.Fatal(err)
	}
	if err := PatchCABundle(ctx, cs, testWebhook, old["ca.crt"], now); err != nil {
		t.Fatal(err)
	}
	if got := caBundles(t, cs)[0]; countCerts(got) != 2 || !bytes.Contains(got, fresh["ca.crt"]) {
		t.Errorf("the newer CA was dropped:\n%s", got)
	}
	if err := PatchCABundle(ctx, cs, testWebhook, fresh["ca.crt"], now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := caBundles(t, cs)[1]; !bytes.Equal(got, fresh["ca.crt"]) {
		t.Errorf("the expired CA was kept:\n%s", got)
	}
}

// With cert-manager the Secret is only read: no Secret is an error, a renewed one is
// served at the next sync, nothing is rotated and the caBundle is left to cainjector.
func TestServingCertReadOnly(t *testing.T) {
	ctx := context.Background()
	cs, writes := newFakeCluster()
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := &ServingCert{Client: cs, Namespace: testNS, Names: []string{serviceName}, Webhook: testWebhook, Now: clk.now}
	if err := s.Sync(ctx); err == nil || s.Ready() == nil {
		t.Fatal("no error without the Secret")
	}
	put := func(data map[string][]byte) {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ServingSecret, Namespace: testNS}, Data: data}
		if _, err := cs.CoreV1().Secrets(testNS).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
			if _, err := cs.CoreV1().Secrets(testNS).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	first, _ := newServingCert([]string{serviceName}, clk.t, time.Hour)
	put(first)
	clk.t = clk.t.Add(50 * time.Minute) // past two thirds: cert-manager's job, not ours
	*writes = nil
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if len(*writes) != 0 {
		t.Errorf("wrote %v in read-only mode", *writes)
	}
	c1, _ := s.GetCertificate(nil)
	second, _ := newServingCert([]string{serviceName}, clk.t, time.Hour)
	put(second)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c2, _ := s.GetCertificate(nil)
	if bytes.Equal(c1.Certificate[0], c2.Certificate[0]) {
		t.Error("the renewed Secret is not served")
	}
	if got := caBundles(t, cs)[0]; len(got) != 0 {
		t.Error("the caBundle was set in read-only mode")
	}
}

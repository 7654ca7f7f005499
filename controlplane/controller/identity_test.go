package controller

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/controlplane/identity"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	renderidentity "github.com/meshplane/mesh/render/identity"

	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond until it holds or the bound passes (a bound on a wait, not a speed assertion).
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

type replica struct {
	cmd         *exec.Cmd
	grpc, admin string
	log         *identitytest.LogBuffer
}

// Two replicas of mesh-controller identity, as real processes, bootstrap their issuer
// (one Secret between them), serve Certify over TLS, reload a rotated issuer, expose
// /ready and /metrics, and stop on SIGTERM with exit code 0.
func TestIdentityController(t *testing.T) {
	kubeconfig := testcluster.Kubeconfig(t)
	cs := testcluster.Clientset(t)
	ctx := context.Background()
	ns := testcluster.Namespace(t, cs)
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	bin, cfg := build(t, dir), writeValues(t, dir, ns)

	var replicas []*replica
	for range 2 {
		r := &replica{grpc: freePort(t), admin: freePort(t)}
		r.cmd, r.log = start(t, bin, "identity", "--config", cfg, "--kubeconfig", kubeconfig, "--namespace", ns,
			"--listen-addr", r.grpc, "--admin-addr", r.admin, "--log-level", "debug")
		replicas = append(replicas, r)
	}
	for _, r := range replicas {
		waitReady(t, r.admin, r.log)
	}
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "mesh-identity-issuer", metav1.GetOptions{})
	if err != nil || sec.Labels["meshplane.io/bootstrapped"] != "true" {
		t.Fatalf("bootstrapped Secret: %v", err)
	}
	web := identity.Name("web", ns, "cluster.local")
	token := func() []byte {
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "web", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"identity.meshplane.io"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return []byte(tr.Status.Token)
	}
	certify := func(r *replica, anchorsPEM []byte) error {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(anchorsPEM)
		creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: identity.Name("mesh-identity", ns, "cluster.local"), MinVersion: tls.VersionTLS13})
		conn, err := grpc.NewClient(r.grpc, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: web}, DNSNames: []string{web}}, key)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := meshv1.NewIdentityClient(conn).Certify(cctx, &meshv1.CertifyRequest{Identity: web, Token: token(), CertificateSigningRequest: csr})
		if err != nil {
			return err
		}
		leaf, _ := x509.ParseCertificate(resp.LeafCertificate)
		inter := x509.NewCertPool()
		for _, d := range resp.IntermediateCertificates {
			c, _ := x509.ParseCertificate(d)
			inter.AddCert(c)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: web, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	// Both replicas sign with the one bootstrapped issuer, over TLS verified against its anchor.
	for i, r := range replicas {
		if err := certify(r, sec.Data["ca.crt"]); err != nil {
			t.Fatalf("replica %d: %v\nlog:\n%s", i, err, r.log)
		}
	}
	resp, err := http.Get("http://" + replicas[0].admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "mesh_identity_certificates_issued_total 1") || !strings.Contains(string(metrics), "mesh_identity_issuer_expiry_timestamp_seconds") {
		t.Errorf("metrics:\n%s", metrics)
	}

	// The leader publishes the trust roots in the control plane's namespace and in every
	// meshed namespace.
	roots := func(namespace string) (string, error) {
		cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, "mesh-identity-trust-roots", metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return cm.Data["ca-bundle.crt"], nil
	}
	waitFor(t, "trust roots in the control plane's namespace", func() error {
		got, err := roots(ns)
		if err == nil && got != string(sec.Data["ca.crt"]) {
			err = fmt.Errorf("ca-bundle.crt is not the issuer Secret's ca.crt")
		}
		return err
	})
	app := testcluster.Namespace(t, cs)
	nsObj, err := cs.CoreV1().Namespaces().Get(ctx, app, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsObj.Annotations = map[string]string{"meshplane.io/inject": "enabled"}
	if nsObj, err = cs.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "trust roots in a meshed namespace", func() error { _, err := roots(app); return err })

	// Rotation: a new issuer (and anchor) in the Secret is used without a restart.
	nb, err := renderidentity.Create(renderidentity.CreateOptions{TrustDomain: "cluster.local", Namespace: ns, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data = map[string][]byte{corev1.TLSCertKey: nb.IssuerCert, corev1.TLSPrivateKeyKey: nb.IssuerKey, "ca.crt": nb.AnchorCert}
	if _, err := cs.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range replicas {
		waitFor(t, "the rotated issuer", func() error { return certify(r, nb.AnchorCert) })
	}
	waitFor(t, "the rotated trust roots published", func() error {
		got, err := roots(app)
		if err == nil && got != string(nb.AnchorCert) {
			err = fmt.Errorf("not the new anchor yet")
		}
		return err
	})
	// A namespace that is no longer meshed loses the ConfigMap.
	nsObj.Annotations = nil
	if _, err := cs.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "trust roots removed from an unmeshed namespace", func() error {
		if _, err := roots(app); err == nil {
			return fmt.Errorf("still there")
		}
		return nil
	})

	// SIGTERM: a graceful stop, exit code 0.
	for _, r := range replicas {
		stopGracefully(t, r.cmd, r.log)
	}
}

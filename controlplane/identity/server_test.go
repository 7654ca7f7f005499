package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	renderidentity "github.com/meshplane/mesh/render/identity"
)

const audience = "identity.meshplane.io"

// issuer makes a trust anchor and issuer valid from made for life.
func issuer(t *testing.T, made time.Time, life time.Duration) *Issuer {
	t.Helper()
	b, err := renderidentity.Create(renderidentity.CreateOptions{TrustDomain: "cluster.local", Namespace: "mesh-system", Now: made, AnchorLifetime: life, IssuerLifetime: life})
	if err != nil {
		t.Fatal(err)
	}
	anchors, _ := renderidentity.ParseCertificates("ca", b.AnchorCert)
	certs, _ := renderidentity.ParseCertificates("issuer", b.IssuerCert)
	key, err := renderidentity.ParsePrivateKey("issuer key", b.IssuerKey)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Cert: certs[0], Key: key, Anchors: anchors}
}

// serve runs the Identity service on a loopback TCP port and returns a client.
func serve(t *testing.T, s *Server) meshv1.IdentityClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	meshv1.RegisterIdentityServer(g, s)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return meshv1.NewIdentityClient(conn)
}

func csrFor(t *testing.T, name string) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// forgedToken is a ServiceAccount token as the test cluster itself issues them, signed
// with its ServiceAccount key, issued at iat and expiring an hour later.
func forgedToken(t *testing.T, ns, sa, uid string, iat time.Time) string {
	t.Helper()
	keyPEM, err := os.ReadFile(filepath.Join(filepath.Dir(testcluster.Kubeconfig(t)), "pki", "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := renderidentity.ParsePrivateKey("sa.key", keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		t.Skipf("the test cluster's ServiceAccount key is a %T; this test signs ES256", k)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	kid := sha256.Sum256(pub)
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	past := iat.Unix()
	head := enc(map[string]string{"alg": "ES256", "kid": base64.RawURLEncoding.EncodeToString(kid[:])})
	body := enc(map[string]any{
		"aud": []string{audience}, "iss": "https://kubernetes.default.svc.cluster.local",
		"iat": past, "nbf": past, "exp": past + 3600, "sub": "system:serviceaccount:" + ns + ":" + sa,
		"kubernetes.io": map[string]any{"namespace": ns, "serviceaccount": map[string]string{"name": sa, "uid": uid}},
	})
	digest := sha256.Sum256([]byte(head + "." + body))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Certify against the real API server's TokenReview, over a real gRPC connection.
func TestCertify(t *testing.T) {
	cs := testcluster.Clientset(t)
	ctx := context.Background()
	ns := testcluster.Namespace(t, cs)
	var uid string
	for _, sa := range []string{"web", "db"} {
		created, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sa == "web" {
			uid = string(created.UID)
		}
	}
	token := func(sa, aud string) []byte {
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{aud}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return []byte(tr.Status.Token)
	}
	good := issuer(t, time.Now().Add(-time.Hour), 365*24*time.Hour)
	current := good
	srv := &Server{TrustDomain: "cluster.local", Audience: audience, Lifetime: 24 * time.Hour, ClockSkew: 20 * time.Second,
		Reviewer: APIReviewer{Client: cs}, Issuer: func() (*Issuer, error) { return current, nil }, Now: time.Now}
	client := serve(t, srv)
	web := Name("web", ns, "cluster.local")

	// A real token of the right audience gets a leaf for its identity, chaining to the anchor.
	csr, key := csrFor(t, web)
	resp, err := client.Certify(ctx, &meshv1.CertifyRequest{Identity: web, Token: token("web", audience), CertificateSigningRequest: csr})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(resp.LeafCertificate)
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range resp.IntermediateCertificates {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	roots := x509.NewCertPool()
	roots.AddCert(good.Anchors[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: web, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the leaf does not verify: %v", err)
	}
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) || leaf.Subject.CommonName != web {
		t.Error("the leaf is not for the CSR's key and identity")
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 24*time.Hour || life > 24*time.Hour+time.Minute {
		t.Errorf("leaf lifetime %s", life)
	}

	// The same token, not expired, is accepted: the expired one below fails for its expiry.
	if _, err := client.Certify(ctx, &meshv1.CertifyRequest{Identity: web, Token: []byte(forgedToken(t, ns, "web", uid, time.Now().Add(-time.Minute))), CertificateSigningRequest: csr}); err != nil {
		t.Fatalf("a fresh token made like the expired one is refused, so the expired case proves nothing: %v", err)
	}

	db := Name("db", ns, "cluster.local")
	badCSR, _ := csrFor(t, db)
	for _, tc := range []struct {
		name string
		req  *meshv1.CertifyRequest
		code codes.Code
		msg  string
	}{
		{"wrong audience", &meshv1.CertifyRequest{Identity: web, Token: token("web", "some-other-service"), CertificateSigningRequest: csr}, codes.Unauthenticated, "audience"},
		{"another SA's name", &meshv1.CertifyRequest{Identity: db, Token: token("web", audience), CertificateSigningRequest: badCSR}, codes.PermissionDenied, "may not ask for " + db},
		{"expired token", &meshv1.CertifyRequest{Identity: web, Token: []byte(forgedToken(t, ns, "web", uid, time.Now().Add(-2*time.Hour))), CertificateSigningRequest: csr}, codes.Unauthenticated, "not valid"},
		{"garbage token", &meshv1.CertifyRequest{Identity: web, Token: []byte("not-a-token"), CertificateSigningRequest: csr}, codes.Unauthenticated, "not valid"},
		{"malformed CSR", &meshv1.CertifyRequest{Identity: web, Token: token("web", audience), CertificateSigningRequest: []byte("nope")}, codes.InvalidArgument, "malformed CSR"},
		{"CSR for another name", &meshv1.CertifyRequest{Identity: web, Token: token("web", audience), CertificateSigningRequest: badCSR}, codes.InvalidArgument, "must name " + web},
		{"not an identity", &meshv1.CertifyRequest{Identity: "web." + ns, Token: token("web", audience), CertificateSigningRequest: csr}, codes.InvalidArgument, "is not SA.NS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Certify(ctx, tc.req)
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Errorf("got %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
		})
	}

	// An expired issuer refuses to sign.
	current = issuer(t, time.Now().Add(-3*time.Hour), time.Hour)
	_, err = client.Certify(ctx, &meshv1.CertifyRequest{Identity: web, Token: token("web", audience), CertificateSigningRequest: csr})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "expired") {
		t.Errorf("expired issuer: %v %q", st.Code(), st.Message())
	}
}

package controller

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/controlplane/api/identityclient"
	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/controlplane/destination"
	"github.com/meshplane/mesh/controlplane/identity"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/install"
)

// destination's identity client: the identity service and token from the
// environment or the defaults, and the anchors from the file (optional: it may not
// be published yet), else the values' trustAnchorsPEM, else the mounted ConfigMap.
func TestDestinationIdentityConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain, inline := filepath.Join(dir, "plain.yaml"), filepath.Join(dir, "inline.yaml")
	if err := os.WriteFile(plain, []byte("clusterDomain: cluster.local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inline, []byte("identity:\n  trustAnchorsPEM: PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what, config string
		env          map[string]string
		want         identityclient.Config
	}{
		{"defaults", plain, nil, identityclient.Config{Addr: "mesh-identity.mesh.svc.example.org.:8080", TokenFile: defaultTokenFile,
			TrustAnchorsFile: defaultAnchorsFile, TrustAnchorsFileOptional: true}},
		{"inline anchors", inline, nil, identityclient.Config{Addr: "mesh-identity.mesh.svc.example.org.:8080", TokenFile: defaultTokenFile,
			TrustAnchorsPEM: []byte("PEM")}},
		{"environment", inline, map[string]string{envIdentityAddr: "id:1", envTokenFile: "/t", envAnchorsFile: "/a"},
			identityclient.Config{Addr: "id:1", TokenFile: "/t", TrustAnchorsFile: "/a", TrustAnchorsFileOptional: true}},
	} {
		got, err := destinationIdentity(common{config: tc.config, namespace: "mesh"}, "example.org", "td.test", func(k string) string { return tc.env[k] })
		if err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		tc.want.LocalName, tc.want.Name = "mesh-destination.mesh.serviceaccount.identity.td.test", "mesh-identity.mesh.serviceaccount.identity.td.test"
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.what, got, tc.want)
		}
	}
	if _, err := destinationIdentity(common{config: filepath.Join(dir, "missing.yaml")}, "", "", func(string) string { return "" }); err == nil {
		t.Error("a missing --config was accepted")
	}
}

// ensureServiceProfileCRD creates the CRD as mesh install renders it unless it exists
// (cluster-scoped, shared: never deleted) and waits until it is served.
func ensureServiceProfileCRD(t *testing.T) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(testcluster.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	res, err := install.Render(install.Options{Version: "v0.0.0-test", Part: install.CRDs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, o := range res.Objects {
		if o.Kind != "CustomResourceDefinition" {
			continue // the ApplySet's parent
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(o.YAML, &u.Object); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(crds).Create(context.Background(), u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	waitFor(t, "ServiceProfiles served", func() error {
		_, err := dyn.Resource(destination.ServiceProfiles()).Namespace("default").List(context.Background(), metav1.ListOptions{Limit: 1})
		return err
	})
}

// mesh-controller identity and destination as real processes: destination gets its
// certificate from identity with its ServiceAccount token (as a proxy does), becomes
// ready, serves Get and GetProfile over mTLS to a client with a mesh certificate only,
// and stops on SIGTERM with exit code 0.
func TestDestinationController(t *testing.T) {
	kubeconfig := testcluster.Kubeconfig(t)
	cs := testcluster.Clientset(t)
	ensureServiceProfileCRD(t)
	ctx := context.Background()
	ns := testcluster.Namespace(t, cs)
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "mesh-destination"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin, cfg := build(t, dir), writeValues(t, dir, ns)

	idAddr, idAdmin := freePort(t), freePort(t)
	idCmd, idLog := start(t, bin, "identity", "--config", cfg, "--kubeconfig", kubeconfig, "--namespace", ns, "--listen-addr", idAddr, "--admin-addr", idAdmin)
	waitReady(t, idAdmin, idLog)

	// What the Deployment mounts: the projected token and the trust-roots ConfigMap.
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "mesh-destination", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"identity.meshplane.io"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile, anchorsFile := filepath.Join(dir, "token"), filepath.Join(dir, "ca-bundle.crt")
	if err := os.WriteFile(tokenFile, []byte(tr.Status.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	var anchors string
	waitFor(t, "trust roots published", func() error {
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, identity.TrustRootsConfigMapName, metav1.GetOptions{})
		if err == nil {
			anchors = cm.Data[identity.TrustRootsKey]
		}
		return err
	})
	if err := os.WriteFile(anchorsFile, []byte(anchors), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Setenv("MESH_IDENTITY_ADDR", idAddr)
	t.Setenv("MESH_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("MESH_IDENTITY_TRUST_ANCHORS_FILE", anchorsFile)
	addr, adminAddr := freePort(t), freePort(t)
	cmd, log := start(t, bin, "destination", "--config", cfg, "--kubeconfig", kubeconfig, "--namespace", ns, "--listen-addr", addr, "--admin-addr", adminAddr)
	waitReady(t, adminAddr, log)

	// A proxy's certificate, signed by the issuer identity bootstrapped.
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "mesh-identity-issuer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := identity.ParseSecret(sec)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf, err := iss.Sign(&x509.CertificateRequest{PublicKey: &key.PublicKey}, identity.Name("web", ns, "cluster.local"), time.Now(), time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(anchors))
	server := identity.Name("mesh-destination", ns, "cluster.local")
	dial := func(certs ...tls.Certificate) meshv1.DestinationClient {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: server, Certificates: certs})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return meshv1.NewDestinationClient(conn)
	}
	client := dial(tls.Certificate{Certificate: [][]byte{leaf.Raw, iss.Cert.Raw}, PrivateKey: key})
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for path, exists := range map[string]bool{"web." + ns + ".svc.cluster.local:80": true, "gone." + ns + ".svc.cluster.local:80": false} {
		stream, err := client.Get(sctx, &meshv1.GetDestination{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		u, err := stream.Recv()
		if err != nil || u.GetNoEndpoints() == nil || u.GetNoEndpoints().Exists != exists {
			t.Errorf("%s: %v %v, want no endpoints, exists=%v\nlog:\n%s", path, u, err, exists, log)
		}
	}
	profiles, err := client.GetProfile(sctx, &meshv1.GetDestination{Path: "web." + ns + ".svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := profiles.Recv(); err != nil || p.GetRetryBudget().GetMinRetriesPerSecond() != 10 || len(p.Routes) != 0 {
		t.Errorf("profile %v, %v: want an empty profile with the default budget", p, err)
	}
	// Without a mesh certificate: refused.
	stream, err := dial().Get(sctx, &meshv1.GetDestination{Path: "web." + ns + ".svc.cluster.local:80"})
	if err == nil {
		_, err = stream.Recv()
	}
	if err == nil {
		t.Error("a client without a certificate was served")
	}
	cancel() // close the streams: GracefulStop waits for open ones (up to its bound)
	stopGracefully(t, cmd, log)
	stopGracefully(t, idCmd, idLog)
}

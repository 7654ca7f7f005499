package dataplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/inject"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root.identity"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCA{c, key}
}

func (ca testCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

func (ca testCA) leafPEM(t *testing.T, name string) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// hostIP is a non-loopback address of this machine: the API server refuses to proxy to
// loopback, and a pod's admin port must be reachable from it.
func hostIP(t *testing.T) net.IP {
	t.Helper()
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP
		}
	}
	t.Skip("no non-loopback IPv4 address to stand in for a pod IP")
	return nil
}

// proxy.certificates reads each proxy's chain from its admin /identity through the
// API server's pod proxy, and checks it against the issuer Secret's anchors.
func TestProxyCertificates(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	cp := testcluster.Namespace(t, cs)
	ctx := context.Background()
	ca, other := newCA(t), newCA(t)
	if _, err := cs.CoreV1().Secrets(cp).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: issuerSecret},
		Data: map[string][]byte{"ca.crt": ca.pem()}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The proxy's admin endpoint, on a real address of this host standing in for the pod IP.
	ip := hostIP(t)
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Value
	served.Store(ca.leafPEM(t, "default."+ns+".serviceaccount.identity.cluster.local"))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/identity" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(served.Load().([]byte))
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := int32(l.Addr().(*net.TCPAddr).Port)

	meshedPod(t, ns, "web", "v1.2.3", true, func(p *corev1.Pod) {
		for _, list := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for i := range list {
				if list[i].Name != inject.ProxyContainer {
					continue
				}
				for j := range list[i].Ports {
					if list[i].Ports[j].Name == "mesh-admin" {
						list[i].Ports[j].ContainerPort = port
					}
				}
			}
		}
		p.Status.PodIP = ip.String()
		p.Status.PodIPs = []corev1.PodIP{{IP: ip.String()}}
	})
	o := Options{Namespace: ns, ControlPlaneNamespace: cp, CLIVersion: "v1.2.3"}
	if r := run(t, o)["proxy.certificates"]; r.Status != checks.Passed {
		t.Fatalf("a certificate from the anchors: %s %q", r.Status, r.Message)
	}
	served.Store(other.leafPEM(t, "default."+ns+".serviceaccount.identity.cluster.local"))
	if r := run(t, o)["proxy.certificates"]; r.Status != checks.Failed || !strings.Contains(r.Message, "Pod/"+ns+"/web") || !strings.Contains(r.Message, "does not chain to the current trust anchors") {
		t.Errorf("a certificate from another CA: %s %q", r.Status, r.Message)
	}
	served.Store(ca.leafPEM(t, "intruder."+ns+".serviceaccount.identity.cluster.local"))
	if r := run(t, o)["proxy.certificates"]; r.Status != checks.Failed || !strings.Contains(r.Message, "not the pod's ServiceAccount") {
		t.Errorf("a certificate for another identity: %s %q", r.Status, r.Message)
	}
}

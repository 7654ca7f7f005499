package dataplane

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/identity"
)

// issuerSecret holds the current trust anchors (ca.crt) in every identity mode.
const issuerSecret = "mesh-identity-issuer"

// defaultAdminPort is the proxy's admin port when the pod does not name it.
const defaultAdminPort = 4191

// certificates fetches each ready proxy's certificate chain from its admin endpoint
// (/identity, through the API server's pod proxy) and verifies that it chains to the
// current trust anchors and names the pod's ServiceAccount.
func certificates(ctx context.Context, cs kubernetes.Interface, o Options) error {
	ps, err := meshedOrSkip(ctx, cs, o.Namespace)
	if err != nil {
		return err
	}
	secret, err := cs.CoreV1().Secrets(o.ControlPlaneNamespace).Get(ctx, issuerSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s does not exist: the trust anchors are unknown", checks.ObjectName("Secret", o.ControlPlaneNamespace, issuerSecret))
	}
	if err != nil {
		return err
	}
	anchors, err := identity.ParseCertificates(checks.ObjectName("Secret", o.ControlPlaneNamespace, issuerSecret)+" ca.crt", secret.Data["ca.crt"])
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	for _, a := range anchors {
		roots.AddCert(a)
	}
	var bad []string
	for _, px := range ps {
		if px.status == nil || !px.status.Ready {
			continue // proxy.ready reports these
		}
		if err := proxyCertificate(ctx, cs, px, roots); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", checks.ObjectName("Pod", px.pod.Namespace, px.pod.Name), err))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

func proxyCertificate(ctx context.Context, cs kubernetes.Interface, px proxy, roots *x509.CertPool) error {
	port := defaultAdminPort
	for _, p := range px.container.Ports {
		if p.Name == "mesh-admin" {
			port = int(p.ContainerPort)
		}
	}
	body, err := cs.CoreV1().Pods(px.pod.Namespace).ProxyGet("http", px.pod.Name, strconv.Itoa(port), "/identity", nil).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("reading its certificate from the admin port %d: %w", port, err)
	}
	chain, err := identity.ParseCertificates("the proxy's /identity", body)
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("its certificate %q does not chain to the current trust anchors: %w", leaf.Subject.CommonName, err)
	}
	sa := px.pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	want := sa + "." + px.pod.Namespace + ".serviceaccount.identity."
	if len(leaf.DNSNames) != 1 || !strings.HasPrefix(leaf.DNSNames[0], want) {
		return fmt.Errorf("its certificate names %v, not the pod's ServiceAccount (%s…)", leaf.DNSNames, want)
	}
	return nil
}

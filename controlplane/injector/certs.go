package injector

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// ServingSecret is the injector's serving certificate: tls.crt, tls.key and ca.crt.
const ServingSecret = "mesh-injector-tls"

// EnsureServingCert returns the serving certificate from the Secret, creating the
// Secret first (a CA and a leaf for names, valid a year) if it does not exist. Create is
// atomic, so replicas starting together share one. With create false (cert-manager
// makes the Secret) it only reads.
func EnsureServingCert(ctx context.Context, client kubernetes.Interface, namespace string, names []string, now time.Time, create bool) (tls.Certificate, []byte, error) {
	secrets := client.CoreV1().Secrets(namespace)
	sec, err := secrets.Get(ctx, ServingSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && create {
		data, err := newServingCert(names, now)
		if err != nil {
			return tls.Certificate{}, nil, err
		}
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ServingSecret, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "mesh"}},
			Type: corev1.SecretTypeTLS, Data: data}
		if _, err := secrets.Create(ctx, sec, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			sec, err = secrets.Get(ctx, ServingSecret, metav1.GetOptions{})
			if err != nil {
				return tls.Certificate{}, nil, err
			}
		} else if err != nil {
			return tls.Certificate{}, nil, err
		}
	} else if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("the serving Secret %s/%s: %w", namespace, ServingSecret, err)
	}
	cert, err := tls.X509KeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("the serving Secret %s/%s: %w", namespace, ServingSecret, err)
	}
	return cert, sec.Data["ca.crt"], nil
}

func newServingCert(names []string, now time.Time) (map[string][]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial := func() *big.Int { n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)); return n }
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "mesh-injector-ca"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: names[0]}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(365 * 24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			leafTmpl.IPAddresses = append(leafTmpl.IPAddresses, ip)
		} else {
			leafTmpl.DNSNames = append(leafTmpl.DNSNames, n)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		"ca.crt":                pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}, nil
}

// PatchCABundle sets every webhook's caBundle in the named configuration to ca, unless
// it is already so.
func PatchCABundle(ctx context.Context, client kubernetes.Interface, name string, ca []byte) error {
	whs := client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := whs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("MutatingWebhookConfiguration %s: %w", name, err)
	}
	var ops []string
	for i, w := range cfg.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, ca) {
			ops = append(ops, fmt.Sprintf(`{"op":"add","path":"/webhooks/%d/clientConfig/caBundle","value":%q}`, i, base64.StdEncoding.EncodeToString(ca)))
		}
	}
	if len(ops) == 0 {
		return nil
	}
	patch := "[" + strings.Join(ops, ",") + "]"
	_, err = whs.Patch(ctx, name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

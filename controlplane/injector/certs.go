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
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// ServingSecret is the injector's serving certificate: tls.crt, tls.key and ca.crt.
const ServingSecret = "mesh-injector-tls"

// DefaultServingLifetime is the life of the CA and leaf the injector makes.
const DefaultServingLifetime = 365 * 24 * time.Hour

// ServingCert keeps the injector's serving certificate, in the Secret ServingSecret
// shared by every replica, and the webhook's caBundle.
//
// With Create (the default mode) it makes the Secret: a CA and a leaf for Names. At
// two thirds of the leaf's life it rotates: a new CA and leaf. The Secret's ca.crt then
// holds the new CA and every older CA that has not expired, so a replica still serving
// the old leaf stays trusted until it reloads. The caBundle gets the new CA before the
// Secret is updated, so no replica can serve a leaf the API server does not trust yet;
// CAs leave the caBundle only once expired (PatchCABundle). A new CA at each rotation,
// rather than re-signing with a stable CA, keeps the CA key out of the Secret, and no CA
// ever outlives the overlap it is needed for.
//
// Without Create (cert-manager makes and renews the Secret, cainjector fills the
// caBundle) it only reads the Secret. Either way each Sync serves the Secret's current
// certificate through GetCertificate, without a restart.
type ServingCert struct {
	Client    kubernetes.Interface
	Namespace string
	Names     []string // DNS names or IPs of the leaf; the first is its common name
	// Webhook is the MutatingWebhookConfiguration whose caBundle Sync keeps; "" to leave
	// it alone.
	Webhook  string
	Create   bool
	Lifetime time.Duration // of a new CA and leaf; zero means DefaultServingLifetime
	Now      func() time.Time
	Log      *slog.Logger
	// OnLoad, if set, is called with the leaf each time a different certificate starts
	// being served.
	OnLoad func(leaf *x509.Certificate)

	cert  atomic.Pointer[tls.Certificate]
	ready atomic.Bool
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (s *ServingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no serving certificate yet")
}

// Ready is nil once a certificate is served and, when kept, the caBundle set.
func (s *ServingCert) Ready() error {
	if !s.ready.Load() {
		return errors.New("no serving certificate or caBundle yet")
	}
	return nil
}

// Run syncs now and then every interval until ctx ends. A failed sync (the webhook
// configuration may not exist yet, the API server may be away) is logged and retried
// within two seconds.
func (s *ServingCert) Run(ctx context.Context, interval time.Duration) {
	for {
		wait := interval
		if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			if s.Log != nil {
				s.Log.Warn("serving certificate", "err", err)
			}
			wait = min(wait, 2*time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Sync makes the Secret if it is missing, rotates the certificate when due, keeps the
// caBundle and serves the Secret's certificate.
func (s *ServingCert) Sync(ctx context.Context) error {
	now := s.Now()
	secrets := s.Client.CoreV1().Secrets(s.Namespace)
	sec, err := secrets.Get(ctx, ServingSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && s.Create {
		var data map[string][]byte
		if data, err = newServingCert(s.Names, now, s.lifetime()); err != nil {
			return err
		}
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ServingSecret, Namespace: s.Namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "mesh"}},
			Type: corev1.SecretTypeTLS, Data: data}
		// Create is atomic: of replicas starting together, one wins and all use its Secret.
		if sec, err = secrets.Create(ctx, sec, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			sec, err = secrets.Get(ctx, ServingSecret, metav1.GetOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("the serving Secret %s/%s: %w", s.Namespace, ServingSecret, err)
	}
	crt, leaf, err := parseSecret(sec)
	if err != nil {
		return err
	}
	if s.Create && due(leaf, now) {
		if sec, err = s.rotate(ctx, sec, now); err != nil {
			return err
		}
		if crt, leaf, err = parseSecret(sec); err != nil {
			return err
		}
		if s.Log != nil {
			s.Log.Info("serving certificate rotated", "notAfter", leaf.NotAfter)
		}
	}
	if s.Create && s.Webhook != "" {
		if err := PatchCABundle(ctx, s.Client, s.Webhook, sec.Data["ca.crt"], now); err != nil {
			return err
		}
	}
	if old := s.cert.Load(); old == nil || !bytes.Equal(old.Certificate[0], crt.Certificate[0]) {
		s.cert.Store(&crt)
		if s.OnLoad != nil {
			s.OnLoad(leaf)
		}
	}
	s.ready.Store(true)
	return nil
}

// rotate replaces the Secret's CA and leaf, keeping the older CAs that have not expired
// in ca.crt, and returns the Secret now in force: its own, or another replica's if that
// one rotated first.
func (s *ServingCert) rotate(ctx context.Context, sec *corev1.Secret, now time.Time) (*corev1.Secret, error) {
	data, err := newServingCert(s.Names, now, s.lifetime())
	if err != nil {
		return nil, err
	}
	data["ca.crt"] = append(data["ca.crt"], unexpired(sec.Data["ca.crt"], now)...)
	// The API server must trust the new CA before anyone serves the new leaf.
	if s.Webhook != "" {
		if err := PatchCABundle(ctx, s.Client, s.Webhook, data["ca.crt"], now); err != nil {
			return nil, err
		}
	}
	next := sec.DeepCopy()
	next.Data = data
	secrets := s.Client.CoreV1().Secrets(s.Namespace)
	// Update carries the resourceVersion read: of replicas rotating together, one wins.
	updated, err := secrets.Update(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		updated, err = secrets.Get(ctx, ServingSecret, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("rotating the serving Secret %s/%s: %w", s.Namespace, ServingSecret, err)
	}
	return updated, nil
}

func (s *ServingCert) lifetime() time.Duration {
	if s.Lifetime > 0 {
		return s.Lifetime
	}
	return DefaultServingLifetime
}

// due: the leaf is past two thirds of its life.
func due(leaf *x509.Certificate, now time.Time) bool {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return !now.Before(leaf.NotBefore.Add(life / 3 * 2))
}

func parseSecret(sec *corev1.Secret) (tls.Certificate, *x509.Certificate, error) {
	crt, err := tls.X509KeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("the serving Secret %s/%s: %w", sec.Namespace, sec.Name, err)
	}
	leaf, err := x509.ParseCertificate(crt.Certificate[0])
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("the serving Secret %s/%s: %w", sec.Namespace, sec.Name, err)
	}
	return crt, leaf, nil
}

// unexpired is the PEM certificates of bundle that are still valid at now.
func unexpired(bundle []byte, now time.Time) []byte {
	var out []byte
	for {
		var b *pem.Block
		b, bundle = pem.Decode(bundle)
		if b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if b.Type != "CERTIFICATE" || err != nil || !now.Before(c.NotAfter) {
			continue
		}
		out = append(out, pem.EncodeToMemory(b)...)
	}
}

func newServingCert(names []string, now time.Time, lifetime time.Duration) (map[string][]byte, error) {
	if len(names) == 0 {
		return nil, errors.New("no names for the serving certificate")
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial := func() *big.Int { n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)); return n }
	notBefore := now.Add(-time.Hour)
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "mesh-injector-ca", SerialNumber: serial().String()}, NotBefore: notBefore,
		NotAfter: now.Add(lifetime), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: names[0]}, NotBefore: notBefore,
		NotAfter: now.Add(lifetime), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
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

// PatchCABundle makes every webhook's caBundle in the named configuration hold the
// certificates of ca, keeping the ones it already holds that are still valid at now (a
// replica syncing from a Secret it read before another replica rotated must not remove
// the new CA). Expired certificates are dropped.
func PatchCABundle(ctx context.Context, client kubernetes.Interface, name string, ca []byte, now time.Time) error {
	whs := client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := whs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("MutatingWebhookConfiguration %s: %w", name, err)
	}
	var ops []string
	for i, w := range cfg.Webhooks {
		bundle := mergeBundles(unexpired(ca, now), unexpired(w.ClientConfig.CABundle, now))
		if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
			ops = append(ops, fmt.Sprintf(`{"op":"add","path":"/webhooks/%d/clientConfig/caBundle","value":%q}`, i, base64.StdEncoding.EncodeToString(bundle)))
		}
	}
	if len(ops) == 0 {
		return nil
	}
	patch := "[" + strings.Join(ops, ",") + "]"
	if _, err = whs.Patch(ctx, name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("MutatingWebhookConfiguration %s: setting the caBundle: %w", name, err)
	}
	return nil
}

// mergeBundles is the PEM certificates of a, then those of b not in a.
func mergeBundles(a, b []byte) []byte {
	out := append([]byte(nil), a...)
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		if enc := pem.EncodeToMemory(blk); !bytes.Contains(a, enc) {
			out = append(out, enc...)
		}
	}
}

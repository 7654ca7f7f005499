package identity

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	renderidentity "github.com/meshplane/mesh/render/identity"
)

// Source keeps the current issuer from its Secret (kubernetes.io/tls with ca.crt),
// reloading it when the Secret changes (rotation). In bootstrap mode it first creates
// the Secret with a new trust anchor and issuer if there is none; Create is atomic, so
// replicas starting together end up with one Secret, whichever won.
type Source struct {
	Client      kubernetes.Interface
	Namespace   string
	SecretName  string
	Bootstrap   bool
	TrustDomain string
	Now         func() time.Time
	OnChange    func(*Issuer) // optional: called after each (re)load

	mu  sync.RWMutex
	cur *Issuer
	err error
}

// Issuer returns the current issuer, or why there is none.
func (s *Source) Issuer() (*Issuer, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cur == nil && s.err == nil {
		return nil, fmt.Errorf("the issuer Secret %s/%s is not loaded yet", s.Namespace, s.SecretName)
	}
	return s.cur, s.err
}

// Run creates the Secret if bootstrapping, then watches it until ctx ends.
func (s *Source) Run(ctx context.Context) error {
	if s.Bootstrap {
		if err := s.bootstrap(ctx); err != nil {
			return err
		}
	}
	f := informers.NewSharedInformerFactoryWithOptions(s.Client, 10*time.Minute, informers.WithNamespace(s.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", s.SecretName).String()
		}))
	inf := f.Core().V1().Secrets().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.load(obj.(*corev1.Secret)) },
		UpdateFunc: func(_, obj any) { s.load(obj.(*corev1.Secret)) },
		DeleteFunc: func(any) { s.set(nil, fmt.Errorf("the issuer Secret %s/%s was deleted", s.Namespace, s.SecretName)) },
	})
	if err != nil {
		return err
	}
	f.Start(ctx.Done())
	<-ctx.Done()
	f.Shutdown()
	return nil
}

func (s *Source) set(i *Issuer, err error) {
	s.mu.Lock()
	s.cur, s.err = i, err
	s.mu.Unlock()
	if s.OnChange != nil && i != nil {
		s.OnChange(i)
	}
}

// load parses and checks the Secret; a bad Secret keeps no issuer, with the reason.
func (s *Source) load(sec *corev1.Secret) {
	i, err := ParseSecret(sec)
	s.set(i, err)
}

// ParseSecret reads an issuer Secret: tls.crt (the issuer, then any intermediates),
// tls.key and ca.crt (the trust anchors), checking that they belong together.
func ParseSecret(sec *corev1.Secret) (*Issuer, error) {
	src := fmt.Sprintf("Secret %s/%s", sec.Namespace, sec.Name)
	chain, err := renderidentity.ParseCertificates(src+" tls.crt", sec.Data[corev1.TLSCertKey])
	if err != nil {
		return nil, err
	}
	key, err := renderidentity.ParsePrivateKey(src+" tls.key", sec.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, err
	}
	anchors, err := renderidentity.ParseCertificates(src+" ca.crt", sec.Data["ca.crt"])
	if err != nil {
		return nil, err
	}
	if err := renderidentity.CheckKeyPair(chain[0], key); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if err := renderidentity.CheckIssuer(anchors, chain); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return &Issuer{Cert: chain[0], Key: key, Intermediates: chain[1:], Anchors: anchors}, nil
}

func (s *Source) bootstrap(ctx context.Context) error {
	secrets := s.Client.CoreV1().Secrets(s.Namespace)
	if _, err := secrets.Get(ctx, s.SecretName, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	b, err := renderidentity.Create(renderidentity.CreateOptions{TrustDomain: s.TrustDomain, Namespace: s.Namespace, Now: s.Now()})
	if err != nil {
		return err
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.SecretName, Namespace: s.Namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "mesh", "meshplane.io/bootstrapped": "true"}},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: b.IssuerCert, corev1.TLSPrivateKeyKey: b.IssuerKey, "ca.crt": b.AnchorCert},
	}
	// The anchor's key is not kept: a bootstrapped mesh rotates by bootstrapping anew.
	_, err = secrets.Create(ctx, sec, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil // another replica won the race; use its Secret
	}
	return err
}

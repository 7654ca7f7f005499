package identityclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// Run makes the key and the CSR, certifies, then renews at RenewAt of the remaining
// validity until ctx ends, over one connection to the identity service. It retries
// with backoff (MinBackoff doubled up to MaxBackoff) while the service is unreachable
// or refuses, keeping the current certificate meanwhile, and never returns early on
// its errors. It also polls TrustAnchorsFile for rotations. It returns nil when ctx
// ends, and an error only when it cannot start (no key, no client).
func (i *Identity) Run(ctx context.Context) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("identity: generating the key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: i.cfg.LocalName},
		DNSNames: []string{i.cfg.LocalName},
	}, key)
	if err != nil {
		return fmt.Errorf("identity: building the CSR: %w", err)
	}
	if i.cfg.Dir != "" {
		if err := i.writeKey(key); err != nil {
			i.log.Warn("cannot write the key (kept in memory only)", "dir", i.cfg.Dir, "err", err)
		}
	}
	conn, err := grpc.NewClient(i.cfg.Addr, grpc.WithTransportCredentials(credentials.NewTLS(i.serviceTLS())),
		grpc.WithConnectParams(grpc.ConnectParams{
			// Reconnect as eagerly as Certify retries (gRPC's default waits up to 120s).
			Backoff:           backoff.Config{BaseDelay: i.cfg.MinBackoff, Multiplier: 1.6, Jitter: 0.2, MaxDelay: i.cfg.MaxBackoff},
			MinConnectTimeout: i.cfg.CertifyTimeout,
		}))
	if err != nil {
		return fmt.Errorf("identity: identity service %s: %w", i.cfg.Addr, err)
	}
	defer func() { _ = conn.Close() }()
	api := meshv1.NewIdentityClient(conn)

	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		i.pollAnchors(ctx)
	}()

	backoff := i.cfg.MinBackoff
	failures := 0
	for {
		var wait time.Duration
		if err := i.certify(ctx, api, key, csr); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			wait = backoff
			backoff = min(backoff*2, i.cfg.MaxBackoff)
			lvl := "warn"
			if failures > 1 && wait < i.cfg.MaxBackoff {
				lvl = "debug" // the first failure and then one per max backoff
			}
			args := []any{"addr", i.cfg.Addr, "service", i.cfg.Name, "attempt", failures, "retry_in", wait, "err", err}
			if h := i.cert.Load(); h != nil {
				args = append(args, "current_expiry", h.until)
			}
			if lvl == "warn" {
				i.log.Warn("certification failed; retrying", args...)
			} else {
				i.log.Debug("certification failed; retrying", args...)
			}
		} else {
			failures = 0
			backoff = i.cfg.MinBackoff
			h := i.cert.Load()
			wait = i.renewIn(h)
			i.log.Info("certified", "identity", i.cfg.LocalName, "expiry", h.until, "renew_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// renewIn is when to renew h: at RenewAt of its remaining validity, and not sooner
// than MinBackoff.
func (i *Identity) renewIn(h *held) time.Duration {
	return max(time.Duration(float64(h.until.Sub(i.now()))*i.cfg.RenewAt), i.cfg.MinBackoff)
}

// certify makes one Certify call and, when it succeeds and the answer checks out,
// makes its certificate the current one.
func (i *Identity) certify(ctx context.Context, api meshv1.IdentityClient, key *ecdsa.PrivateKey, csr []byte) error {
	token, err := os.ReadFile(i.cfg.TokenFile)
	if err != nil {
		return fmt.Errorf("reading the token: %w", err)
	}
	token = bytes.TrimSpace(token)
	if len(token) == 0 {
		return fmt.Errorf("the token file %s is empty", i.cfg.TokenFile)
	}
	cctx, cancel := context.WithTimeout(ctx, i.cfg.CertifyTimeout)
	defer cancel()
	resp, err := api.Certify(cctx, &meshv1.CertifyRequest{
		Identity:                  i.cfg.LocalName,
		Token:                     token,
		CertificateSigningRequest: csr,
	})
	if err != nil {
		if s, ok := status.FromError(err); ok {
			return fmt.Errorf("identity service %s (%s): %s: %w", i.cfg.Addr, s.Code(), s.Message(), err)
		}
		return fmt.Errorf("identity service %s: %w", i.cfg.Addr, err)
	}
	h, err := i.certificate(resp, key)
	if err != nil {
		return fmt.Errorf("identity service %s answered: %w", i.cfg.Addr, err)
	}
	i.cert.Store(h)
	if i.cfg.Dir != "" {
		if err := i.writeCert(h.cert); err != nil {
			i.log.Warn("cannot write the certificate", "dir", i.cfg.Dir, "err", err)
		}
	}
	return nil
}

// certificate checks an answer: the leaf is for our key and name, and chains to the
// anchors (a chain that does not is stored anyway, with a warning: the anchors may
// be rotating, and peers verify against theirs).
func (i *Identity) certificate(resp *meshv1.CertifyResponse, key *ecdsa.PrivateKey) (*held, error) {
	leaf, err := x509.ParseCertificate(resp.GetLeafCertificate())
	if err != nil {
		return nil, fmt.Errorf("leaf certificate: %w", err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("the leaf certificate is not for this workload's key")
	}
	if len(leaf.DNSNames) == 0 || leaf.DNSNames[0] != i.cfg.LocalName {
		return nil, fmt.Errorf("the leaf certificate is for %q, want %s", leaf.DNSNames, i.cfg.LocalName)
	}
	chain := [][]byte{leaf.Raw}
	inter := x509.NewCertPool()
	for n, der := range resp.GetIntermediateCertificates() {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("intermediate certificate %d: %w", n+1, err)
		}
		inter.AddCert(c)
		chain = append(chain, der)
	}
	if pool := i.anchors.Load(); pool != nil { // nil: Certify could not have been reached
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: i.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			i.log.Warn("the new certificate does not verify against the current trust anchors", "err", err)
		}
	}
	until := leaf.NotAfter
	if v := resp.GetValidUntil(); v != nil && v.IsValid() && v.AsTime().Before(until) {
		until = v.AsTime()
	}
	return &held{cert: &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, until: until}, nil
}

// pollAnchors re-reads TrustAnchorsFile every AnchorsPollInterval until ctx ends.
func (i *Identity) pollAnchors(ctx context.Context) {
	if i.cfg.TrustAnchorsFile == "" {
		return
	}
	t := time.NewTicker(i.cfg.AnchorsPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			i.reloadAnchors()
		}
	}
}

// writeKey and writeCert keep copies in Dir for debugging.
func (i *Identity) writeKey(key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(i.cfg.Dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

func (i *Identity) writeCert(c *tls.Certificate) error {
	var b bytes.Buffer
	for _, der := range c.Certificate {
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(i.cfg.Dir, "cert.pem"), b.Bytes())
}

// writeFile replaces path atomically, readable by the owner only.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	return nil
}

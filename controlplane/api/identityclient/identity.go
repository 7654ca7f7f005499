// Package identityclient is the client of the Identity service, shared by the proxy
// and the control-plane services that need a workload certificate (destination): it
// gets and renews a certificate with a CSR and the projected ServiceAccount token, and
// builds the TLS configurations for mTLS: TLS 1.3, ECDSA P-256, peers verified against
// the trust anchors and by their identity name.
//
// It imports only the standard library, gRPC and controlplane/api/mesh/v1, so that the
// proxy binary stays free of Kubernetes libraries.
//
// The private key never leaves memory (unless Config.Dir is set, for debugging). The
// certificate is swapped atomically on renewal: new handshakes use the new one, and
// established connections keep theirs. The trust anchors are re-read when their file
// changes, and every handshake verifies the peer against the anchors current then.
// The renewal point, the retry backoff, the Certify timeout and the anchors polling
// are Config fields with the proxy's defaults (Default*).
package identityclient

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Defaults of Config's tuning fields.
const (
	DefaultAnchorsPollInterval = 5 * time.Second
	DefaultMinBackoff          = 100 * time.Millisecond
	DefaultMaxBackoff          = 10 * time.Second
	DefaultRenewAt             = 0.7
	DefaultCertifyTimeout      = 10 * time.Second
)

// Config is what a workload knows about its identity. The key is always ECDSA
// P-256, made once per Run and kept for every renewal.
type Config struct {
	LocalName string // SA.NS.serviceaccount.identity.TRUST-DOMAIN
	TokenFile string // the projected ServiceAccount token, re-read for every Certify
	Dir       string // where to keep the key, if set
	// TrustAnchorsPEM are inline anchors; TrustAnchorsFile, when set, replaces them
	// and is re-read when it changes (ConfigMap rotation).
	TrustAnchorsPEM  []byte
	TrustAnchorsFile string
	// TrustAnchorsFileOptional lets TrustAnchorsFile be missing at start (an optional
	// ConfigMap volume that is not published yet). Until it appears nothing verifies:
	// Run retries, and the TLS configurations refuse every peer.
	TrustAnchorsFileOptional bool
	Addr                     string // identity service host:port
	Name                     string // the identity service's identity, verified on connect
	Now                      func() time.Time
	Log                      *slog.Logger

	// AnchorsPollInterval is how often TrustAnchorsFile is checked
	// (DefaultAnchorsPollInterval if zero).
	AnchorsPollInterval time.Duration
	// MinBackoff and MaxBackoff bound the retry delay while the identity service is
	// unreachable or refuses, doubled after each failure (DefaultMinBackoff and
	// DefaultMaxBackoff if zero).
	MinBackoff, MaxBackoff time.Duration
	// RenewAt is the fraction of the certificate's remaining validity after which Run
	// renews it, in (0, 1) (DefaultRenewAt if zero).
	RenewAt float64
	// CertifyTimeout bounds one Certify call and one connection attempt
	// (DefaultCertifyTimeout if zero).
	CertifyTimeout time.Duration
}

// Identity holds the current certificate and trust anchors.
type Identity struct {
	cfg Config
	now func() time.Time
	log *slog.Logger

	// anchors is nil only while an optional TrustAnchorsFile has not appeared.
	anchors atomic.Pointer[x509.CertPool]
	// anchorsRaw (the anchors' source bytes) and anchorsErr (the last problem with the
	// file, logged once) are read and written by New and then the poller only.
	anchorsRaw []byte
	anchorsErr string
	cert       atomic.Pointer[held]
}

// held is a certificate and when it must be renewed by: the response's valid_until
// or the leaf's NotAfter, whichever is earlier.
type held struct {
	cert  *tls.Certificate
	until time.Time
}

// ErrNotReady is returned while no certificate is held.
var ErrNotReady = errors.New("no identity certificate yet")

// errNoAnchors refuses peers while an optional anchors file has not appeared.
var errNoAnchors = errors.New("no trust anchors yet")

// New checks the configuration (anchors parse) without contacting the service.
func New(cfg Config) (*Identity, error) {
	if cfg.LocalName == "" {
		return nil, errors.New("identity: no local identity name")
	}
	if cfg.RenewAt < 0 || cfg.RenewAt >= 1 {
		return nil, fmt.Errorf("identity: RenewAt %v is not in (0, 1)", cfg.RenewAt)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.AnchorsPollInterval <= 0 {
		cfg.AnchorsPollInterval = DefaultAnchorsPollInterval
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.RenewAt == 0 {
		cfg.RenewAt = DefaultRenewAt
	}
	if cfg.CertifyTimeout <= 0 {
		cfg.CertifyTimeout = DefaultCertifyTimeout
	}
	i := &Identity{cfg: cfg, now: cfg.Now, log: cfg.Log}
	raw, source := cfg.TrustAnchorsPEM, "inline trust anchors"
	if cfg.TrustAnchorsFile != "" {
		source = "trust anchors file " + cfg.TrustAnchorsFile
		b, err := os.ReadFile(cfg.TrustAnchorsFile)
		if cfg.TrustAnchorsFileOptional && errors.Is(err, fs.ErrNotExist) {
			i.anchorsErr = err.Error()
			i.log.Info("waiting for the trust anchors file", "file", cfg.TrustAnchorsFile)
			return i, nil
		}
		if err != nil {
			return nil, fmt.Errorf("identity: %s: %w", source, err)
		}
		raw = b
	}
	pool, err := ParseAnchors(raw)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", source, err)
	}
	i.anchors.Store(pool)
	i.anchorsRaw = raw
	return i, nil
}

// ParseAnchors parses PEM certificates into a pool; it fails on an empty input, a
// block that is not a CERTIFICATE, or a certificate that does not parse.
func ParseAnchors(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := bytes.TrimSpace(b); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("certificate %d: not PEM", n+1)
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("certificate %d: PEM block %q, want CERTIFICATE", n+1, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no certificates")
	}
	return pool, nil
}

// Ready reports whether a valid certificate is held.
func (i *Identity) Ready() bool {
	h := i.cert.Load()
	return h != nil && i.now().Before(h.until)
}

// Expiry is the current certificate's NotAfter (zero before the first).
func (i *Identity) Expiry() time.Time {
	if h := i.cert.Load(); h != nil {
		return h.until
	}
	return time.Time{}
}

// LocalName is this workload's identity.
func (i *Identity) LocalName() string { return i.cfg.LocalName }

// Certificate is the current certificate (leaf, intermediates and key), or
// ErrNotReady.
func (i *Identity) Certificate() (*tls.Certificate, error) {
	if h := i.cert.Load(); h != nil {
		return h.cert, nil
	}
	return nil, ErrNotReady
}

// Anchors is the current trust anchors pool (do not modify); nil while an optional
// TrustAnchorsFile has not appeared.
func (i *Identity) Anchors() *x509.CertPool { return i.anchors.Load() }

// reloadAnchors re-reads TrustAnchorsFile and swaps the pool when its content
// changed and parses; a file that is missing or does not parse keeps the previous
// anchors, and is logged once until the problem changes.
func (i *Identity) reloadAnchors() {
	if i.cfg.TrustAnchorsFile == "" {
		return
	}
	b, err := os.ReadFile(i.cfg.TrustAnchorsFile)
	if err != nil {
		i.anchorsProblem("cannot read the trust anchors; keeping the previous ones", err)
		return
	}
	if bytes.Equal(b, i.anchorsRaw) {
		return
	}
	i.anchorsRaw = b // whether or not it parses: look again when the file changes
	pool, err := ParseAnchors(b)
	if err != nil {
		i.anchorsProblem("the trust anchors do not parse; keeping the previous ones", err)
		return
	}
	i.anchors.Store(pool)
	i.anchorsErr = ""
	i.log.Info("trust anchors reloaded", "file", i.cfg.TrustAnchorsFile)
}

// anchorsProblem logs a problem with the anchors file unless it is the last one
// logged.
func (i *Identity) anchorsProblem(msg string, err error) {
	if err.Error() == i.anchorsErr {
		return
	}
	i.anchorsErr = err.Error()
	i.log.Warn(msg, "file", i.cfg.TrustAnchorsFile, "err", err)
}

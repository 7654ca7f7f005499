package identityclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"google.golang.org/grpc/credentials"
)

// curves are the key exchanges offered: X25519 and P-256 (certificates are ECDSA
// P-256).
func curves() []tls.CurveID { return []tls.CurveID{tls.X25519, tls.CurveP256} }

// ServerConfig is for the inbound side: TLS 1.3, the current certificate, client
// certificates requested and verified against the current anchors when given. A
// client without a certificate is accepted at the TLS level (PeerIdentity is then
// ""); one with a certificate that does not verify is refused.
func (i *Identity) ServerConfig(alpn []string) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		MaxVersion:       tls.VersionTLS13,
		CurvePreferences: curves(),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return i.Certificate()
		},
		ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			return i.verifyPeer(cs.PeerCertificates, "", x509.ExtKeyUsageClientAuth)
		},
		NextProtos: append([]string(nil), alpn...),
	}
}

// ServerConfigRequireClientCert is ServerConfig for a service that serves mesh
// workloads only (destination): a client must present a certificate that verifies
// against the current anchors, whatever its identity.
func (i *Identity) ServerConfigRequireClientCert(alpn []string) *tls.Config {
	c := i.ServerConfig(alpn)
	c.ClientAuth = tls.RequireAnyClientCert
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		return i.verifyPeer(cs.PeerCertificates, "", x509.ExtKeyUsageClientAuth)
	}
	return c
}

// ClientConfig is for dialling a peer proxy whose identity must be serverName: it
// presents the current certificate (none before the first) and verifies the peer's
// chain against the current anchors and that its identity is serverName (an empty
// serverName refuses every peer). The identity is sent as SNI.
func (i *Identity) ClientConfig(serverName string, alpn []string) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		MaxVersion:       tls.VersionTLS13,
		CurvePreferences: curves(),
		ServerName:       serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if h := i.cert.Load(); h != nil {
				return h.cert, nil
			}
			return &tls.Certificate{}, nil // no certificate yet: the server decides
		},
		// The peer is verified by VerifyConnection instead: against the anchors current
		// at the handshake, and by identity rather than by the dialled host.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if serverName == "" {
				return errors.New("no peer identity to verify")
			}
			return i.verifyPeer(cs.PeerCertificates, serverName, x509.ExtKeyUsageServerAuth)
		},
		NextProtos: append([]string(nil), alpn...),
	}
}

// serviceTLS is for the identity service itself: no client certificate (the workload
// has none yet), the service verified as Config.Name.
func (i *Identity) serviceTLS() *tls.Config {
	c := i.ClientConfig(i.cfg.Name, nil)
	c.GetClientCertificate = nil
	return c
}

// GRPCCredentials are mTLS credentials for a control-plane service with that identity.
func (i *Identity) GRPCCredentials(serverName string) credentials.TransportCredentials {
	return credentials.NewTLS(i.ClientConfig(serverName, []string{"h2"}))
}

// verifyPeer verifies a presented chain against the current anchors at the clock's
// time, for usage, and when name is set that the leaf's identity is name.
func (i *Identity) verifyPeer(certs []*x509.Certificate, name string, usage x509.ExtKeyUsage) error {
	if len(certs) == 0 {
		return errors.New("the peer presented no certificate")
	}
	roots := i.anchors.Load()
	if roots == nil {
		return errNoAnchors
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   i.now(),
		KeyUsages:     []x509.ExtKeyUsage{usage},
	}); err != nil {
		return fmt.Errorf("peer certificate %q does not verify against the trust anchors: %w", leaf.Subject.CommonName, err)
	}
	if name != "" {
		if got := leafName(leaf); got != name {
			return fmt.Errorf("the peer's identity is %q, want %q", got, name)
		}
	}
	return nil
}

// PeerIdentity is the verified peer's identity name, "" if it presented none. The
// connection must come from ServerConfig or ClientConfig, which refuse peers whose
// certificate does not verify.
func PeerIdentity(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return leafName(cs.PeerCertificates[0])
}

func leafName(c *x509.Certificate) string {
	if len(c.DNSNames) == 0 {
		return ""
	}
	return c.DNSNames[0]
}

package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// TokenReviewer validates a ServiceAccount token for an audience (a TokenReview) and
// returns the user it authenticates, e.g. system:serviceaccount:NS:SA.
type TokenReviewer interface {
	Review(ctx context.Context, token string, audiences []string) (user string, authenticated bool, err error)
}

// Server implements the Identity gRPC service.
type Server struct {
	meshv1.UnimplementedIdentityServer

	TrustDomain string
	Audience    string
	Lifetime    time.Duration
	ClockSkew   time.Duration
	Reviewer    TokenReviewer
	Issuer      func() (*Issuer, error) // the current issuer (reloaded on rotation)
	Now         func() time.Time
}

// Name is the identity of a ServiceAccount: SA.NS.serviceaccount.identity.TRUST-DOMAIN.
func Name(sa, ns, trustDomain string) string {
	return fmt.Sprintf("%s.%s.serviceaccount.identity.%s", sa, ns, trustDomain)
}

// Certify checks the token, then that the CSR asks for the token's own identity, and
// signs it. Refusals: Unauthenticated (bad, expired or wrong-audience token),
// PermissionDenied (another identity), InvalidArgument (malformed request or CSR),
// FailedPrecondition (the issuer expired), Unavailable (the API server did not answer).
func (s *Server) Certify(ctx context.Context, req *meshv1.CertifyRequest) (*meshv1.CertifyResponse, error) {
	suffix := ".serviceaccount.identity." + s.TrustDomain
	name := req.GetIdentity()
	if !strings.HasSuffix(name, suffix) || strings.Count(strings.TrimSuffix(name, suffix), ".") != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "identity %q is not SA.NS%s", name, suffix)
	}
	if len(req.GetToken()) == 0 {
		return nil, status.Error(codes.Unauthenticated, "no token")
	}
	user, ok, err := s.Reviewer.Review(ctx, string(req.GetToken()), []string{s.Audience})
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "token review: %v", err)
	}
	if !ok {
		return nil, status.Errorf(codes.Unauthenticated, "the token is not valid for audience %s (expired, revoked or for another audience)", s.Audience)
	}
	parts := strings.Split(user, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" {
		return nil, status.Errorf(codes.PermissionDenied, "the token is not a ServiceAccount's (%s)", user)
	}
	if own := Name(parts[3], parts[2], s.TrustDomain); own != name {
		return nil, status.Errorf(codes.PermissionDenied, "the token is %s's, which may not ask for %s", own, name)
	}
	csr, err := x509.ParseCertificateRequest(req.GetCertificateSigningRequest())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "malformed CSR: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "the CSR's signature does not verify: %v", err)
	}
	if csr.Subject.CommonName != name || len(csr.DNSNames) != 1 || csr.DNSNames[0] != name {
		return nil, status.Errorf(codes.InvalidArgument, "the CSR must name %s as its subject and only DNS name (has %q, %q)", name, csr.Subject.CommonName, csr.DNSNames)
	}
	iss, err := s.Issuer()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "no issuer: %v", err)
	}
	leaf, err := iss.Sign(csr, name, s.Now(), s.Lifetime, s.ClockSkew)
	if errors.Is(err, ErrIssuerExpired) {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &meshv1.CertifyResponse{LeafCertificate: leaf.Raw, ValidUntil: timestamppb.New(leaf.NotAfter)}
	for _, c := range append([]*x509.Certificate{iss.Cert}, iss.Intermediates...) {
		resp.IntermediateCertificates = append(resp.IntermediateCertificates, c.Raw)
	}
	return resp, nil
}

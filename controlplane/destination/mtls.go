package destination

import (
	"crypto/tls"

	"github.com/meshplane/mesh/controlplane/api/identityclient"
)

// ServerTLS is the gRPC server's TLS: the service's own certificate for
// mesh-destination.NS.serviceaccount.identity.TRUST-DOMAIN, which id obtains from
// identity exactly as a proxy obtains its own, TLS 1.3 only, and a client certificate
// required and verified against id's current trust anchors (a proxy presents its
// identity certificate; any mesh identity is served).
func ServerTLS(id *identityclient.Identity) *tls.Config {
	return id.ServerConfigRequireClientCert([]string{"h2"})
}

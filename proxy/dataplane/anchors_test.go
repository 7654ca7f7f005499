package dataplane

import (
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshplane/mesh/proxy/httpfield"
	"github.com/meshplane/mesh/proxy/proxytest"
)

// The middle of a trust-anchor rotation: proxies trust a bundle of anchors A and B.
// A client proxy certified under B calls a server proxy certified under A, and the
// other way round; both calls go over mTLS, each side seeing the other's identity.
func TestMTLSAcrossTwoAnchors(t *testing.T) {
	t.Parallel()
	cpA, cpB := startCP(t), startCP(t)
	bundle := append(append([]byte(nil), cpA.AnchorsPEM...), cpB.AnchorsPEM...)
	cpA.AnchorsPEM, cpB.AnchorsPEM = bundle, bundle // what the proxies mount; each CA still signs alone
	appAddr := app(t)
	svc := netip.MustParseAddrPort("10.96.0.10:80")
	for _, tc := range []struct {
		name               string
		serverCP, clientCP *proxytest.ControlPlane
	}{{"client of B to server of A", cpA, cpB}, {"client of A to server of B", cpB, cpA}} {
		t.Run(tc.name, func(t *testing.T) {
			server := startProxy(t, tc.serverCP, serverID, appAddr, netip.AddrPort{})
			tc.clientCP.Set(svc.String(), proxytest.Endpoint{Addr: server.inAddr(), Identity: serverID, Labels: map[string]string{"namespace": "default", "service": "web", "pod": "web-1"}})
			client := startProxy(t, tc.clientCP, clientID, netip.AddrPort{}, svc)
			resp, err := http.Post(client.outURL("/echo"), "text/plain", strings.NewReader("world"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "hello world" {
				t.Fatalf("got %d %q (%s)", resp.StatusCode, body, resp.Header.Get(httpfield.ProxyError))
			}
			if in := server.scrape(t); !strings.Contains(in, `client_id="`+clientID+`"`) || !containsAll(in, `direction="inbound"`, `tls="true"`) {
				t.Errorf("server proxy metrics lack the client identity:\n%s", grep(in, "request_total"))
			}
			if out := client.scrape(t); !containsAll(grep(out, "response_total"), `server_id="`+serverID+`"`, `tls="true"`, `status_code="200"`) {
				t.Errorf("client proxy metrics:\n%s", grep(out, "response_total"))
			}
		})
	}
}

package dataplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshplane/mesh/proxy/h1"
	"github.com/meshplane/mesh/proxy/httpfield"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// internalApp answers with the protocol it saw and the internal header it received
// (which it must never see), and tries to forge the proxies' error header.
func internalApp(t *testing.T) (netip.AddrPort, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	return h2App(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set(httpfield.ProxyError, "forged by the app")
		_, _ = io.WriteString(w, r.Proto+" "+r.Method+" orig-proto="+r.Header.Get(httpfield.OrigProto)+r.Header.Get(httpfield.ProxyError))
	})), &hits
}

func h2cClient() *http.Client {
	var ps http.Protocols
	ps.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &ps}}
}

// Mesh-Orig-Proto and Mesh-Proxy-Error are the proxies' own: whatever the
// application sends of them is stripped, on every entry, in both directions, and a
// plaintext client of the inbound proxy cannot make it downgrade a request.
func TestInternalHeadersStripped(t *testing.T) {
	t.Parallel()
	appAddr, _ := internalApp(t)
	plain := plainProxyTo(t, appAddr, appAddr)
	cp := startCP(t)
	client, _, _ := meshPair(t, cp, appAddr)
	for _, tc := range []struct {
		name, url string
		h2        bool
		want      string
	}{
		{"outbound HTTP/1", plain.outURL("/"), false, "HTTP/1.1 POST orig-proto="},
		{"outbound h2c", plain.outURL("/"), true, "HTTP/2.0 POST orig-proto="},
		{"inbound HTTP/1", "http://" + plain.in.Addr().String() + "/", false, "HTTP/1.1 POST orig-proto="},
		// Not downgraded: only an authenticated peer proxy may ask for it.
		{"inbound plaintext h2c", "http://" + plain.in.Addr().String() + "/", true, "HTTP/2.0 POST orig-proto="},
		// The mesh upgrades HTTP/1 itself (and downgrades it again); an h2c request
		// the application marked stays HTTP/2.
		{"mesh HTTP/1", client.outURL("/"), false, "HTTP/1.1 POST orig-proto="},
		{"mesh h2c", client.outURL("/"), true, "HTTP/2.0 POST orig-proto="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hc := http.DefaultClient
			if tc.h2 {
				hc = h2cClient()
			}
			req, _ := http.NewRequest("POST", tc.url, strings.NewReader("x"))
			req.Header.Set(httpfield.OrigProto, "HTTP/1.1")
			req.Header.Set(httpfield.ProxyError, "forged by the client")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b := body(t, resp)
			if resp.StatusCode != 200 || b != tc.want {
				t.Errorf("%d %q, want %q", resp.StatusCode, b, tc.want)
			}
			if got := resp.Header.Get(httpfield.ProxyError); got != "" {
				t.Errorf("the app's %s reached the client: %q", httpfield.ProxyError, got)
			}
		})
	}
}

// h2RawTLS is a frame-level HTTP/2 client over mTLS, with cfg.
func h2RawTLS(t *testing.T, addr string, cfg *tls.Config) *h2Raw {
	t.Helper()
	d := tls.Dialer{Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c := &h2Raw{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	c.write(func() error { return c.fr.WriteSettings() })
	return c
}

// An authenticated peer proxy may ask for a downgrade to HTTP/1; a request with a
// method with a space or tab, a target with whitespace, an authority that is not
// host[:port] reaches nothing: the HTTP/2 server resets it as malformed
// (PROTOCOL_ERROR, RFC 9113 §8.1.1), or the downgrade's own check (httpfield.CheckH1Request,
// the second line) answers 400. A TLS client without a certificate is not trusted
// with Mesh-Orig-Proto.
func TestDowngradeTrustAndValidation(t *testing.T) {
	t.Parallel()
	cp := startCP(t)
	appAddr, hits := internalApp(t)
	server := startProxy(t, cp, serverID, appAddr, netip.AddrPort{})
	client := startProxy(t, cp, clientID, netip.AddrPort{}, netip.AddrPort{}) // for its identity
	peer := client.id.ClientConfig(serverID, []string{alpnH2})
	anon := peer.Clone()
	anon.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }

	type fields = []hpack.HeaderField
	req := func(method, path, authority string, extra ...string) fields {
		fs := fields{{Name: ":method", Value: method}, {Name: ":scheme", Value: "https"},
			{Name: ":authority", Value: authority}, {Name: ":path", Value: path}}
		for i := 0; i+1 < len(extra); i += 2 {
			fs = append(fs, hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
		}
		return fs
	}
	const orig = "mesh-orig-proto"
	for _, tc := range []struct {
		name   string
		cfg    *tls.Config
		fs     fields
		body   string
		status string
		want   string // the response body when the app answers
	}{
		{"peer, downgraded", peer, req("GET", "/", "web", orig, "HTTP/1.1"), "", "200", "HTTP/1.1 GET orig-proto="},
		{"peer, downgraded with a body", peer, req("POST", "/", "web", orig, "HTTP/1.1"), "x", "200", "HTTP/1.1 POST orig-proto="},
		{"peer, not downgraded", peer, req("GET", "/", "web"), "", "200", "HTTP/2.0 GET orig-proto="},
		{"no certificate: not trusted", anon, req("GET", "/", "web", orig, "HTTP/1.1"), "", "200", "HTTP/2.0 GET orig-proto="},
		{"method with a space", peer, req("GET /admin", "/public", "web", orig, "HTTP/1.1"), "", "400", ""},
		{"method with a tab", peer, req("GET\t/admin", "/public", "web", orig, "HTTP/1.1"), "", "400", ""},
		{"method with a space, with a body", peer, req("POST /admin", "/public", "web", orig, "HTTP/1.1"), "x", "400", ""},
		{"path with a space", peer, req("GET", "/a HTTP/1.1", "web", orig, "HTTP/1.1"), "", "400", ""},
		{"path with a space in the query", peer, req("GET", "/a?b c", "web", orig, "HTTP/1.1"), "", "400", ""},
		{"asterisk for GET", peer, req("GET", "*", "web", orig, "HTTP/1.1"), "", "400", ""},
		{"authority with a space", peer, req("GET", "/", "web x", orig, "HTTP/1.1"), "", "400", ""},
		{"authority with userinfo", peer, req("GET", "/", "u@web", orig, "HTTP/1.1"), "", "400", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h2RawTLS(t, server.in.Addr().String(), tc.cfg)
			before := hits.Load()
			if err := c.headers(1, tc.body == "", tc.fs); err != nil {
				t.Fatal(err)
			}
			if tc.body != "" {
				c.write(func() error { return c.fr.WriteData(1, true, []byte(tc.body)) })
			}
			if tc.status != "200" {
				// Refused by the proxy (a reset or its own 400), never the application.
				status, hdr, rst := refusal(c, 1)
				switch {
				case rst == http2.ErrCodeProtocol:
				case status == "400" && strings.Contains(hdr.Get("mesh-proxy-error"), "invalid request"):
				default:
					t.Errorf("status %q (%v), reset %v: want a PROTOCOL_ERROR reset or the proxy's 400", status, hdr, rst)
				}
				if n := hits.Load() - before; n != 0 {
					t.Errorf("the app got %d requests", n)
				}
				return
			}
			r := c.response(1, nil)
			if r.status != tc.status {
				t.Fatalf("status %s (%s), want %s", r.status, r.header.Get("mesh-proxy-error"), tc.status)
			}
			if !bytes.Equal(r.body, []byte(tc.want)) {
				t.Errorf("body %q, want %q", r.body, tc.want)
			}
			if r.header.Get("mesh-proxy-error") != "" {
				t.Errorf("the app's forged error header reached the peer")
			}
		})
	}
}

// refusal reads stream id's answer: the response headers, or the code of its reset.
func refusal(c *h2Raw, id uint32) (status string, h http.Header, rst http2.ErrCode) {
	for {
		switch f := c.read().(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				return f.PseudoValue("status"), fieldsHeader(f.RegularFields()), 0
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return "", nil, f.ErrCode
			}
		case *http2.GoAwayFrame:
			return "", nil, f.ErrCode
		}
	}
}

// The HTTP/1 client to the application refuses, before writing anything, a request
// it could not write as a valid request line.
func TestH1ClientRefusesInvalidRequestLine(t *testing.T) {
	t.Parallel()
	var accepted atomic.Int32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	h := h1.NewClient(time.Second, time.Now)
	for _, m := range []string{"GET /admin", "GET\t/", "GET\r\nX: y"} {
		r, _ := http.NewRequest("GET", "http://"+l.Addr().String()+"/", nil)
		r.Method = m
		if _, err := h.RoundTrip(r); err == nil || !strings.Contains(err.Error(), "invalid request") {
			t.Errorf("method %q: %v", m, err)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections made for invalid requests", n)
	}
}

package dataplane

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// resetApp is an h2c application that resets every stream with code: right after
// the request's HEADERS, or after its own response HEADERS (200, application/grpc)
// with headersFirst. grpc-go's server does the former when a call's grpc-timeout
// expires before its handler answered.
func resetApp(t *testing.T, code http2.ErrCode, headersFirst bool) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = l.Close() })
	serve := func(nc net.Conn) {
		stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
		defer stop()
		defer func() { _ = nc.Close() }()
		var preface [len(http2.ClientPreface)]byte
		if _, err := io.ReadFull(nc, preface[:]); err != nil {
			return
		}
		fr := http2.NewFramer(nc, nc)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		var hbuf bytes.Buffer
		henc := hpack.NewEncoder(&hbuf)
		if fr.WriteSettings() != nil {
			return
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					err = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					err = fr.WritePing(true, f.Data)
				}
			case *http2.MetaHeadersFrame:
				if headersFirst {
					hbuf.Reset()
					_ = henc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
					_ = henc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
					err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: hbuf.Bytes(), EndHeaders: true})
				}
				if err == nil {
					err = fr.WriteRSTStream(f.StreamID, code)
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go serve(nc)
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}

// An application's RST_STREAM reaches the client through both proxies with its
// error code, before or after the response headers: a gRPC client maps the code to
// the call's status (CANCEL to CANCELLED, or DEADLINE_EXCEEDED past its deadline),
// where a 502 from the proxy would read as UNAVAILABLE, and an INTERNAL_ERROR reset
// as INTERNAL.
func TestH2UpstreamResetPropagates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		code         http2.ErrCode
		headersFirst bool
	}{
		{"cancel before headers", http2.ErrCodeCancel, false},
		{"cancel after headers", http2.ErrCodeCancel, true},
		{"enhance your calm before headers", http2.ErrCodeEnhanceYourCalm, false},
		{"refused after headers", http2.ErrCodeRefusedStream, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, _, _ := meshPair(t, startCP(t), resetApp(t, tc.code, tc.headersFirst))
			c := dialH2Raw(t, client.out.Addr().String())
			c.request(1, "POST", "/grpc.testing.TestService/FullDuplexCall", false,
				"content-type", "application/grpc", "te", "trailers")
			var status string
			for {
				switch f := c.read().(type) {
				case *http2.MetaHeadersFrame:
					if f.StreamID == 1 && status == "" {
						status = f.PseudoValue("status")
						if f.StreamEnded() {
							t.Fatalf("stream ended with a %s response, want RST_STREAM %v", status, tc.code)
						}
					}
				case *http2.DataFrame:
					if f.StreamID == 1 && f.StreamEnded() {
						t.Fatalf("stream ended with a %s response, want RST_STREAM %v", status, tc.code)
					}
				case *http2.RSTStreamFrame:
					if f.StreamID != 1 {
						continue
					}
					if f.ErrCode != tc.code {
						t.Errorf("RST_STREAM %v, want %v", f.ErrCode, tc.code)
					}
					if want := map[bool]string{true: "200", false: ""}[tc.headersFirst]; status != want {
						t.Errorf("response status %q before the reset, want %q", status, want)
					}
					return
				case *http2.GoAwayFrame:
					t.Fatalf("GOAWAY %v", f.ErrCode)
				}
			}
		})
	}
}

package h1

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"testing"
)

// BenchmarkH1ParseHead parses a typical request head with the HTTP/1 server's
// strict parser, and with http.ReadRequest for reference.
func BenchmarkH1ParseHead(b *testing.B) {
	const head = "GET /api/v1/items?id=42 HTTP/1.1\r\nHost: web.default.svc.cluster.local:8080\r\n" +
		"User-Agent: Go-http-client/1.1\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nX-Request-Id: 6f1c2a\r\n\r\n"
	rd := bytes.NewReader(nil)
	b.Run("proxy", func(b *testing.B) {
		c := &h1conn{br: bufio.NewReaderSize(rd, 4<<10)}
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset([]byte(head))
			c.br.Reset(rd)
			if err := c.readHead(); err != nil {
				b.Fatal(err)
			}
			if _, err := c.parseHead(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("net/http", func(b *testing.B) {
		br := bufio.NewReaderSize(rd, 4<<10)
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset([]byte(head))
			br.Reset(rd)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}

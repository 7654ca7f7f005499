package dataplane

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want protocol
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", protoHTTP1},
		{"POST /a?b=c HTTP/1.0\r\n", protoHTTP1},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", protoHTTP2},
		{"\x16\x03\x01\x00\xa5\x01", protoTLS},
		{"SSH-2.0-OpenSSH_9.2\r\n", protoOpaque},
		{"GET /\r\n", protoOpaque}, // HTTP/0.9, or memcached: not HTTP/1
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", protoOpaque},
		{"get key\r\n", protoOpaque},
		{"SET key value\r\n", protoOpaque},
		{"RTSP/1.0 200 OK\r\n", protoOpaque},
		{"DESCRIBE rtsp://x/ RTSP/1.0\r\n", protoOpaque},
		// HTTP-like, even malformed: the HTTP/1 server answers 400 or 505, never
		// opaque TCP.
		{"get / HTTP/1.1\r\n", protoHTTP1},
		{"GET  / HTTP/1.1\r\n", protoHTTP1},
		{"GET / HTTP/2.0\r\n", protoHTTP1},
		{"GET / HTTP/1.2\r\n", protoHTTP1},
		{"GET\t/\tHTTP/1.1\r\n", protoHTTP1},
		{"GET / http/1.1\r\n", protoHTTP1},
		{"GET / HTTP/1.1", protoHTTP1}, // no line end yet
		{"M-SEARCH * HTTP/1.1\r\n", protoHTTP1},
		{"\r\nGET / HTTP/1.1\r\n", protoHTTP1},
		{" GET / HTTP/1.1\r\n", protoHTTP1},
		{"GET /" + strings.Repeat("a", detectBuffer), protoHTTP1},
		{"GET /" + strings.Repeat("a", 100), protoOpaque}, // a short line that never ended
	} {
		if got := classify([]byte(tc.in)); got != tc.want {
			t.Errorf("classify(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// detect waits for a request line split across writes, gives up on a silent client
// after the timeout (opaque), and replays what it read.
func TestDetect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		writes []string
		want   protocol
	}{
		{"split request line", []string{"GE", "T / HT", "TP/1.1\r\n\r\n"}, protoHTTP1},
		{"split preface", []string{"PRI * HT", "TP/2.0\r\n\r\nSM\r\n\r\n"}, protoHTTP2},
		{"silent", nil, protoOpaque},
		{"binary", []string{"\x01\x02\x03"}, protoOpaque},
		{"split lower-case request line", []string{"ge", "t / HT", "TP/1.1\r\n\r\n"}, protoHTTP1},
		{"split after a tab", []string{"GET\t", "/ HTTP/1.1\r\n\r\n"}, protoHTTP1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			defer func() { _ = a.Close() }()
			go func() {
				for _, w := range tc.writes {
					_, _ = io.WriteString(b, w)
					time.Sleep(5 * time.Millisecond)
				}
			}()
			start := time.Now()
			got, c, err := detect(a, 200*time.Millisecond)
			if err != nil || got != tc.want {
				t.Fatalf("detect = %s, %v; want %s", got, err, tc.want)
			}
			if tc.writes == nil && time.Since(start) < 150*time.Millisecond {
				t.Fatalf("gave up before the timeout")
			}
			if len(tc.writes) > 0 {
				all := ""
				for _, w := range tc.writes {
					all += w
				}
				buf := make([]byte, len(all))
				_ = a.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != all {
					t.Fatalf("replayed %q, %v", buf, err)
				}
			}
			_ = b.Close()
		})
	}
}

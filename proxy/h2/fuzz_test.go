package h2

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2FuzzHeaders are the header sections the fuzzer's HEADERS and CONTINUATION
// frames carry: valid requests and each kind of malformed one.
var h2FuzzHeaders = [][]hpack.HeaderField{
	{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: "/echo"}, {Name: ":authority", Value: "web"}},
	{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: "/echo"}, {Name: ":authority", Value: "web"}, {Name: "content-length", Value: "5"}},
	{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: "/echo"}, {Name: "te", Value: "trailers"}, {Name: "trailer", Value: "x-t"}},
	{{Name: "x-t", Value: "done"}}, // trailers
	{{Name: ":path", Value: "/"}},  // pseudo-header only
	{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/echo"}},
	{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: "/echo"}, {Name: "connection", Value: "close"}},
	{{Name: ":method", Value: "G T"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: "/ x"}},
	{{Name: ":status", Value: "200"}},
	{{Name: ":method", Value: "CONNECT"}, {Name: ":authority", Value: "web:443"}},
	{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: "/stream"}, {Name: "content-length", Value: "-1"}},
}

// FuzzH2Server feeds frame sequences decoded from the input to the HTTP/2 server
// over net.Pipe, with a handler that reads each request body and echoes it with a
// trailer (through HTTPHandler, as the outbound proxy serves) or answers on the
// stream itself (as the inbound one does). Whatever the frames, the server must not
// panic or deadlock: it answers a final PING or closes the connection, everything
// it sends parses as HTTP/2 frames, a GOAWAY with an error is followed by the
// connection closing, and ServeConn returns once the client goes.
//
//	go test ./proxy/h2 -run '^$' -fuzz FuzzH2Server -fuzztime 30s
func FuzzH2Server(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 0, 1, 2, 0, 5, 1},                   // GET, then DATA
		{0, 1, 0, 2, 0, 9, 3, 2, 3},             // POST with content-length 5 and 9 bytes of DATA
		{0, 2, 0, 2, 0, 4, 0, 0, 3, 1},          // POST, DATA, trailers
		{4, 0, 1, 3, 0, 0xff, 0xff, 0xff, 0xff}, // RST on idle, WINDOW_UPDATE overflow
		{5, 0, 0, 6, 4, 0, 0, 0, 0, 8, 9},       // PRIORITY on itself, SETTINGS, PING, GOAWAY
		{0, 0x40, 1, 1, 3, 0x40, 7, 10, 11},     // HEADERS without END_HEADERS, CONTINUATION, unknown, garbage
	} {
		f.Add(seed)
	}
	echo := HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		_, _ = w.Write(b)
		w.Header().Set("X-Sum", strconv.Itoa(len(b)))
	}))
	srv := &Server{HeaderTimeout: 5 * time.Second, Handler: HandlerFunc(func(s *Stream, r *http.Request) {
		if r.URL.Path == "/stream" {
			b, _ := io.ReadAll(r.Body)
			_ = s.Respond(http.StatusOK, http.Header{"Content-Type": {"text/plain"}}, b)
			return
		}
		echo.ServeH2(s, r)
	})}
	f.Fuzz(func(t *testing.T, ops []byte) {
		client, server := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.ServeConn(context.Background(), server)
		}()
		defer func() {
			_ = client.Close()
			select {
			case <-served:
			case <-time.After(10 * time.Second):
				t.Fatal("ServeConn did not return after the client closed")
			}
		}()
		_ = client.SetDeadline(time.Now().Add(10 * time.Second))

		// The reader: every frame the server sends must parse.
		pong := make(chan struct{})
		readDone := make(chan error, 1)
		go func() {
			fr := http2.NewFramer(nil, client)
			fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			fr.MaxHeaderListSize = 1 << 20
			var goAway http2.ErrCode
			for {
				fr0, err := fr.ReadFrame()
				if err != nil {
					var se http2.StreamError
					if errors.As(err, &se) {
						continue
					}
					if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
						err = nil
					}
					readDone <- err
					return
				}
				switch fr0 := fr0.(type) {
				case *http2.PingFrame:
					if fr0.IsAck() && fr0.Data == [8]byte{'f', 'i', 'n', 'a', 'l'} {
						close(pong)
					}
				case *http2.GoAwayFrame:
					if goAway = fr0.ErrCode; goAway != http2.ErrCodeNo {
						continue // the connection must close next; ReadFrame sees it
					}
				}
			}
		}()

		var buf bytes.Buffer
		fw := http2.NewFramer(&buf, nil)
		block := func(i byte) []byte {
			var hb bytes.Buffer
			e := hpack.NewEncoder(&hb)
			for _, hf := range h2FuzzHeaders[int(i)%len(h2FuzzHeaders)] {
				_ = e.WriteField(hf)
			}
			return hb.Bytes()
		}
		buf.WriteString(http2.ClientPreface)
		_ = fw.WriteSettings()
		next := func(i *int) byte {
			if *i >= len(ops) {
				return 0
			}
			*i++
			return ops[*i-1]
		}
		for i := 0; i < len(ops); {
			op := next(&i)
			a, b := next(&i), next(&i)
			id := uint32(1 + 2*(a%8))
			if a&0x80 != 0 {
				id = uint32(a % 4 * 2) // even, or 0
			}
			switch op % 12 {
			case 0:
				_ = fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block(b), EndStream: a&0x20 != 0, EndHeaders: op&0x40 == 0})
			case 1:
				_ = fw.WriteContinuation(id, a&0x20 == 0, block(b))
			case 2:
				_ = fw.WriteData(id, a&0x20 != 0, make([]byte, int(b)*int(1+a%4)))
			case 3:
				inc := binary.BigEndian.Uint32([]byte{next(&i), next(&i), next(&i), next(&i)}) & 0x7fffffff
				if a&0x40 != 0 {
					id = 0
				}
				_ = fw.WriteRawFrame(http2.FrameWindowUpdate, 0, id, binary.BigEndian.AppendUint32(nil, inc))
			case 4:
				_ = fw.WriteRSTStream(id, http2.ErrCode(b%14))
			case 5:
				dep := uint32(b % 8)
				if b&0x80 != 0 {
					dep = id
				}
				_ = fw.WritePriority(id, http2.PriorityParam{StreamDep: dep, Weight: b})
			case 6:
				val := binary.BigEndian.Uint32([]byte{next(&i), next(&i), next(&i), next(&i)})
				_ = fw.WriteRawFrame(http2.FrameSettings, 0, 0, binary.BigEndian.AppendUint32([]byte{0, b % 8}, val))
			case 7:
				_ = fw.WriteSettingsAck()
			case 8:
				_ = fw.WritePing(a&1 == 1, [8]byte{b})
			case 9:
				_ = fw.WriteGoAway(id, http2.ErrCode(b%14), nil)
			case 10:
				_ = fw.WriteRawFrame(http2.FrameType(0x20+b%16), http2.Flags(a), id, []byte{b})
			case 11:
				buf.Write([]byte{a, b, next(&i)})
			}
		}
		_ = fw.WritePing(false, [8]byte{'f', 'i', 'n', 'a', 'l'})
		// Garbage may have begun a frame that swallows what follows: zeros fill it
		// (frames are at most 16 KiB) and then read as DATA on stream 0, a
		// connection error. So the server must answer the PING or close.
		buf.Write(make([]byte, DefaultFrameSize+9))
		// The server reads while it answers (its writer is its own goroutine), so
		// this write completes unless the server stopped reading: then it closes.
		_, werr := client.Write(buf.Bytes())
		select {
		case <-pong:
		case err := <-readDone:
			if err != nil {
				t.Fatalf("server sent something that is not HTTP/2: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer to the final PING and no close (write: %v): deadlock?", werr)
		}
	})
}

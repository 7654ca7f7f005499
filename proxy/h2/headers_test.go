package h2

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/meshplane/mesh/proxy/httpfield"
)

// headerFrames is a HEADERS frame on stream 1 carrying block, split into
// CONTINUATION frames at split (a byte offset, if inside the block).
func headerFrames(block []byte, split int, endStream bool) []byte {
	var buf bytes.Buffer
	fw := http2.NewFramer(&buf, nil)
	first := block
	var rest []byte
	if split > 0 && split < len(block) {
		first, rest = block[:split], block[split:]
	}
	_ = fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: endStream, EndHeaders: rest == nil})
	if rest != nil {
		_ = fw.WriteContinuation(1, true, rest)
	}
	return buf.Bytes()
}

// readBoth reads the frames with the connection's header reader and with x/net's
// ReadMetaHeaders (the oracle): both must agree on the fields, truncation and the
// kind of error.
func readBoth(t *testing.T, frames []byte) {
	t.Helper()
	oracle := http2.NewFramer(nil, bytes.NewReader(frames))
	oracle.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	oracle.MaxHeaderListSize = httpfield.MaxHeaderBytes
	want, werr := oracle.ReadFrame()

	var w h2wire
	w.fr = http2.NewFramer(nil, bytes.NewReader(frames))
	w.hr.init()
	got, gerr := w.readFrame()

	kind := func(err error) string {
		var se http2.StreamError
		var ce http2.ConnectionError
		switch {
		case err == nil:
			return "ok"
		case errors.As(err, &se):
			return "stream " + se.Code.String()
		case errors.As(err, &ce):
			return "connection " + http2.ErrCode(ce).String()
		}
		return "other"
	}
	if kind(gerr) != kind(werr) {
		t.Fatalf("frames %q: error %v, x/net %v", frames, gerr, werr)
	}
	if werr != nil {
		return
	}
	gm, wm := got.(*http2.MetaHeadersFrame), want.(*http2.MetaHeadersFrame)
	if gm.Truncated != wm.Truncated || len(gm.Fields) != len(wm.Fields) ||
		len(gm.Fields) > 0 && !reflect.DeepEqual(gm.Fields, wm.Fields) {
		t.Fatalf("frames %q: fields %v (truncated %v), x/net %v (truncated %v)", frames, gm.Fields, gm.Truncated, wm.Fields, wm.Truncated)
	}
}

func encode(fields ...hpack.HeaderField) []byte {
	var buf bytes.Buffer
	e := hpack.NewEncoder(&buf)
	for _, f := range fields {
		_ = e.WriteField(f)
	}
	return buf.Bytes()
}

func hf(name, value string) hpack.HeaderField { return hpack.HeaderField{Name: name, Value: value} }

var headerBlockCases = [][]byte{
	encode(hf(":method", "GET"), hf(":scheme", "http"), hf(":path", "/"), hf(":authority", "web"), hf("accept", "*/*")),
	encode(hf(":status", "200"), hf("content-type", "text/plain")),
	encode(hf("x", "1"), hf(":path", "/")),             // pseudo after regular
	encode(hf(":method", "GET"), hf(":method", "GET")), // duplicate pseudo
	encode(hf(":foo", "x")),                         // unknown pseudo
	encode(hf(":status", "200"), hf(":path", "/")),  // request and response
	encode(hf("X-Upper", "1")),                      // upper-case name
	encode(hf("bad name", "1")),                     // not a token
	encode(hf("x", "a\x00b")),                       // NUL in a value
	encode(hf("x", "a\r\nb")),                       // CRLF in a value
	encode(hf("trailer", "a, b, c"), hf("x", "y")),  // trailer names counted
	encode(hf("big", string(make([]byte, 70<<10)))), // over the list size
	encode(hf("a", string(bytes.Repeat([]byte("v"), 40<<10))), hf("b", string(bytes.Repeat([]byte("w"), 30<<10)))),
	{0xff, 0xff, 0xff, 0xff}, // an invalid index
	{0x3f, 0xe1, 0x1f},       // a dynamic table size update above the limit
	{},
}

// The header reader agrees with x/net's readMetaFrame on valid and invalid blocks,
// whole and split into CONTINUATION frames.
func TestHeaderReaderMatchesXNet(t *testing.T) {
	t.Parallel()
	for _, block := range headerBlockCases {
		for _, split := range []int{0, 1, len(block) / 2, len(block) - 1} {
			readBoth(t, headerFrames(block, split, true))
		}
	}
}

// FuzzHeaderReader compares the header reader with x/net's on arbitrary header
// block bytes, split at an arbitrary point.
//
//	go test ./proxy/h2 -run '^$' -fuzz FuzzHeaderReader -fuzztime 30s
func FuzzHeaderReader(f *testing.F) {
	for _, b := range headerBlockCases {
		if len(b) < 4<<10 {
			f.Add(b, uint16(len(b)/2))
		}
	}
	f.Fuzz(func(t *testing.T, block []byte, split uint16) {
		if len(block) > 3*DefaultFrameSize {
			return
		}
		readBoth(t, headerFrames(block, int(split), split%2 == 0))
	})
}

// A connection reuses its field storage and its decoder callback: reading a
// typical request's block allocates less than x/net's ReadMetaHeaders does (which
// makes a MetaHeadersFrame, a closure and a growing Fields slice per block).
func TestHeaderReaderAllocs(t *testing.T) {
	block := encode(hf(":method", "GET"), hf(":scheme", "http"), hf(":path", "/"), hf(":authority", "web"),
		hf("accept", "*/*"), hf("user-agent", "test"), hf("x-request-id", "42"))
	frames := headerFrames(block, 0, true)
	rd := bytes.NewReader(frames)
	var w h2wire
	w.hr.init()
	oracleDec := hpack.NewDecoder(4096, nil)
	ours := testing.AllocsPerRun(50, func() {
		rd.Reset(frames)
		w.fr = http2.NewFramer(nil, rd)
		if _, err := w.readFrame(); err != nil {
			t.Fatal(err)
		}
	})
	xnet := testing.AllocsPerRun(50, func() {
		rd.Reset(frames)
		fr := http2.NewFramer(nil, rd)
		fr.ReadMetaHeaders = oracleDec
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per header block: %v, x/net's ReadMetaHeaders %v", ours, xnet)
	if ours > xnet-4 {
		t.Errorf("reading a header block: %v allocations, x/net's %v: want at least 4 fewer", ours, xnet)
	}
}

package h2

import (
	"errors"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/meshplane/mesh/proxy/httpfield"
)

// Header blocks are read here, not by the framer's ReadMetaHeaders: that builds a
// new MetaHeadersFrame, a closure and a Fields slice grown one append at a time for
// every HEADERS frame (a fifth of the bytes both proxies allocated per request).
// This reader does what it does, with the same errors, into a MetaHeadersFrame and
// field storage that the connection reuses: a frame that readFrame returns is valid
// until the next call, and whoever keeps a field's strings (they are immutable)
// keeps nothing of the frame.

// maxKeptFields bounds the field storage a connection keeps between header blocks.
const maxKeptFields = 64

var errPseudoAfterRegular = errors.New("pseudo header field after regular")

// headerReader decodes one connection's header blocks (its read goroutine only).
type headerReader struct {
	dec *hpack.Decoder
	mh  http2.MetaHeadersFrame

	// Per block:
	fields       []hpack.HeaderField // decoded so far; the storage is kept
	invalid      error
	sawRegular   bool
	truncated    bool
	headersLeft  uint32
	trailersLeft uint32
}

func (r *headerReader) init() {
	r.dec = hpack.NewDecoder(4096, r.emit)
	r.dec.SetMaxStringLength(httpfield.MaxHeaderBytes)
}

// emit is the decoder's callback: the checks and size accounting of x/net's
// readMetaFrame (RFC 9113 §8.2.1 field names and values, §8.3 pseudo-headers
// first, SETTINGS_MAX_HEADER_LIST_SIZE as §6.5.2 counts it).
func (r *headerReader) emit(hf hpack.HeaderField) {
	if !httpguts.ValidHeaderFieldValue(hf.Value) {
		r.invalid = headerFieldError("value of " + hf.Name) // the value may be sensitive
	}
	if strings.HasPrefix(hf.Name, ":") {
		if r.sawRegular {
			r.invalid = errPseudoAfterRegular
		}
	} else {
		r.sawRegular = true
		if !validWireName(hf.Name) {
			r.invalid = headerFieldError("name " + hf.Name)
		}
	}
	if r.invalid != nil {
		r.dec.SetEmitEnabled(false)
		return
	}
	left, size := &r.headersLeft, hf.Size()
	if hf.Name == "trailer" {
		// As x/net counts it: each declared name as a field of its own.
		n := uint32(strings.Count(hf.Value, ",") + 1)
		left, size = &r.trailersLeft, uint32(len(hf.Value))-n+1+n*hpack.HeaderField{}.Size()
	}
	if size > *left {
		r.dec.SetEmitEnabled(false)
		r.truncated = true
		r.headersLeft, r.trailersLeft = 0, 0
		return
	}
	*left -= size
	r.fields = append(r.fields, hf)
}

// read decodes the header block that hf begins, reading its CONTINUATION frames
// from fr (the framer has checked that nothing else comes between them).
func (r *headerReader) read(fr *http2.Framer, hf *http2.HeadersFrame) (*http2.MetaHeadersFrame, error) {
	if cap(r.fields) > maxKeptFields {
		r.fields = nil
	}
	r.fields = r.fields[:0]
	r.invalid, r.sawRegular, r.truncated = nil, false, false
	r.headersLeft, r.trailersLeft = httpfield.MaxHeaderBytes, httpfield.MaxHeaderBytes
	r.dec.SetEmitEnabled(true)
	streamID := hf.StreamID
	frag, ended := hf.HeaderBlockFragment(), hf.HeadersEnded()
	for {
		// As x/net: a fragment far larger than what may still be accepted, or any
		// CONTINUATION after an invalid field, is a connection error.
		if int64(len(frag)) > 2*int64(r.headersLeft+r.trailersLeft) || r.invalid != nil {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := r.dec.Write(frag); err != nil {
			return nil, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		cf := f.(*http2.ContinuationFrame) // guaranteed by the framer's frame order check
		frag, ended = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if err := r.dec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	r.mh = http2.MetaHeadersFrame{HeadersFrame: hf, Fields: r.fields, Truncated: r.truncated}
	if r.invalid != nil {
		return nil, http2.StreamError{StreamID: streamID, Code: http2.ErrCodeProtocol, Cause: r.invalid}
	}
	if err := checkPseudos(r.mh.PseudoFields()); err != nil {
		return nil, http2.StreamError{StreamID: streamID, Code: http2.ErrCodeProtocol, Cause: err}
	}
	return &r.mh, nil
}

// checkPseudos: only known pseudo-header fields, none twice, not both a request's
// and a response's (RFC 9113 §8.3).
func checkPseudos(pf []hpack.HeaderField) error {
	var isRequest, isResponse bool
	for i, hf := range pf {
		switch hf.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			isRequest = true
		case ":status":
			isResponse = true
		default:
			return headerFieldError("pseudo-header " + hf.Name)
		}
		for _, hf2 := range pf[:i] {
			if hf.Name == hf2.Name {
				return headerFieldError("duplicate pseudo-header " + hf.Name)
			}
		}
	}
	if isRequest && isResponse {
		return errors.New("mix of request and response pseudo headers")
	}
	return nil
}

// validWireName: a field name on the wire is a token in lower case (RFC 9113 §8.2.1).
func validWireName(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !httpfield.IsTchar(c) || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

type headerFieldError string

func (e headerFieldError) Error() string { return "invalid header field " + string(e) }

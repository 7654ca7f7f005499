package h2

import (
	"errors"

	"golang.org/x/net/http2"
)

// Stream resets from upstream go downstream with their error code: an application
// (or the peer proxy) that resets a stream, before or after its response headers,
// resets the client's stream with the same code instead of the proxy answering 502 or
// resetting with INTERNAL_ERROR. gRPC reads the code as the call's status (CANCEL is
// CANCELLED, or DEADLINE_EXCEEDED past the call's deadline; REFUSED_STREAM is
// UNAVAILABLE and may be retried; ENHANCE_YOUR_CALM is RESOURCE_EXHAUSTED), while a 502
// reads as UNAVAILABLE.

// errPeerReset is the Cause of the http2.StreamError that the proxy's HTTP/2 client
// returns for an RST_STREAM it received. Its text is that of net/http's (unexported)
// errFromPeer, the Cause of the StreamError that net/http's client returns for one.
var errPeerReset = errors.New("received from peer")

// PeerReset reports the code of an RST_STREAM that the upstream peer sent, if err is
// one: from the proxy's HTTP/2 client, or from net/http's, whose bundled StreamError
// converts to x/net's with errors.As. Streams that the client itself reset (its own
// protocol errors) are not peer resets.
func PeerReset(err error) (http2.ErrCode, bool) {
	var se http2.StreamError
	if !errors.As(err, &se) || se.Cause == nil {
		return 0, false
	}
	if errors.Is(se.Cause, errPeerReset) || se.Cause.Error() == errPeerReset.Error() {
		return se.Code, true
	}
	return 0, false
}

// Reset ends the stream with an RST_STREAM of code, from the handler's goroutine:
// nothing more is written on it (not even the RST_STREAM that endStream sends for an
// unfinished stream), its request body is dropped and its context cancelled.
func (s *Stream) Reset(code http2.ErrCode) {
	s.c.resetStream(s.id, code)
	s.ended = true
	s.abort(errStreamReset)
}

// ResetStream is Reset for a handler that writes through the ResponseWriter
// (HTTPHandler's), as the outbound proxy does.
func (w *h2rw) ResetStream(code http2.ErrCode) { w.s.Reset(code) }

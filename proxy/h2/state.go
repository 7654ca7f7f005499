package h2

// HTTP/2 stream states and the rules for request field sections, as the server
// applies them.

// h2StreamState is a stream's state, RFC 9113 §5.1. Reserved states do not occur:
// the proxy never pushes.
type h2StreamState uint8

const (
	h2Idle             h2StreamState = iota // not yet opened: id above every stream the peer opened
	h2Open                                  // both sides may send
	h2HalfClosedRemote                      // the peer sent END_STREAM; we may still send
	h2HalfClosedLocal                       // we sent END_STREAM; the peer may still send
	h2Closed                                // both ended, or reset by either side
)

func (s h2StreamState) String() string {
	return [...]string{"idle", "open", "half-closed (remote)", "half-closed (local)", "closed"}[s]
}

// h2CloseCause is how a closed stream ended, which decides what a late frame on it
// is (RFC 9113 §5.1, "closed").
type h2CloseCause uint8

const (
	// h2CloseUnknown: not among the recently closed streams (long gone, or an id the
	// peer skipped, RFC 9113 §5.1.1).
	h2CloseUnknown h2CloseCause = iota
	// h2CloseEnded: both sides sent END_STREAM. HEADERS after that is a connection
	// error STREAM_CLOSED; DATA a stream error STREAM_CLOSED.
	h2CloseEnded
	// h2ClosePeerReset: the peer sent RST_STREAM; any frame but PRIORITY after that
	// is a stream error STREAM_CLOSED.
	h2ClosePeerReset
	// h2CloseLocalReset: we sent RST_STREAM; frames the peer sent before it saw
	// ours are ignored (their DATA still counts against the connection window).
	h2CloseLocalReset
)

// h2ClosedRing remembers how the last few streams closed, so late frames on them
// get the answer §5.1 asks for; older streams count as h2CloseUnknown.
type h2ClosedRing struct {
	ids    [32]uint32
	causes [32]h2CloseCause
	next   int
}

func (r *h2ClosedRing) add(id uint32, c h2CloseCause) {
	r.ids[r.next], r.causes[r.next] = id, c
	r.next = (r.next + 1) % len(r.ids)
}

func (r *h2ClosedRing) cause(id uint32) h2CloseCause {
	for i, v := range r.ids {
		if v == id && id != 0 {
			return r.causes[i]
		}
	}
	return h2CloseUnknown
}

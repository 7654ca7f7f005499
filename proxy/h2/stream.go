package h2

import (
	"net/http"

	"github.com/meshplane/mesh/proxy/httpfield"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A stream's side of the server: what its handler writes, and how it ends.

// abort ends the stream from the peer's side: its handler's context is cancelled, and
// its body reads and response writes fail.
func (s *Stream) abort(err error) {
	s.c.mu.Lock()
	s.reset = true
	s.c.cond.Broadcast()
	s.c.mu.Unlock()
	s.ctx.Cancel()
	if s.body != nil {
		s.body.fail(err)
	}
}

// reserve waits until up to n bytes may be sent on the stream and takes them from
// both send windows.
func (s *Stream) reserve(n int) (int, error) { return s.c.reserve(&s.sendWin, &s.reset, n) }

// WriteHeaders sends a HEADERS frame (and CONTINUATIONs) with status (0 for
// trailers) and h.
func (s *Stream) WriteHeaders(status int, h http.Header, end, flush bool) error {
	c := s.c
	c.mu.Lock()
	frame := c.peerFrame
	reset := s.reset
	c.mu.Unlock()
	if reset {
		return errStreamReset
	}
	if end {
		s.ended = true
		s.endLocal()
	}
	return c.write(func() error {
		c.hbuf.Reset()
		if status != 0 {
			_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
		}
		for k, vs := range h {
			lk, ok := httpfield.LowerH2(k)
			if !ok {
				continue
			}
			for _, v := range vs {
				if lk == "te" && v != "trailers" {
					continue
				}
				_ = c.henc.WriteField(hpack.HeaderField{Name: lk, Value: v})
			}
		}
		block := c.hbuf.Bytes()
		first := block
		if len(first) > frame {
			first = first[:frame]
		}
		block = block[len(first):]
		if err := c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0}); err != nil {
			return err
		}
		for len(block) > 0 {
			n := min(len(block), frame)
			if err := c.fw.WriteContinuation(s.id, n == len(block), block[:n]); err != nil {
				return err
			}
			block = block[n:]
		}
		return nil
	}, flush || end)
}

// WriteData sends p in DATA frames within the flow-control windows; end sets
// END_STREAM on the last one. The frames are flushed.
func (s *Stream) WriteData(p []byte, end bool) error { return s.writeDataFlush(p, end, true) }

// WriteDataHeld is WriteData (no END_STREAM) for a body whose next bytes are
// already at hand: the last frame waits in the buffer for what follows.
func (s *Stream) WriteDataHeld(p []byte) error { return s.writeDataFlush(p, false, false) }

// writeDataFlush is writeData; flush false leaves the last frame buffered.
func (s *Stream) writeDataFlush(p []byte, end, flush bool) error {
	for {
		if len(p) == 0 {
			if !end {
				return nil
			}
			s.ended = true
			s.endLocal()
			return s.c.write(func() error { return s.c.fw.WriteData(s.id, true, nil) }, true)
		}
		n, err := s.reserve(len(p))
		if err != nil {
			return err
		}
		last := n == len(p)
		chunk := p[:n]
		if last && end {
			s.ended = true
			s.endLocal()
		}
		if err := s.c.write(func() error { return s.c.fw.WriteData(s.id, last && end, chunk) }, !last || flush || end); err != nil { // never wait for window with frames unsent
			return err
		}
		if last {
			return nil
		}
		p = p[n:]
	}
}

// endLocal notes, before the frame carrying END_STREAM is written, that the
// stream is half-closed (local): a peer that answers at once finds it so.
func (s *Stream) endLocal() {
	s.c.mu.Lock()
	s.localEnded = true
	s.c.mu.Unlock()
}

// Respond sends a whole response.
func (s *Stream) Respond(status int, h http.Header, body []byte) error {
	if err := s.WriteHeaders(status, h, len(body) == 0, false); err != nil || len(body) == 0 {
		return err
	}
	return s.WriteData(body, true)
}

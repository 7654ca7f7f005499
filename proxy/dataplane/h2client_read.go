package dataplane

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// readLoop reads the connection's frames until it breaks.
func (cc *h2cc) readLoop() {
	err := cc.read()
	if errors.Is(err, io.EOF) {
		err = errH2Closed
	}
	cc.close(fmt.Errorf("%w: %w", errH2Closed, err))
}

func (cc *h2cc) read() error {
	for {
		f, err := cc.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				if cs := cc.stream(se.StreamID); cs != nil {
					cs.cancel(se)
				}
				continue
			}
			return err
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			cc.headers(f)
		case *http2.DataFrame:
			if err := cc.data(f); err != nil {
				return err
			}
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if err := cc.settings(f); err != nil {
				return err
			}
			if err := cc.write(cc.fw.WriteSettingsAck, true); err != nil {
				return err
			}
		case *http2.WindowUpdateFrame:
			cc.mu.Lock()
			if f.StreamID == 0 {
				cc.sendWin += int64(f.Increment)
			} else if cs := cc.streams[f.StreamID]; cs != nil {
				cs.sendWin += int64(f.Increment)
			}
			cc.cond.Broadcast()
			cc.mu.Unlock()
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				if err := cc.write(func() error { return cc.fw.WritePing(true, data) }, true); err != nil {
					return err
				}
			}
		case *http2.RSTStreamFrame:
			if cs := cc.stream(f.StreamID); cs != nil {
				cc.mu.Lock()
				recvd := cs.recvd
				cc.mu.Unlock()
				var err error
				switch {
				case recvd && f.ErrCode == http2.ErrCodeNo:
					// The response is complete; the peer only wants no more of the
					// request body.
				case f.ErrCode == http2.ErrCodeRefusedStream:
					err = errH2Retry
				default:
					err = fmt.Errorf("%w: %v", errH2Aborted, f.ErrCode)
				}
				cc.endStream(cs, err)
			}
		case *http2.GoAwayFrame:
			cc.goAway(f.LastStreamID)
		}
	}
}

func (cc *h2cc) stream(id uint32) *h2cs {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.streams[id]
}

func (cc *h2cc) settings(f *http2.SettingsFrame) error {
	return f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		if s.ID == http2.SettingHeaderTableSize {
			cc.wmu.Lock()
			cc.henc.SetMaxDynamicTableSize(min(s.Val, 4096))
			cc.wmu.Unlock()
			return nil
		}
		cc.mu.Lock()
		defer cc.mu.Unlock()
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			cc.maxStreams = int(min(s.Val, 1000))
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - cc.peerInitWin
			cc.peerInitWin = int64(s.Val)
			for _, cs := range cc.streams {
				cs.sendWin += delta
			}
			cc.cond.Broadcast()
		case http2.SettingMaxFrameSize:
			cc.peerFrame = int(s.Val)
		}
		return nil
	})
}

// goAway: streams above last were not processed and may be retried elsewhere.
func (cc *h2cc) goAway(last uint32) {
	cc.mu.Lock()
	cc.retired = true
	var refused []*h2cs
	for id, cs := range cc.streams {
		if id > last {
			refused = append(refused, cs)
		}
	}
	idle := cc.reserved == 0
	cc.mu.Unlock()
	cc.pool.remove(cc)
	for _, cs := range refused {
		cc.endStream(cs, errH2Retry)
	}
	if idle {
		cc.close(errH2Closed)
	}
}

func (cc *h2cc) headers(f *http2.MetaHeadersFrame) {
	cs := cc.stream(f.StreamID)
	if cs == nil {
		return
	}
	if f.Truncated {
		cs.cancel(errors.New("http2: response headers too large"))
		return
	}
	cc.mu.Lock()
	delivered := cs.delivered
	cc.mu.Unlock()
	if delivered { // trailers
		if cs.body != nil {
			cs.body.trailers(f.RegularFields())
		}
		if f.StreamEnded() {
			cc.received(cs)
		}
		return
	}
	status, err := strconv.Atoi(f.PseudoValue("status"))
	if err != nil || status < 100 || status > 999 {
		cs.cancel(errors.New("http2: malformed response :status"))
		return
	}
	if status < 200 {
		return // informational
	}
	fields := f.RegularFields()
	h := make(http.Header, len(fields))
	for _, hf := range fields {
		k := canonicalHeader(hf.Name)
		h[k] = append(h[k], hf.Value)
	}
	resp := &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/2.0", ProtoMajor: 2, Header: h, Request: cs.req, ContentLength: -1, Body: http.NoBody,
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			resp.ContentLength = n
		}
	}
	for _, v := range h["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
				if resp.Trailer == nil {
					resp.Trailer = http.Header{}
				}
				resp.Trailer[k] = nil
			}
		}
	}
	if f.StreamEnded() {
		resp.ContentLength = 0
	}
	cc.mu.Lock()
	if cs.delivered { // cancelled meanwhile
		cc.mu.Unlock()
		return
	}
	if !f.StreamEnded() {
		cs.body = &h2rbody{cs: cs, resp: resp, win: h2StreamWindow}
		cs.body.cond.L = &cs.body.mu
		resp.Body = cs.body
	}
	cs.resp, cs.delivered = resp, true
	cc.mu.Unlock()
	close(cs.done)
	if f.StreamEnded() {
		cc.received(cs)
	}
}

// received: the peer ended the stream; it is done once the request is sent too.
func (cc *h2cc) received(cs *h2cs) {
	cc.mu.Lock()
	cs.recvd = true
	sent := cs.sent
	cc.mu.Unlock()
	if sent {
		cc.endStream(cs, nil)
	}
}

func (cc *h2cc) data(f *http2.DataFrame) error {
	n := int64(f.Length)
	cc.mu.Lock()
	if n > cc.recvWin {
		cc.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	cc.recvWin -= n
	cs := cc.streams[f.StreamID]
	cc.mu.Unlock()
	data := f.Data()
	if cs == nil || cs.body == nil {
		cc.giveBack(nil, n)
		return nil
	}
	if pad := n - int64(len(data)); pad > 0 {
		cc.giveBack(nil, pad)
	}
	if !cs.body.push(data, f.StreamEnded()) {
		cc.giveBack(nil, int64(len(data)))
		cs.cancel(errors.New("http2: peer overran the stream's flow-control window"))
		return nil
	}
	if f.StreamEnded() {
		cc.received(cs)
	}
	return nil
}

// giveBack returns consumed bytes to the peer's windows, in batches.
func (cc *h2cc) giveBack(cs *h2cs, n int64) {
	if n <= 0 {
		return
	}
	var connInc, streamInc uint32
	cc.mu.Lock()
	cc.recvUnacked += n
	if cc.recvUnacked >= h2ConnWindow/4 {
		connInc = uint32(cc.recvUnacked)
		cc.recvWin += cc.recvUnacked
		cc.recvUnacked = 0
	}
	_, open := cc.streams[cs.idOrZero()]
	cc.mu.Unlock()
	if open && cs.body != nil {
		streamInc = cs.body.consumed(n)
	}
	if connInc == 0 && streamInc == 0 {
		return
	}
	_ = cc.write(func() error {
		if connInc > 0 {
			if err := cc.fw.WriteWindowUpdate(0, connInc); err != nil {
				return err
			}
		}
		if streamInc > 0 {
			return cc.fw.WriteWindowUpdate(cs.id, streamInc)
		}
		return nil
	}, true)
}

func (cs *h2cs) idOrZero() uint32 {
	if cs == nil {
		return 0
	}
	return cs.id
}

// h2rbody is a response body, fed by the read loop.
type h2rbody struct {
	cs      *h2cs
	resp    *http.Response
	mu      sync.Mutex
	cond    sync.Cond
	buf     []byte
	err     error
	closed  bool
	win     int64
	unacked int64
	got     http.Header // trailers received, until Read hands them over
}

func (b *h2rbody) push(data []byte, end bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if int64(len(data)) > b.win {
		return false
	}
	b.win -= int64(len(data))
	if b.closed {
		defer b.cs.cc.giveBack(nil, int64(len(data)))
	} else {
		b.buf = append(b.buf, data...)
	}
	if end && b.err == nil {
		b.err = io.EOF
	}
	b.cond.Broadcast()
	return true
}

func (b *h2rbody) trailers(fields []hpack.HeaderField) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Kept aside: resp.Trailer belongs to the goroutine reading the body; Read
	// fills it at the end.
	for _, hf := range fields {
		k := canonicalHeader(hf.Name)
		if b.got == nil {
			b.got = http.Header{}
		}
		b.got[k] = append(b.got[k], hf.Value)
	}
	if b.err == nil {
		b.err = io.EOF
	}
	b.cond.Broadcast()
}

func (b *h2rbody) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *h2rbody) Read(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.buf) == 0 && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		b.mu.Unlock()
		return 0, errors.New("http2: response body closed")
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	if len(b.buf) == 0 {
		b.buf = b.buf[:0:0]
	}
	var err error
	if len(b.buf) == 0 {
		err = b.err
	}
	if errors.Is(err, io.EOF) && b.got != nil {
		if b.resp.Trailer == nil {
			b.resp.Trailer = http.Header{}
		}
		for k, vs := range b.got {
			b.resp.Trailer[k] = vs
		}
		b.got = nil
	}
	b.mu.Unlock()
	b.cs.cc.giveBack(b.cs, int64(n))
	return n, err
}

// Close stops the response: a stream still open is reset.
func (b *h2rbody) Close() error {
	b.mu.Lock()
	unread := int64(len(b.buf))
	b.buf, b.closed = nil, true
	ended := b.err != nil
	b.cond.Broadcast()
	b.mu.Unlock()
	b.cs.cc.giveBack(nil, unread)
	if !ended {
		b.cs.cancel(errors.New("response body closed"))
	}
	return nil
}

func (b *h2rbody) consumed(n int64) uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil || b.closed {
		return 0
	}
	b.unacked += n
	if b.unacked < h2StreamWindow/4 {
		return 0
	}
	inc := b.unacked
	b.win += inc
	b.unacked = 0
	return uint32(inc)
}

package h2

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/meshplane/mesh/proxy/httpfield"
	"golang.org/x/net/http2"
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
		f, err := cc.readFrame()
		cc.ka.reads.Add(1)
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
			if err := validSettings(f); err != nil {
				return err
			}
			cc.queue(h2ctrl{typ: http2.FrameSettings, ack: true}) // before they apply, as the server does
			if err := cc.settings(f); err != nil {
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
				cc.queue(h2ctrl{typ: http2.FramePing, ack: true, data: f.Data})
			}
		case *http2.RSTStreamFrame:
			if cs := cc.stream(f.StreamID); cs != nil {
				cc.mu.Lock()
				recvd := cs.recvd
				cc.mu.Unlock()
				// The code goes with the error, for the proxy to reset its own
				// client's stream with it (PeerReset).
				se := http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode, Cause: errPeerReset}
				var err error
				switch {
				case recvd && f.ErrCode == http2.ErrCodeNo:
					// The response is complete; the peer only wants no more of the
					// request body.
				case f.ErrCode == http2.ErrCodeRefusedStream:
					err = fmt.Errorf("%w: %w", errH2Retry, se)
				default:
					err = fmt.Errorf("%w: %w", errH2Aborted, se)
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
		if cs.body != nil && !cs.body.trailers(f.RegularFields()) {
			cs.cancel(errContentLength)
			return
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
	strs := make([]string, len(fields))
	for _, hf := range fields {
		addField(h, &strs, httpfield.CanonicalH2(hf.Name), hf.Value)
	}
	resp := &http.Response{
		Status: responseStatus(status), StatusCode: status,
		Proto: "HTTP/2.0", ProtoMajor: 2, Header: h, Request: cs.req, ContentLength: -1, Body: http.NoBody,
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			resp.ContentLength = n
		}
	}
	resp.Trailer = trailerMap(h)
	if f.StreamEnded() {
		resp.ContentLength = 0
	}
	cc.mu.Lock()
	if cs.delivered { // cancelled meanwhile
		cc.mu.Unlock()
		return
	}
	if !f.StreamEnded() {
		cs.body = newH2RBody(cs, resp)
		resp.Body = cs.body
		if resp.ContentLength >= 0 && cs.req.Method != http.MethodHead && status != http.StatusNotModified && status != http.StatusNoContent {
			cs.body.want = resp.ContentLength // RFC 9113 §8.1.1
		}
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
	if !cc.takeRecv(n) {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	cs := cc.stream(f.StreamID)
	data := f.Data()
	if cs == nil || cs.body == nil {
		cc.giveBack(0, nil, n)
		return nil
	}
	if pad := n - int64(len(data)); pad > 0 {
		cc.giveBack(0, nil, pad)
	}
	switch cs.body.push(data, f.StreamEnded()) {
	case h2PushWindow:
		cc.giveBack(0, nil, int64(len(data)))
		cs.cancel(errors.New("http2: peer overran the stream's flow-control window"))
		return nil
	case h2PushLength:
		cs.cancel(errContentLength)
		return nil
	}
	if f.StreamEnded() {
		cc.received(cs)
	}
	return nil
}

// h2rbody is a response body of the HTTP/2 client.
type h2rbody struct {
	h2pipe
	cs   *h2cs
	resp *http.Response
}

// newH2RBody makes the stream's response body (in the stream: one allocation less).
func newH2RBody(cs *h2cs, resp *http.Response) *h2rbody {
	b := &cs.rbody
	b.cs, b.resp = cs, resp
	b.init(&cs.cc.h2wire, cs.id, b)
	return b
}

// atEnd fills resp.Trailer, which belongs to the goroutine reading the body.
func (b *h2rbody) atEnd(got http.Header) {
	if b.resp.Trailer == nil {
		b.resp.Trailer = http.Header{}
	}
	for k, vs := range got {
		b.resp.Trailer[k] = vs
	}
}

// Close stops the response: a stream still open is reset.
func (b *h2rbody) Close() error {
	if b.discard() {
		b.cs.cancel(errors.New("response body closed"))
	}
	return nil
}

package h2

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/meshplane/mesh/proxy/httpfield"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2wire is what the HTTP/2 server and client connections share: the framers, the
// write lock, and the flow-control windows.
type h2wire struct {
	nc net.Conn
	fr *http2.Framer // reads: the connection's read goroutine only (readFrame)
	hr headerReader  // its header blocks

	wmu  sync.Mutex // frame writes and the hpack encoder
	bw   *bufio.Writer
	fw   *http2.Framer
	henc *hpack.Encoder
	hbuf bytes.Buffer

	mu          sync.Mutex
	cond        sync.Cond // a send window grew, or a stream or the connection ended
	sendWin     int64     // connection send window
	peerInitWin int64     // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame   int       // the peer's SETTINGS_MAX_FRAME_SIZE
	recvWin     int64     // connection receive window left
	recvUnacked int64     // consumed bytes not yet returned with WINDOW_UPDATE
	closed      bool

	tm  Timeouts
	ctl h2writer    // control frames for the writer goroutine
	ka  h2keepalive // client connections only
}

func (w *h2wire) init(nc net.Conn, t Timeouts) {
	w.nc, w.tm = nc, t
	w.sendWin, w.peerInitWin, w.peerFrame, w.recvWin = DefaultWindow, DefaultWindow, DefaultFrameSize, ConnWindow
	w.cond.L = &w.mu
	w.bw = bufio.NewWriterSize(nc, h2WriteBuf)
	w.fw = http2.NewFramer(w.bw, nil)
	w.henc = hpack.NewEncoder(&w.hbuf)
	w.fr = http2.NewFramer(nil, nc)
	// Frames above the SETTINGS_MAX_FRAME_SIZE we advertise (the default, 16 KiB)
	// are a connection error FRAME_SIZE_ERROR (RFC 9113 §4.2); the framer's read
	// buffer never grows past it.
	w.fr.SetMaxReadFrameSize(DefaultFrameSize)
	w.fr.SetReuseFrames()
	w.hr.init() // header blocks (headers.go), instead of the framer's ReadMetaHeaders
	w.startWriter()
}

// readFrame reads the next frame; a HEADERS frame comes with its CONTINUATIONs as a
// MetaHeadersFrame (headers.go), valid until the next call.
func (w *h2wire) readFrame() (http2.Frame, error) {
	f, err := w.fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	if hf, ok := f.(*http2.HeadersFrame); ok {
		mh, err := w.hr.read(w.fr, hf)
		if err != nil {
			return nil, err
		}
		return mh, nil
	}
	return f, nil
}

// write runs fn, which writes frames, under the write lock; flush sends them. A
// failed write closes the connection.
func (w *h2wire) write(fn func() error, flush bool) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	d := w.tm.Write
	if w.ctl.closing.Load() {
		d = h2CloseWriteTimeout
	}
	_ = w.nc.SetWriteDeadline(time.Now().Add(d))
	closeAfter, err := w.writeQueuedLocked()
	switch {
	case err != nil:
	case closeAfter:
		// A connection error's GOAWAY went out: nothing follows it.
		if err = w.bw.Flush(); err == nil {
			err = net.ErrClosed
		}
	default:
		if err = fn(); err == nil && flush {
			err = w.bw.Flush()
		}
	}
	if err != nil {
		_ = w.nc.Close()
	}
	return err
}

// reserve waits until up to n bytes may be sent on a stream whose send window is
// *win, and takes them from both windows; it fails once *reset is set.
func (w *h2wire) reserve(win *int64, reset *bool, n int) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if *reset || w.closed {
			return 0, errStreamReset
		}
		if avail := min(*win, w.sendWin); avail > 0 {
			n = int(min(int64(n), avail, int64(w.peerFrame)))
			*win -= int64(n)
			w.sendWin -= int64(n)
			return n, nil
		}
		w.cond.Wait()
	}
}

// tryReserve is reserve without waiting: up to n bytes the windows allow now, or 0
// (also when the stream or the connection is gone). The caller holds wmu, not mu.
func (w *h2wire) tryReserve(win *int64, reset *bool, n int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if *reset || w.closed {
		return 0
	}
	avail := min(*win, w.sendWin)
	if avail <= 0 {
		return 0
	}
	n = int(min(int64(n), avail, int64(w.peerFrame)))
	*win -= int64(n)
	w.sendWin -= int64(n)
	return n
}

// giveBack returns n consumed bytes to the peer's send windows, in batches: the
// connection's, and the stream's (id) when body is still open.
func (w *h2wire) giveBack(id uint32, body *h2pipe, n int64) {
	if n <= 0 {
		return
	}
	var connInc, streamInc uint32
	w.mu.Lock()
	w.recvUnacked += n
	if w.recvUnacked >= ConnWindow/4 {
		connInc = uint32(w.recvUnacked)
		w.recvWin += w.recvUnacked
		w.recvUnacked = 0
	}
	w.mu.Unlock()
	if body != nil {
		streamInc = body.consumed(n)
	}
	if connInc > 0 {
		w.queue(h2ctrl{typ: http2.FrameWindowUpdate, inc: connInc})
	}
	if streamInc > 0 {
		w.queue(h2ctrl{typ: http2.FrameWindowUpdate, id: id, inc: streamInc})
	}
}

// takeRecv accounts for n bytes of DATA received; false if the peer overran the
// connection's window.
func (w *h2wire) takeRecv(n int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n > w.recvWin {
		return false
	}
	w.recvWin -= n
	return true
}

// h2pipe is a body that a connection's read goroutine feeds with DATA and a handler
// reads; what is read, or dropped, goes back to the peer as window.
type h2pipe struct {
	wire    *h2wire
	id      uint32 // the stream
	owner   h2pipeOwner
	mu      sync.Mutex
	cond    sync.Cond
	buf     []byte
	err     error // io.EOF once the peer ended the stream
	closed  bool  // the reader is done with it: further DATA is dropped
	win     int64 // receive window the peer may still use
	unacked int64
	got     http.Header // trailers received, until Read hands them over
	// want is the declared content-length (-1: none); have counts the DATA bytes
	// received. They must agree when the stream ends (RFC 9113 §8.1.1).
	want, have int64
}

// h2PushResult is what push made of a DATA frame.
type h2PushResult uint8

const (
	h2PushOK     h2PushResult = iota
	h2PushWindow              // the peer overran the stream's window: FLOW_CONTROL_ERROR
	h2PushLength              // more or less than the declared content-length: PROTOCOL_ERROR
)

// errContentLength fails a body whose DATA disagree with its content-length.
var errContentLength = errors.New("http2: DATA length differs from content-length")

// h2pipeOwner is the server's request body or the client's response body.
type h2pipeOwner interface {
	// atEnd hands over the trailers received, in the goroutine that read the body to
	// its end (which owns the request's or response's Trailer map).
	atEnd(got http.Header)
}

func (b *h2pipe) init(w *h2wire, id uint32, owner h2pipeOwner) {
	b.wire, b.id, b.owner, b.win, b.want = w, id, owner, StreamWindow, -1
	b.cond.L = &b.mu
}

// push adds data; it refuses a frame that overruns the stream's window or the
// declared content-length, and fails the body with errContentLength then.
func (b *h2pipe) push(data []byte, end bool) h2PushResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	if int64(len(data)) > b.win {
		return h2PushWindow
	}
	b.win -= int64(len(data))
	b.have += int64(len(data))
	if b.want >= 0 && (b.have > b.want || end && b.have != b.want) {
		if b.err == nil {
			b.err = errContentLength
		}
		b.cond.Broadcast()
		if len(data) > 0 {
			defer b.wire.giveBack(0, nil, int64(len(data)))
		}
		return h2PushLength
	}
	if !b.closed && b.err == nil {
		b.buf = append(b.buf, data...)
	} else if len(data) > 0 {
		// Nobody will read it: hand the window back at once.
		defer b.wire.giveBack(0, nil, int64(len(data)))
	}
	if end && b.err == nil {
		b.err = io.EOF
	}
	b.cond.Broadcast()
	return h2PushOK
}

// trailers keeps the trailers for Read to hand over, and ends the body; false (and
// the body fails) if the DATA fell short of the declared content-length.
func (b *h2pipe) trailers(fields []hpack.HeaderField) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.want >= 0 && b.have != b.want {
		if b.err == nil {
			b.err = errContentLength
		}
		b.cond.Broadcast()
		return false
	}
	for _, hf := range fields {
		k := httpfield.CanonicalH2(hf.Name)
		if b.got == nil {
			b.got = http.Header{}
		}
		b.got[k] = append(b.got[k], hf.Value)
	}
	if b.err == nil {
		b.err = io.EOF
	}
	b.cond.Broadcast()
	return true
}

func (b *h2pipe) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

var errBodyClosed = errors.New("http2: body closed")

func (b *h2pipe) Read(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.buf) == 0 && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		b.mu.Unlock()
		return 0, errBodyClosed
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	var err error
	if len(b.buf) == 0 {
		b.buf = b.buf[:0:0]
		err = b.err
	}
	if errors.Is(err, io.EOF) && b.got != nil {
		b.owner.atEnd(b.got)
		b.got = nil
	}
	b.mu.Unlock()
	b.wire.giveBack(b.id, b, int64(n))
	return n, err
}

// Ready reports whether a Read now returns data or the body's clean end without
// waiting (a failed or closed body is not ready). The proxy uses it to leave
// frames unflushed while the rest of the message is already here: one write
// instead of three for a gRPC response.
func (b *h2pipe) Ready() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	end := errors.Is(b.err, io.EOF)
	return !b.closed && (end || len(b.buf) > 0 && b.err == nil)
}

// discard drops what is buffered (giving its window back) and what comes later; it
// reports whether the peer had not yet ended the stream.
func (b *h2pipe) discard() bool {
	b.mu.Lock()
	n := int64(len(b.buf))
	b.buf, b.closed = nil, true
	open := b.err == nil
	b.cond.Broadcast()
	b.mu.Unlock()
	b.wire.giveBack(0, nil, n)
	return open
}

// consumed notes n bytes read and returns the stream window to give back now.
func (b *h2pipe) consumed(n int64) uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil || b.closed {
		return 0 // the peer sends no more on this stream
	}
	b.unacked += n
	if b.unacked < StreamWindow/4 {
		return 0
	}
	inc := b.unacked
	b.win += inc
	b.unacked = 0
	return uint32(inc)
}

// addField adds value v of field k to h. A new field's values slice is carved
// (length 1, capacity 1) from *strs, which holds room for every field of the block:
// one allocation per header block instead of one per field; a repeated field's
// append then copies out of it.
func addField(h http.Header, strs *[]string, k, v string) {
	if vv, ok := h[k]; ok {
		h[k] = append(vv, v)
		return
	}
	if len(*strs) == 0 {
		h[k] = []string{v}
		return
	}
	vv := (*strs)[:1:1]
	*strs = (*strs)[1:]
	vv[0] = v
	h[k] = vv
}

package h2

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// The HTTP/2 connections' control frames and liveness. A connection's read
// goroutine never writes to the network: the acknowledgements, resets, window
// updates and GOAWAYs it answers with are queued for the connection's writer
// goroutine, so a peer that stops reading cannot stop us reading (and hence
// cannot freeze the other streams' flow control). Every write has a deadline, and
// client connections are pinged when they fall silent.

// Timeouts are the HTTP/2 connections' liveness settings.
type Timeouts struct {
	// Write bounds each write (default 20 s): an HTTP/2 peer reads its connection
	// all the time (flow control is per stream), so a write that makes no progress
	// for this long means the peer is gone or stuck, and the connection is closed.
	Write time.Duration
	// KeepAliveInterval and KeepAliveTimeout (default 10 s and 3 s, Linkerd's): a
	// client connection that received nothing for an interval is pinged, and closed
	// if nothing arrives within the timeout.
	KeepAliveInterval, KeepAliveTimeout time.Duration
}

func (t Timeouts) WithDefaults() Timeouts {
	if t.Write <= 0 {
		t.Write = 20 * time.Second
	}
	if t.KeepAliveInterval <= 0 {
		t.KeepAliveInterval = 10 * time.Second
	}
	if t.KeepAliveTimeout <= 0 {
		t.KeepAliveTimeout = 3 * time.Second
	}
	return t
}

const (
	// h2MaxQueuedCtrl caps control frames queued and not yet written: a peer that
	// makes us answer faster than it reads (PING or SETTINGS floods) is cut off.
	h2MaxQueuedCtrl = 1024
	// h2CloseWriteTimeout bounds the last writes (a GOAWAY) of a connection that is
	// being closed.
	h2CloseWriteTimeout = time.Second
)

// h2ctrl is a queued control frame.
type h2ctrl struct {
	typ   http2.FrameType
	id    uint32 // stream (RST_STREAM, WINDOW_UPDATE), or last stream (GOAWAY)
	code  http2.ErrCode
	inc   uint32
	data  [8]byte // PING payload
	ack   bool    // PING or SETTINGS acknowledgement
	close bool    // close the connection once written (after a connection error)
}

func (f *h2ctrl) writeTo(fw *http2.Framer) error {
	switch f.typ {
	case http2.FrameSettings:
		return fw.WriteSettingsAck()
	case http2.FramePing:
		return fw.WritePing(f.ack, f.data)
	case http2.FrameRSTStream:
		return fw.WriteRSTStream(f.id, f.code)
	case http2.FrameWindowUpdate:
		return fw.WriteWindowUpdate(f.id, f.inc)
	case http2.FrameGoAway:
		return fw.WriteGoAway(f.id, f.code, nil)
	}
	return nil
}

// h2writer is the connection's control-frame queue and its writer goroutine.
type h2writer struct {
	qmu   sync.Mutex // guards q, stop and sends on and the close of kick; never held across a write
	q     []h2ctrl
	spare []h2ctrl // the other queue buffer; guarded by wmu
	kick  chan struct{}
	done  chan struct{} // closed when the writer goroutine has returned
	stop  bool
	// closing: the connection is being shut down; writes get h2CloseWriteTimeout.
	closing atomic.Bool
}

// startWriter starts the writer goroutine; stopWriter ends it and waits for it.
func (w *h2wire) startWriter() {
	w.ctl.kick = make(chan struct{}, 1)
	w.ctl.done = make(chan struct{})
	go w.writeLoop()
}

func (w *h2wire) stopWriter() {
	w.ctl.qmu.Lock()
	if !w.ctl.stop { // kick is closed and sent on under qmu: never a send after the close
		w.ctl.stop = true
		close(w.ctl.kick)
	}
	w.ctl.qmu.Unlock()
	<-w.ctl.done
}

// queue hands f to the writer; it never blocks on the network. An h2ctrl with only
// close set writes nothing and closes the connection after what was queued before.
func (w *h2wire) queue(f h2ctrl) {
	w.ctl.qmu.Lock()
	if w.ctl.stop {
		w.ctl.qmu.Unlock()
		if f.close {
			_ = w.nc.Close()
		}
		return
	}
	if len(w.ctl.q) >= h2MaxQueuedCtrl {
		w.ctl.qmu.Unlock()
		_ = w.nc.Close() // the peer does not read what it asks for
		return
	}
	w.ctl.q = append(w.ctl.q, f)
	select {
	case w.ctl.kick <- struct{}{}:
	default: // already kicked
	}
	w.ctl.qmu.Unlock()
}

func (w *h2wire) writeLoop() {
	defer close(w.ctl.done)
	for {
		_, more := <-w.ctl.kick
		// write sends what is queued; a stream's own write may have sent it already.
		_ = w.write(func() error { return nil }, true)
		if !more {
			return
		}
	}
}

// writeQueuedLocked writes the queued control frames, in order, with wmu held; true
// if one asks for the connection to close once written. Every write goes through
// it first, so a frame a stream writes never overtakes a control frame queued
// before it: a SETTINGS acknowledgement precedes the DATA that the new
// SETTINGS_INITIAL_WINDOW_SIZE allowed (h2spec 6.9.2/1 checks the order).
func (w *h2wire) writeQueuedLocked() (closeAfter bool, err error) {
	w.ctl.qmu.Lock()
	batch := w.ctl.q
	w.ctl.q = w.ctl.spare[:0]
	w.ctl.qmu.Unlock()
	for i := range batch {
		closeAfter = closeAfter || batch[i].close
		if err := batch[i].writeTo(w.fw); err != nil {
			return closeAfter, err
		}
	}
	w.ctl.spare = batch[:0]
	return closeAfter, nil
}

// shutdown ends the connection: what is queued is written (within a second, for a
// peer that no longer reads), then the socket is closed and the writer waited for.
func (w *h2wire) shutdown() {
	w.ctl.closing.Store(true)
	_ = w.nc.SetWriteDeadline(time.Now().Add(h2CloseWriteTimeout)) // unblocks a stuck write soon
	w.mu.Lock()
	if w.ka.timer != nil {
		w.ka.timer.Stop()
	}
	w.mu.Unlock()
	w.stopWriter()
	_ = w.nc.Close()
}

// h2keepalive pings a client connection that fell silent, and closes it when the
// ping goes unanswered: a pooled connection to a peer that vanished (no FIN, no
// RST) is found within KeepAliveInterval + KeepAliveTimeout instead of never.
type h2keepalive struct {
	reads atomic.Uint64 // frames read; the read loop adds
	seen  uint64        // reads at the last check (timer goroutine only)
	timer *time.Timer
}

// startKeepalive arms the checks; onDead is called once the peer is found gone.
func (w *h2wire) startKeepalive(onDead func()) {
	pinged := false // timer goroutine only: the checks run one after another
	check := func() {
		n := w.ka.reads.Load()
		next := w.tm.KeepAliveInterval
		switch {
		case n != w.ka.seen:
			w.ka.seen, pinged = n, false
		case pinged:
			onDead()
			return
		default:
			pinged = true
			w.queue(h2ctrl{typ: http2.FramePing, data: [8]byte{'m', 'e', 's', 'h', 'p', 'i', 'n', 'g'}})
			next = w.tm.KeepAliveTimeout
		}
		w.mu.Lock()
		if !w.closed {
			w.ka.timer.Reset(next)
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.ka.timer = time.AfterFunc(w.tm.KeepAliveInterval, check)
	w.mu.Unlock()
}

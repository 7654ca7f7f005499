package dataplane

import (
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// A frame larger than the SETTINGS_MAX_FRAME_SIZE the proxy advertises is a
// connection error FRAME_SIZE_ERROR (RFC 9113 §4.2), answered as soon as its
// header arrives: 32 connections that each announce a 16 MiB DATA frame are all
// closed with a GOAWAY, and the proxy's heap does not grow by their frames (it
// used to keep a 16 MiB read buffer per connection).
func TestH2OversizedFramesClosedWithoutBuffering(t *testing.T) {
	appAddr := h2App(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	tp := plainProxy(t, appAddr, time.Second)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const conns = 32
	raws := make([]*h2Raw, conns)
	for i := range raws {
		c := dialH2Raw(t, tp.in.Addr().String())
		c.request(1, "POST", "/", false)
		// A DATA frame header announcing 16 MiB - 1, then 64 KiB of its payload.
		hdr := make([]byte, 9, 9+64<<10)
		hdr[0], hdr[1], hdr[2] = 0xff, 0xff, 0xff
		hdr[3] = byte(http2.FrameData)
		binary.BigEndian.PutUint32(hdr[5:], 1)
		c.write(func() error { _, err := c.nc.Write(append(hdr, make([]byte, 64<<10)...)); return err })
		raws[i] = c
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	for i, c := range raws {
		var goAway *http2.GoAwayFrame
		for goAway == nil {
			f, err := c.fr.ReadFrame()
			if err != nil {
				t.Fatalf("connection %d: no GOAWAY before %v", i, err)
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				goAway = g
			}
		}
		if goAway.ErrCode != http2.ErrCodeFrameSize {
			t.Errorf("connection %d: GOAWAY %v, want FRAME_SIZE_ERROR", i, goAway.ErrCode)
		}
		if _, err := c.fr.ReadFrame(); !errors.Is(err, io.EOF) && !isConnReset(err) {
			t.Errorf("connection %d still open after GOAWAY: %v", i, err)
		}
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 8<<20 {
		t.Errorf("heap grew by %d MiB for %d oversized frames", grew>>20, conns)
	}
}

// isConnReset reports a connection the peer closed with unread data (RST).
func isConnReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

package dataplane

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/meshplane/mesh/proxy/metrics"
)

// halfCloser is a connection that can end its write side (TCP FIN, TLS close_notify).
type halfCloser interface{ CloseWrite() error }

// splice copies both ways until both sides are done, half-closing as each direction
// ends, and counts the connection and its bytes.
func (p *Proxy) splice(client, upstream net.Conn, s *metrics.TCPSeries) {
	untrackC, untrackU := p.track(client), p.track(upstream)
	defer untrackC()
	defer untrackU()
	start := time.Now()
	s.Open()
	var wg sync.WaitGroup
	var upErr, downErr error
	var up, down int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		up, upErr = p.copyHalf(upstream, client)
		if isFailure(upErr) {
			_ = client.Close()
			_ = upstream.Close()
		}
	}()
	go func() {
		defer wg.Done()
		down, downErr = p.copyHalf(client, upstream)
		if isFailure(downErr) {
			_ = client.Close()
			_ = upstream.Close()
		}
	}()
	wg.Wait()
	_ = client.Close()
	_ = upstream.Close()
	s.Read(up)
	s.Write(down)
	s.Close(isFailure(upErr) || isFailure(downErr), time.Since(start))
}

func (p *Proxy) copyHalf(dst, src net.Conn) (int64, error) {
	buf := p.bufs.Get().(*[]byte)
	n, err := io.CopyBuffer(dst, readerOnly{src}, *buf)
	p.bufs.Put(buf)
	if hc, ok := unwrapHalf(dst); ok {
		_ = hc.CloseWrite()
	} else {
		_ = dst.Close()
	}
	return n, err
}

// readerOnly hides WriterTo/ReaderFrom so CopyBuffer uses the pooled buffer.
type readerOnly struct{ io.Reader }

func unwrapHalf(c net.Conn) (halfCloser, bool) {
	for {
		if hc, ok := c.(halfCloser); ok {
			return hc, true
		}
		switch t := c.(type) {
		case *peekConn:
			c = t.Conn
		case *replayConn:
			c = t.Conn
		case *recordConn:
			c = t.Conn
		default:
			return nil, false
		}
	}
}

func isFailure(err error) bool {
	return err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF)
}

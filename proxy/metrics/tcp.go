package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TCPSeries counts one label set's connections. Safe for concurrent use; a nil
// *TCPSeries does nothing.
type TCPSeries struct {
	open, read, write  prometheus.Counter
	closeOK, closeFail prometheus.Counter
	conns              prometheus.Gauge
	durOK, durFail     prometheus.Observer
}

func newTCPSeries(r *Registry, l TCPLabels) *TCPSeries {
	tls, reason := tlsValues(l.TLS, l.NoTLSReason)
	client, server := peerIDs(l.Direction, l.PeerID)
	base := []string{l.Direction, l.Peer, l.TargetAddr, tls, reason, client, server}
	for i, v := range base {
		base[i] = sanitize(v)
	}
	ok := append(append([]string(nil), base...), classification(false))
	fail := append(append([]string(nil), base...), classification(true))
	return &TCPSeries{
		open:      r.tcpOpen.WithLabelValues(base...),
		read:      r.tcpRead.WithLabelValues(base...),
		write:     r.tcpWrite.WithLabelValues(base...),
		conns:     r.tcpOpenConns.WithLabelValues(base...),
		closeOK:   r.tcpClose.WithLabelValues(ok...),
		closeFail: r.tcpClose.WithLabelValues(fail...),
		durOK:     r.tcpDuration.WithLabelValues(ok...),
		durFail:   r.tcpDuration.WithLabelValues(fail...),
	}
}

// Open counts an opened connection.
func (s *TCPSeries) Open() {
	if s == nil {
		return
	}
	s.open.Inc()
	s.conns.Inc()
}

// Close counts a closed connection and its duration; failed when it ended in an
// error. Call it once per Open.
func (s *TCPSeries) Close(failed bool, d time.Duration) {
	if s == nil {
		return
	}
	s.conns.Dec()
	ms := float64(d) / float64(time.Millisecond)
	if failed {
		s.closeFail.Inc()
		s.durFail.Observe(ms)
		return
	}
	s.closeOK.Inc()
	s.durOK.Observe(ms)
}

// Read counts bytes read from the peer.
func (s *TCPSeries) Read(n int64) {
	if s == nil || n <= 0 {
		return
	}
	s.read.Add(float64(n))
}

// Write counts bytes written to the peer.
func (s *TCPSeries) Write(n int64) {
	if s == nil || n <= 0 {
		return
	}
	s.write.Add(float64(n))
}

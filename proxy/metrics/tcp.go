package metrics

import (
	"time"
)

// TCPSeries counts one label set's connections. Safe for concurrent use; a nil
// *TCPSeries does nothing.
type TCPSeries struct {
	bounds             *bucketBounds
	base               []string // label values, in tcpLabelNames order
	open, read, write  counter
	closeOK, closeFail counter
	conns              gauge
	durOK, durFail     histogram
}

func newTCPSeries(r *Registry, l TCPLabels) *TCPSeries {
	tls, reason := tlsValues(l.TLS, l.NoTLSReason)
	client, server := peerIDs(l.Direction, l.PeerID)
	base := []string{l.Direction, l.Peer, l.TargetAddr, tls, reason, client, server}
	for i, v := range base {
		base[i] = sanitize(v)
	}
	return &TCPSeries{bounds: &r.bounds, base: base}
}

// Open counts an opened connection.
func (s *TCPSeries) Open() {
	if s == nil {
		return
	}
	s.open.inc()
	s.conns.inc()
}

// Close counts a closed connection and its duration; failed when it ended in an
// error. Call it once per Open.
func (s *TCPSeries) Close(failed bool, d time.Duration) {
	if s == nil {
		return
	}
	s.conns.dec()
	if failed {
		s.closeFail.inc()
		s.durFail.observe(s.bounds, d)
		return
	}
	s.closeOK.inc()
	s.durOK.observe(s.bounds, d)
}

// Read counts bytes read from the peer.
func (s *TCPSeries) Read(n int64) {
	if s == nil || n <= 0 {
		return
	}
	s.read.add(uint64(n))
}

// Write counts bytes written to the peer.
func (s *TCPSeries) Write(n int64) {
	if s == nil || n <= 0 {
		return
	}
	s.write.add(uint64(n))
}

// collect adds the series' samples to the scrape.
func (s *TCPSeries) collect(sc *collection) {
	ok, fail := []string{classification(false)}, []string{classification(true)}
	sc.tcpOpen.add(s.base, nil, s.open.value())
	sc.tcpOpenConns.add(s.base, nil, s.conns.value())
	sc.tcpRead.add(s.base, nil, s.read.value())
	sc.tcpWrite.add(s.base, nil, s.write.value())
	sc.tcpClose.add(s.base, ok, s.closeOK.value())
	sc.tcpClose.add(s.base, fail, s.closeFail.value())
	sc.tcpDur.addHist(s.base, ok, &s.durOK)
	sc.tcpDur.addHist(s.base, fail, &s.durFail)
}

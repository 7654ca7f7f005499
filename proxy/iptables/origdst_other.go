//go:build !linux || 386

package iptables

import (
	"errors"
	"net"
	"net/netip"
)

// OriginalDst is the destination a redirected connection was addressed to;
// it needs Linux (SO_ORIGINAL_DST) on a 64-bit or non-x86 architecture.
func OriginalDst(*net.TCPConn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.New("original destination: SO_ORIGINAL_DST is supported on Linux only")
}

//go:build linux && !386

package iptables

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// Socket options of <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>.
const (
	soOriginalDst     = 80 // SO_ORIGINAL_DST, level SOL_IP
	ip6tSoOriginalDst = 80 // IP6T_SO_ORIGINAL_DST, level SOL_IPV6
)

// OriginalDst is the destination a redirected (REDIRECT/DNAT) connection was
// addressed to, from conntrack via SO_ORIGINAL_DST (IPv4, also for IPv4
// connections on an IPv6 socket) or IP6T_SO_ORIGINAL_DST (IPv6). For a
// connection that was not redirected it is the connection's local address;
// without a conntrack entry it fails (ENOENT).
func OriginalDst(c *net.TCPConn) (netip.AddrPort, error) {
	local, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok || local == nil {
		return netip.AddrPort{}, errors.New("original destination: connection without a local TCP address")
	}
	v4 := local.AddrPort().Addr().Unmap().Is4()
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	var dst netip.AddrPort
	var sockErr error
	err = raw.Control(func(fd uintptr) {
		if v4 {
			dst, sockErr = originalDst4(fd)
		} else {
			dst, sockErr = originalDst6(fd)
		}
	})
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	if sockErr != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", sockErr)
	}
	return dst, nil
}

func originalDst4(fd uintptr) (netip.AddrPort, error) {
	var sa syscall.RawSockaddrInet4
	if err := getsockopt(fd, syscall.SOL_IP, soOriginalDst, unsafe.Pointer(&sa), unsafe.Sizeof(sa)); err != nil {
		return netip.AddrPort{}, fmt.Errorf("getsockopt(SOL_IP, SO_ORIGINAL_DST): %w", err)
	}
	if sa.Family != syscall.AF_INET {
		return netip.AddrPort{}, fmt.Errorf("SO_ORIGINAL_DST: address family %d, want AF_INET", sa.Family)
	}
	return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port)), nil
}

func originalDst6(fd uintptr) (netip.AddrPort, error) {
	var sa syscall.RawSockaddrInet6
	if err := getsockopt(fd, syscall.SOL_IPV6, ip6tSoOriginalDst, unsafe.Pointer(&sa), unsafe.Sizeof(sa)); err != nil {
		return netip.AddrPort{}, fmt.Errorf("getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST): %w", err)
	}
	if sa.Family != syscall.AF_INET6 {
		return netip.AddrPort{}, fmt.Errorf("IP6T_SO_ORIGINAL_DST: address family %d, want AF_INET6", sa.Family)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), ntohs(sa.Port)), nil
}

func getsockopt(fd uintptr, level, name int, val unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, uintptr(level), uintptr(name),
		uintptr(val), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// ntohs reads a port stored in network byte order.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

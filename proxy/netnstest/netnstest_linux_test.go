//go:build linux

package netnstest

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestPair(t *testing.T) {
	p := NewPair(t, []netip.Prefix{netip.MustParsePrefix("10.98.0.1/24")}, []netip.Prefix{netip.MustParsePrefix("10.98.0.2/24")})
	if out := p.B.Run(t, "ip", "-o", "addr", "show", "dev", p.LinkB); !strings.Contains(out, "10.98.0.2/24") {
		t.Errorf("B's address: %s", out)
	}
	l, err := p.B.Listen("tcp", "10.98.0.2:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_, _ = io.WriteString(c, c.RemoteAddr().String())
			c.Close()
		}
	}()
	c, err := p.A.Dial(t.Context(), nil, "tcp", "10.98.0.2:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), "10.98.0.1:") {
		t.Errorf("B saw the client as %q (%v), want 10.98.0.1", b, err)
	}

	// Do runs in the namespace and passes fn's error on.
	boom := errors.New("boom")
	want, err := os.Stat(p.A.Path())
	if err != nil {
		t.Fatal(err)
	}
	err = p.A.Do(func() error {
		got, err := os.Stat("/proc/thread-self/ns/net")
		if err != nil {
			return err
		}
		if !os.SameFile(got, want) {
			return errors.New("the thread is not in the namespace")
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Do: %v, want boom", err)
	}
}

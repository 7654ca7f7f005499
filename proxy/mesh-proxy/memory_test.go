package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/meshplane/mesh/proxy/proxytest"
)

// The real binary's memory under oversized HTTP/2 frames: 32 connections to the
// inbound listener each announce a 16 MiB DATA frame (and send 4 MiB of it). The
// proxy closes every one with GOAWAY FRAME_SIZE_ERROR, and its peak RSS (VmHWM)
// stays under 40 MiB: it never buffers a frame larger than the 16 KiB it
// advertises. The binary is built without the race detector, as released.
func TestBinaryMemoryUnderOversizedFrames(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mesh-proxy")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cp := proxytest.Start(t)
	appL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &http.Server{Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })}
	go func() { _ = app.Serve(appL) }()
	t.Cleanup(func() { _ = app.Close() })

	env := cp.ProxyEnv(t, appL.Addr().String())
	cmd := exec.Command(bin, "run")
	cmd.Env = []string{"GOMAXPROCS=1", "MESH_PROXY_LOG=warn"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitReady(t, env["MESH_PROXY_ADMIN_LISTEN_ADDR"], &stderr)
	before := vm(t, cmd.Process.Pid, "VmRSS")

	const conns = 32
	var frames [conns]net.Conn
	for i := range frames {
		c, err := net.DialTimeout("tcp", env["MESH_PROXY_INBOUND_LISTEN_ADDR"], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		var buf bytes.Buffer
		buf.WriteString(http2.ClientPreface)
		fr := http2.NewFramer(&buf, nil)
		_ = fr.WriteSettings()
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {":authority", "web"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
		hdr := []byte{0xff, 0xff, 0xff, byte(http2.FrameData), 0, 0, 0, 0, 0} // 16 MiB - 1
		binary.BigEndian.PutUint32(hdr[5:], 1)
		buf.Write(hdr)
		if _, err := c.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		// As much of the frame as the proxy takes before it closes.
		go func() { _, _ = c.Write(make([]byte, 4<<20)) }()
		frames[i] = c
	}
	for i, c := range frames {
		fr := http2.NewFramer(nil, c)
		var code http2.ErrCode = 0xff
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
					t.Errorf("connection %d: %v before the close", i, err)
				}
				break
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				code = g.ErrCode
			}
		}
		if code != http2.ErrCodeFrameSize {
			t.Errorf("connection %d closed with GOAWAY %v, want FRAME_SIZE_ERROR", i, code)
		}
	}
	peak := vm(t, cmd.Process.Pid, "VmHWM")
	t.Logf("mesh-proxy RSS %d KiB before, peak %d KiB after %d oversized frames", before, peak, conns)
	if peak > 40<<10 {
		t.Errorf("peak RSS %d KiB, want under 40 MiB", peak)
	}
}

// vm reads a VmRSS/VmHWM line of /proc/PID/status, in KiB.
func vm(t *testing.T, pid int, key string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

func waitReady(t *testing.T, admin string, stderr *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + admin + "/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("mesh-proxy not ready; stderr:\n%s", stderr.String())
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeStream writes about size bytes of realistic, valid manifests: a Deployment and
// a Service per app, about 1.2 KB together.
func writeStream(t testing.TB, path string, size int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	written := 0
	for i := 0; written < size; i++ {
		n, err := fmt.Fprintf(w, `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%[1]d
  namespace: shop
  labels: {app.kubernetes.io/name: app-%[1]d, app.kubernetes.io/part-of: shop}
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: app-%[1]d}
  template:
    metadata:
      labels: {app.kubernetes.io/name: app-%[1]d}
    spec:
      containers:
      - name: app
        image: registry.example.com/shop/app-%[1]d:1.4.2
        args: ["--port=8080", "--log-level=info"]
        ports: [{name: http, containerPort: 8080}]
        env: [{name: DATABASE_URL, value: "postgres://db.shop.svc:5432/shop"}]
        resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
        readinessProbe: {httpGet: {path: /healthz, port: http}}
---
apiVersion: v1
kind: Service
metadata: {name: app-%[1]d, namespace: shop}
spec:
  selector: {app.kubernetes.io/name: app-%[1]d}
  ports: [{name: http, port: 80, targetPort: http}]
`, i)
		if err != nil {
			t.Fatal(err)
		}
		written += n
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// peakRSS runs bin with args and returns its peak resident set size in bytes: the
// largest VmHWM read from /proc/PID/status while it ran, or the kernel's ru_maxrss at
// exit (the same counter) if that is larger. The exit code must be want.
func peakRSS(t testing.TB, want int, bin string, args ...string) (int64, time.Duration) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var hwm int64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			if v := vmHWM(cmd.Process.Pid); v > hwm {
				hwm = v
			}
		}
	}
	elapsed := time.Since(start)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != want {
		t.Fatalf("%s %s: exit %d, want %d: %s", bin, strings.Join(args, " "), code, want, errOut.String())
	}
	if ru, ok := rusageMaxRSS(cmd.ProcessState); ok && ru > hwm {
		hwm = ru
	}
	return hwm, elapsed
}

// vmHWM is the VmHWM line of /proc/PID/status in bytes, 0 if it cannot be read.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// meshForMemory is the binary measured: MESH_CHECK_BIN (to measure another build,
// such as one from before a change), or this tree built as the release builds it.
func meshForMemory(t testing.TB) string {
	if bin := os.Getenv("MESH_CHECK_BIN"); bin != "" {
		return bin
	}
	return buildWithReleaseFlags(t.(*testing.T), "v0.0.0-bench")
}

// `mesh check -f` reads a stream one document at a time: eight times the input costs
// a few MiB, not eight times the memory. (Before, a 50 MB stream peaked at 1 GB.)
func TestCheckMemoryFollowsLargestDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and checks 10 MB of manifests")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	bin := meshForMemory(t)
	dir := t.TempDir()
	small, large := filepath.Join(dir, "small.yaml"), filepath.Join(dir, "large.yaml")
	writeStream(t, small, 1<<20)
	writeStream(t, large, 8<<20)
	a, _ := peakRSS(t, 0, bin, "check", "-o", "short", "-f", small)
	b, d := peakRSS(t, 0, bin, "check", "-o", "short", "-f", large)
	t.Logf("peak RSS: 1 MiB input %.1f MiB, 8 MiB input %.1f MiB (%s)", mib(a), mib(b), d.Round(time.Millisecond))
	if b-a > 24<<20 {
		t.Errorf("8 MiB of input takes %.1f MiB more than 1 MiB of input, want under 24 MiB more", mib(b-a))
	}
}

// The figures of docs/benchmarks.md ("check memory"): peak RSS of `mesh check -f` on a
// generated stream of MESH_CHECK_MB megabytes (default 50). Run:
//
//	MESH_CHECK_MEMORY=1 go test ./cli/mesh -run TestCheckMemory50MB -v
//	MESH_CHECK_MEMORY=1 MESH_CHECK_BIN=/path/to/older/mesh go test ./cli/mesh -run TestCheckMemory50MB -v
func TestCheckMemory50MB(t *testing.T) {
	if os.Getenv("MESH_CHECK_MEMORY") == "" {
		t.Skip("set MESH_CHECK_MEMORY=1 to measure (about a minute)")
	}
	size := 50
	if s := os.Getenv("MESH_CHECK_MB"); s != "" {
		var err error
		if size, err = strconv.Atoi(s); err != nil {
			t.Fatalf("MESH_CHECK_MB=%s: %v", s, err)
		}
	}
	bin := meshForMemory(t)
	path := filepath.Join(t.TempDir(), "stream.yaml")
	writeStream(t, path, size<<20)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	rss, d := peakRSS(t, 0, bin, "check", "-o", "short", "-f", path)
	t.Logf("mesh check -f: %.1f MB input, peak RSS (VmHWM) %.1f MiB, %s", float64(fi.Size())/1e6, mib(rss), d.Round(time.Millisecond))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

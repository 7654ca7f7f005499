// Package browser drives Debian's chromium, headless, from a test (chromedp): the
// browser tests of mesh dashboard, against the test cluster (cli/dashboard) and on
// the real node (e2e/node). It finds the binary (a skip when it is missing, a
// failure with RequireEnv=1), starts a browser for the test, runs chromedp actions
// in sequence and writes screenshots under -update.
package browser

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meshplane/mesh/internal/testing/golden"
)

// Chromium is Debian's chromium; RequireEnv=1 (make test) makes its absence a
// failure rather than a skip.
const (
	Chromium   = "/usr/bin/chromium"
	RequireEnv = "MESH_REQUIRE_CHROMIUM"
)

// Exec is the path of chromium, or it skips the test (fails it with RequireEnv=1).
func Exec(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s: %v (required: %s=1; apt-get install chromium)", Chromium, err, RequireEnv)
		}
		t.Skipf("%s: %v (apt-get install chromium; set %s=1 to make this a failure)", Chromium, err, RequireEnv)
	}
	return Chromium
}

// Width and Height are the browser window's size: the size of the screenshots of
// the viewport.
const (
	Width  = 1280
	Height = 900
)

// New starts a headless chromium (Exec) of its own profile for the test and gives
// the context its actions run in, which ends after timeout; everything stops at
// the end of the test.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	exe := Exec(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(Width, Height),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	bctx, cancelTimeout := context.WithTimeout(bctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelBrowser()
		cancelAlloc()
	})
	return bctx
}

// Into runs a and keeps its value in dst, so that chromedp.Do runs a sequence.
func Into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, t)
		if err != nil {
			return chromedp.Void{}, err
		}
		*dst = v
		return chromedp.Void{}, nil
	}
}

// Screenshot checks that png is a PNG and, under -update only, writes it to path
// (so that a plain test run never changes the tree).
func Screenshot(t testing.TB, path string, png []byte) {
	t.Helper()
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Errorf("%s: not a PNG", filepath.Base(path))
		return
	}
	if !golden.Updating() {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

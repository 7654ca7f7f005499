package reqctx

import (
	"context"
	"errors"
	"testing"
	"time"
)

type chanWatcher chan struct{}

func (w chanWatcher) CtxDone() { close(w) }

func waitFired(t *testing.T, w chanWatcher, want bool) {
	t.Helper()
	select {
	case <-w:
		if !want {
			t.Fatal("watcher ran")
		}
	case <-time.After(100 * time.Millisecond):
		if want {
			t.Fatal("watcher did not run")
		}
	}
}

func TestReqCtx(t *testing.T) {
	t.Run("cancel runs the watcher", func(t *testing.T) {
		rc := New(context.Background())
		w := make(chanWatcher)
		stop := AfterDone(rc, w)
		rc.Cancel()
		waitFired(t, w, true)
		if stop.Stop() {
			t.Fatal("Stop true after the watcher ran")
		}
		if !errors.Is(rc.Err(), context.Canceled) || !errors.Is(context.Cause(rc), context.Canceled) {
			t.Fatalf("Err %v, Cause %v", rc.Err(), context.Cause(rc))
		}
	})
	t.Run("stopped watcher does not run", func(t *testing.T) {
		rc := New(context.Background())
		w := make(chanWatcher)
		stop := AfterDone(rc, w)
		if !stop.Stop() || stop.Stop() {
			t.Fatal("Stop: want true, then false")
		}
		rc.Cancel()
		waitFired(t, w, false)
	})
	t.Run("registered after cancel runs at once", func(t *testing.T) {
		rc := New(context.Background())
		rc.Cancel()
		w := make(chanWatcher)
		if AfterDone(rc, w).Stop() {
			t.Fatal("Stop true")
		}
		waitFired(t, w, true)
	})
	t.Run("second watcher falls back to context.AfterFunc", func(t *testing.T) {
		rc := New(context.Background())
		w1, w2 := make(chanWatcher), make(chanWatcher)
		AfterDone(rc, w1)
		AfterDone(rc, w2)
		rc.Cancel()
		waitFired(t, w1, true)
		waitFired(t, w2, true)
	})
	t.Run("parent cancel and fire", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		rc := New(parent)
		stopHook := context.AfterFunc(parent, rc.Fire)
		defer stopHook()
		w := make(chanWatcher)
		AfterDone(rc, w)
		cancel()
		waitFired(t, w, true)
		if !errors.Is(rc.Err(), context.Canceled) {
			t.Fatal(rc.Err())
		}
	})
	t.Run("derived contexts", func(t *testing.T) {
		type key struct{}
		rc := New(context.WithValue(context.Background(), key{}, "x"))
		child, cancelChild := context.WithCancel(rc)
		defer cancelChild()
		if v, _ := child.Value(key{}).(string); v != "x" {
			t.Fatal("value lost")
		}
		rc.Cancel()
		select {
		case <-child.Done():
		case <-time.After(time.Second):
			t.Fatal("child not cancelled")
		}
	})
}

func TestReqCtxAllocs(t *testing.T) {
	rc := New(context.Background())
	w := make(chanWatcher)
	if n := testing.AllocsPerRun(100, func() { AfterDone(rc, w).Stop() }); n != 0 {
		t.Fatalf("AfterDone+Stop: %v allocs, want 0", n)
	}
}

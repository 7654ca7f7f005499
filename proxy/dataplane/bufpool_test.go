package dataplane

import (
	"runtime"
	"testing"
)

// The body-buffer free list reuses what it got back, keeps at most its bound, and
// survives garbage collection (a sync.Pool does not).
func TestBufferPool(t *testing.T) {
	b := newBufferPool(1024, 2)
	x := b.Get()
	if len(x) != 1024 {
		t.Fatalf("len %d", len(x))
	}
	b.Put(x)
	runtime.GC()
	runtime.GC()
	if y := b.Get(); &y[0] != &x[0] {
		t.Error("a buffer put back was not reused after two collections")
	}
	b.Put(make([]byte, 10)) // too small: dropped
	for range 4 {
		b.Put(make([]byte, 1024))
	}
	if n := len(b.free); n != 2 {
		t.Errorf("kept %d buffers, want the bound 2", n)
	}
	if n := testing.AllocsPerRun(100, func() { b.Put(b.Get()) }); n != 0 {
		t.Errorf("Get+Put: %v allocs, want 0", n)
	}
}

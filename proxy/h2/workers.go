package h2

import (
	"sync"
	"time"
)

// workers runs functions on pooled goroutines, whose stacks have already grown to
// what a request needs (a new goroutine per request spends much of its time growing
// its stack).
type workers struct {
	ch   chan job
	idle time.Duration
	once sync.Once
}

// job is a worker's task (an interface, not a func: a stream is one without the
// allocation of a closure).
type job interface{ run() }

func (w *workers) run(f job) {
	w.once.Do(func() {
		w.ch = make(chan job)
		if w.idle == 0 {
			w.idle = 30 * time.Second
		}
	})
	select {
	case w.ch <- f:
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f job) {
	t := time.NewTimer(w.idle)
	defer t.Stop()
	for {
		f.run()
		f = nil
		t.Reset(w.idle)
		select {
		case f = <-w.ch:
		case <-t.C:
			return
		}
	}
}

// Package reqctx is the context of a request the proxy's HTTP servers (proxy/h1,
// proxy/h2) serve, with one slot for the function the client forwarding it runs
// when it is done: context.AfterFunc without its allocations.
package reqctx

import (
	"context"
	"sync"
)

// Ctx is the context of a request the proxy's servers serve. It is a standard
// cancellable context (Err, Done, Value, Deadline and Cause are the embedded
// cancelCtx's, so contexts derived from it register with it as usual), and it also
// runs, when it is cancelled, the one function its request's client registered with
// AfterDone: context.AfterFunc costs five allocations per call (the AfterFunc
// context, its stop function, the caller's closure, and the request context's Done
// channel and children map), on both proxies of every request.
//
// Cancellation reaches the registered function by Ctx.Cancel (the server ending
// the request, or aborting it), or by Fire when a parent context ends: the server
// arranges that once per connection (context.AfterFunc on the connection's
// context, calling Fire for its current requests), so that the function runs as if
// registered with context.AfterFunc. A server must do so for every Ctx it makes.
type Ctx struct {
	context.Context
	cancelStd context.CancelFunc

	mu sync.Mutex
	w  Watcher // registered and not yet run or stopped
}

// Watcher is what a client runs when its request's context is done.
type Watcher interface{ CtxDone() }

// New is a request context under parent.
func New(parent context.Context) *Ctx {
	ctx, cancel := context.WithCancel(parent)
	return &Ctx{Context: ctx, cancelStd: cancel}
}

// Cancel cancels the context and runs the registered function.
func (rc *Ctx) Cancel() {
	rc.cancelStd()
	rc.Fire()
}

// Fire runs the registered function, if any, in a goroutine of its own (as
// context.AfterFunc does), once the context is done: a parent's cancellation reaches
// the embedded context in an order of the parent's choosing, perhaps after the
// parent's AfterFunc that called Fire has started.
func (rc *Ctx) Fire() {
	<-rc.Done()
	rc.mu.Lock()
	w := rc.w
	rc.w = nil
	rc.mu.Unlock()
	if w != nil {
		go w.CtxDone()
	}
}

// Registration is the stop function of AfterDone.
type Registration struct {
	rc   *Ctx
	w    Watcher
	stop func() bool // context.AfterFunc's, when ctx was not a Ctx or had a watcher
}

// Stop stops w from running; like context.AfterFunc's stop it is true if it did,
// false if w has run (or is running) or was stopped already.
func (s Registration) Stop() bool {
	if s.rc == nil {
		return s.stop != nil && s.stop()
	}
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	if s.rc.w == s.w {
		s.rc.w = nil
		return true
	}
	return false
}

// AfterDone is context.AfterFunc(ctx, w.CtxDone), without allocating when ctx is a
// request's Ctx.
func AfterDone(ctx context.Context, w Watcher) Registration {
	rc, ok := ctx.(*Ctx)
	if !ok {
		return Registration{stop: context.AfterFunc(ctx, w.CtxDone)}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.w != nil {
		return Registration{stop: context.AfterFunc(ctx, w.CtxDone)} // one at a time here
	}
	if rc.Err() != nil {
		go w.CtxDone()
		return Registration{rc: rc, w: w} // Stop is false: w has run
	}
	rc.w = w
	return Registration{rc: rc, w: w}
}

package dataplane

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshplane/mesh/proxy/balance"
	"github.com/meshplane/mesh/proxy/discovery"
)

// serviceCache holds one discovery watch and balancer per authority the proxy
// routes to; entries unused for idleAfter are dropped.
type serviceCache struct {
	p    *Proxy
	mu   sync.Mutex
	m    map[string]*service
	stop chan struct{}
	done chan struct{} // closed when the janitor has returned
	once sync.Once
}

const idleAfter = 5 * time.Minute

func newServiceCache(p *Proxy) *serviceCache {
	c := &serviceCache{p: p, m: map[string]*service{}, stop: make(chan struct{}), done: make(chan struct{})}
	go c.janitor()
	return c
}

// janitor drops idle services until close; close waits for it.
func (c *serviceCache) janitor() {
	defer close(c.done)
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		cutoff := c.p.o.Now().Add(-idleAfter).UnixNano()
		c.mu.Lock()
		for k, s := range c.m {
			if s.lastUsed.Load() < cutoff {
				delete(c.m, k)
				s.close()
			}
		}
		c.mu.Unlock()
	}
}

func (c *serviceCache) close() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.m {
		delete(c.m, k)
		s.close()
	}
}

// get returns the service for key, waiting (bounded) for discovery's first answer.
func (c *serviceCache) get(ctx context.Context, key string) *service {
	c.mu.Lock()
	s, ok := c.m[key]
	if !ok {
		s = &service{p: c.p, key: key, ready: make(chan struct{})}
		if c.p.o.Discovery != nil {
			s.set, s.release = c.p.o.Discovery.Resolve(key)
		}
		c.m[key] = s
	}
	c.mu.Unlock()
	s.lastUsed.Store(c.p.o.Now().UnixNano())
	if !ok {
		if s.set != nil {
			wctx, cancel := context.WithTimeout(ctx, c.p.o.DiscoveryTimeout)
			s.set.Wait(wctx)
			cancel()
		}
		s.rebuild(nil)
		close(s.ready)
	} else {
		select {
		case <-s.ready: // first: ctx.Done would make the request context's channel
		default:
			select {
			case <-s.ready:
			case <-ctx.Done():
			}
		}
	}
	return s
}

// service is one authority's live endpoints and their balancer state.
type service struct {
	p        *Proxy
	key      string
	set      *discovery.Set
	release  func()
	lastUsed atomic.Int64
	ready    chan struct{}

	mu     sync.Mutex // serializes rebuilds
	state  atomic.Pointer[serviceState]
	budget atomic.Pointer[retryBudget]
}

type serviceState struct {
	// changed is closed when the set changes after this state was read.
	changed <-chan struct{}
	inMesh  bool
	opaque  bool
	eps     []*balance.Endpoint[*backend]
	byAddr  map[string]*balance.Endpoint[*backend]
}

func (s *service) close() {
	if s.release != nil {
		s.release()
	}
	if st := s.state.Load(); st != nil {
		for _, ep := range st.eps {
			ep.Value.drain()
		}
	}
}

// rebuild reads the set's current endpoints, keeping the balancer state and
// connections of endpoints that stay, and draining those that left.
func (s *service) rebuild(seen *serviceState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.state.Load()
	if old != seen {
		return // another request rebuilt it already
	}
	st := &serviceState{byAddr: map[string]*balance.Endpoint[*backend]{}}
	if s.set != nil {
		st.changed = s.set.Changed()
		st.inMesh = s.set.InMesh()
		for _, e := range s.set.Endpoints() {
			k := e.Addr.String() + "|" + e.Identity
			var ep *balance.Endpoint[*backend]
			if old != nil {
				if ep = old.byAddr[k]; ep != nil {
					ep.SetWeight(e.Weight)
				}
			}
			if ep == nil {
				b := newBackend(e)
				b.makeTransports(s.p)
				ep = balance.NewEndpoint(b, e.Weight, s.p.o.Now)
			}
			st.byAddr[k] = ep
			st.eps = append(st.eps, ep)
			if e.Opaque {
				st.opaque = true
			}
		}
	}
	if old != nil {
		for k, ep := range old.byAddr {
			if _, ok := st.byAddr[k]; !ok {
				ep.Value.drain()
			}
		}
	}
	s.state.Store(st)
}

func (s *service) current() *serviceState {
	st := s.state.Load()
	if st != nil && st.changed != nil {
		select {
		case <-st.changed:
			s.rebuild(st)
			return s.state.Load()
		default:
		}
	}
	return st
}

// pick chooses an endpoint; meshed is false when discovery does not know the
// authority (use the original destination).
func (s *service) pick() (ep *balance.Endpoint[*backend], meshed bool) {
	return s.pickExcept(nil)
}

// pickExcept is pick among the endpoints but those of avoid (endpoints a request
// could not reach), or among all of them again when none is left.
func (s *service) pickExcept(avoid []*balance.Endpoint[*backend]) (ep *balance.Endpoint[*backend], meshed bool) {
	st := s.current()
	if st == nil || !st.inMesh {
		return nil, false
	}
	eps := st.eps
	if len(avoid) > 0 {
		rest := make([]*balance.Endpoint[*backend], 0, len(eps))
		for _, e := range eps {
			if !slices.Contains(avoid, e) {
				rest = append(rest, e)
			}
		}
		if len(rest) > 0 {
			eps = rest
		}
	}
	return balance.Pick(eps, randN), true
}

func (s *service) opaque() bool {
	st := s.current()
	return st != nil && st.opaque
}

// retryBudget allows retries up to ratio × requests plus minPerSecond, over ttl.
type retryBudget struct {
	mu                sync.Mutex
	ratio             float64
	minPerSec         int
	ttl               time.Duration
	windowStart       time.Time
	requests, retries float64
}

func (s *service) ensureBudget(prof *discovery.Profile, now time.Time) {
	if s.budget.Load() != nil {
		return
	}
	b := &retryBudget{ratio: 0.2, minPerSec: 10, ttl: 10 * time.Second, windowStart: now}
	if prof != nil && prof.RetryTTL > 0 {
		b.ratio, b.minPerSec, b.ttl = prof.RetryRatio, prof.MinRetries, prof.RetryTTL
	}
	s.budget.CompareAndSwap(nil, b)
}

func (b *retryBudget) roll(now time.Time) {
	if now.Sub(b.windowStart) > b.ttl {
		b.windowStart, b.requests, b.retries = now, 0, 0
	}
}

func (b *retryBudget) deposit(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	b.requests++
}

func (b *retryBudget) withdraw(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	allowed := b.ratio*b.requests + float64(b.minPerSec)*b.ttl.Seconds()
	if b.retries+1 > allowed {
		return false
	}
	b.retries++
	return true
}

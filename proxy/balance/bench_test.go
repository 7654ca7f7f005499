package balance

import (
	"math/rand/v2"
	"testing"
	"time"
)

func endpoints(n int) []*Endpoint[int] {
	eps := make([]*Endpoint[int], n)
	for i := range eps {
		eps[i] = NewEndpoint(i, 0, time.Now)
	}
	return eps
}

// BenchmarkPickStartDone is one request's balancer cost through the closure API.
func BenchmarkPickStartDone(b *testing.B) {
	eps := endpoints(10)
	rnd := rand.New(rand.NewPCG(1, 2)).IntN
	b.ReportAllocs()
	for b.Loop() {
		done := Pick(eps, rnd).Start()
		done()
	}
}

// BenchmarkPickBeginFinish is the same through the allocation-free API.
func BenchmarkPickBeginFinish(b *testing.B) {
	eps := endpoints(10)
	rnd := rand.New(rand.NewPCG(1, 2)).IntN
	b.ReportAllocs()
	for b.Loop() {
		e := Pick(eps, rnd)
		e.Finish(e.Begin())
	}
}

// BenchmarkPick is the pick alone (idle endpoints: both costs read the clock).
func BenchmarkPick(b *testing.B) {
	eps := endpoints(10)
	rnd := rand.New(rand.NewPCG(1, 2)).IntN
	b.ReportAllocs()
	for b.Loop() {
		Pick(eps, rnd)
	}
}

// BenchmarkPickStartDoneParallel is Pick+Start+done from every core on shared
// endpoints, with math/rand/v2's concurrency-safe IntN.
func BenchmarkPickStartDoneParallel(b *testing.B) {
	eps := endpoints(10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			done := Pick(eps, rand.IntN).Start()
			done()
		}
	})
}

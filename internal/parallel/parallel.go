// Package parallel runs loops over all cores: For splits a range into one
// contiguous piece per worker, Each hands out tasks one at a time. Both pass
// the worker's number (below Workers()) so that a caller can keep scratch
// memory per worker; results must not depend on which worker runs what.
package parallel

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Workers is how many goroutines the loops use: GOMAXPROCS.
func Workers() int { return runtime.GOMAXPROCS(0) }

// For runs body over [0, n) split into at most Workers() contiguous ranges
// of at least minPerWorker indices each (the last may be shorter), passing
// each its worker number. A loop too small to pay for a goroutine runs
// inline as worker 0. The split depends only on n, minPerWorker and the
// number of workers.
//
// The caller runs the first range itself and the rest go to helper
// goroutines that poll for work for a short while before they sleep (see
// pool): waking a sleeping goroutine takes tens of
// microseconds, as long as a whole matrix-vector product of a decoding
// step, which calls For hundreds of times a token. A For that finds the
// helpers busy (another For running, or one nested in a body) starts
// goroutines of its own.
func For(n, minPerWorker int, body func(w, lo, hi int)) {
	nw := min(Workers(), n/max(1, minPerWorker))
	if nw <= 1 {
		body(0, 0, n)
		return
	}
	chunk := (n + nw - 1) / nw
	nw = (n + chunk - 1) / chunk
	if helpers.run(n, chunk, nw, body) {
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < nw; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(w, w*chunk, min(n, (w+1)*chunk))
		}()
	}
	body(0, 0, min(n, chunk))
	wg.Wait()
}

// spinFor is how long an idle helper polls its channel for the next
// range before it sleeps in a receive on it.
const spinFor = 200 * time.Microsecond

// pool is For's helper goroutines: helper i runs worker i+1's range of
// each For that needs it. They are started on first use and never stop.
// A For hands each helper it needs its range on the helper's channel,
// which is empty then (the helper finished its last range before the last
// For returned), so the hand-over never blocks and needs no other
// signalling: an idle helper polls its channel for spinFor, then sleeps in
// a receive on it.
type pool struct {
	mu        sync.Mutex // held by the For using the helpers
	workers   []chan task
	remaining atomic.Int32 // helpers' ranges of the current For not yet done
}

// task is one helper's range of a For.
type task struct {
	body   func(w, lo, hi int)
	w      int
	lo, hi int
}

var helpers pool

// run runs body's ranges on the helpers and the caller, and reports false
// (running nothing) when the helpers are in use.
func (p *pool) run(n, chunk, nw int, body func(w, lo, hi int)) bool {
	if !p.mu.TryLock() {
		return false
	}
	defer p.mu.Unlock()
	for len(p.workers) < nw-1 {
		ch := make(chan task, 1)
		p.workers = append(p.workers, ch)
		go p.loop(ch)
	}
	p.remaining.Store(int32(nw - 1))
	for w := 1; w < nw; w++ {
		p.workers[w-1] <- task{body: body, w: w, lo: w * chunk, hi: min(n, (w+1)*chunk)}
	}
	body(0, 0, min(n, chunk))
	for spins := 0; p.remaining.Load() != 0; spins++ {
		if spins%64 == 63 {
			runtime.Gosched()
		}
	}
	return true
}

// loop is one helper: it runs the ranges handed to it on ch.
func (p *pool) loop(ch chan task) {
	for {
		t := next(ch)
		t.body(t.w, t.lo, t.hi)
		p.remaining.Add(-1)
	}
}

// next waits for a range on ch, polling it for spinFor before it sleeps
// in a receive.
func next(ch chan task) task {
	start := time.Now()
	for spins := 0; ; spins++ {
		select {
		case t := <-ch:
			return t
		default:
		}
		if spins%64 == 63 {
			if time.Since(start) > spinFor {
				return <-ch
			}
			runtime.Gosched()
		}
	}
}

// Each runs fn(w, task) for every task in [0, tasks) on up to Workers()
// goroutines, each taking the next task when it finishes one, and returns
// how many workers ran.
func Each(tasks int, fn func(w, task int)) int {
	n, _ := EachContext(context.Background(), tasks, fn)
	return n
}

// EachContext is Each that stops handing out tasks once ctx is done, and
// then returns ctx's error.
func EachContext(ctx context.Context, tasks int, fn func(w, task int)) (int, error) {
	workers := max(1, min(Workers(), tasks))
	if workers == 1 {
		for t := 0; t < tasks && ctx.Err() == nil; t++ {
			fn(0, t)
		}
		return workers, ctx.Err()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t := int(next.Add(1)) - 1
				if t >= tasks {
					return
				}
				fn(w, t)
			}
		}()
	}
	wg.Wait()
	return workers, ctx.Err()
}

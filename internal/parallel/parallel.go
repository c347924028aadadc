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
)

// Workers is how many goroutines the loops use: GOMAXPROCS.
func Workers() int { return runtime.GOMAXPROCS(0) }

// For runs body over [0, n) split into at most Workers() contiguous ranges
// of at least minPerWorker indices each (the last may be shorter), passing
// each its worker number. A loop too small to pay for a goroutine runs
// inline as worker 0. The split depends only on n, minPerWorker and the
// number of workers.
func For(n, minPerWorker int, body func(w, lo, hi int)) {
	nw := min(Workers(), n/max(1, minPerWorker))
	if nw <= 1 {
		body(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + nw - 1) / nw
	w := 0
	for lo := 0; lo < n; lo += chunk {
		hi := min(n, lo+chunk)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			body(w, lo, hi)
		}(w)
		w++
	}
	wg.Wait()
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

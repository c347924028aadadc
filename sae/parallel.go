package sae

import (
	"runtime"
	"sync"
)

// workers is how many goroutines parallel loops use.
func workers() int { return runtime.GOMAXPROCS(0) }

// parallelFor runs body over [0, n) split into at most workers() contiguous
// ranges, passing each its worker number (below workers()) so it can use
// scratch memory of its own. Loops too small to pay for a goroutine run
// inline as worker 0.
func parallelFor(n, minPerWorker int, body func(w, lo, hi int)) {
	nw := min(workers(), n/max(1, minPerWorker))
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

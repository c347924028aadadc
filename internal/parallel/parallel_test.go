package parallel

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every index is visited once, whatever the sizes.
func TestForCoversEveryIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 7, 64, 1000, 1023} {
		for _, minPer := range []int{0, 1, 16, 5000} {
			seen := make([]atomic.Int32, n)
			For(n, minPer, func(w, lo, hi int) {
				if w < 0 || w >= Workers() {
					t.Errorf("worker %d outside [0, %d)", w, Workers())
				}
				for i := lo; i < hi; i++ {
					seen[i].Add(1)
				}
			})
			for i := range seen {
				if c := seen[i].Load(); c != 1 {
					t.Fatalf("n %d min %d: index %d visited %d times", n, minPer, i, c)
				}
			}
		}
	}
}

func TestEachRunsEveryTaskOnce(t *testing.T) {
	for _, n := range []int{0, 1, 5, 333} {
		seen := make([]atomic.Int32, n)
		Each(n, func(_, task int) { seen[task].Add(1) })
		for i := range seen {
			if c := seen[i].Load(); c != 1 {
				t.Fatalf("n %d: task %d ran %d times", n, i, c)
			}
		}
	}
}

// A cancelled context stops the loop and is reported.
func TestEachStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Int32
	_, err := EachContext(ctx, 1_000_000, func(_, task int) {
		if ran.Add(1) == 10 {
			cancel()
		}
	})
	if err == nil {
		t.Fatal("expected the context's error")
	}
	if n := ran.Load(); n > 1000 {
		t.Fatalf("%d tasks ran after the cancel", n)
	}
}

// TestForHelpers runs For with eight workers over sizes that take part of
// the helpers or all of them, from several goroutines at once (all but one
// fall back to goroutines of their own) and nested in a body, back to back
// and after the helpers have gone to sleep: every index once, every worker
// number in range and used once per call.
func TestForHelpers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	check := func(n, minPer int, nested bool) {
		seen := make([]atomic.Int32, n)
		var workers [8]atomic.Int32
		For(n, minPer, func(w, lo, hi int) {
			if w < 0 || w >= 8 {
				t.Errorf("worker %d", w)
				return
			}
			if workers[w].Add(1) != 1 {
				t.Errorf("n %d: worker %d ran twice in one call", n, w)
			}
			for i := lo; i < hi; i++ {
				seen[i].Add(1)
			}
			if nested && w == 0 {
				inner := make([]atomic.Int32, 100)
				For(100, 10, func(_, lo, hi int) {
					for i := lo; i < hi; i++ {
						inner[i].Add(1)
					}
				})
				for i := range inner {
					if inner[i].Load() != 1 {
						t.Errorf("nested: index %d visited %d times", i, inner[i].Load())
					}
				}
			}
		})
		for i := range seen {
			if c := seen[i].Load(); c != 1 {
				t.Fatalf("n %d min %d: index %d visited %d times", n, minPer, i, c)
			}
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				check(1+(i*37+g*11)%500, 1+i%90, i%17 == 0)
			}
		}()
	}
	wg.Wait()
	time.Sleep(2 * spinFor) // the helpers fall asleep
	for i := range 50 {
		check(64+i, 8, false)
	}
	// Calls a little before, at and after the moment the helpers stop
	// spinning and sleep: a helper woken for a call must run that call's
	// range once, never an earlier one's again.
	for i := range 400 {
		time.Sleep(time.Duration(i%9) * spinFor / 4)
		check(2+i%300, 1, false)
	}
}

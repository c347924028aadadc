package parallel

import (
	"context"
	"sync/atomic"
	"testing"
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

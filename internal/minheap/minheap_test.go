package minheap

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHeapPopsInOrder: pops come out least first, after pushes and
// replacements of the top, for a total order with ties broken by a second
// field.
func TestHeapPopsInOrder(t *testing.T) {
	type item struct{ key, id int }
	less := func(a, b item) bool { return a.key < b.key || a.key == b.key && a.id < b.id }
	rng := rand.New(rand.NewPCG(1, 2))
	h := Make(less)
	var all []item
	for i := range 200 {
		x := item{rng.IntN(20), i}
		if h.Len() > 0 && i%5 == 0 && less(h.Top(), x) {
			all = slices.DeleteFunc(all, func(y item) bool { return y == h.Top() })
			h.ReplaceTop(x)
		} else {
			h.Push(x)
		}
		all = append(all, x)
	}
	if h.Len() != len(all) || len(h.Items()) != len(all) {
		t.Fatalf("%d elements, want %d", h.Len(), len(all))
	}
	slices.SortFunc(all, func(a, b item) int {
		if less(a, b) {
			return -1
		}
		if less(b, a) {
			return 1
		}
		return 0
	})
	for i, want := range all {
		if got := h.Pop(); got != want {
			t.Fatalf("pop %d: %+v, want %+v", i, got, want)
		}
	}
	h.Push(item{1, 1})
	h.Reset()
	if h.Len() != 0 {
		t.Error("Reset left elements")
	}
}

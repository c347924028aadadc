package sae

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestTopKIndices(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for trial := range 500 {
		n := 1 + rng.IntN(60)
		row := make([]float32, n)
		for i := range row {
			row[i] = float32(rng.IntN(7)) - 3 // many ties
		}
		k := rng.IntN(n + 2)
		got := topKIndices(row, k, nil)
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		sort.SliceStable(want, func(a, b int) bool { return row[want[a]] > row[want[b]] })
		want = want[:min(k, n)]
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d: row %v k %d: got %v, want %v", trial, row, k, got, want)
		}
	}
}

package activations

import (
	"context"
	"math"
	"slices"
	"testing"
)

func TestShuffledBatchesVisitEveryRowOnce(t *testing.T) {
	dir, data := testDump(t, 1000, 3, []int{2}, 150, Float32)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l := d.Layer(2)
	walk := func(seed uint64) ([]int, [][]int) {
		it := l.Batches(BatchOptions{Size: 64, Shuffle: true, Seed: seed, ChunkRows: 8, PoolRows: 128})
		var order []int
		var batches [][]int
		for it.Next(context.Background()) {
			batches = append(batches, slices.Clone(it.Rows()))
			for i, r := range it.Rows() {
				order = append(order, r)
				for j := range 3 {
					if it.X()[i*3+j] != data[2][r*3+j] {
						t.Fatalf("row %d: batch holds values of another row", r)
					}
				}
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return order, batches
	}
	a, batches := walk(7)
	b, _ := walk(7)
	c, _ := walk(8)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave two orders")
	}
	if slices.Equal(a, c) {
		t.Error("seeds 7 and 8 gave the same order")
	}
	sorted := slices.Sorted(slices.Values(a))
	for i, r := range sorted {
		if r != i {
			t.Fatalf("rows visited: %d rows, first gap at %d", len(sorted), i)
		}
	}
	// The first batch mixes rows from several of the 7 shards.
	shards := map[int]bool{}
	for _, r := range batches[0] {
		shards[r/150] = true
	}
	if len(shards) < 4 {
		t.Errorf("first batch draws from %d shards, want rows from across the dump", len(shards))
	}
	if len(batches) != 16 || len(batches[15]) != 1000-15*64 {
		t.Errorf("%d batches, last of %d rows; want 16, the last of 40", len(batches), len(batches[len(batches)-1]))
	}
}

func TestBatchesRangeAndDropLast(t *testing.T) {
	dir, _ := testDump(t, 100, 2, []int{0}, 30, Float32)
	d, _ := Open(dir)
	defer d.Close()
	for _, shuffle := range []bool{false, true} {
		it := d.Layers[0].Batches(BatchOptions{Size: 16, Start: 10, End: 60, DropLast: true, Shuffle: shuffle})
		n := 0
		for it.Next(context.Background()) {
			for _, r := range it.Rows() {
				if r < 10 || r >= 60 {
					t.Fatalf("row %d is outside [10, 60)", r)
				}
			}
			n += it.Len()
		}
		if n != 48 {
			t.Errorf("shuffle=%v: %d rows, want 48 (three whole batches of 16 from 50 rows)", shuffle, n)
		}
	}
	it := d.Layers[0].Batches(BatchOptions{Size: 16, End: 101})
	if it.Next(context.Background()) || it.Err() == nil {
		t.Error("a range past the last row was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	it = d.Layers[0].Batches(BatchOptions{Size: 16})
	if it.Next(ctx) || it.Err() != context.Canceled {
		t.Errorf("a cancelled walk went on: %v", it.Err())
	}
}

func TestStatsMatchDirectComputation(t *testing.T) {
	dir, data := testDump(t, 300, 5, []int{1}, 70, Float32)
	d, _ := Open(dir)
	defer d.Close()
	st, err := d.Layers[0].Stats(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	x := data[1]
	n, dm := 300, 5
	var normSum, total float64
	for r := range n {
		var sq float64
		for j := range dm {
			sq += float64(x[r*dm+j]) * float64(x[r*dm+j])
		}
		normSum += math.Sqrt(sq)
	}
	for j := range dm {
		var m, v float64
		for r := range n {
			m += float64(x[r*dm+j])
		}
		m /= float64(n)
		for r := range n {
			e := float64(x[r*dm+j]) - m
			v += e * e
		}
		v /= float64(n)
		total += v
		if math.Abs(st.Mean[j]-m) > 1e-9 || math.Abs(st.Var[j]-v) > 1e-9 {
			t.Errorf("dim %d: mean %v var %v, want %v %v", j, st.Mean[j], st.Var[j], m, v)
		}
	}
	if math.Abs(st.MeanNorm-normSum/float64(n)) > 1e-9 || math.Abs(st.TotalVar-total) > 1e-9 {
		t.Errorf("mean norm %v total var %v, want %v %v", st.MeanNorm, st.TotalVar, normSum/float64(n), total)
	}
	nz, err := NewNormalizer(NormMeanNorm, st)
	if err != nil {
		t.Fatal(err)
	}
	it := d.Layers[0].Batches(BatchOptions{Size: 300, Normalizer: nz})
	it.Next(context.Background())
	acc := NewStatsAccumulator(dm)
	acc.Add(it.X())
	if got := acc.Stats().MeanNorm; math.Abs(got-math.Sqrt(5)) > 1e-5 {
		t.Errorf("after %s normalization the mean norm is %v, want sqrt(5)", NormMeanNorm, got)
	}
}

func TestSkipKeepsTheOrder(t *testing.T) {
	dir, _ := testDump(t, 500, 2, []int{0}, 120, Float32)
	d, _ := Open(dir)
	defer d.Close()
	for _, shuffle := range []bool{false, true} {
		opt := BatchOptions{Size: 32, Shuffle: shuffle, Seed: 4, ChunkRows: 8, PoolRows: 64, DropLast: true}
		full := d.Layers[0].Batches(opt)
		var want [][]int
		var wantX [][]float32
		for full.Next(context.Background()) {
			want = append(want, slices.Clone(full.Rows()))
			wantX = append(wantX, slices.Clone(full.X()))
		}
		it := d.Layers[0].Batches(opt)
		if !it.Skip(5) {
			t.Fatal("Skip(5) ended the walk")
		}
		i := 5
		for it.Next(context.Background()) {
			if !slices.Equal(it.Rows(), want[i]) || !slices.Equal(it.X(), wantX[i]) {
				t.Fatalf("shuffle=%v: batch %d after Skip(5) differs", shuffle, i)
			}
			i++
		}
		if i != len(want) {
			t.Errorf("shuffle=%v: %d batches after skipping, want %d", shuffle, i, len(want))
		}
	}
}

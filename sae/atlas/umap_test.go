package atlas

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"
)

// umapSeparation returns the mean 2-D distance between points of the same
// label and between points of different labels.
func umapSeparation(y []float64, labels []int) (intra, inter float64) {
	var ni, no int
	for i := range labels {
		for j := i + 1; j < len(labels); j++ {
			d := math.Hypot(y[2*i]-y[2*j], y[2*i+1]-y[2*j+1])
			if labels[i] == labels[j] {
				intra += d
				ni++
			} else {
				inter += d
				no++
			}
		}
	}
	return intra / float64(ni), inter / float64(no)
}

func TestUMAPSeparatesPlantedClusters(t *testing.T) {
	const n, d = 300, 32
	x, labels := planted(5, 60, d, 0.15, 11)
	var calls, last int
	y, err := UMAP(x, n, d, UMAPOptions{Seed: 3, Progress: func(done, total int) { calls++; last = done }})
	if err != nil {
		t.Fatal(err)
	}
	if len(y) != 2*n {
		t.Fatalf("got %d coordinates, want %d", len(y), 2*n)
	}
	if calls != 501 || last != 500 {
		t.Errorf("progress called %d times ending at %d, want 501 ending at 500", calls, last)
	}
	intra, inter := umapSeparation(y, labels)
	t.Logf("mean intra-cluster distance %.3f, inter-cluster %.3f", intra, inter)
	if intra > 0.3*inter {
		t.Errorf("clusters not separated: intra %.3f vs inter %.3f", intra, inter)
	}
	tu, err := Trustworthiness(x, n, d, y, 2, 15, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	pc, _, err := PCA(context.Background(), x, n, d, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := Trustworthiness(x, n, d, pc, 2, 15, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trustworthiness UMAP %.4f, PCA %.4f", tu, tp)
	if tu < tp {
		t.Errorf("UMAP trustworthiness %.4f below PCA's %.4f", tu, tp)
	}
}

func TestUMAPSeedDeterminism(t *testing.T) {
	const n, d = 200, 16
	x, _ := planted(4, 50, d, 0.2, 5)
	// Unnormalised rows: scale each row differently.
	for i := range n {
		for j := range d {
			x[i*d+j] *= float32(1 + i%7)
		}
	}
	opts := UMAPOptions{Seed: 9, Epochs: 100}
	layout := func() []float64 {
		t.Helper()
		y, err := UMAP(x, n, d, opts)
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	y1 := layout()
	y2 := layout()
	if !slices.Equal(y1, y2) {
		t.Fatal("same seed gave different layouts")
	}
	opts.Seed = 10
	y3 := layout()
	if slices.Equal(y1, y3) {
		t.Error("different seeds gave identical layouts")
	}
	// NN-descent path is deterministic too.
	defer func(v, w int) { umapExactMax, umapPCAMax = v, w }(umapExactMax, umapPCAMax)
	umapExactMax, umapPCAMax = 10, 10
	y4 := layout()
	y5 := layout()
	if !slices.Equal(y4, y5) {
		t.Fatal("same seed gave different layouts with NN-descent")
	}
	// And it does not depend on the number of goroutines.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	y6 := layout()
	runtime.GOMAXPROCS(4)
	y7 := layout()
	if !slices.Equal(y4, y6) || !slices.Equal(y4, y7) {
		t.Fatal("layout depends on GOMAXPROCS")
	}
}

// mustKNNExact is knnExact for a test, which fails on an error.
func mustKNNExact(t *testing.T, x []float32, n, d, k int) *knnGraph {
	t.Helper()
	g, err := knnExact(context.Background(), x, n, d, k)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestUMAPNNDescentRecall(t *testing.T) {
	const n, d, k = 3000, 12, 15
	x := randomUnit(n, d, 21)
	exact := mustKNNExact(t, x, n, d, k)
	approx, err := knnDescent(context.Background(), x, n, d, k, 4)
	if err != nil {
		t.Fatal(err)
	}
	var hits int
	for i := range n {
		want := exact.idx[i*k : (i+1)*k]
		for _, j := range approx.idx[i*k : (i+1)*k] {
			if slices.Contains(want, j) {
				hits++
			}
		}
	}
	recall := float64(hits) / float64(n*k)
	t.Logf("NN-descent recall %.4f", recall)
	if recall < 0.9 {
		t.Errorf("NN-descent recall %.4f, want at least 0.9", recall)
	}
	exact.sortRows()
	for i := range n {
		row := exact.dist[i*k : (i+1)*k]
		if !slices.IsSorted(row) {
			t.Fatalf("row %d not sorted: %v", i, row)
		}
		if slices.Contains(exact.idx[i*k:(i+1)*k], int32(i)) {
			t.Fatalf("row %d lists itself", i)
		}
	}
}

func TestUMAPTopComponentsMatchPCA(t *testing.T) {
	const n, d = 600, 40
	x := anisotropic(n, d, 8)
	want, _, err := PCA(context.Background(), x, n, d, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := umapTopComponents(x, n, d, 2)
	if got == nil {
		t.Fatal("no components")
	}
	for c := range 2 {
		var gg, ww, gw float64
		for i := range n {
			g, w := got[2*i+c], want[2*i+c]
			gg += g * g
			ww += w * w
			gw += g * w
		}
		if r := math.Abs(gw) / math.Sqrt(gg*ww); r < 0.999 {
			t.Errorf("component %d: |correlation| with PCA %.5f", c, r)
		}
	}
}

func TestUMAPFitCurve(t *testing.T) {
	// Known fit for the defaults min_dist = 0.1, spread = 1.
	a, b := umapFitCurve(0.1, 1)
	t.Logf("a = %.4f, b = %.4f", a, b)
	if math.Abs(a-1.577) > 0.02 || math.Abs(b-0.895) > 0.01 {
		t.Errorf("a, b = %.4f, %.4f, want about 1.577, 0.895", a, b)
	}
}

func TestUMAPSmoothSigma(t *testing.T) {
	dist := []float32{0.1, 0.2, 0.3, 0.5, 0.8}
	sigma := umapSmoothSigma(dist, 0.1, math.Log2(5))
	var s float64
	for _, v := range dist {
		s += math.Exp(-(float64(v) - 0.1) / sigma)
	}
	if math.Abs(s-math.Log2(5)) > 1e-4 {
		t.Errorf("Σ memberships = %v, want log2 5 = %v", s, math.Log2(5))
	}
}

func TestUMAPBadInputs(t *testing.T) {
	x := randomUnit(20, 4, 1)
	nan := slices.Clone(x)
	nan[13] = float32(math.NaN())
	cases := []struct {
		name string
		x    []float32
		n, d int
		opts UMAPOptions
	}{
		{"too few rows", x[:15*4], 15, 4, UMAPOptions{}},
		{"length mismatch", x[:79], 20, 4, UMAPOptions{Neighbors: 5}},
		{"NaN", nan, 20, 4, UMAPOptions{Neighbors: 5}},
		{"zero d", nil, 20, 0, UMAPOptions{Neighbors: 5}},
		{"negative n", nil, -1, 4, UMAPOptions{}},
		{"one neighbour", x, 20, 4, UMAPOptions{Neighbors: 1}},
		{"MinDist above Spread", x, 20, 4, UMAPOptions{Neighbors: 5, MinDist: 2}},
		{"negative epochs", x, 20, 4, UMAPOptions{Neighbors: 5, Epochs: -1}},
	}
	for _, c := range cases {
		if _, err := UMAP(c.x, c.n, c.d, c.opts); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := UMAP(x, 20, 4, UMAPOptions{Neighbors: 5, Context: ctx}); err == nil {
		t.Error("cancelled context: no error")
	}
	// Zero and duplicate rows are allowed.
	z := slices.Clone(x)
	clear(z[:4])
	copy(z[4:8], z[8:12])
	y, err := UMAP(z, 20, 4, UMAPOptions{Neighbors: 5, Epochs: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatal("non-finite coordinate")
		}
	}
}

// BenchmarkUMAP lays out random unit columns (no structure for the
// nearest-neighbour search to exploit: its hardest case) at the sizes the
// README reports: go test -bench UMAP/65536x4096 -benchtime 1x ./sae/atlas
// takes minutes and about 2 GiB.
func BenchmarkUMAP(b *testing.B) {
	for _, sz := range []struct{ n, d int }{{2048, 1536}, {16384, 1536}, {65536, 4096}} {
		b.Run(fmt.Sprintf("%dx%d", sz.n, sz.d), func(b *testing.B) {
			x := randomUnit(sz.n, sz.d, 7)
			b.ResetTimer()
			for range b.N {
				if _, err := UMAP(x, sz.n, sz.d, UMAPOptions{Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestUMAPGradientTables checks the tabulated gradient coefficients
// against the formulas (computed here with math.Pow) over the squared
// distances the layout meets and beyond the tables' range, for the curves
// of min_dist 0.1 (a = 1.577, b = 0.895, as umap-learn fits), 0 and 0.5.
func TestUMAPGradientTables(t *testing.T) {
	for _, minDist := range []float64{0.1, 0, 0.5} {
		a, b := umapFitCurve(minDist, 1)
		g := newUMAPGradients(a, b)
		for d2 := 1e-15; d2 < 1e15; d2 *= 1.0137 {
			pb := math.Pow(d2, b)
			att := -2 * a * b * pb / d2 / (a*pb + 1)
			rep := 2 * b / ((0.001 + d2) * (a*pb + 1))
			if got := g.attraction(d2); math.Abs(got-att) > 1e-5*math.Abs(att) {
				t.Fatalf("min_dist %v: attraction(%g) = %g, want %g", minDist, d2, got, att)
			}
			if got := g.repulsion(d2); math.Abs(got-rep) > 1e-5*rep {
				t.Fatalf("min_dist %v: repulsion(%g) = %g, want %g", minDist, d2, got, rep)
			}
		}
	}
}

// TestKNNExactMatchesBruteForce checks the blocked, symmetric exact search
// against the definition (every pair's cosine distance in float64, sorted)
// on more rows than one block, and that it does not depend on the number
// of goroutines.
func TestKNNExactMatchesBruteForce(t *testing.T) {
	const n, d, k = 1300, 20, 15
	x := randomUnit(n, d, 8)
	g := mustKNNExact(t, x, n, d, k)
	g.sortRows()
	order := make([]int, 0, n)
	dist := make([]float64, n)
	for i := range n {
		order = order[:0]
		for j := range n {
			var dot float64
			for c := range d {
				dot += float64(x[i*d+c]) * float64(x[j*d+c])
			}
			dist[j] = 1 - dot
			if j != i {
				order = append(order, j)
			}
		}
		slices.SortFunc(order, func(a, b int) int { return cmp.Compare(dist[a], dist[b]) })
		for s := range k {
			got := g.idx[i*k+s]
			// Rows at the same distance (to float32 rounding) may swap.
			if math.Abs(dist[got]-dist[order[s]]) > 1e-5 || math.Abs(float64(g.dist[i*k+s])-dist[order[s]]) > 1e-5 {
				t.Fatalf("row %d, neighbour %d: got row %d at %v (exact %v), want row %d at %v",
					i, s, got, g.dist[i*k+s], dist[got], order[s], dist[order[s]])
			}
		}
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	one := mustKNNExact(t, x, n, d, k)
	one.sortRows()
	if !slices.Equal(one.idx, g.idx) || !slices.Equal(one.dist, g.dist) {
		t.Error("knnExact depends on GOMAXPROCS")
	}
}

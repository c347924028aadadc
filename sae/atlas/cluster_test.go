package atlas

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// clusterUnit normalises v in place.
func clusterUnit(v []float32) {
	s := 0.0
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	s = math.Sqrt(s)
	for i := range v {
		v[i] = float32(float64(v[i]) / s)
	}
}

// planted returns k random unit directions in d dimensions with per members
// each, perturbed by Gaussian noise of the given scale and renormalised,
// together with the true labels.
func planted(k, per, d int, noise float64, seed uint64) ([]float32, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	dirs := unitRows(rng, k, d)
	n := k * per
	x := make([]float32, n*d)
	labels := make([]int, n)
	for i := 0; i < n; i++ {
		j := i % k
		labels[i] = j
		for c := 0; c < d; c++ {
			x[i*d+c] = dirs[j*d+c] + float32(noise*rng.NormFloat64())
		}
		clusterUnit(x[i*d : (i+1)*d])
	}
	return x, labels
}

// randomUnit returns n random unit vectors in d dimensions.
func randomUnit(n, d int, seed uint64) []float32 {
	return unitRows(rand.New(rand.NewPCG(seed, 2)), n, d)
}

// unitRows draws n random unit vectors in d dimensions from rng.
func unitRows(rng *rand.Rand, n, d int) []float32 {
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := 0; i < n; i++ {
		clusterUnit(x[i*d : (i+1)*d])
	}
	return x
}

// sameClusters reports whether found splits rows exactly as truth does: every
// true cluster maps to one found cluster, and distinct true clusters to
// distinct found clusters.
func sameClusters(t *testing.T, truth, found []int) {
	t.Helper()
	fwd := map[int]int{}
	back := map[int]int{}
	for i := range truth {
		if f, ok := fwd[truth[i]]; ok && f != found[i] {
			t.Fatalf("true cluster %d split across found clusters %d and %d", truth[i], f, found[i])
		}
		if b, ok := back[found[i]]; ok && b != truth[i] {
			t.Fatalf("found cluster %d mixes true clusters %d and %d", found[i], b, truth[i])
		}
		fwd[truth[i]] = found[i]
		back[found[i]] = truth[i]
	}
}

// refSilhouette is a direct O(n²) float64 silhouette with cosine distance.
func refSilhouette(x []float32, n, d int, labels []int) (float64, map[int]float64) {
	dist := func(i, j int) float64 {
		var dot, ni, nj float64
		for c := 0; c < d; c++ {
			a, b := float64(x[i*d+c]), float64(x[j*d+c])
			dot += a * b
			ni += a * a
			nj += b * b
		}
		return 1 - dot/math.Sqrt(ni*nj)
	}
	size := map[int]int{}
	for _, l := range labels {
		size[l]++
	}
	total := 0.0
	sum := map[int]float64{}
	for i := 0; i < n; i++ {
		if size[labels[i]] == 1 {
			continue
		}
		acc := map[int]float64{}
		for j := 0; j < n; j++ {
			if j != i {
				acc[labels[j]] += dist(i, j)
			}
		}
		a := acc[labels[i]] / float64(size[labels[i]]-1)
		b := math.Inf(1)
		for l, v := range acc {
			if l != labels[i] {
				b = math.Min(b, v/float64(size[l]))
			}
		}
		s := (b - a) / math.Max(a, b)
		total += s
		sum[labels[i]] += s
	}
	per := map[int]float64{}
	for l, c := range size {
		per[l] = sum[l] / float64(c)
	}
	return total / float64(n), per
}

func TestKMeansRecoversPlanted(t *testing.T) {
	x, truth := planted(4, 50, 32, 0.1, 7)
	c, err := KMeans(x, 200, 32, 4, KMeansOptions{Restarts: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if c.K != 4 || len(c.Labels) != 200 || len(c.Centroids) != 4*32 {
		t.Fatalf("shape: K=%d labels=%d centroids=%d", c.K, len(c.Labels), len(c.Centroids))
	}
	sameClusters(t, truth, c.Labels)
	if c.Objective <= 0 || c.Objective > 200*0.5 {
		t.Fatalf("objective %v", c.Objective)
	}
	for j := 0; j < 4; j++ {
		s := 0.0
		for _, v := range c.Centroids[j*32 : (j+1)*32] {
			s += float64(v) * float64(v)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("centroid %d has squared norm %v", j, s)
		}
	}
}

func TestKMeansSeedDeterminism(t *testing.T) {
	x := randomUnit(3000, 16, 3) // several row blocks
	opts := KMeansOptions{Restarts: 2, Seed: 42, MaxIter: 20}
	a, err := KMeans(x, 3000, 16, 8, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := KMeans(x, 3000, 16, 8, opts)
	if err != nil {
		t.Fatal(err)
	}
	prev := runtime.GOMAXPROCS(1)
	c, err := KMeans(x, 3000, 16, 8, opts)
	runtime.GOMAXPROCS(prev)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Labels, b.Labels) || a.Objective != b.Objective {
		t.Fatal("same seed gave different clusterings")
	}
	if !slices.Equal(a.Labels, c.Labels) || a.Objective != c.Objective {
		t.Fatal("GOMAXPROCS=1 gave a different clustering")
	}
	counts := make([]int, 8)
	for _, l := range a.Labels {
		counts[l]++
	}
	for j, v := range counts {
		if v == 0 {
			t.Fatalf("cluster %d is empty", j)
		}
	}
}

func TestKMeansEdgeCases(t *testing.T) {
	// k = n, with duplicate rows: every cluster must still be non-empty.
	x := randomUnit(3, 4, 9)
	x = append(x, x[:4]...) // row 3 duplicates row 0
	c, err := KMeans(x, 4, 4, 4, KMeansOptions{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, l := range c.Labels {
		seen[l] = true
	}
	if len(seen) != 4 {
		t.Fatalf("k = n gave labels %v", c.Labels)
	}
	// k = 1.
	c, err = KMeans(x, 4, 4, 1, KMeansOptions{})
	if err != nil || c.K != 1 {
		t.Fatalf("k = 1: %v %v", c, err)
	}
	// Non-unit rows are normalised.
	y := make([]float32, 0)
	for _, v := range randomUnit(20, 4, 1) {
		y = append(y, 3*v)
	}
	if _, err := KMeans(y, 20, 4, 2, KMeansOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := KMeans(y, 20, 4, 2, KMeansOptions{Context: ctx}); err == nil {
		t.Fatal("cancelled context: no error")
	}
}

func TestAgglomerativeRecoversPlanted(t *testing.T) {
	x, truth := planted(4, 50, 32, 0.1, 11)
	c, err := Agglomerative(x, 200, 32, 4)
	if err != nil {
		t.Fatal(err)
	}
	if c.K != 4 {
		t.Fatalf("K = %d", c.K)
	}
	sameClusters(t, truth, c.Labels)
	// Down to one cluster and up to n clusters.
	c, err = Agglomerative(x, 200, 32, 1)
	if err != nil || c.K != 1 {
		t.Fatalf("k = 1: %v", err)
	}
	c, err = Agglomerative(x, 200, 32, 200)
	if err != nil || c.K != 200 || c.Objective > 1e-4 {
		t.Fatalf("k = n: %v", err)
	}
}

func TestAgglomerativeMatchesNaive(t *testing.T) {
	// A naive O(n³) average-link clustering must give the same partition.
	const n, d, k = 40, 6, 5
	x := randomUnit(n, d, 21)
	got, err := Agglomerative(x, n, d, k)
	if err != nil {
		t.Fatal(err)
	}
	cos := func(i, j int) float64 {
		s := 0.0
		for c := 0; c < d; c++ {
			s += float64(x[i*d+c]) * float64(x[j*d+c])
		}
		return 1 - s
	}
	groups := make([][]int, n)
	for i := range groups {
		groups[i] = []int{i}
	}
	for len(groups) > k {
		bi, bj, bv := 0, 1, math.Inf(1)
		for i := range groups {
			for j := i + 1; j < len(groups); j++ {
				s := 0.0
				for _, a := range groups[i] {
					for _, b := range groups[j] {
						s += cos(a, b)
					}
				}
				s /= float64(len(groups[i]) * len(groups[j]))
				if s < bv {
					bi, bj, bv = i, j, s
				}
			}
		}
		groups[bi] = append(groups[bi], groups[bj]...)
		groups = append(groups[:bj], groups[bj+1:]...)
	}
	truth := make([]int, n)
	for g, members := range groups {
		for _, i := range members {
			truth[i] = g
		}
	}
	sameClusters(t, truth, got.Labels)
}

func TestSilhouetteMatchesReference(t *testing.T) {
	const n, d = 60, 8
	x := randomUnit(n, d, 5)
	rng := rand.New(rand.NewPCG(3, 3))
	vals := []int{-1, 7, 3, 100}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = vals[rng.IntN(len(vals))]
	}
	labels[0] = 55 // a singleton scores 0
	got, per, err := Silhouette(x, n, d, labels)
	if err != nil {
		t.Fatal(err)
	}
	want, wantPer := refSilhouette(x, n, d, labels)
	if math.Abs(got-want) > 1e-6 {
		t.Fatalf("mean silhouette %v, reference %v", got, want)
	}
	if len(per) != len(wantPer) {
		t.Fatalf("perLabel has %d labels, want %d", len(per), len(wantPer))
	}
	for l, w := range wantPer {
		if math.Abs(per[l]-w) > 1e-6 {
			t.Fatalf("label %d: %v, reference %v", l, per[l], w)
		}
	}
	if per[55] != 0 {
		t.Fatalf("singleton scored %v", per[55])
	}
	// The full sample is the exact value.
	s, _, err := SilhouetteSample(x, n, d, labels, n, 1)
	if err != nil || s != got {
		t.Fatalf("SilhouetteSample(maxPoints = n) = %v, %v; want %v", s, err, got)
	}
}

func TestSilhouetteStructure(t *testing.T) {
	// Unstructured data with random labels scores about 0.
	const n, d = 800, 16
	x := randomUnit(n, d, 8)
	rng := rand.New(rand.NewPCG(4, 4))
	labels := make([]int, n)
	for i := range labels {
		labels[i] = rng.IntN(2)
	}
	s, _, err := Silhouette(x, n, d, labels)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s) >= 0.05 {
		t.Fatalf("random labels scored %v", s)
	}
	// Planted clusters score clearly positive, and a sample agrees.
	y, truth := planted(4, 100, 32, 0.1, 9)
	s, per, err := Silhouette(y, 400, 32, truth)
	if err != nil {
		t.Fatal(err)
	}
	if s <= 0.3 || len(per) != 4 {
		t.Fatalf("planted clusters scored %v (%d labels)", s, len(per))
	}
	ss, _, err := SilhouetteSample(y, 400, 32, truth, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(ss-s) > 0.05 {
		t.Fatalf("sampled silhouette %v, exact %v", ss, s)
	}
}

func TestChooseKPicksPlanted(t *testing.T) {
	x, _ := planted(4, 40, 24, 0.15, 13)
	best, scores, err := ChooseK(x, 160, 24, []int{2, 3, 4, 5, 6}, KMeansOptions{Restarts: 3, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if best != 4 || len(scores) != 5 {
		t.Fatalf("ChooseK picked %d from %v", best, scores)
	}
}

func TestKMeansAgglomerativeSilhouetteChooseKErrors(t *testing.T) {
	x := randomUnit(10, 4, 1)
	nan := slices.Clone(x)
	nan[5] = float32(math.NaN())
	inf := slices.Clone(x)
	inf[7] = float32(math.Inf(1))
	zero := slices.Clone(x)
	clear(zero[4:8])
	labels := []int{0, 1, 0, 1, 0, 1, 0, 1, 0, 1}
	cases := []struct {
		name string
		fn   func() error
	}{
		{"kmeans k>n", func() error { _, err := KMeans(x, 10, 4, 11, KMeansOptions{}); return err }},
		{"kmeans k=0", func() error { _, err := KMeans(x, 10, 4, 0, KMeansOptions{}); return err }},
		{"kmeans len", func() error { _, err := KMeans(x[:39], 10, 4, 2, KMeansOptions{}); return err }},
		{"kmeans nan", func() error { _, err := KMeans(nan, 10, 4, 2, KMeansOptions{}); return err }},
		{"kmeans inf", func() error { _, err := KMeans(inf, 10, 4, 2, KMeansOptions{}); return err }},
		{"kmeans zero row", func() error { _, err := KMeans(zero, 10, 4, 2, KMeansOptions{}); return err }},
		{"kmeans n=0", func() error { _, err := KMeans(nil, 0, 4, 1, KMeansOptions{}); return err }},
		{"kmeans d<0", func() error { _, err := KMeans(x, -10, -4, 1, KMeansOptions{}); return err }},
		{"agglo k>n", func() error { _, err := Agglomerative(x, 10, 4, 11); return err }},
		{"agglo len", func() error { _, err := Agglomerative(x, 10, 5, 2); return err }},
		{"agglo nan", func() error { _, err := Agglomerative(nan, 10, 4, 2); return err }},
		{"agglo too big", func() error {
			_, err := Agglomerative(make([]float32, MaxAgglomerative+1), MaxAgglomerative+1, 1, 2)
			return err
		}},
		{"silhouette labels len", func() error { _, _, err := Silhouette(x, 10, 4, labels[:9]); return err }},
		{"silhouette one label", func() error { _, _, err := Silhouette(x, 10, 4, make([]int, 10)); return err }},
		{"silhouette all distinct", func() error {
			_, _, err := Silhouette(x, 10, 4, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
			return err
		}},
		{"silhouette nan", func() error { _, _, err := Silhouette(nan, 10, 4, labels); return err }},
		{"sample maxPoints", func() error { _, _, err := SilhouetteSample(x, 10, 4, labels, 0, 1); return err }},
		{"choosek empty", func() error { _, _, err := ChooseK(x, 10, 4, nil, KMeansOptions{}); return err }},
		{"choosek k=1", func() error { _, _, err := ChooseK(x, 10, 4, []int{1, 2}, KMeansOptions{}); return err }},
		{"choosek k=n", func() error { _, _, err := ChooseK(x, 10, 4, []int{10}, KMeansOptions{}); return err }},
		{"choosek nan", func() error { _, _, err := ChooseK(nan, 10, 4, []int{2}, KMeansOptions{}); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			if err := c.fn(); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

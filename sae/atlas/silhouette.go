package atlas

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/blas"

	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/parallel"
)

// Silhouette returns the mean silhouette coefficient (Rousseeuw 1987) of a
// labelling of n unit vectors x (row-major, n rows of d values) under cosine
// distance 1 − cos, and the mean coefficient of each label's members.
//
// For row i with own cluster A, a(i) is its mean distance to the other
// members of A, b(i) the smallest mean distance to the members of another
// cluster, and s(i) = (b − a) / max(a, b); a row alone in its cluster scores
// 0, as in scikit-learn. Labels may be any ints; there must be at least two
// distinct labels and fewer labels than rows.
//
// The result is exact, not sampled: summed distances to a cluster C follow
// from Σ_{j∈C} (1 − x_i·x_j) = |C| − x_i·Σ_{j∈C} x_j, so the pairwise Gram
// matrix reduces to blocked float32 products of the rows with the cluster
// sums (gonum's Sgemm, on all cores), costing O(n·m·d) for m clusters, with
// float64 accumulation. Rows off the unit sphere are normalised on a copy.
func Silhouette(x []float32, n, d int, labels []int) (mean float64, perLabel map[int]float64, err error) {
	return silhouette(x, n, d, labels, nil)
}

// SilhouetteSample estimates the mean silhouette (Rousseeuw 1987) under
// cosine distance as Silhouette does, but evaluates s(i) only for a uniform
// random subset of at most maxPoints rows, each measured against all n rows;
// seed seeds the math/rand/v2 PCG generator that draws the subset. With
// maxPoints ≥ n it equals Silhouette. perLabel averages over the sampled
// rows of each label and omits labels none of whose rows were drawn.
func SilhouetteSample(x []float32, n, d int, labels []int, maxPoints int, seed uint64) (mean float64, perLabel map[int]float64, err error) {
	if maxPoints < 1 {
		return 0, nil, fmt.Errorf("atlas: SilhouetteSample: maxPoints = %d, want ≥ 1", maxPoints)
	}
	if maxPoints >= n {
		return silhouette(x, n, d, labels, nil)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	idx := rng.Perm(n)[:maxPoints]
	sort.Ints(idx)
	return silhouette(x, n, d, labels, idx)
}

// silhouette evaluates s(i) for the rows in idx (all rows when idx is nil).
func silhouette(x []float32, n, d int, labels []int, idx []int) (float64, map[int]float64, error) {
	xs, err := clusterInput(x, n, d)
	if err != nil {
		return 0, nil, fmt.Errorf("atlas: Silhouette: %w", err)
	}
	if len(labels) != n {
		return 0, nil, fmt.Errorf("atlas: Silhouette: len(labels) = %d, want n = %d", len(labels), n)
	}
	// Compact label ids, ordered by label value.
	distinct := make(map[int]int)
	for _, l := range labels {
		distinct[l] = 0
	}
	m := len(distinct)
	if m < 2 || m > n-1 {
		return 0, nil, fmt.Errorf("atlas: Silhouette: %d distinct labels for %d rows, want 2 ≤ labels ≤ n − 1", m, n)
	}
	values := make([]int, 0, m)
	for l := range distinct {
		values = append(values, l)
	}
	sort.Ints(values)
	for id, l := range values {
		distinct[l] = id
	}
	ids := make([]int, n)
	count := make([]float64, m)
	for i, l := range labels {
		ids[i] = distinct[l]
		count[ids[i]]++
	}
	// Cluster sums, in float64 then float32 for Sgemm.
	sum64 := make([]float64, m*d)
	for i := 0; i < n; i++ {
		s := sum64[ids[i]*d : (ids[i]+1)*d]
		for c, v := range xs[i*d : (i+1)*d] {
			s[c] += float64(v)
		}
	}
	sums := make([]float32, m*d)
	for i, v := range sum64 {
		sums[i] = float32(v)
	}
	sum64 = nil

	rows := len(idx)
	if idx == nil {
		rows = n
	}
	row := func(r int) int {
		if idx == nil {
			return r
		}
		return idx[r]
	}
	// Rows per block: bounded so a block's products and gathered rows stay
	// within a few MiB; fixed by m and d only, so results do not depend on
	// the number of cores.
	block := max(1, min(512, (1<<20)/m, (1<<20)/d))
	s := make([]float64, rows)
	impl := matmul.Impl()
	parallel.Each((rows+block-1)/block, func(_, b int) {
		r0 := b * block
		r1 := min(rows, r0+block)
		buf := make([]float32, (r1-r0)*d)
		for r := r0; r < r1; r++ {
			i := row(r)
			copy(buf[(r-r0)*d:(r-r0+1)*d], xs[i*d:(i+1)*d])
		}
		p := make([]float32, (r1-r0)*m)
		impl.Sgemm(blas.NoTrans, blas.Trans, r1-r0, m, d, 1, buf, d, sums, d, 0, p, m)
		for r := r0; r < r1; r++ {
			i := row(r)
			own := ids[i]
			if count[own] == 1 {
				s[r] = 0
				continue
			}
			self := 0.0
			for _, v := range xs[i*d : (i+1)*d] {
				self += float64(v) * float64(v)
			}
			pr := p[(r-r0)*m : (r-r0+1)*m]
			a := ((count[own] - 1) - (float64(pr[own]) - self)) / (count[own] - 1)
			bb := math.Inf(1)
			for c, v := range pr {
				if c == own {
					continue
				}
				if dc := (count[c] - float64(v)) / count[c]; dc < bb {
					bb = dc
				}
			}
			a, bb = math.Max(0, a), math.Max(0, bb)
			if den := math.Max(a, bb); den > 0 {
				s[r] = (bb - a) / den
			} else {
				s[r] = 0
			}
		}
	})
	if rows == 0 {
		return 0, nil, errors.New("atlas: Silhouette: no rows to evaluate")
	}
	total := 0.0
	lsum := make([]float64, m)
	lcnt := make([]int, m)
	for r, v := range s {
		total += v
		id := ids[row(r)]
		lsum[id] += v
		lcnt[id]++
	}
	perLabel := make(map[int]float64, m)
	for id, l := range values {
		if lcnt[id] > 0 {
			perLabel[l] = lsum[id] / float64(lcnt[id])
		}
	}
	return total / float64(rows), perLabel, nil
}

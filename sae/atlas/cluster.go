package atlas

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"

	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/parallel"
)

// MaxAgglomerative is the largest number of rows Agglomerative accepts: it
// holds the full n×n cosine-distance matrix in float32 (256 MiB at 8192).
const MaxAgglomerative = 8192

// clusterRowBlock is the fixed number of rows handled per task in blocked
// products. It does not depend on the number of cores, so results are the
// same whatever GOMAXPROCS is.
const clusterRowBlock = 512

// Clustering is a partition of n unit vectors into K groups, as returned by
// KMeans (spherical k-means, Dhillon & Modha 2001) and Agglomerative
// (average-link hierarchical clustering, Sokal & Michener 1958).
//
// Labels[i] in [0, K) is the group of row i. Centroids holds K rows of d
// values: the renormalised mean direction of each group (a zero row where a
// group's members cancel out). Objective is the sum over rows of the cosine
// distance 1 − cos to the row's centroid; lower is tighter.
type Clustering struct {
	K         int
	Labels    []int
	Centroids []float32
	Objective float64
}

// KMeansOptions tunes KMeans, which runs spherical k-means (Dhillon & Modha
// 2001) seeded by k-means++ (Arthur & Vassilvitskii 2007).
//
// Restarts is the number of independent seedings; the run with the lowest
// objective is kept (default 1). MaxIter bounds the Lloyd iterations of each
// run (default 100). Seed seeds a math/rand/v2 PCG generator: the same seed
// gives the same clustering. Context, when non-nil, cancels the work.
type KMeansOptions struct {
	Restarts int
	MaxIter  int
	Seed     uint64
	Context  context.Context
}

// KMeans clusters n unit vectors x (row-major, n rows of d values) into k
// groups by spherical k-means (Dhillon & Modha 2001): each row is assigned
// to the centroid with the largest dot product, i.e. the smallest cosine
// distance 1 − cos, and each centroid is the renormalised mean of its
// members. Centroids are seeded by greedy k-means++ (Arthur & Vassilvitskii
// 2007; several candidates per seed, see kmeansPlusPlus) with weights
// 1 − cos, which for unit vectors is half the squared Euclidean distance,
// so this is the original D² weighting. A cluster left empty is
// re-seeded with the row farthest from its own centroid. Of opts.Restarts
// seedings the one with the lowest objective is returned.
//
// Rows need not be exactly unit length: rows off the unit sphere are
// normalised on a copy. Assignment runs on all cores, over fixed blocks of
// rows, with blocked float32 Gram products (gonum's Sgemm); the result
// depends only on the inputs and opts.Seed, not on GOMAXPROCS.
func KMeans(x []float32, n, d, k int, opts KMeansOptions) (*Clustering, error) {
	return kmeans(x, n, d, k, opts, nil)
}

// kmeans is KMeans, with the rows' n×n dot products when gram is not nil.
func kmeans(x []float32, n, d, k int, opts KMeansOptions, gram []float32) (*Clustering, error) {
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	xs, err := clusterInput(x, n, d)
	if err != nil {
		return nil, fmt.Errorf("atlas: KMeans: %w", err)
	}
	if k < 1 || k > n {
		return nil, fmt.Errorf("atlas: KMeans: k = %d, want 1 ≤ k ≤ n = %d", k, n)
	}
	restarts := opts.Restarts
	if restarts <= 0 {
		restarts = 1
	}
	maxIter := opts.MaxIter
	if maxIter <= 0 {
		maxIter = 100
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15))
	var best *Clustering
	for r := 0; r < restarts; r++ {
		c, err := kmeansRun(ctx, xs, n, d, k, maxIter, gram, rng)
		if err != nil {
			return nil, err
		}
		if best == nil || c.Objective < best.Objective {
			best = c
		}
	}
	return best, nil
}

// kmeansRun is one seeding and Lloyd iteration of spherical k-means.
func kmeansRun(ctx context.Context, x []float32, n, d, k, maxIter int, gram []float32, rng *rand.Rand) (*Clustering, error) {
	cent, err := kmeansPlusPlus(ctx, x, n, d, k, gram, rng)
	if err != nil {
		return nil, err
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = -1
	}
	sim := make([]float32, n) // dot of each row with its assigned centroid
	if _, err := clusterAssign(ctx, x, n, d, cent, k, labels, sim); err != nil {
		return nil, err
	}
	sums := newClusterSums(x, n, d, k)
	for it := 0; it < maxIter; it++ {
		clusterFixEmpty(x, n, d, k, cent, labels, sim)
		sums.update(labels, cent)
		changed, err := clusterAssign(ctx, x, n, d, cent, k, labels, sim)
		if err != nil {
			return nil, err
		}
		if changed == 0 {
			break
		}
	}
	clusterFixEmpty(x, n, d, k, cent, labels, sim)
	sums.update(labels, cent)
	return &Clustering{K: k, Labels: labels, Centroids: cent, Objective: clusterObjective(x, n, d, cent, labels)}, nil
}

// kmeansPlusPlus picks k seeds by greedy k-means++ (Arthur & Vassilvitskii
// 2007, §6; the seeding of scikit-learn's KMeans): the first uniformly; for
// each next one, 2 + ⌊ln k⌋ candidates drawn with probability proportional
// to their cosine distance to the nearest seed so far, of which the one
// that leaves the smallest sum of those distances is kept. Trying several
// candidates makes a seeding that misses a cluster much rarer than with one.
//
// gram, when not nil, holds the n×n dot products of the rows, which ChooseK
// computes once for the many seedings it runs on a small sample.
func kmeansPlusPlus(ctx context.Context, x []float32, n, d, k int, gram []float32, rng *rand.Rand) ([]float32, error) {
	cent := make([]float32, k*d)
	dist := make([]float64, n)
	for i := range dist {
		dist[i] = math.Inf(1)
	}
	trials := 2 + int(math.Log(float64(k)))
	dots := make([]float32, n)
	best := make([]float64, n) // dist after the best candidate so far
	try := make([]float64, n)
	chosen := make(map[int]bool, k)
	// draw samples a row with probability proportional to dist, -1 when
	// every row coincides with a seed.
	draw := func(total float64) int {
		c := -1
		if total > 0 {
			u := rng.Float64() * total
			acc := 0.0
			for i, v := range dist {
				if v <= 0 {
					continue
				}
				acc += v
				c = i
				if acc > u {
					break
				}
			}
		}
		return c
	}
	// after sets out to dist updated with candidate c and returns its sum.
	after := func(c int, out []float64) float64 {
		if gram != nil {
			copy(dots, gram[c*n:(c+1)*n])
		} else {
			clusterDots(x, n, d, x[c*d:(c+1)*d], dots)
		}
		var sum float64
		for i, v := range dots {
			dv := math.Max(0, 1-float64(v))
			if i == c {
				dv = 0
			}
			out[i] = math.Min(dist[i], dv)
			sum += out[i]
		}
		return sum
	}
	for j := 0; j < k; j++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := -1
		if j == 0 {
			c = rng.IntN(n)
			after(c, best)
		} else {
			total := 0.0
			for _, v := range dist {
				total += v
			}
			bestSum := math.Inf(1)
			tried := make([]int, 0, trials)
			for range trials {
				t := draw(total)
				if t < 0 || chosen[t] || slices.Contains(tried, t) {
					continue
				}
				tried = append(tried, t)
				if sum := after(t, try); sum < bestSum {
					c, bestSum = t, sum
					best, try = try, best
				}
			}
			if c < 0 {
				// All remaining rows coincide with a seed: take any unused row.
				c = rng.IntN(n)
				for chosen[c] {
					c = (c + 1) % n
				}
				after(c, best)
			}
		}
		chosen[c] = true
		copy(cent[j*d:(j+1)*d], x[c*d:(c+1)*d])
		copy(dist, best)
	}
	return cent, nil
}

// clusterDots sets dots[i] = x_i · c for every row, over fixed row blocks on
// all cores.
func clusterDots(x []float32, n, d int, c []float32, dots []float32) {
	impl := matmul.Impl()
	parallel.Each((n+clusterRowBlock-1)/clusterRowBlock, func(_, b int) {
		r0 := b * clusterRowBlock
		r1 := min(n, r0+clusterRowBlock)
		impl.Sgemv(blas.NoTrans, r1-r0, d, 1, x[r0*d:r1*d], d, c, 1, 0, dots[r0:r1], 1)
	})
}

// clusterAssign assigns every row to its most similar centroid (ties to the
// lower index), records that similarity in sim and returns how many labels
// changed.
func clusterAssign(ctx context.Context, x []float32, n, d int, cent []float32, k int, labels []int, sim []float32) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	impl := matmul.Impl()
	nb := (n + clusterRowBlock - 1) / clusterRowBlock
	var changed atomic.Int64
	pool := sync.Pool{New: func() any { s := make([]float32, clusterRowBlock*k); return &s }}
	parallel.Each(nb, func(_, b int) {
		r0 := b * clusterRowBlock
		r1 := min(n, r0+clusterRowBlock)
		bp := pool.Get().(*[]float32)
		g := (*bp)[:(r1-r0)*k]
		impl.Sgemm(blas.NoTrans, blas.Trans, r1-r0, k, d, 1, x[r0*d:r1*d], d, cent, d, 0, g, k)
		ch := 0
		for i := r0; i < r1; i++ {
			row := g[(i-r0)*k : (i-r0+1)*k]
			bj, bv := 0, row[0]
			for j := 1; j < k; j++ {
				if row[j] > bv {
					bj, bv = j, row[j]
				}
			}
			if labels[i] != bj {
				ch++
				labels[i] = bj
			}
			sim[i] = bv
		}
		pool.Put(bp)
		changed.Add(int64(ch))
	})
	return int(changed.Load()), nil
}

// clusterFixEmpty re-seeds each empty cluster with the row farthest from its
// own centroid, taken from a cluster with more than one member.
func clusterFixEmpty(x []float32, n, d, k int, cent []float32, labels []int, sim []float32) {
	count := make([]int, k)
	for _, l := range labels {
		count[l]++
	}
	var order []int
	next := 0
	for j := 0; j < k; j++ {
		if count[j] > 0 {
			continue
		}
		if order == nil {
			order = make([]int, n)
			for i := range order {
				order[i] = i
			}
			sort.SliceStable(order, func(a, b int) bool { return sim[order[a]] < sim[order[b]] })
		}
		for next < n && count[labels[order[next]]] <= 1 {
			next++
		}
		if next == n {
			return // k ≤ n guarantees this never happens
		}
		i := order[next]
		next++
		count[labels[i]]--
		labels[i] = j
		count[j] = 1
		sim[i] = 1
		copy(cent[j*d:(j+1)*d], x[i*d:(i+1)*d])
	}
}

// clusterCentroids sets each centroid to the renormalised mean of its
// members, summing in float64 over fixed column ranges on all cores.
func clusterCentroids(x []float32, n, d, k int, labels []int, cent []float32) {
	sums := make([]float64, k*d)
	const cols = 64
	parallel.Each((d+cols-1)/cols, func(_, b int) {
		c0 := b * cols
		c1 := min(d, c0+cols)
		for i := 0; i < n; i++ {
			row := x[i*d+c0 : i*d+c1]
			s := sums[labels[i]*d+c0 : labels[i]*d+c1]
			for c, v := range row {
				s[c] += float64(v)
			}
		}
	})
	for j := 0; j < k; j++ {
		unitCentroid(cent[j*d:(j+1)*d], sums[j*d:(j+1)*d])
	}
}

// unitCentroid writes the float64 sum s of a cluster's rows, scaled to
// unit length, into cent (zero for a zero sum).
func unitCentroid(cent []float32, s []float64) {
	nn := 0.0
	for _, v := range s {
		nn += v * v
	}
	nn = math.Sqrt(nn)
	for c, v := range s {
		if nn > 0 {
			cent[c] = float32(v / nn)
		} else {
			cent[c] = 0
		}
	}
}

// clusterSums keeps the float64 sum of each cluster's rows between Lloyd
// iterations, so that a new labelling costs only the rows whose label
// changed: few after the first iterations, where recomputing every sum
// costs n·d additions each time.
type clusterSums struct {
	x       []float32
	n, d, k int
	sums    []float64
	count   []int
	held    []int // the label each row's values are summed under, -1 none
}

func newClusterSums(x []float32, n, d, k int) *clusterSums {
	held := make([]int, n)
	for i := range held {
		held[i] = -1
	}
	return &clusterSums{x: x, n: n, d: d, k: k, sums: make([]float64, k*d), count: make([]int, k), held: held}
}

// update moves each row whose label changed to its new cluster's sum and
// sets each centroid to its renormalised sum (zero for an empty cluster).
func (s *clusterSums) update(labels []int, cent []float32) {
	d := s.d
	for i, l := range labels {
		p := s.held[i]
		if l == p {
			continue
		}
		row := s.x[i*d : (i+1)*d]
		if p >= 0 {
			sp := s.sums[p*d : (p+1)*d]
			for c, v := range row {
				sp[c] -= float64(v)
			}
			s.count[p]--
		}
		sl := s.sums[l*d : (l+1)*d]
		for c, v := range row {
			sl[c] += float64(v)
		}
		s.count[l]++
		s.held[i] = l
	}
	for j := range s.k {
		sj := s.sums[j*d : (j+1)*d]
		if s.count[j] == 0 {
			clear(sj) // no rounding residue left behind
		}
		unitCentroid(cent[j*d:(j+1)*d], sj)
	}
}

// clusterObjective is Σ_i (1 − x_i · c_{label i}), accumulated in float64.
func clusterObjective(x []float32, n, d int, cent []float32, labels []int) float64 {
	nb := (n + clusterRowBlock - 1) / clusterRowBlock
	part := make([]float64, nb)
	parallel.Each(nb, func(_, b int) {
		r0 := b * clusterRowBlock
		r1 := min(n, r0+clusterRowBlock)
		s := 0.0
		for i := r0; i < r1; i++ {
			row := x[i*d : (i+1)*d]
			c := cent[labels[i]*d : (labels[i]+1)*d]
			dot := 0.0
			for t, v := range row {
				dot += float64(v) * float64(c[t])
			}
			s += 1 - dot
		}
		part[b] = s
	})
	total := 0.0
	for _, v := range part {
		total += v
	}
	return total
}

// chooseKGramMax is the largest n for which ChooseK holds the n×n dot
// products of the rows (64 MiB at 4,096) for the seedings of every k.
const chooseKGramMax = 4096

// ChooseK picks the number of clusters by silhouette (Rousseeuw 1987): it
// runs KMeans (spherical k-means with k-means++ seeding) with opts for every
// k in ks and returns the k with the highest mean silhouette (the smallest
// such k on a tie) together with every k's score. Each k must satisfy
// 2 ≤ k < n, where the silhouette is defined.
func ChooseK(x []float32, n, d int, ks []int, opts KMeansOptions) (best int, scores map[int]float64, err error) {
	if len(ks) == 0 {
		return 0, nil, errors.New("atlas: ChooseK: no candidate k")
	}
	for _, k := range ks {
		if k < 2 || k >= n {
			return 0, nil, fmt.Errorf("atlas: ChooseK: k = %d, want 2 ≤ k < n = %d", k, n)
		}
	}
	xs, err := clusterInput(x, n, d)
	if err != nil {
		return 0, nil, fmt.Errorf("atlas: ChooseK: %w", err)
	}
	// The seedings of every k read the rows' dot products: on a sample
	// small enough, compute them all once.
	var gram []float32
	if n <= chooseKGramMax {
		gram = make([]float32, n*n)
		matmul.Gemm(blas.NoTrans, blas.Trans, n, n, d, 1, xs, d, xs, d, 0, gram, n)
	}
	// Each k is clustered and scored on its own (KMeans seeds its
	// generator from opts.Seed alone), so the values of k run in parallel:
	// the products of one k on a small sample keep the cores only partly
	// busy.
	uniq := slices.Clone(ks)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	vals := make([]float64, len(uniq))
	errs := make([]error, len(uniq))
	parallel.Each(len(uniq), func(_, t int) {
		k := uniq[t]
		c, err := kmeans(xs, n, d, k, opts, gram)
		if err != nil {
			errs[t] = err
			return
		}
		if vals[t], _, err = Silhouette(xs, n, d, c.Labels); err != nil {
			errs[t] = fmt.Errorf("atlas: ChooseK: k = %d: %w", k, err)
		}
	})
	scores = make(map[int]float64, len(uniq))
	bestScore := math.Inf(-1)
	for t, k := range uniq {
		if errs[t] != nil {
			return 0, nil, errs[t]
		}
		scores[k] = vals[t]
		if vals[t] > bestScore {
			best, bestScore = k, vals[t]
		}
	}
	return best, scores, nil
}

// clusterInput checks shape and values and returns x with unit rows: x
// itself when every row is already within 1e-5 of unit length, otherwise a
// normalised copy.
func clusterInput(x []float32, n, d int) ([]float32, error) {
	if n < 1 || d < 1 {
		return nil, fmt.Errorf("shape %d×%d, want n ≥ 1 and d ≥ 1", n, d)
	}
	if len(x) != n*d {
		return nil, fmt.Errorf("len(x) = %d, want n×d = %d×%d = %d", len(x), n, d, n*d)
	}
	norms := make([]float64, n)
	var bad atomic.Int64
	bad.Store(-1)
	parallel.Each((n+clusterRowBlock-1)/clusterRowBlock, func(_, b int) {
		r0 := b * clusterRowBlock
		r1 := min(n, r0+clusterRowBlock)
		for i := r0; i < r1; i++ {
			s := 0.0
			for _, v := range x[i*d : (i+1)*d] {
				s += float64(v) * float64(v)
			}
			norms[i] = math.Sqrt(s)
			if math.IsNaN(s) || math.IsInf(s, 0) || s == 0 {
				bad.CompareAndSwap(-1, int64(i))
			}
		}
	})
	if i := bad.Load(); i >= 0 {
		if norms[i] == 0 {
			return nil, fmt.Errorf("row %d is zero", i)
		}
		return nil, fmt.Errorf("row %d is not finite", i)
	}
	unit := true
	for _, v := range norms {
		if math.Abs(v-1) > 1e-5 {
			unit = false
			break
		}
	}
	if unit {
		return x, nil
	}
	y := make([]float32, n*d)
	for i := 0; i < n; i++ {
		inv := 1 / norms[i]
		for c, v := range x[i*d : (i+1)*d] {
			y[i*d+c] = float32(float64(v) * inv)
		}
	}
	return y, nil
}

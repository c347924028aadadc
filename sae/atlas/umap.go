package atlas

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/rise-interp/rise/internal/parallel"
	"github.com/rise-interp/rise/internal/vec"
)

// UMAPOptions tunes UMAP, the Uniform Manifold Approximation and Projection
// of McInnes, Healy and Melville (2018, arXiv 1802.03426). Zero values take
// the defaults noted on each field.
type UMAPOptions struct {
	// Neighbors is the size k of the neighbourhood each point's fuzzy set
	// is built from (the paper's n); larger values keep more global
	// structure. Default 15.
	Neighbors int
	// MinDist is how close points may sit in the layout (the paper's
	// min-dist): the target membership curve is 1 below it. Default 0.1.
	MinDist float64
	// Spread is the scale of the target membership curve beyond MinDist.
	// Default 1.
	Spread float64
	// Epochs is the number of optimisation epochs. Default, as umap-js
	// chooses: 500 up to 2,500 rows, 400 up to 5,000, 300 up to 7,500,
	// then 200.
	Epochs int
	// Seed fixes every random choice: the same input, options and seed
	// give the same layout whatever GOMAXPROCS.
	Seed uint64
	// NegativeSamples is the number of negative samples per positive
	// sample. Default 5.
	NegativeSamples int
	// LearningRate is the initial SGD step, decayed linearly to zero.
	// Default 1.
	LearningRate float64
	// Progress, when not nil, is called with done = 0 once the neighbour
	// graph is built and then after each epoch, with total = Epochs.
	Progress func(done, total int)
	// Context, when not nil, cancels the computation.
	Context context.Context
}

// withDefaults fills zero fields and checks the rest.
func (o UMAPOptions) withDefaults(n int) (UMAPOptions, error) {
	o.Neighbors = cmp.Or(o.Neighbors, 15)
	o.MinDist = cmp.Or(o.MinDist, 0.1)
	o.Spread = cmp.Or(o.Spread, 1)
	if o.Epochs == 0 {
		o.Epochs = umapDefaultEpochs(n)
	}
	o.NegativeSamples = cmp.Or(o.NegativeSamples, 5)
	o.LearningRate = cmp.Or(o.LearningRate, 1)
	if o.Context == nil {
		o.Context = context.Background()
	}
	switch {
	case o.Neighbors < 2:
		return o, fmt.Errorf("umap: Neighbors must be at least 2, got %d", o.Neighbors)
	case !(o.Spread > 0) || math.IsInf(o.Spread, 0):
		return o, fmt.Errorf("umap: Spread must be a positive number, got %v", o.Spread)
	case !(o.MinDist >= 0) || o.MinDist > o.Spread:
		return o, fmt.Errorf("umap: MinDist must be between 0 and Spread (%v), got %v", o.Spread, o.MinDist)
	case o.Epochs < 1:
		return o, fmt.Errorf("umap: Epochs must be positive, got %d", o.Epochs)
	case o.NegativeSamples < 0:
		return o, fmt.Errorf("umap: NegativeSamples must not be negative, got %d", o.NegativeSamples)
	case !(o.LearningRate > 0) || math.IsInf(o.LearningRate, 0):
		return o, fmt.Errorf("umap: LearningRate must be a positive number, got %v", o.LearningRate)
	}
	return o, nil
}

// umapDefaultEpochs is umap-js's number of epochs for n rows (the larger
// the graph, the more edges each epoch samples, so fewer epochs are needed).
func umapDefaultEpochs(n int) int {
	switch {
	case n <= 2500:
		return 500
	case n <= 5000:
		return 400
	case n <= 7500:
		return 300
	}
	return 200
}

// UMAP lays out the n rows of x (row-major, d values each) in two
// dimensions with UMAP (McInnes, Healy and Melville 2018, arXiv 1802.03426)
// under cosine distance, returning n×2 coordinates, row-major.
//
// The steps follow the paper: the k nearest neighbours of every row (exact
// for small n, otherwise NN-descent, Dong, Moses and Li 2011); a local fuzzy
// simplicial set per row, with ρ_i the distance to the nearest neighbour and
// σ_i chosen so that Σ_j exp(-(d_ij - ρ_i)/σ_i) = log2 k (§3.1); their fuzzy
// union w_ij + w_ji - w_ij·w_ji; and a layout started from PCA, optimised
// for fuzzy-set cross entropy by stochastic gradient descent with edges
// sampled in proportion to their weight, negative sampling, gradients
// clipped to [-4, 4] and a linearly decaying learning rate (§3.2, §4.3),
// against the smooth membership 1/(1 + a·d^(2b)) fitted to MinDist and
// Spread. Work is spread over GOMAXPROCS goroutines in fixed blocks and
// every random choice is seeded from Seed, so the layout depends only on
// the input and the options, not on the number of goroutines. For large n
// the neighbour graph is approximate and the starting components come from
// a block subspace iteration rather than PCA.
func UMAP(x []float32, n, d int, opts UMAPOptions) ([]float64, error) {
	opts, err := opts.withDefaults(n)
	if err != nil {
		return nil, err
	}
	ctx := opts.Context
	k := opts.Neighbors
	switch {
	case d < 1:
		return nil, fmt.Errorf("umap: need rows of at least 1 value, got d = %d", d)
	case n < k+1:
		return nil, fmt.Errorf("umap: need more rows than Neighbors (%d), got %d", k, n)
	case len(x) != n*d:
		return nil, fmt.Errorf("umap: %d values do not make %d rows of %d", len(x), n, d)
	}
	u, err := umapUnitRows(x, n, d)
	if err != nil {
		return nil, err
	}
	var g *knnGraph
	if n <= umapExactMax {
		g, err = knnExact(ctx, u, n, d, k)
	} else {
		g, err = knnDescent(ctx, u, n, d, k, opts.Seed)
	}
	if err != nil {
		return nil, err
	}
	g.sortRows()
	if opts.Progress != nil {
		opts.Progress(0, opts.Epochs)
	}
	heads, tails, weights := umapFuzzyGraph(g)
	a, b := umapFitCurve(opts.MinDist, opts.Spread)
	y := umapInit(ctx, u, n, d, opts.Seed)
	if err := umapOptimise(ctx, y, n, heads, tails, weights, a, b, opts); err != nil {
		return nil, err
	}
	return y, nil
}

// umapUnitRows checks that x is finite and returns a copy with unit rows;
// zero rows stay zero and so sit at cosine distance 1 from every row.
func umapUnitRows(x []float32, n, d int) ([]float32, error) {
	for i, v := range x[:n*d] {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("umap: row %d column %d is %v, expected a finite number", i/d, i%d, f)
		}
	}
	return vec.UnitRows(x, n, d), nil
}

// umapFuzzyGraph builds the fuzzy simplicial set of the paper (§3.1,
// Algorithms 2 and 3) from a sorted kNN graph and returns it as directed
// edges (both directions of every pair) with their membership strengths.
func umapFuzzyGraph(g *knnGraph) (heads, tails []int32, weights []float64) {
	n, k := g.n, g.k
	target := math.Log2(float64(k))
	type edge struct {
		a, b int32
		w    float64
	}
	edges := make([]edge, 0, n*k)
	for i := range n {
		dist := g.dist[i*k : (i+1)*k]
		rho := 0.0
		var mean float64
		for _, v := range dist {
			mean += float64(v)
			if rho == 0 && v > 0 {
				rho = float64(v)
			}
		}
		mean /= float64(k)
		sigma := umapSmoothSigma(dist, rho, target)
		// Keep σ from collapsing when the neighbours are all at ρ.
		sigma = max(sigma, 1e-3*mean, 1e-12)
		for s, v := range dist {
			j := g.idx[i*k+s]
			w := math.Exp(-max(0, float64(v)-rho) / sigma)
			if int(j) == i || j < 0 {
				continue
			}
			edges = append(edges, edge{int32(i), j, w})
		}
	}
	// Fuzzy union: pair (i, j) with (j, i) by sorting on the unordered pair.
	slices.SortFunc(edges, func(p, q edge) int {
		pa, pb := min(p.a, p.b), max(p.a, p.b)
		qa, qb := min(q.a, q.b), max(q.a, q.b)
		if pa != qa {
			return int(pa - qa)
		}
		if pb != qb {
			return int(pb - qb)
		}
		return int(p.a - q.a)
	})
	for s := 0; s < len(edges); {
		e := edges[s]
		w := e.w
		next := s + 1
		if next < len(edges) && min(edges[next].a, edges[next].b) == min(e.a, e.b) && max(edges[next].a, edges[next].b) == max(e.a, e.b) {
			v := edges[next].w
			w = w + v - w*v
			next++
		}
		if w > 0 {
			heads = append(heads, e.a, e.b)
			tails = append(tails, e.b, e.a)
			weights = append(weights, w, w)
		}
		s = next
	}
	return heads, tails, weights
}

// umapSmoothSigma finds σ with Σ_j exp(-max(0, d_j - ρ)/σ) = target by
// bisection (the paper's SmoothKNNDist, Algorithm 3).
func umapSmoothSigma(dist []float32, rho, target float64) float64 {
	lo, hi := 0.0, math.Inf(1)
	sigma := 1.0
	for range 64 {
		var s float64
		for _, v := range dist {
			s += math.Exp(-max(0, float64(v)-rho) / sigma)
		}
		if math.Abs(s-target) < 1e-5 {
			break
		}
		if s > target {
			hi = sigma
			sigma = (lo + hi) / 2
		} else {
			lo = sigma
			if math.IsInf(hi, 1) {
				sigma *= 2
			} else {
				sigma = (lo + hi) / 2
			}
		}
	}
	return sigma
}

// umapFitCurve fits a and b of the membership 1/(1 + a·d^(2b)) by
// least squares to the target curve of the paper (Definition 11 and §4.3):
// 1 for d ≤ minDist and exp(-(d - minDist)/spread) beyond, on a grid of
// 300 points over [0, 3·spread]. The fit is Levenberg–Marquardt on log a
// and log b, so both stay positive.
func umapFitCurve(minDist, spread float64) (a, b float64) {
	const m = 300
	xs := make([]float64, 0, m)
	ys := make([]float64, 0, m)
	for t := 1; t < m; t++ { // d = 0 fits exactly for any a, b
		x := 3 * spread * float64(t) / float64(m-1)
		y := 1.0
		if x > minDist {
			y = math.Exp(-(x - minDist) / spread)
		}
		xs = append(xs, x)
		ys = append(ys, y)
	}
	resid := func(p, q float64) float64 {
		a, b := math.Exp(p), math.Exp(q)
		var s float64
		for t, x := range xs {
			r := 1/(1+a*math.Pow(x, 2*b)) - ys[t]
			s += r * r
		}
		return s
	}
	p, q := math.Log(1.5), math.Log(0.9)
	lambda := 1e-3
	cur := resid(p, q)
	for range 200 {
		a, b := math.Exp(p), math.Exp(q)
		// Normal equations J^T J δ = -J^T r in (p, q).
		var h11, h12, h22, g1, g2 float64
		for t, x := range xs {
			x2b := math.Pow(x, 2*b)
			den := 1 + a*x2b
			f := 1 / den
			r := f - ys[t]
			common := -a * x2b / (den * den)
			jp := common                       // ∂f/∂log a
			jq := common * 2 * b * math.Log(x) // ∂f/∂log b
			h11 += jp * jp
			h12 += jp * jq
			h22 += jq * jq
			g1 += jp * r
			g2 += jq * r
		}
		improved := false
		for range 30 {
			a11, a22 := h11*(1+lambda), h22*(1+lambda)
			det := a11*a22 - h12*h12
			if det == 0 {
				lambda *= 10
				continue
			}
			dp := -(a22*g1 - h12*g2) / det
			dq := -(a11*g2 - h12*g1) / det
			if next := resid(p+dp, q+dq); next < cur {
				p, q = p+dp, q+dq
				improvedBy := cur - next
				cur = next
				lambda = max(lambda/10, 1e-12)
				improved = improvedBy > 1e-15
				break
			}
			lambda *= 10
		}
		if !improved {
			break
		}
	}
	return math.Exp(p), math.Exp(q)
}

// umapPCAMax is the largest n for which the starting layout comes from PCA;
// above it umapTopComponents, which needs no n×n workspace, is used.
var umapPCAMax = 8192

// umapInit returns the starting layout: the first two principal components
// of the unit rows scaled to [-10, 10], with a little seeded jitter so that
// duplicate rows can separate, or random points in that square when PCA
// has nothing to say.
func umapInit(ctx context.Context, u []float32, n, d int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0x756d6170))
	y := make([]float64, 2*n)
	if d >= 2 {
		var coords []float64
		var err error
		if n <= umapPCAMax {
			coords, _, err = PCA(ctx, u, n, d, 2, seed)
		} else {
			coords = umapTopComponents(u, n, d, seed)
		}
		if err == nil && coords != nil {
			var big float64
			for _, v := range coords {
				big = max(big, math.Abs(v))
			}
			if big > 0 && !math.IsNaN(big) {
				for i, v := range coords {
					y[i] = 10*v/big + 1e-4*rng.NormFloat64()
				}
				return y
			}
		}
	}
	for i := range y {
		y[i] = 20*rng.Float64() - 10
	}
	return y
}

// umapTopComponents returns the coordinates of the n rows of u on their
// first two principal components, n×2, by subspace iteration with four
// vectors (Halko, Martinsson and Tropp 2011) and a Rayleigh–Ritz step.
// Work is split into fixed row blocks whose partial sums are added in block
// order, so the result does not depend on GOMAXPROCS. It returns nil when
// the rows have no spread.
func umapTopComponents(u []float32, n, d int, seed uint64) []float64 {
	const p, rounds, block = 4, 12, 512
	blocks := (n + block - 1) / block
	partial := make([][]float64, blocks)
	// sumBlocks adds the per-block vectors of length l in block order.
	sumBlocks := func(l int) []float64 {
		out := make([]float64, l)
		for _, v := range partial {
			for j := range out {
				out[j] += v[j]
			}
		}
		return out
	}
	parallel.Each(blocks, func(_, b int) {
		acc := make([]float64, d)
		for i := b * block; i < min(n, (b+1)*block); i++ {
			for j, v := range u[i*d : (i+1)*d] {
				acc[j] += float64(v)
			}
		}
		partial[b] = acc
	})
	mean := sumBlocks(d)
	for j := range mean {
		mean[j] /= float64(n)
	}
	rng := rand.New(rand.NewPCG(seed, 0x746f70))
	v := make([]float64, d*p) // column c is v[c*d:(c+1)*d]
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	z := make([]float64, n*p)
	project := func() { // z = (U - 1μᵀ) V
		var mv [p]float64
		for c := range p {
			for j := range d {
				mv[c] += mean[j] * v[c*d+j]
			}
		}
		parallel.Each(blocks, func(_, b int) {
			for i := b * block; i < min(n, (b+1)*block); i++ {
				row := u[i*d : (i+1)*d]
				for c := range p {
					col := v[c*d : (c+1)*d]
					var s float64
					for j, x := range row {
						s += float64(x) * col[j]
					}
					z[i*p+c] = s - mv[c]
				}
			}
		})
	}
	for range rounds {
		if !gramSchmidt(v, d, p) {
			return nil
		}
		project()
		// V = (U - 1μᵀ)ᵀ Z.
		parallel.Each(blocks, func(_, b int) {
			acc := make([]float64, d*p)
			for i := b * block; i < min(n, (b+1)*block); i++ {
				row := u[i*d : (i+1)*d]
				for c := range p {
					zc := z[i*p+c]
					col := acc[c*d : (c+1)*d]
					for j, x := range row {
						col[j] += (float64(x) - mean[j]) * zc
					}
				}
			}
			partial[b] = acc
		})
		copy(v, sumBlocks(d*p))
	}
	if !gramSchmidt(v, d, p) {
		return nil
	}
	project()
	// Rayleigh–Ritz: eigenvectors of ZᵀZ order the directions by variance.
	g := mat.NewSymDense(p, nil)
	for r := range p {
		for c := r; c < p; c++ {
			var s float64
			for i := range n {
				s += z[i*p+r] * z[i*p+c]
			}
			g.SetSym(r, c, s)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(g, true) {
		return nil
	}
	var vecs mat.Dense
	eig.VectorsTo(&vecs) // ascending eigenvalues
	out := make([]float64, 2*n)
	for i := range n {
		for k := range 2 {
			col := p - 1 - k
			var s float64
			for c := range p {
				s += z[i*p+c] * vecs.At(c, col)
			}
			out[2*i+k] = s
		}
	}
	return out
}

// gramSchmidt makes the p columns of v (each d long, stored one after
// another) orthonormal by modified Gram–Schmidt. A column that is (nearly) a
// combination of the ones before it is set to zero and the result is false;
// the other columns are still made orthonormal.
func gramSchmidt(v []float64, d, p int) bool {
	ok := true
	for c := range p {
		col := v[c*d : (c+1)*d]
		for r := range c {
			prev := v[r*d : (r+1)*d]
			var s float64
			for j := range col {
				s += col[j] * prev[j]
			}
			for j := range col {
				col[j] -= s * prev[j]
			}
		}
		var s float64
		for _, x := range col {
			s += x * x
		}
		if !(s > 1e-300) {
			clear(col)
			ok = false
			continue
		}
		inv := 1 / math.Sqrt(s)
		for j := range col {
			col[j] *= inv
		}
	}
	return ok
}

// fastPow returns x^y for x > 0 as 2^(y·log2 x), with log2 from the
// float64 exponent and an atanh series of the mantissa and 2^f from a
// Taylor series: relative error below 1e-6, cheaper than math.Pow, which the layout's gradients call for every sample. Outside
// [1e-200, 1e200] it falls back to math.Pow.
func fastPow(x, y float64) float64 {
	if !(x >= 1e-200 && x <= 1e200) {
		return math.Pow(x, y)
	}
	// x = m·2^e with m in [√½, √2).
	bits := math.Float64bits(x)
	e := int((bits>>52)&0x7ff) - 1023
	m := math.Float64frombits(bits&^(0x7ff<<52) | 1023<<52) // [1, 2)
	if m > math.Sqrt2 {
		m /= 2
		e++
	}
	// ln m = 2·atanh(s), s = (m−1)/(m+1), |s| ≤ 0.172.
	s := (m - 1) / (m + 1)
	s2 := s * s
	lnm := 2 * s * (1 + s2*(1.0/3+s2*(1.0/5+s2*(1.0/7))))
	t := y * (float64(e) + lnm*(1/math.Ln2)) // log2 of the result
	if !(t > -1000 && t < 1000) {
		return math.Pow(x, y)
	}
	n := float64(int64(t+1000.5)) - 1000 // round(t), t in (-1000, 1000)
	g := (t - n) * math.Ln2              // |g| ≤ ln2/2
	p := 1 + g*(1+g*(1.0/2+g*(1.0/6+g*(1.0/24+g*(1.0/120+g*(1.0/720))))))
	return p * math.Float64frombits(uint64(int64(n)+1023)<<52)
}

// umapClip limits a gradient component to [-4, 4], as in the paper's
// reference optimisation.
func umapClip(v float64) float64 {
	return max(-4, min(4, v))
}

// umapOptimise runs the SGD of the paper (§3.2 and Algorithm 5) in place on
// y: each directed edge (i, j) is sampled once every max(w)/w_e epochs,
// pulling i towards j with the attractive gradient of the fuzzy cross
// entropy, and each sample draws NegativeSamples random points that push i
// away with the repulsive gradient. Both directions of every pair are
// edges, so both ends move.
//
// Points are processed in parallel blocks of fixed size: within an epoch a
// point moves sequentially under its own samples, while the other ends are
// read from the layout as it was at the start of the epoch, and each block
// draws its negative samples from a generator seeded from (seed, epoch,
// block). The result is therefore the same for a seed whatever GOMAXPROCS.
func umapOptimise(ctx context.Context, y []float64, n int, heads, tails []int32, weights []float64, a, b float64, opts UMAPOptions) error {
	const block = 256
	epochs := opts.Epochs
	var wmax float64
	for _, w := range weights {
		wmax = max(wmax, w)
	}
	// An edge lighter than wmax/epochs would first be sampled after the
	// last epoch: leave it out (umap-learn and umap-js do the same).
	keep := func(e int) bool { return weights[e] >= wmax/float64(epochs) }
	// Group the kept edges by head (counting sort, stable).
	start := make([]int, n+1)
	m := 0
	for e, h := range heads {
		if keep(e) {
			start[h+1]++
			m++
		}
	}
	for i := range n {
		start[i+1] += start[i]
	}
	fill := slices.Clone(start[:n])
	tail := make([]int32, m)
	eps := make([]float64, m)
	for e, h := range heads {
		if !keep(e) {
			continue
		}
		s := fill[h]
		fill[h]++
		tail[s] = tails[e]
		eps[s] = wmax / weights[e]
	}
	nextPos := slices.Clone(eps)
	negs := opts.NegativeSamples
	epsNeg := make([]float64, m)
	for e := range eps {
		if negs > 0 {
			epsNeg[e] = eps[e] / float64(negs)
		}
	}
	nextNeg := slices.Clone(epsNeg)
	old := make([]float64, len(y))
	blocks := (n + block - 1) / block
	for epoch := range epochs {
		if err := ctx.Err(); err != nil {
			return err
		}
		alpha := opts.LearningRate * (1 - float64(epoch)/float64(epochs))
		now := float64(epoch)
		copy(old, y)
		parallel.Each(blocks, func(_, blk int) {
			rng := rand.New(rand.NewPCG(opts.Seed, uint64(epoch)<<32|uint64(blk)))
			for i := blk * block; i < min(n, (blk+1)*block); i++ {
				yx, yy := y[2*i], y[2*i+1]
				for e := start[i]; e < start[i+1]; e++ {
					if nextPos[e] > now {
						continue
					}
					j := int(tail[e])
					dx := yx - old[2*j]
					dy := yy - old[2*j+1]
					d2 := dx*dx + dy*dy
					if d2 > 0 {
						pb := fastPow(d2, b)
						c := -2 * a * b * (pb / d2) / (a*pb + 1)
						yx += umapClip(c*dx) * alpha
						yy += umapClip(c*dy) * alpha
					}
					nextPos[e] += eps[e]
					if negs == 0 {
						continue
					}
					count := int((now - nextNeg[e]) / epsNeg[e])
					for range count {
						r := rng.IntN(n)
						if r == i {
							continue
						}
						dx := yx - old[2*r]
						dy := yy - old[2*r+1]
						d2 := dx*dx + dy*dy
						gx, gy := 4.0, 4.0
						if d2 > 0 {
							c := 2 * b / ((0.001 + d2) * (a*fastPow(d2, b) + 1))
							gx, gy = umapClip(c*dx), umapClip(c*dy)
						}
						yx += gx * alpha
						yy += gy * alpha
					}
					nextNeg[e] += float64(count) * epsNeg[e]
				}
				y[2*i], y[2*i+1] = yx, yy
			}
		})
		if opts.Progress != nil {
			opts.Progress(epoch+1, epochs)
		}
	}
	for _, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("umap: the layout diverged to a non-finite value")
		}
	}
	return nil
}

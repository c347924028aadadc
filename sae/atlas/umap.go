package atlas

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

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

// umapUnitRows checks that x is finite and returns it with unit rows: x
// itself when every row is already within 1e-5 of unit length (as the
// atlas passes them: no second copy of a large decoder), otherwise a copy;
// zero rows stay zero and so sit at cosine distance 1 from every row.
func umapUnitRows(x []float32, n, d int) ([]float32, error) {
	unit := true
	for i := range n {
		var s float64
		for j, v := range x[i*d : (i+1)*d] {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("umap: row %d column %d is %v, expected a finite number", i, j, f)
			}
			s += float64(v) * float64(v)
		}
		if math.Abs(s-1) > 2e-5 {
			unit = false
		}
	}
	if unit {
		return x, nil
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

// umapGradients tabulates the two gradient coefficients of the layout's
// SGD as functions of the squared distance d² between two points: the
// attraction −2ab·d^(2(b−1)) / (1 + a·d^(2b)) and the repulsion
// 2b / ((0.001 + d²)(1 + a·d^(2b))) (McInnes et al. 2018, §4.3 and the
// reference implementation). Every sample needs one of them and a power
// d^(2b) costs more than the rest of the sample; the tables hold them at
// 512 points per octave of d² over [2^-32, 2^32], read by the float's
// exponent and top mantissa bits and interpolated linearly in d² (relative
// error below 1e-5, TestUMAPGradientTables), computed exactly outside.
type umapGradients struct {
	a, b float64
	tab  [2][]float64 // umapAttraction, umapRepulsion
}

// The two coefficients, as indices of umapGradients.tab and of exact's
// result.
const (
	umapAttraction = 0
	umapRepulsion  = 1
)

const (
	umapGradOctaves = 32 // the tables cover d² in [2^-umapGradOctaves, 2^umapGradOctaves)
	umapGradBits    = 9  // mantissa bits per octave: 2^9 points
	umapGradShift   = 52 - umapGradBits
)

func newUMAPGradients(a, b float64) *umapGradients {
	m := 2*umapGradOctaves<<umapGradBits + 1
	g := &umapGradients{a: a, b: b, tab: [2][]float64{make([]float64, m), make([]float64, m)}}
	for t := range m {
		e := t>>umapGradBits - umapGradOctaves
		d2 := math.Ldexp(1+float64(t&(1<<umapGradBits-1))/(1<<umapGradBits), e)
		c := g.exact(d2)
		g.tab[umapAttraction][t], g.tab[umapRepulsion][t] = c[umapAttraction], c[umapRepulsion]
	}
	return g
}

// exact returns the attraction and repulsion coefficients at d2 > 0.
func (g *umapGradients) exact(d2 float64) [2]float64 {
	pb := math.Pow(d2, g.b)
	return [2]float64{
		umapAttraction: -2 * g.a * g.b * (pb / d2) / (g.a*pb + 1),
		umapRepulsion:  2 * g.b / ((0.001 + d2) * (g.a*pb + 1)),
	}
}

// lookup returns the table slot of d2 and its place between that slot and
// the next, or ok false outside the tables.
func (g *umapGradients) lookup(d2 float64) (slot int, frac float64, ok bool) {
	bits := math.Float64bits(d2)
	e := int(bits>>52) - 1023 // d2 > 0 and finite: the sign bit is clear
	if e < -umapGradOctaves || e >= umapGradOctaves {
		return 0, 0, false
	}
	slot = (e+umapGradOctaves)<<umapGradBits | int(bits>>umapGradShift)&(1<<umapGradBits-1)
	frac = float64(bits&(1<<umapGradShift-1)) * (1.0 / (1 << umapGradShift))
	return slot, frac, true
}

// attraction returns −2ab·d^(2(b−1)) / (1 + a·d^(2b)) for d2 > 0.
func (g *umapGradients) attraction(d2 float64) float64 { return g.coef(umapAttraction, d2) }

// repulsion returns 2b / ((0.001 + d²)(1 + a·d^(2b))) for d2 > 0.
func (g *umapGradients) repulsion(d2 float64) float64 { return g.coef(umapRepulsion, d2) }

// coef returns coefficient k at d2 > 0: from its table, or exactly outside.
func (g *umapGradients) coef(k int, d2 float64) float64 {
	t, f, ok := g.lookup(d2)
	if !ok {
		return g.exact(d2)[k]
	}
	tab := g.tab[k]
	return tab[t] + f*(tab[t+1]-tab[t])
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
	grad := newUMAPGradients(a, b)
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
						c := grad.attraction(d2)
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
							c := grad.repulsion(d2)
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

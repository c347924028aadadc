package synth

import (
	"context"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/lapack/lapack64"

	"github.com/rise-interp/rise/internal/parallel"
	"github.com/rise-interp/rise/internal/vec"
)

// Every random choice draws from its own stream: a PCG generator keyed by
// the seed and the stream's purpose, at an index (a feature, a trace, a row).
// Streams never depend on the order in which goroutines run.
const (
	streamDirections uint64 = iota + 1
	streamOffset
	streamScales
	streamRanks
	streamGroups
	streamTraces
	streamRows
)

// splitmix64 is the SplitMix64 finaliser, a good 64-bit mixing function.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func streamKey(seed, stream uint64) uint64 { return splitmix64(seed ^ splitmix64(stream)) }

// newRand returns the random stream of (seed, stream, index).
func newRand(seed, stream, index uint64) *rand.Rand {
	return rand.New(rand.NewPCG(streamKey(seed, stream), index))
}

// Orthonormalising the directions costs about features² × d_model
// multiply-adds; above this it is skipped (random directions in that many
// dimensions are nearly orthogonal anyway).
const maxOrthoWork = 1 << 32

// Checking every pair of directions costs features²/2 × d_model
// multiply-adds; above this only the first features are checked against all.
const maxCosWork = 1 << 33

// numConds is the number of (label, length, trigger) conditions of a step.
const numConds = int(numLabels) * 2 * 2

// cond is the condition index of a step: its label, whether its trace is
// long and whether its text carries the token trigger.
func cond(l label, long, trigger bool) uint8 {
	c := uint8(l) * 4
	if long {
		c += 2
	}
	if trigger {
		c++
	}
	return c
}

// model holds everything a row is drawn from.
type model struct {
	cfg        Config
	dirs       []float32 // [features][d_model], unit rows
	offset     []float32 // [d_model]
	scale      []float32 // [features]
	freq       []float64 // base firing probability by feature
	groups     [6][]int  // reflection, backtracking, other, long, then unnamed and token (empty unless planted)
	thr        [numConds][]uint32
	noiseStd   float32
	sigma      float64
	orthogonal bool
	rowKey     uint64
}

// Group indices of model.groups, in the order of Behaviours.
var groupOfLabel = [numLabels]int{labelOther: 2, labelReflection: 0, labelBacktracking: 1, labelUnnamed: groupUnnamed}

const (
	groupLong    = 3
	groupUnnamed = 4
	groupToken   = 5
)

func newModel(ctx context.Context, cfg Config) (*model, error) {
	F, D := cfg.Features, cfg.DModel
	m := &model{
		cfg:      cfg,
		noiseStd: float32(cfg.NoiseNorm / math.Sqrt(float64(D))),
		sigma:    cfg.MagnitudeSigma,
		rowKey:   streamKey(cfg.Seed, streamRows),
	}
	var err error
	if m.dirs, m.orthogonal, err = directions(ctx, cfg.Seed, F, D); err != nil {
		return nil, err
	}

	// The offset points in a random direction; its norm is set apart from
	// the signal's, as in real residual streams where the mean dominates.
	r := newRand(cfg.Seed, streamOffset, 0)
	off := make([]float64, D)
	for d := range off {
		off[d] = r.NormFloat64()
	}
	m.offset, _ = vec.Scale64(off, cfg.OffsetNorm)

	r = newRand(cfg.Seed, streamScales, 0)
	m.scale = make([]float32, F)
	lo, hi := math.Log(ScaleMin), math.Log(ScaleMax)
	for f := range m.scale {
		m.scale[f] = float32(math.Exp(lo + (hi-lo)*r.Float64()))
	}

	// Firing rates follow a power law over a random ranking of the
	// features, so that a feature's id tells nothing of its frequency.
	rates := powerLawRates(F, cfg.PowerLaw, cfg.ActivePerRow, MaxBaseRate)
	featureOfRank := newRand(cfg.Seed, streamRanks, 0).Perm(F)
	m.freq = make([]float64, F)
	for rank, f := range featureOfRank {
		m.freq[f] = rates[rank]
	}

	// Behaviour groups take features of middling frequency: the most
	// frequent ones are left alone (they are the dense, unspecific latents
	// every SAE has), and a boost several times over a middling base rate
	// stays a probability. The window of ranks is twice as wide as needed,
	// and the groups are dealt from it at random.
	slots := cfg.groupSlots()
	g, ng := cfg.GroupSize, len(slots)
	width := max(ng*g, min(2*ng*g, F-F/16))
	start := min(F/16, F-width)
	window := newRand(cfg.Seed, streamGroups, 0).Perm(width)[:ng*g]
	for i, w := range window {
		m.groups[slots[i%ng]] = append(m.groups[slots[i%ng]], featureOfRank[start+w])
	}

	cohere(m.dirs, D, m.groups[:], cfg.GroupCoherence)

	boosted := func(p float64) float64 { return min(cfg.Boost*p, MaxBoostedRate) }
	for l := range numLabels {
		for _, long := range []bool{false, true} {
			for _, trigger := range []bool{false, true} {
				c := cond(l, long, trigger)
				rate := append([]float64(nil), m.freq...)
				for _, f := range m.groups[groupOfLabel[l]] {
					rate[f] = boosted(m.freq[f])
				}
				if long {
					for _, f := range m.groups[groupLong] {
						rate[f] = boosted(m.freq[f])
					}
				}
				if trigger {
					// The token feature fires on the trigger whatever
					// the step's label, as often as a feature can.
					for _, f := range m.groups[groupToken] {
						rate[f] = MaxBoostedRate
					}
				}
				m.thr[c] = make([]uint32, F)
				for f, p := range rate {
					m.thr[c][f] = uint32(math.Min(p*(1<<32), math.MaxUint32))
				}
			}
		}
	}
	return m, nil
}

// cohere turns the directions of each group towards the group's shared
// direction g, the normalised sum of its members: member f becomes
// c·g + sqrt(1−c²)·u_f, where u_f is the unit part of f orthogonal to g.
// Everything happens inside the span of the group's own directions, so
// orthonormal directions stay orthogonal to every feature outside the group.
// A group of one, or c = 0, is left as it is.
func cohere(dirs []float32, D int, groups [][]int, c float64) {
	if c == 0 {
		return
	}
	s := math.Sqrt(1 - c*c)
	g := make([]float64, D)
	u := make([]float64, D)
	for _, ids := range groups {
		if len(ids) < 2 {
			continue
		}
		clear(g)
		for _, f := range ids {
			for d, v := range dirs[f*D : (f+1)*D] {
				g[d] += float64(v)
			}
		}
		if !normalise(g) {
			continue
		}
		for _, f := range ids {
			row := dirs[f*D : (f+1)*D]
			var p float64
			for d, v := range row {
				p += float64(v) * g[d]
			}
			for d, v := range row {
				u[d] = float64(v) - p*g[d]
			}
			if !normalise(u) {
				clear(u)
			}
			for d := range row {
				u[d] = c*g[d] + s*u[d]
			}
			copy(row, unit(u))
		}
	}
}

// normalise scales v to unit norm in place; it reports false for a vector
// too short to have a direction.
func normalise(v []float64) bool {
	var sq float64
	for _, x := range v {
		sq += x * x
	}
	if sq < 1e-24 {
		return false
	}
	k := 1 / math.Sqrt(sq)
	for i := range v {
		v[i] *= k
	}
	return true
}

// powerLawRates returns firing probabilities by rank, p_r = min(c (r+1)^-a,
// pmax), with c chosen so that they sum to mean (the expected number of
// active features per row). The caller ensures mean <= n * pmax.
func powerLawRates(n int, a, mean, pmax float64) []float64 {
	w := make([]float64, n)
	for r := range w {
		w[r] = math.Pow(float64(r+1), -a)
	}
	sum := func(c float64) float64 {
		s := 0.0
		for _, x := range w {
			s += math.Min(c*x, pmax)
		}
		return s
	}
	lo, hi := 0.0, pmax/w[n-1] // at hi every rate is pmax
	for range 200 {
		mid := (lo + hi) / 2
		if sum(mid) < mean {
			lo = mid
		} else {
			hi = mid
		}
	}
	for r := range w {
		w[r] = math.Min(hi*w[r], pmax)
	}
	return w
}

// directions draws F unit directions in D dimensions, row-major. Each starts
// as a Gaussian vector from its own stream. When F <= D and the cost allows,
// they are orthonormalised by a QR factorisation (LAPACK's blocked
// Householder QR, whose result does not depend on the number of cores);
// otherwise each is normalised alone.
func directions(ctx context.Context, seed uint64, F, D int) ([]float32, bool, error) {
	gaussian := func(f int, v []float64) {
		r := newRand(seed, streamDirections, uint64(f))
		for d := range v {
			v[d] = r.NormFloat64()
		}
	}
	dirs := make([]float32, F*D)
	if !(F <= D && float64(F)*float64(F)*float64(D) <= maxOrthoWork) {
		_, err := parallel.EachContext(ctx, F, func(_, f int) {
			v := make([]float64, D)
			gaussian(f, v)
			copy(dirs[f*D:(f+1)*D], unit(v))
		})
		return dirs, false, err
	}
	// QR of the D×F matrix whose columns are the vectors; the columns of
	// Q are then orthonormal, and become the rows of dirs.
	a := blas64.General{Rows: D, Cols: F, Stride: F, Data: make([]float64, D*F)}
	v := make([]float64, D)
	for f := range F {
		gaussian(f, v)
		for d, x := range v {
			a.Data[d*F+f] = x
		}
	}
	tau := make([]float64, F)
	work := make([]float64, 1)
	lapack64.Geqrf(a, tau, work, -1)
	lw := max(int(work[0]), F)
	lapack64.Orgqr(a, tau, work, -1)
	lw = max(lw, int(work[0]))
	work = make([]float64, lw)
	lapack64.Geqrf(a, tau, work, lw)
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	lapack64.Orgqr(a, tau, work, lw)
	for f := range F {
		for d := range D {
			v[d] = a.Data[d*F+f]
		}
		copy(dirs[f*D:(f+1)*D], unit(v))
	}
	return dirs, true, ctx.Err()
}

// cosStats is the result of maxAbsCos.
type cosStats struct {
	max   float64
	pairs int64
	exact bool
}

// maxAbsCos returns the largest |cosine| between distinct unit rows of dirs.
// Gram blocks come from a parallel float32 GEMM. When checking every pair
// would cost more than maxCosWork, the first rows are checked against all
// others, as many as the budget allows.
func maxAbsCos(ctx context.Context, dirs []float32, F, D int) (cosStats, error) {
	rowsChecked := F
	exact := float64(F)*float64(F-1)/2*float64(D) <= maxCosWork
	if !exact {
		rowsChecked = max(1, min(F, int(maxCosWork/(float64(F)*float64(D)))))
	}
	bs := max(16, min(256, (16<<20)/(4*F)))
	c := make([]float32, bs*F)
	var st cosStats
	st.exact = exact
	for i0 := 0; i0 < rowsChecked; i0 += bs {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		i1 := min(i0+bs, rowsChecked)
		m, n := i1-i0, F-i0
		// gonum's own kernels, not whatever BLAS the binary was built
		// with: the same seed gives the same bytes in every build.
		blasImpl.Sgemm(blas.NoTrans, blas.Trans, m, n, D, 1, dirs[i0*D:i1*D], D, dirs[i0*D:], D, 0, c[:m*n], n)
		for i := range m {
			for j := i + 1; j < n; j++ {
				if v := math.Abs(float64(c[i*n+j])); v > st.max {
					st.max = v
				}
			}
			st.pairs += int64(n - i - 1)
		}
	}
	return st, nil
}

// blasImpl is gonum's own BLAS: vectorised saxpy for the rows, and the
// products behind max_abs_cos, the same in every build.
var blasImpl gonum.Implementation

// rowGen draws rows. Each goroutine has its own.
type rowGen struct {
	m   *model
	pcg *rand.PCG
	r   *rand.Rand
}

func (m *model) newRowGen() rowGen {
	pcg := rand.NewPCG(0, 0)
	return rowGen{m: m, pcg: pcg, r: rand.New(pcg)}
}

// row fills out with row number row of condition c and returns the number of
// active features, counting each in fired. The row's stream is reseeded from
// (seed, row), so the row does not depend on which goroutine draws it.
func (g *rowGen) row(row uint64, c uint8, out []float32, fired []int64) int {
	m := g.m
	g.pcg.Seed(m.rowKey, row)
	copy(out, m.offset)
	thr := m.thr[c]
	F := len(thr)
	active := 0
	for f := 0; f < F; f += 2 {
		// One 64-bit draw decides two features, against 32-bit thresholds.
		u := g.pcg.Uint64()
		if uint32(u) < thr[f] {
			g.plant(f, out)
			fired[f]++
			active++
		}
		if f+1 < F && uint32(u>>32) < thr[f+1] {
			g.plant(f+1, out)
			fired[f+1]++
			active++
		}
	}
	if s := m.noiseStd; s != 0 {
		for d := range out {
			out[d] += s * float32(g.r.NormFloat64())
		}
	}
	return active
}

// plant adds feature f with a log-normal magnitude. Log-normal magnitudes
// are heavy-tailed like SAE activations: most firings are moderate, a few
// are several times larger.
func (g *rowGen) plant(f int, out []float32) {
	m := g.m
	a := m.scale[f]
	if m.sigma != 0 {
		a *= float32(math.Exp(m.sigma * g.r.NormFloat64()))
	}
	D := len(out)
	blasImpl.Saxpy(D, a, m.dirs[f*D:(f+1)*D], 1, out, 1)
}

// unit is v at unit length in float32 (a Gaussian draw always has a
// direction).
func unit(v []float64) []float32 {
	u, _ := vec.Scale64(v, 1)
	return u
}

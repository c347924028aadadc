package atlas

import (
	"context"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/mat"

	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/parallel"
)

// umapPCAMax is the largest n for which the starting layout comes from PCA
// (float64, gonum); above it umapTopComponents, the same two components by
// float32 matrix products, is used (at 8,192 rows of 1,536 it costs a
// fraction of PCA's time).
var umapPCAMax = 4096

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
// vectors (Halko, Martinsson and Tropp 2011) and a Rayleigh–Ritz step. The
// products with the rows are float32 matrix products (matmul.Gemm), each
// row of a product computed whole by one call, so the result does not
// depend on GOMAXPROCS; the mean and the small steps are float64. It
// returns nil when the rows have no spread.
func umapTopComponents(u []float32, n, d int, seed uint64) []float64 {
	const p, rounds, block = 4, 12, 512
	blocks := (n + block - 1) / block
	partial := make([][]float64, blocks)
	parallel.Each(blocks, func(_, b int) {
		acc := make([]float64, d)
		for i := b * block; i < min(n, (b+1)*block); i++ {
			for j, v := range u[i*d : (i+1)*d] {
				acc[j] += float64(v)
			}
		}
		partial[b] = acc
	})
	mean := make([]float64, d)
	for _, v := range partial {
		for j := range mean {
			mean[j] += v[j]
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	rng := rand.New(rand.NewPCG(seed, 0x746f70))
	v := make([]float64, d*p) // column c is v[c*d:(c+1)*d]
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	v32 := make([]float32, d*p) // V as a d×p row-major matrix
	z32 := make([]float32, n*p) // Z = (U - 1μᵀ) V, n×p
	w32 := make([]float32, d*p) // Uᵀ Z, d×p
	project := func() {
		for c := range p {
			for j := range d {
				v32[j*p+c] = float32(v[c*d+j])
			}
		}
		matmul.Gemm(blas.NoTrans, blas.NoTrans, n, p, d, 1, u, d, v32, p, 0, z32, p)
		var mv [p]float32
		for c := range p {
			var s float64
			for j := range d {
				s += mean[j] * v[c*d+j]
			}
			mv[c] = float32(s)
		}
		for i := range n {
			for c := range p {
				z32[i*p+c] -= mv[c]
			}
		}
	}
	for range rounds {
		if !gramSchmidt(v, d, p) {
			return nil
		}
		project()
		// V = (U - 1μᵀ)ᵀ Z = UᵀZ - μ (1ᵀZ).
		matmul.Gemm(blas.Trans, blas.NoTrans, d, p, n, 1, u, d, z32, p, 0, w32, p)
		var zs [p]float64
		for i := range n {
			for c := range p {
				zs[c] += float64(z32[i*p+c])
			}
		}
		for c := range p {
			for j := range d {
				v[c*d+j] = float64(w32[j*p+c]) - mean[j]*zs[c]
			}
		}
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
				s += float64(z32[i*p+r]) * float64(z32[i*p+c])
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
				s += float64(z32[i*p+c]) * vecs.At(c, col)
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

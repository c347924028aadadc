package atlas

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// PCA projects the n rows of x (row-major, d values each) onto their first
// k principal components, returning the [n, k] coordinates and the fraction
// of variance each component explains. The components are found by subspace
// iteration on the centred data (Halko, Martinsson and Tropp 2011,
// Algorithm 4.4, with a few power steps), so the cost is a handful of passes
// of n×d×(k+8) products whatever d is, instead of a d×d eigenproblem.
// The seed fixes the random start; signs are fixed so that each
// component's largest coordinate is positive.
func PCA(ctx context.Context, x []float32, n, d, k int, seed uint64) (coords []float64, explained []float64, err error) {
	switch {
	case n < 2 || d < 1:
		return nil, nil, fmt.Errorf("pca: need at least 2 rows of at least 1 value, got %d × %d", n, d)
	case len(x) != n*d:
		return nil, nil, fmt.Errorf("pca: %d values do not make %d rows of %d", len(x), n, d)
	case k < 1 || k > min(n, d):
		return nil, nil, fmt.Errorf("pca: k must be between 1 and %d, got %d", min(n, d), k)
	}
	// Centred copy in float64.
	a := mat.NewDense(n, d, nil)
	mean := make([]float64, d)
	for i := range n {
		for j := range d {
			v := float64(x[i*d+j])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, fmt.Errorf("pca: row %d column %d is %v, expected a finite number", i, j, v)
			}
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	raw := a.RawMatrix()
	var total float64
	for i := range n {
		for j := range d {
			v := float64(x[i*d+j]) - mean[j]
			raw.Data[i*raw.Stride+j] = v
			total += v * v
		}
	}
	if total == 0 {
		return nil, nil, errors.New("pca: the rows are all equal; there is no variance to explain")
	}
	// Range finder: Y = A Ω, then power steps with re-orthonormalisation.
	p := min(k+8, min(n, d))
	rng := rand.New(rand.NewPCG(seed, 0x9ca))
	omega := mat.NewDense(d, p, nil)
	for i := range d {
		for j := range p {
			omega.Set(i, j, rng.NormFloat64())
		}
	}
	var y, z mat.Dense
	y.Mul(a, omega)
	q := orthonormal(&y)
	for range 4 {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		z.Mul(a.T(), q)
		qz := orthonormal(&z)
		y.Reset()
		y.Mul(a, qz)
		q = orthonormal(&y)
	}
	// B = Qᵀ A is small (p × d); its SVD gives the components.
	var b mat.Dense
	b.Mul(q.T(), a)
	var svd mat.SVD
	if !svd.Factorize(&b, mat.SVDThin) {
		return nil, nil, errors.New("pca: the SVD did not converge")
	}
	var v mat.Dense
	svd.VTo(&v) // d × p, columns are components
	sv := svd.Values(nil)
	coords = make([]float64, n*k)
	explained = make([]float64, k)
	comp := make([]float64, d)
	for c := range k {
		for j := range d {
			comp[j] = v.At(j, c)
		}
		// Sign convention: the largest |coordinate| of the component is positive.
		big := 0
		for j := range comp {
			if math.Abs(comp[j]) > math.Abs(comp[big]) {
				big = j
			}
		}
		if comp[big] < 0 {
			for j := range comp {
				comp[j] = -comp[j]
			}
		}
		for i := range n {
			row := raw.Data[i*raw.Stride : i*raw.Stride+d]
			coords[i*k+c] = blas64.Implementation().Ddot(d, row, 1, comp, 1)
		}
		explained[c] = sv[c] * sv[c] / total
	}
	return coords, explained, nil
}

// orthonormal returns an orthonormal basis of the columns of m (tall and
// thin, r × c with c small): modified Gram–Schmidt run twice, which is
// stable ("twice is enough", Giraud et al. 2005), at O(r·c²) and never an
// r × r matrix as a full QR's Q would be.
func orthonormal(m *mat.Dense) *mat.Dense {
	r, c := m.Dims()
	cols := make([]float64, r*c) // column-major, as gramSchmidt takes them
	for j := range c {
		for i := range r {
			cols[j*r+i] = m.At(i, j)
		}
	}
	gramSchmidt(cols, r, c)
	gramSchmidt(cols, r, c)
	q := mat.NewDense(r, c, nil)
	for j := range c {
		for i := range r {
			q.Set(i, j, cols[j*r+i])
		}
	}
	return q
}

// Trustworthiness measures how far a low-dimensional embedding keeps the
// neighbourhoods of the original points (Venna and Kaski 2001): with r(i, j)
// the rank of j among i's neighbours in the original space,
//
//	T(k) = 1 - 2/(n·k·(2n - 3k - 1)) · Σ_i Σ_{j ∈ U_k(i)} (r(i, j) - k)
//
// where U_k(i) are the k nearest neighbours of i in the embedding that are
// not among its k nearest in the original space. 1 is perfect. The original
// space uses cosine distance (rows need not be normalised); the embedding
// Euclidean distance. maxPoints > 0 evaluates that many random points
// (seeded) against all points, for large n.
func Trustworthiness(x []float32, n, d int, emb []float64, e int, k, maxPoints int, seed uint64) (float64, error) {
	switch {
	case len(x) != n*d || len(emb) != n*e:
		return 0, fmt.Errorf("trustworthiness: %d and %d values do not make %d rows of %d and %d", len(x), len(emb), n, d, e)
	case k < 1 || 3*k+1 >= 2*n:
		return 0, fmt.Errorf("trustworthiness: k must be between 1 and (2n-2)/3 for n = %d, got %d", n, k)
	}
	norms := make([]float64, n)
	for i := range n {
		var s float64
		for _, v := range x[i*d : (i+1)*d] {
			s += float64(v) * float64(v)
		}
		norms[i] = math.Sqrt(s)
	}
	points := make([]int, n)
	for i := range points {
		points[i] = i
	}
	if maxPoints > 0 && maxPoints < n {
		rng := rand.New(rand.NewPCG(seed, 0x7e5))
		rng.Shuffle(n, func(i, j int) { points[i], points[j] = points[j], points[i] })
		points = points[:maxPoints]
	}
	orig := make([]float64, n)
	embd := make([]float64, n)
	idx := make([]int, n)
	rank := make([]int, n)
	var sum float64
	xi := make([]float64, d)
	for _, i := range points {
		for j := range d {
			xi[j] = float64(x[i*d+j])
		}
		for j := range n {
			var dot float64
			row := x[j*d : (j+1)*d]
			for t, v := range row {
				dot += xi[t] * float64(v)
			}
			den := norms[i] * norms[j]
			if den == 0 {
				orig[j] = 1
			} else {
				orig[j] = 1 - dot/den
			}
			var sq float64
			for t := range e {
				df := emb[i*e+t] - emb[j*e+t]
				sq += df * df
			}
			embd[j] = sq
		}
		// Ranks in the original space, excluding i itself.
		nearestFirst(idx, i, orig)
		for r, j := range idx {
			rank[j] = r // i itself has rank 0, its nearest neighbour 1
		}
		nearestFirst(idx, i, embd)
		for _, j := range idx[1 : k+1] {
			if r := rank[j]; r > k {
				sum += float64(r - k)
			}
		}
	}
	m := float64(len(points))
	nf, kf := float64(n), float64(k)
	return 1 - 2/(m*kf*(2*nf-3*kf-1))*sum, nil
}

// nearestFirst sets idx to the points 0..len(idx)-1 ordered by dist, with i
// first and ties kept in index order.
func nearestFirst(idx []int, i int, dist []float64) {
	for j := range idx {
		idx[j] = j
	}
	sort.SliceStable(idx, func(a, b int) bool {
		if idx[a] == i || idx[b] == i {
			return idx[a] == i
		}
		return dist[idx[a]] < dist[idx[b]]
	})
}

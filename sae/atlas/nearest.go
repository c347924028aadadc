package atlas

import (
	"fmt"
	"sort"

	"gonum.org/v1/gonum/blas"

	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/vec"
)

// Neighbour is a feature and its cosine with the feature asked about.
type Neighbour struct {
	ID  int     `json:"id"`
	Cos float64 `json:"cos"`
}

// NearestFeatures returns the k rows of w (n rows of d values, such as an
// SAE's decoder) with the largest cosine to row j, most similar first, j
// itself left out. Ties go to the lower id.
func NearestFeatures(w []float32, n, d, j, k int) ([]Neighbour, error) {
	switch {
	case len(w) != n*d:
		return nil, fmt.Errorf("nearest features: %d values do not make %d rows of %d", len(w), n, d)
	case j < 0 || j >= n:
		return nil, fmt.Errorf("nearest features: feature %d is outside 0..%d", j, n-1)
	case k < 0:
		return nil, fmt.Errorf("nearest features: k must not be negative, got %d", k)
	}
	return NearestUnit(vec.UnitRows(w, n, d), n, d, j, k), nil
}

// NearestUnit is NearestFeatures over rows already at unit length (UnitRows),
// for callers that ask often: one matrix-vector product over all rows and a
// partial selection of the k best. The caller checks the shapes.
func NearestUnit(unit []float32, n, d, j, k int) []Neighbour {
	cos := make([]float32, n)
	matmul.Impl().Sgemv(blas.NoTrans, n, d, 1, unit, d, unit[j*d:(j+1)*d], 1, 0, cos, 1)
	better := func(a, b int) bool {
		if cos[a] != cos[b] {
			return cos[a] > cos[b]
		}
		return a < b
	}
	var top []int // the best so far, best first
	for i := range n {
		if i == j || (len(top) == k && !better(i, top[len(top)-1])) {
			continue
		}
		p := sort.Search(len(top), func(t int) bool { return better(i, top[t]) })
		top = append(top, 0)
		copy(top[p+1:], top[p:])
		top[p] = i
		if len(top) > k {
			top = top[:k]
		}
	}
	out := make([]Neighbour, len(top))
	for t, i := range top {
		out[t] = Neighbour{ID: i, Cos: float64(cos[i])}
	}
	return out
}

package atlas

import (
	"fmt"
	"math"
	"sort"
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
	norm := func(r []float32) float64 {
		var s float64
		for _, v := range r {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s)
	}
	q := w[j*d : (j+1)*d]
	qn := norm(q)
	out := make([]Neighbour, 0, n-1)
	for i := range n {
		if i == j {
			continue
		}
		r := w[i*d : (i+1)*d]
		var dot float64
		for t, v := range r {
			dot += float64(v) * float64(q[t])
		}
		c := 0.0
		if den := norm(r) * qn; den > 0 {
			c = dot / den
		}
		out = append(out, Neighbour{ID: i, Cos: c})
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Cos > out[b].Cos })
	return out[:min(k, len(out))], nil
}

package atlas

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/blas"

	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/parallel"
)

// Agglomerative clusters n unit vectors x (row-major, n rows of d values)
// into k groups by average-link (UPGMA, Sokal & Michener 1958) hierarchical
// clustering on cosine distance 1 − cos. It builds the dendrogram with the
// nearest-neighbour-chain algorithm (Murtagh 1983), updating distances with
// the Lance–Williams formula for average linkage, then cuts it at k groups
// by applying the n − k lowest merges. Labels are numbered by first
// appearance; Centroids and Objective are as for KMeans.
//
// It holds the full n×n distance matrix, so n is limited to
// MaxAgglomerative; use KMeans for more rows.
func Agglomerative(x []float32, n, d, k int) (*Clustering, error) {
	if n > MaxAgglomerative {
		return nil, fmt.Errorf("atlas: Agglomerative: n = %d exceeds %d rows (needs an n×n distance matrix); use KMeans", n, MaxAgglomerative)
	}
	xs, err := clusterInput(x, n, d)
	if err != nil {
		return nil, fmt.Errorf("atlas: Agglomerative: %w", err)
	}
	if k < 1 || k > n {
		return nil, fmt.Errorf("atlas: Agglomerative: k = %d, want 1 ≤ k ≤ n = %d", k, n)
	}
	// Distance matrix D = 1 − X Xᵀ, clamped to [0, 2], zero diagonal.
	dm := make([]float32, n*n)
	impl := matmul.Impl()
	nb := (n + clusterRowBlock - 1) / clusterRowBlock
	parallel.Each(nb, func(_, b int) {
		r0 := b * clusterRowBlock
		r1 := min(n, r0+clusterRowBlock)
		g := dm[r0*n : r1*n]
		impl.Sgemm(blas.NoTrans, blas.Trans, r1-r0, n, d, 1, xs[r0*d:r1*d], d, xs, d, 0, g, n)
		for i := r0; i < r1; i++ {
			row := dm[i*n : (i+1)*n]
			for j, v := range row {
				row[j] = float32(math.Min(2, math.Max(0, 1-float64(v))))
			}
			row[i] = 0
		}
	})
	// Symmetrise: Sgemm rounding can differ between (i,j) and (j,i).
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			v := dm[i*n+j]
			dm[j*n+i] = v
		}
	}

	type merge struct {
		a, b int
		h    float32
	}
	merges := make([]merge, 0, n-1)
	active := make([]bool, n)
	size := make([]int, n)
	for i := range active {
		active[i] = true
		size[i] = 1
	}
	chain := make([]int, 0, n)
	first := 0
	for remaining := n; remaining > 1; remaining-- {
		if len(chain) == 0 {
			for !active[first] {
				first++
			}
			chain = append(chain, first)
		}
		var a, b int
		for {
			a = chain[len(chain)-1]
			row := dm[a*n : (a+1)*n]
			b = -1
			var bv float32
			if len(chain) >= 2 {
				b = chain[len(chain)-2]
				bv = row[b]
			}
			for j := 0; j < n; j++ {
				if j == a || !active[j] {
					continue
				}
				if b < 0 || row[j] < bv {
					b, bv = j, row[j]
				}
			}
			if len(chain) >= 2 && b == chain[len(chain)-2] {
				break
			}
			chain = append(chain, b)
		}
		chain = chain[:len(chain)-2]
		merges = append(merges, merge{a, b, dm[a*n+b]})
		// Keep the merged cluster in slot b, retire slot a.
		na, nbb := float64(size[a]), float64(size[b])
		for j := 0; j < n; j++ {
			if !active[j] || j == a || j == b {
				continue
			}
			v := float32((na*float64(dm[a*n+j]) + nbb*float64(dm[b*n+j])) / (na + nbb))
			dm[b*n+j] = v
			dm[j*n+b] = v
		}
		active[a] = false
		size[b] += size[a]
	}
	dm = nil

	sort.SliceStable(merges, func(i, j int) bool { return merges[i].h < merges[j].h })
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for _, m := range merges[:n-k] {
		ra, rb := find(m.a), find(m.b)
		if ra != rb {
			parent[ra] = rb
		}
	}
	labels := make([]int, n)
	ids := make(map[int]int, k)
	for i := 0; i < n; i++ {
		r := find(i)
		id, ok := ids[r]
		if !ok {
			id = len(ids)
			ids[r] = id
		}
		labels[i] = id
	}
	kk := len(ids)
	cent := make([]float32, kk*d)
	clusterCentroids(xs, n, d, kk, labels, cent)
	return &Clustering{K: kk, Labels: labels, Centroids: cent, Objective: clusterObjective(xs, n, d, cent, labels)}, nil
}

package atlas

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"

	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/parallel"
)

// umapExactMax is the largest n for which the neighbour graph of UMAP is
// found exactly; above it NN-descent is used. The exact search costs n²·d
// in matrix products: with OpenBLAS it beats NN-descent up to about 16,384
// rows of 1,536 (8,192 rows: 2.7 s against 6.5 s on 2 cores), with
// gonum's pure-Go BLAS only up to a few thousand (8,192 rows: 52 s against
// 15 s). Tests lower it to exercise NN-descent on small inputs.
var umapExactMax = func() int {
	if matmul.BLASName == "openblas" {
		return 16384
	}
	return 4096
}()

// knnGraph holds k neighbours per row, row-major: idx[i*k+s] is a neighbour
// of row i at cosine distance dist[i*k+s]. Within a row the entries form a
// max-heap on (dist, idx) until sortRows is called.
type knnGraph struct {
	n, k int
	idx  []int32
	dist []float32
}

// heapLess orders neighbour entries by distance, then by index, so that
// ties are broken the same way whatever the order of discovery.
func heapLess(d1 float32, i1 int32, d2 float32, i2 int32) bool {
	if d1 != d2 {
		return d1 < d2
	}
	return i1 < i2
}

// heapSiftDown restores the max-heap property from slot s downward.
func heapSiftDown(dist []float32, idx []int32, aux []int32, s int) {
	k := len(dist)
	for {
		l := 2*s + 1
		if l >= k {
			return
		}
		big := l
		if r := l + 1; r < k && heapLess(dist[l], idx[l], dist[r], idx[r]) {
			big = r
		}
		if !heapLess(dist[s], idx[s], dist[big], idx[big]) {
			return
		}
		dist[s], dist[big] = dist[big], dist[s]
		idx[s], idx[big] = idx[big], idx[s]
		if aux != nil {
			aux[s], aux[big] = aux[big], aux[s]
		}
		s = big
	}
}

// heapReplace offers (d, j) to a full max-heap of k entries and reports
// whether it displaced the current worst. aux, when not nil, travels with
// the entries and the new entry gets tag.
func heapReplace(dist []float32, idx []int32, aux []int32, d float32, j int32, tag int32) bool {
	if !heapLess(d, j, dist[0], idx[0]) {
		return false
	}
	dist[0], idx[0] = d, j
	if aux != nil {
		aux[0] = tag
	}
	heapSiftDown(dist, idx, aux, 0)
	return true
}

// heapify turns the k entries into a max-heap.
func heapify(dist []float32, idx []int32, aux []int32) {
	for s := len(dist)/2 - 1; s >= 0; s-- {
		heapSiftDown(dist, idx, aux, s)
	}
}

// sortRows orders every row by increasing distance (heap sort in place).
func (g *knnGraph) sortRows() {
	k := g.k
	for i := range g.n {
		dist := g.dist[i*k : (i+1)*k]
		idx := g.idx[i*k : (i+1)*k]
		for end := k - 1; end > 0; end-- {
			dist[0], dist[end] = dist[end], dist[0]
			idx[0], idx[end] = idx[end], idx[0]
			heapSiftDown(dist[:end], idx[:end], nil, 0)
		}
	}
}

// knnExact finds the k nearest rows of every unit row of u by cosine
// distance with blocked matrix products (float32 BLAS), keeping the best k
// per row in a heap. The distance matrix is symmetric, so only the blocks
// on and above the diagonal are computed, each once, and each feeds the
// heaps of its rows and (through its transpose) of its columns, under a
// lock per row block. A heap keeps the k smallest (distance, index) pairs
// whatever the order they are offered in, and every pair's distance comes
// from the same product whatever the schedule, so the result does not
// depend on the number of goroutines.
func knnExact(ctx context.Context, u []float32, n, d, k int) (*knnGraph, error) {
	const block = 512
	g := &knnGraph{n: n, k: k, idx: make([]int32, n*k), dist: make([]float32, n*k)}
	for i := range g.idx {
		g.idx[i] = -1
		g.dist[i] = 3 // larger than any cosine distance
	}
	blocks := (n + block - 1) / block
	type pair struct{ r, c int }
	pairs := make([]pair, 0, blocks*(blocks+1)/2)
	for r := range blocks {
		for c := r; c < blocks; c++ {
			pairs = append(pairs, pair{r, c})
		}
	}
	locks := make([]sync.Mutex, blocks)
	workers := max(1, min(runtime.GOMAXPROCS(0), len(pairs)))
	bufs := make([][]float32, workers)
	impl := matmul.Impl()
	var failed atomic.Bool
	// offer gives row i the candidate j at dot product v.
	offer := func(i, j int, v float32) {
		heapReplace(g.dist[i*k:(i+1)*k], g.idx[i*k:(i+1)*k], nil, cosineDist(v), int32(j), 0)
	}
	parallel.Each(len(pairs), func(w, p int) {
		if failed.Load() {
			return
		}
		if ctx.Err() != nil {
			failed.Store(true)
			return
		}
		if bufs[w] == nil {
			bufs[w] = make([]float32, block*block)
		}
		buf := bufs[w]
		r0, c0 := pairs[p].r*block, pairs[p].c*block
		r1, c1 := min(n, r0+block), min(n, c0+block)
		impl.Sgemm(blas.NoTrans, blas.Trans, r1-r0, c1-c0, d, 1, u[r0*d:], d, u[c0*d:], d, 0, buf, block)
		locks[pairs[p].r].Lock()
		for i := r0; i < r1; i++ {
			row := buf[(i-r0)*block:]
			for j := c0; j < c1; j++ {
				if j != i {
					offer(i, j, row[j-c0])
				}
			}
		}
		locks[pairs[p].r].Unlock()
		if r0 == c0 {
			return
		}
		locks[pairs[p].c].Lock()
		for j := c0; j < c1; j++ {
			for i := r0; i < r1; i++ {
				offer(j, i, buf[(i-r0)*block+j-c0])
			}
		}
		locks[pairs[p].c].Unlock()
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return g, nil
}

// cosineDist turns the dot product of two unit vectors into a cosine
// distance in [0, 2].
func cosineDist(dot float32) float32 {
	v := 1 - dot
	if v < 0 {
		return 0
	}
	return v
}

// knnDescent approximates the k nearest rows of every unit row of u by
// NN-descent (Dong, Moses and Li 2011, "Efficient k-nearest neighbor graph
// construction for generic similarity measures"): starting from the leaf
// mates of a few random-projection trees, topped up at random, each round compares every row with the neighbours of its
// neighbours (forward and reverse, each list capped at k by sampling),
// restricted to pairs reached through at least one edge that is new since
// the last round, and stops when fewer than delta·n·k entries change.
//
// Each round reads a snapshot of the graph and writes only the row being
// refined, and all sampling uses generators seeded from (seed, row) or
// (seed, round), so the result is the same for a seed whatever GOMAXPROCS.
func knnDescent(ctx context.Context, u []float32, n, d, k int, seed uint64) (*knnGraph, error) {
	const maxRounds = 16
	const delta = 0.001
	impl := matmul.Impl()
	dot := func(i, j int) float32 {
		return impl.Sdot(d, u[i*d:(i+1)*d], 1, u[j*d:(j+1)*d], 1)
	}
	g := &knnGraph{n: n, k: k, idx: make([]int32, n*k), dist: make([]float32, n*k)}
	born := make([]int32, n*k)
	// Initial neighbours: leaf mates in a few random-projection trees
	// (Dasgupta and Freund 2008), topped up with random distinct rows.
	const rowBlock = 256
	blocks := (n + rowBlock - 1) / rowBlock
	trees := rpForest(u, n, d, max(2*k, 32), rpTrees, seed)
	parallel.Each(blocks, func(_, b int) {
		for i := b * rowBlock; i < min(n, (b+1)*rowBlock); i++ {
			idx := g.idx[i*k : (i+1)*k]
			dist := g.dist[i*k : (i+1)*k]
			for s := range idx {
				idx[s], dist[s] = -1, 3
			}
			offer := func(j int32) {
				if int(j) == i || slices.Contains(idx, j) {
					return
				}
				heapReplace(dist, idx, nil, cosineDist(dot(i, int(j))), j, 0)
			}
			for _, t := range trees {
				leaf := t.leafOf[i]
				for _, j := range t.order[t.start[leaf]:t.start[leaf+1]] {
					offer(j)
				}
			}
			rng := rand.New(rand.NewPCG(seed, 0x6e6e640000000000|uint64(i)))
			for slices.Contains(idx, -1) {
				offer(int32(rng.IntN(n)))
			}
		}
	})
	workers := max(1, min(runtime.GOMAXPROCS(0), blocks))
	stamps := make([][]int64, workers)
	revIdx := make([]int32, n*k)
	revNew := make([]bool, n*k)
	revSeen := make([]int32, n)
	oldIdx := make([]int32, n*k)
	oldDist := make([]float32, n*k)
	oldBorn := make([]int32, n*k)
	updates := make([]int64, blocks)
	for round := int32(1); round <= maxRounds; round++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		copy(oldIdx, g.idx)
		copy(oldDist, g.dist)
		copy(oldBorn, born)
		// Reverse lists, built sequentially with reservoir sampling.
		clear(revSeen)
		rng := rand.New(rand.NewPCG(seed, 0x7265760000000000|uint64(round)))
		for i := range n {
			for s := i * k; s < (i+1)*k; s++ {
				j := oldIdx[s]
				fresh := oldBorn[s] == round-1
				seen := int(revSeen[j])
				revSeen[j]++
				slot := seen
				if seen >= k {
					slot = rng.IntN(seen + 1)
					if slot >= k {
						continue
					}
				}
				revIdx[int(j)*k+slot] = int32(i)
				revNew[int(j)*k+slot] = fresh
			}
		}
		// general calls fn on the forward and (sampled) reverse neighbours
		// of j with their freshness.
		general := func(j int, fn func(c int32, fresh bool)) {
			for s := j * k; s < (j+1)*k; s++ {
				fn(oldIdx[s], oldBorn[s] == round-1)
			}
			r := min(int(revSeen[j]), k)
			for s := j * k; s < j*k+r; s++ {
				fn(revIdx[s], revNew[s])
			}
		}
		parallel.Each(blocks, func(w, b int) {
			if stamps[w] == nil {
				stamps[w] = make([]int64, n)
			}
			stamp := stamps[w]
			var count int64
			for i := b * rowBlock; i < min(n, (b+1)*rowBlock); i++ {
				mark := int64(round)*int64(n) + int64(i) + 1
				stamp[i] = mark
				for s := i * k; s < (i+1)*k; s++ {
					stamp[oldIdx[s]] = mark
				}
				idx := g.idx[i*k : (i+1)*k]
				dist := g.dist[i*k : (i+1)*k]
				bn := born[i*k : (i+1)*k]
				general(i, func(j int32, fij bool) {
					general(int(j), func(c int32, fjc bool) {
						if !fij && !fjc || stamp[c] == mark {
							return
						}
						stamp[c] = mark
						if heapReplace(dist, idx, bn, cosineDist(dot(i, int(c))), c, round) {
							count++
						}
					})
				})
			}
			updates[b] = count
		})
		var total int64
		for _, c := range updates {
			total += c
		}
		if float64(total) < delta*float64(n)*float64(k) {
			break
		}
	}
	return g, nil
}

// rpTrees is the number of random-projection trees that seed NN-descent.
const rpTrees = 6

// rpTree is a random-projection tree flattened to its leaves: the rows of
// leaf l are order[start[l]:start[l+1]], and leafOf[i] is the leaf of row i.
type rpTree struct {
	order  []int32
	start  []int
	leafOf []int32
}

// rpForest builds count angular random-projection trees over the unit rows
// of u (Dasgupta and Freund 2008), each splitting a node by the hyperplane
// equidistant from two of its rows chosen at random until leaves hold at
// most leafSize rows. Tree t uses a generator seeded from (seed, t), and
// the trees are built in parallel, so the forest depends only on the seed.
func rpForest(u []float32, n, d, leafSize, count int, seed uint64) []rpTree {
	impl := matmul.Impl()
	trees := make([]rpTree, count)
	parallel.Each(count, func(_, t int) {
		rng := rand.New(rand.NewPCG(seed, 0x7270740000000000|uint64(t)))
		order := make([]int32, n)
		for i := range order {
			order[i] = int32(i)
		}
		normal := make([]float32, d)
		side := make([]bool, n)
		start := []int{0}
		var split func(lo, hi int)
		split = func(lo, hi int) {
			rows := order[lo:hi]
			if len(rows) <= leafSize {
				start = append(start, hi)
				return
			}
			a := rows[rng.IntN(len(rows))]
			b := rows[rng.IntN(len(rows))]
			for j := range normal {
				normal[j] = u[int(a)*d+j] - u[int(b)*d+j]
			}
			left := 0
			for _, r := range rows {
				side[r] = impl.Sdot(d, u[int(r)*d:int(r+1)*d], 1, normal, 1) > 0
				if side[r] {
					left++
				}
			}
			if left == 0 || left == len(rows) || a == b {
				// Degenerate split: fall back to a random one.
				left = 0
				for _, r := range rows {
					side[r] = rng.IntN(2) == 0
					if side[r] {
						left++
					}
				}
				if left == 0 || left == len(rows) {
					side[rows[0]] = !side[rows[0]]
				}
			}
			// Stable partition: rows on the true side first.
			tmp := make([]int32, 0, len(rows))
			for _, r := range rows {
				if side[r] {
					tmp = append(tmp, r)
				}
			}
			mid := lo + len(tmp)
			for _, r := range rows {
				if !side[r] {
					tmp = append(tmp, r)
				}
			}
			copy(rows, tmp)
			split(lo, mid)
			split(mid, hi)
		}
		split(0, n)
		leafOf := make([]int32, n)
		for l := 0; l+1 < len(start); l++ {
			for _, r := range order[start[l]:start[l+1]] {
				leafOf[r] = int32(l)
			}
		}
		trees[t] = rpTree{order: order, start: start, leafOf: leafOf}
	})
	return trees
}

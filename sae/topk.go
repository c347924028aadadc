package sae

// topKIndices appends to dst the indices of the k largest values of row, in
// decreasing order of value (ties by lower index), and returns it. It runs in
// O(n log k) with a small min-heap, which beats sorting for k << n.
func topKIndices(row []float32, k int, dst []int) []int {
	if k > len(row) {
		k = len(row)
	}
	h := dst[:0]
	less := func(a, b int) bool { // a ranks below b
		if row[a] != row[b] {
			return row[a] < row[b]
		}
		return a > b
	}
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			j := l
			if r := l + 1; r < len(h) && less(h[r], h[l]) {
				j = r
			}
			if !less(h[j], h[i]) {
				return
			}
			h[i], h[j] = h[j], h[i]
			i = j
		}
	}
	for i := range row {
		if len(h) < k {
			h = append(h, i)
			for c := len(h) - 1; c > 0; {
				p := (c - 1) / 2
				if !less(h[c], h[p]) {
					break
				}
				h[c], h[p] = h[p], h[c]
				c = p
			}
			continue
		}
		if less(h[0], i) {
			h[0] = i
			down(0)
		}
	}
	// Heap-sort into decreasing order.
	for end := len(h) - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		saved := h
		h = h[:end]
		down(0)
		h = saved
	}
	return h
}

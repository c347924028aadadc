package sae

// topKIndices appends to dst the indices of the k largest values of row, in
// decreasing order of value (ties by lower index), and returns it. It keeps
// a min-heap of the best k seen so far and compares each new value with the
// heap's minimum, so a row costs about one comparison per value when k is
// much smaller than the row.
func topKIndices(row []float32, k int, dst []int) []int {
	k = min(k, len(row))
	h := dst[:0]
	if k == 0 {
		return h
	}
	// below reports whether index a ranks below index b.
	below := func(a, b int) bool {
		va, vb := row[a], row[b]
		return va < vb || (va == vb && a > b)
	}
	siftDown := func(h []int, i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			j := l
			if r := l + 1; r < len(h) && below(h[r], h[l]) {
				j = r
			}
			if !below(h[j], h[i]) {
				return
			}
			h[i], h[j] = h[j], h[i]
			i = j
		}
	}
	for i := range k {
		h = append(h, i)
	}
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	minV := row[h[0]]
	for i := k; i < len(row); i++ {
		// A later index never beats an equal value: strictly greater only.
		if row[i] > minV {
			h[0] = i
			siftDown(h, 0)
			minV = row[h[0]]
		}
	}
	// Heap-sort into decreasing order.
	for end := len(h) - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		siftDown(h[:end], 0)
	}
	return h
}

package sae

import (
	"math"

	"github.com/rise-interp/rise/internal/parallel"
)

// The fused engine's selection of active latents for TopK (the k largest
// positive pre-activations of each row) and BatchTopK (the largest of the
// whole batch).

// selectTopK keeps, per row, the K largest pre-activations that are
// positive after ReLU.
func (e *fusedEngine) selectTopK(k int) {
	b, m := e.b, e.m
	if cap(e.main) < b*k {
		e.main = make([]entry, b*k)
	}
	e.main = e.main[:b*k]
	parallel.For(b, 8, func(w, lo, hi int) {
		idx := e.scratch(w, k)
		for r := lo; r < hi; r++ {
			row := e.pre[r*m : (r+1)*m]
			sel := topKIndices(row, k, idx)
			n := int32(0)
			for _, j := range sel {
				if v := row[j]; v > 0 {
					e.main[r*k+int(n)] = entry{row: int32(r), lat: int32(j), v: v}
					n++
				}
			}
			e.rowCount[r] = n
		}
	})
	e.main = compactRows(e.main, k, e.rowCount[:b], e.rowStart)
}

// compactRows packs the first count[r] entries of each row's slot of width
// k together, in place (entries only move left), records where row r starts
// in start[r] and the end in start[len(count)], and returns the packed
// entries.
func compactRows(slots []entry, k int, count, start []int32) []entry {
	at := int32(0)
	for r := range count {
		start[r] = at
		copy(slots[at:], slots[r*k:r*k+int(count[r])])
		at += count[r]
	}
	start[len(count)] = at
	return slots[:at]
}

func (e *fusedEngine) scratch(w, n int) []int {
	if cap(e.scratchIdx[w]) < n {
		e.scratchIdx[w] = make([]int, 0, n)
	}
	return e.scratchIdx[w][:0]
}

// selectBatchTopK keeps the n largest positive pre-activations of the whole
// batch (ties by row-major position) and returns the smallest kept value.
// The n-th largest value is found by a two-pass radix selection on the bit
// patterns, which order like the values for positive floats.
func (e *fusedEngine) selectBatchTopK(n int) float32 {
	b, m := e.b, e.m
	pre := e.pre
	// Pass 1: histogram of the upper 16 bits of positive values.
	hi16 := e.histogram(func(v uint32) (int, bool) { return int(v >> 16), true })
	top, need := pickBin(hi16, n)
	var thr float32
	kept := 0
	if top < 0 { // fewer positive values than n: keep them all
		thr = float32(math.Inf(1))
	} else {
		lo16 := e.histogram(func(v uint32) (int, bool) { return int(v & 0xffff), int(v>>16) == top })
		low, needAt := pickBin(lo16, need)
		thr = math.Float32frombits(uint32(top)<<16 | uint32(low))
		kept = needAt // how many values equal to thr to keep
	}
	// Count per row, then fill.
	parallel.For(b, 8, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			c := int32(0)
			for _, v := range pre[r*m : (r+1)*m] {
				if v > 0 && v > thr {
					c++
				}
			}
			e.rowCount[r] = c
		}
	})
	// Ties at thr: the first `kept` of them in row-major order.
	ties := e.ties
	clear(ties)
	for r := 0; r < b && kept > 0; r++ {
		for _, v := range pre[r*m : (r+1)*m] {
			if v == thr && kept > 0 {
				ties[r]++
				kept--
			}
		}
	}
	at := int32(0)
	for r := range b {
		e.rowStart[r] = at
		at += e.rowCount[r] + ties[r]
	}
	e.rowStart[b] = at
	if cap(e.main) < int(at) {
		e.main = make([]entry, at)
	}
	e.main = e.main[:at]
	minKept := float32(math.Inf(1))
	for r := range b {
		i := e.rowStart[r]
		t := ties[r]
		for j, v := range pre[r*m : (r+1)*m] {
			if v > 0 && (v > thr || (v == thr && t > 0)) {
				if v == thr {
					t--
				}
				e.main[i] = entry{row: int32(r), lat: int32(j), v: v}
				minKept = min(minKept, v)
				i++
			}
		}
	}
	if at == 0 {
		return 0
	}
	return minKept
}

// histogram counts the positive pre-activations by bin(bits).
func (e *fusedEngine) histogram(bin func(uint32) (int, bool)) []int64 {
	nw := parallel.Workers()
	for w := range nw {
		if len(e.hist[w]) != 1<<16 {
			e.hist[w] = make([]int64, 1<<16)
		}
		clear(e.hist[w])
	}
	m := e.m
	parallel.For(e.b, 8, func(w, lo, hi int) {
		h := e.hist[w]
		for _, v := range e.pre[lo*m : hi*m] {
			if v > 0 {
				if k, ok := bin(math.Float32bits(v)); ok {
					h[k]++
				}
			}
		}
	})
	out := e.hist[0]
	for w := 1; w < nw; w++ {
		for k, c := range e.hist[w] {
			out[k] += c
		}
	}
	return out
}

// pickBin walks the histogram from the top and returns the bin holding the
// n-th largest value and how many values of that bin are needed; bin -1
// when the histogram holds fewer than n values.
func pickBin(h []int64, n int) (int, int) {
	left := int64(n)
	for k := len(h) - 1; k >= 0; k-- {
		if h[k] >= left {
			return k, int(left)
		}
		left -= h[k]
	}
	return -1, 0
}

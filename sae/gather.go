package sae

import "github.com/rise-interp/rise/internal/parallel"

// Gathered products for the fused engine's path over active entries: a
// sparse matrix (entries idx[k] with values v[k]) times rows of a dense
// one, a chunk of gatherChunk columns at a time, so that the chunk of
// every row the entries name stays in cache across many calls and the
// sums stay in registers. On amd64 with AVX2 and FMA the chunks go through
// gather_amd64.s; elsewhere through the loops below.

// gatherChunk is the columns one gathered call covers.
const gatherChunk = 64

// chunkedLen is the length packChunks needs for rows of d values: whole
// chunks, the last one padded.
func chunkedLen(rows, d int) int {
	return (d + gatherChunk - 1) / gatherChunk * rows * gatherChunk
}

// packChunks lays the rows × d matrix src out chunk by chunk in dst: the
// columns [q·gatherChunk, (q+1)·gatherChunk) of every row, one row after
// the other, then the next chunk (the last one's unused columns are left as
// they are). A gathered call then reads one contiguous block of
// rows·gatherChunk values at the stride gatherChunk: rows a whole d apart
// in src (6 KB at d 1536) fall into few cache sets and evict each other
// long before the block fills the cache. Chunk q of the result starts at
// q·rows·gatherChunk.
func packChunks(dst, src []float32, rows, d int) {
	block := rows * gatherChunk
	parallel.For(rows, 64, func(_, lo, hi int) {
		for c0, q := 0, 0; c0 < d; c0, q = c0+gatherChunk, q+1 {
			n := min(gatherChunk, d-c0)
			for r := lo; r < hi; r++ {
				copy(dst[q*block+r*gatherChunk:q*block+r*gatherChunk+n], src[r*d+c0:r*d+c0+n])
			}
		}
	})
}

// gatherAxpy adds Σ_k v[k]·base[idx[k]·stride : idx[k]·stride+len(out)]
// to out. Every row named must have len(out) values at its offset.
func gatherAxpy(out []float32, base []float32, stride int, idx []int32, v []float32) {
	gatherChunks(&gatherAxpyKernels, out, base, stride, idx, v)
}

// gatherDot adds x · base[idx[k]·stride : idx[k]·stride+len(x)] to out[k]
// for every k.
func gatherDot(x []float32, base []float32, stride int, idx []int32, out []float32) {
	gatherChunks(&gatherDotKernels, x, base, stride, idx, out)
}

// gatherKernels are a gathered product's two loops, with dense the vector
// the entries idx (with their values e) meet: chunk, an assembly kernel
// for one chunk of gatherChunk values (nil where none runs here), and
// loop, the Go loop for any number of values.
type gatherKernels struct {
	chunk chunkKernel
	loop  func(dense, base []float32, stride int, idx []int32, e []float32)
}

// chunkKernel is an assembly kernel of gather_amd64.s: a gathered product
// on the gatherChunk values at dense, over the n entries at idx and e.
type chunkKernel func(dense, base *float32, stride int, idx *int32, e *float32, n int)

// gatherChunks runs a gathered product over dense a chunk at a time, the
// whole chunks by the assembly kernel where there is one, and the rest by
// the Go loop.
func gatherChunks(k *gatherKernels, dense, base []float32, stride int, idx []int32, e []float32) {
	if len(idx) == 0 {
		return
	}
	_ = e[len(idx)-1]
	n := len(dense) - len(dense)%gatherChunk
	for c := 0; c < n; c += gatherChunk {
		if k.chunk != nil {
			k.chunk(&dense[c], &base[c], stride, &idx[0], &e[0], len(idx))
		} else {
			k.loop(dense[c:c+gatherChunk], base[c:], stride, idx, e)
		}
	}
	if n < len(dense) {
		k.loop(dense[n:], base[n:], stride, idx, e)
	}
}

func gatherAxpyGo(out []float32, base []float32, stride int, idx []int32, v []float32) {
	for k, i := range idx {
		row := base[int(i)*stride : int(i)*stride+len(out)]
		a := v[k]
		for c, w := range row {
			out[c] += a * w
		}
	}
}

func gatherDotGo(x []float32, base []float32, stride int, idx []int32, out []float32) {
	for k, i := range idx {
		row := base[int(i)*stride : int(i)*stride+len(x)]
		var s float32
		for c, w := range row {
			s += x[c] * w
		}
		out[k] += s
	}
}

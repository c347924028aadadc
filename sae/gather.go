package sae

// Gathered products for the fused engine's path over active entries: a
// sparse matrix (entries idx[k] with values v[k]) times rows of a dense
// one, a chunk of gatherChunk columns at a time, so that the chunk of
// every row the entries name stays in cache across many calls and the
// sums stay in registers. On amd64 with AVX2 and FMA the chunks go through
// gather_amd64.s; elsewhere through the loops below.

// gatherChunk is the columns one gathered call covers.
const gatherChunk = 64

// gatherAxpy adds Σ_k v[k]·base[idx[k]·stride : idx[k]·stride+len(out)]
// to out. Every row named must have len(out) values at its offset.
func gatherAxpy(out []float32, base []float32, stride int, idx []int32, v []float32) {
	gatherChunks(gatherAxpy64, gatherAxpyGo, out, base, stride, idx, v)
}

// gatherDot adds x · base[idx[k]·stride : idx[k]·stride+len(x)] to out[k]
// for every k.
func gatherDot(x []float32, base []float32, stride int, idx []int32, out []float32) {
	gatherChunks(gatherDot64, gatherDotGo, x, base, stride, idx, out)
}

// gatherChunks runs a gathered kernel over dense (out for an axpy, x for
// a dot) a chunk of gatherChunk values at a time, the rest by its pure-Go
// form.
func gatherChunks(chunk, goForm func(dense, base []float32, stride int, idx []int32, e []float32),
	dense, base []float32, stride int, idx []int32, e []float32) {
	n := len(dense) - len(dense)%gatherChunk
	for c := 0; c < n; c += gatherChunk {
		chunk(dense[c:c+gatherChunk], base[c:], stride, idx, e)
	}
	if n < len(dense) {
		goForm(dense[n:], base[n:], stride, idx, e)
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

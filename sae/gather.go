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
	n := len(out) - len(out)%gatherChunk
	for c := 0; c < n; c += gatherChunk {
		gatherAxpy64(out[c:c+gatherChunk], base[c:], stride, idx, v)
	}
	if n < len(out) {
		gatherAxpyGo(out[n:], base[n:], stride, idx, v)
	}
}

// gatherDot adds x · base[idx[k]·stride : idx[k]·stride+len(x)] to out[k]
// for every k.
func gatherDot(x []float32, base []float32, stride int, idx []int32, out []float32) {
	n := len(x) - len(x)%gatherChunk
	for c := 0; c < n; c += gatherChunk {
		gatherDot64(x[c:c+gatherChunk], base[c:], stride, idx, out)
	}
	if n < len(x) {
		gatherDotGo(x[n:], base[n:], stride, idx, out)
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

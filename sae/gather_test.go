package sae

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGatherKernels holds the gathered products (the AVX2 kernels where
// they run: AVX-512 or AVX2) to sums in float64 over the same rows, on widths with and
// without a partial chunk and with repeated and unsorted rows.
func TestGatherKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	for _, width := range []int{64, 200, 1536, 17} {
		rows, stride := 50, width+3
		base := make([]float32, rows*stride)
		for i := range base {
			base[i] = float32(rng.NormFloat64())
		}
		for _, n := range []int{0, 1, 7, 40} {
			idx, v := make([]int32, n), make([]float32, n)
			for k := range idx {
				idx[k] = int32(rng.IntN(rows))
				v[k] = float32(rng.NormFloat64())
			}
			out := make([]float32, width)
			want := make([]float64, width)
			for c := range out {
				out[c] = float32(rng.NormFloat64())
				want[c] = float64(out[c])
			}
			for k, i := range idx {
				for c := range want {
					want[c] += float64(v[k]) * float64(base[int(i)*stride+c])
				}
			}
			gatherAxpy(out, base, stride, idx, v)
			for c := range out {
				if math.Abs(float64(out[c])-want[c]) > 1e-4*(1+math.Abs(want[c])) {
					t.Fatalf("width %d, %d rows: gatherAxpy column %d = %v, want %v", width, n, c, out[c], want[c])
				}
			}
			x := make([]float32, width)
			for c := range x {
				x[c] = float32(rng.NormFloat64())
			}
			dots := make([]float32, n)
			for k := range dots {
				dots[k] = 1
			}
			gatherDot(x, base, stride, idx, dots)
			for k, i := range idx {
				w := 1.0
				for c := range x {
					w += float64(x[c]) * float64(base[int(i)*stride+c])
				}
				if math.Abs(float64(dots[k])-w) > 1e-4*(1+math.Abs(w)) {
					t.Fatalf("width %d, %d rows: gatherDot %d = %v, want %v", width, n, k, dots[k], w)
				}
			}
		}
	}
}

// TestPackChunks lays a matrix with a partial last chunk out chunk by
// chunk and reads every value back where the gathered calls look for it.
func TestPackChunks(t *testing.T) {
	const rows, d = 37, 2*gatherChunk + 9
	src := make([]float32, rows*d)
	for i := range src {
		src[i] = float32(i)
	}
	dst := make([]float32, chunkedLen(rows, d))
	if len(dst) != 3*rows*gatherChunk {
		t.Fatalf("chunkedLen(%d, %d) = %d, want %d", rows, d, len(dst), 3*rows*gatherChunk)
	}
	packChunks(dst, src, rows, d)
	for r := range rows {
		for c := range d {
			q := c / gatherChunk
			if got := dst[q*rows*gatherChunk+r*gatherChunk+c%gatherChunk]; got != src[r*d+c] {
				t.Fatalf("row %d, column %d: packed %v, want %v", r, c, got, src[r*d+c])
			}
		}
	}
}

// TestTranspose turns matrices with and without partial tiles.
func TestTranspose(t *testing.T) {
	for _, sh := range [][2]int{{1, 1}, {3, 70}, {64, 64}, {130, 65}, {2048, 96}} {
		rows, cols := sh[0], sh[1]
		a := make([]float32, rows*cols)
		for i := range a {
			a[i] = float32(i)
		}
		out := make([]float32, rows*cols)
		transpose(a, rows, cols, out)
		for r := range rows {
			for c := range cols {
				if out[c*rows+r] != a[r*cols+c] {
					t.Fatalf("%dx%d: out[%d][%d] = %v, want %v", rows, cols, c, r, out[c*rows+r], a[r*cols+c])
				}
			}
		}
	}
}

// BenchmarkTranspose turns the encoder's gradient of the RISE recipe
// (2048 x 1536), as each step over active entries does.
func BenchmarkTranspose(b *testing.B) {
	const rows, cols = 2048, 1536
	a, out := make([]float32, rows*cols), make([]float32, rows*cols)
	for b.Loop() {
		transpose(a, rows, cols, out)
	}
}

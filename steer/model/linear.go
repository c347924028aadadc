package model

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/rise-interp/rise/internal/bf16"
	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/parallel"
)

// linear sets out[n, outDim] = x[n, in] · W[outDim, in]ᵀ + bias, splitting
// W's rows across cores (a decoding step has one row per sequence, so the
// work is in W).
func linear(out, x []float32, n, in int, w *Matrix, outDim int, bias []float32) {
	gemmRows(out, x, n, in, w, outDim, 0)
	if bias != nil {
		for r := range n {
			o := out[r*outDim : (r+1)*outDim]
			for i, b := range bias {
				o[i] += b
			}
		}
	}
}

// linearAdd adds x[n, in] · W[outDim, in]ᵀ to out.
func linearAdd(out, x []float32, n, in int, w *Matrix, outDim int) {
	gemmRows(out, x, n, in, w, outDim, 1)
}

// gemvRows is the number of rows up to which a float32 product is done as
// one matrix-vector product per row: with so few rows the work is
// streaming W, and BLAS libraries serve a one-row GEMM worse than a GEMV.
const gemvRows = 4

// smallBatch is the number of rows up to which W·Xᵀ is computed instead of
// X·Wᵀ (decoding steps of a batch of sequences).
const smallBatch = 64

// dotRows is the number of rows up to which a product with a 16-bit or
// 8-bit matrix is done by the dot-product kernels, which widen each weight
// as they read it; above it (reading a prompt) tiles of W are widened to
// float32 and multiplied by the BLAS.
const dotRows = 16

// chunkRows is how many rows of W the dot-product kernels take at a time.
const chunkRows = 16

// tileRows is how many rows of a 16-bit or 8-bit W are widened at a time
// for a BLAS product.
const tileRows = 32

// tiles holds the float32 tiles of the widening products, one per worker
// at a time.
var tiles sync.Pool

// gemmRows sets (beta 0) or adds to (beta 1) out[n, outDim] the product
// x[n, in] · W[outDim, in]ᵀ.
func gemmRows(out, x []float32, n, in int, w *Matrix, outDim int, beta float32) {
	if w.DType == Q8 && n <= dotRows {
		gemmRowsQ8(out, x, n, in, w, outDim, beta)
		return
	}
	if w.DType == Q8 && bf16.Native() {
		gemmRowsQ8BF16(out, x, n, in, w, outDim, beta)
		return
	}
	// Float32 weights go through the group kernels from four rows of x
	// (fewer stream W through a matrix-vector product per row); BLAS
	// libraries serve a few rows of x worse: random Qwen2-0.5B, batch 8,
	// 37.6 tokens/s through OpenBLAS.
	if w.DType == F32 && (n < 4 || n > dotRows || !haveDotGroup(F32, in)) {
		gemmRowsF32(out, x, n, in, w.F32, outDim, beta)
		return
	}
	if n <= dotRows {
		parallel.For(outDim, 64, func(_, lo, hi int) {
			// A chunk of W's rows stays in cache while every row of x
			// meets it, so W streams from memory once.
			for j0 := lo; j0 < hi; j0 += chunkRows {
				j1 := min(hi, j0+chunkRows)
				r := 0
				if n >= 4 && haveDotGroup(w.DType, in) {
					r = w.dotGroupRows(out, outDim, j0, j1, x, n, beta != 0)
				}
				for ; r < n; r++ {
					w.dotRows(out[r*outDim+j0:r*outDim+j1], j0, x[r*in:(r+1)*in], beta != 0)
				}
			}
		})
		return
	}
	impl := matmul.Impl()
	parallel.For(outDim, tileRows, func(_, lo, hi int) {
		p, _ := tiles.Get().(*[]float32)
		if p == nil {
			p = new([]float32)
		}
		tile := grow(*p, tileRows*in)
		for t0 := lo; t0 < hi; t0 += tileRows {
			t1 := min(hi, t0+tileRows)
			for j := t0; j < t1; j++ {
				w.RowTo(tile[(j-t0)*in:], j)
			}
			impl.Sgemm(blas.NoTrans, blas.Trans, n, t1-t0, in, 1, x, in, tile, in, beta, out[t0:], outDim)
		}
		*p = tile
		tiles.Put(p)
	})
}

// q8Tile is how many rows of a Q8 W are packed at a time for a bfloat16
// product: 256 rows of 896 (Qwen2-0.5B) pack into 0.46 MB.
const q8Tile = 256

// bf16Scratch is gemmRowsQ8BF16's memory, kept between products.
type bf16Scratch struct {
	x bf16.Rows
	w bf16.Packed
}

var bf16Scratches sync.Pool

// gemmRowsQ8BF16 is gemmRows for a Q8 w and many rows of x (reading a
// prompt) on a CPU with AVX512_BF16: x is rounded to bfloat16 once, and
// tiles of W, widened a row at a time and rounded to bfloat16, meet it
// through bfloat16 products with float32 sums. bfloat16 keeps 8 significant bits: a Q8
// weight (at most 8 of them, times its block's scale) loses at most a
// relative 2⁻⁹, and x too, where the decoding steps' Q8 vectors of x keep 8
// bits for the largest value of each block of 32 and fewer for the rest.
func gemmRowsQ8BF16(out, x []float32, n, in int, w *Matrix, outDim int, beta float32) {
	sc, _ := bf16Scratches.Get().(*bf16Scratch)
	if sc == nil {
		sc = new(bf16Scratch)
	}
	defer bf16Scratches.Put(sc)
	sc.x.Round(n, x, in, in)
	for t0 := 0; t0 < outDim; t0 += q8Tile {
		t1 := min(outDim, t0+q8Tile)
		sc.w.PackTransFunc(in, t1-t0, func(j int, dst []float32) { w.RowTo(dst, t0+j) })
		if beta == 0 {
			for r := range n {
				clear(out[r*outDim+t0 : r*outDim+t1])
			}
		}
		sc.w.MulAddRows(&sc.x, out[t0:], outDim)
	}
}

// dotRows sets (or, with add, adds to) o[i] the dot product of row lo+i
// of w with x, for a float32 or 16-bit w.
func (w *Matrix) dotRows(o []float32, lo int, x []float32, add bool) {
	c := w.Cols
	switch w.DType {
	case F32:
		beta := float32(0)
		if add {
			beta = 1
		}
		gonum.Implementation{}.Sgemv(blas.NoTrans, len(o), c, 1, w.F32[lo*c:(lo+len(o))*c], c, x, 1, beta, o, 1)
	case BF16, F16:
		dot16Rows(w.DType, o, w.Half[lo*c:(lo+len(o))*c], x, add)
	}
}

// q8Vectors holds the Q8 forms of a few activation vectors, one set per
// product at a time.
var q8Vectors sync.Pool

type q8Vector struct {
	q  []int8
	s  []float32
	st []float32 // s of each group of eight rows, block by block (dotQ8x8)
}

// transposeScales writes the block scales of the eight rows s[0:8·nb]
// (row by row) block by block into st: st[8·b+i] = s[i·nb+b].
func transposeScales(st, s []float32, nb int) {
	for i := range 8 {
		for b := range nb {
			st[8*b+i] = s[i*nb+b]
		}
	}
}

// gemmRowsQ8 is gemmRows for a Q8 w and at most dotRows rows of x: each
// row of x is quantised to Q8 blocks as the weights are, ties to even
// (llama.cpp's Q8_0 matrix-vector product does the same), then every row of W meets
// every row of x through the integer kernel.
func gemmRowsQ8(out, x []float32, n, in int, w *Matrix, outDim int, beta float32) {
	nb := blocksPerRow(in)
	v, _ := q8Vectors.Get().(*q8Vector)
	if v == nil {
		v = new(q8Vector)
	}
	v.q = grow(v.q, n*in)
	v.s = grow(v.s, n*nb)
	for r := range n {
		quantizeVector(v.q[r*in:(r+1)*in], v.s[r*nb:(r+1)*nb], x[r*in:(r+1)*in])
	}
	// Rows of x in groups of eight, then four, meet each row of W once
	// (the same sums, to the bit, as one at a time); the rest one at a
	// time.
	grouped8 := 0
	if haveDotQ8x8(in) {
		grouped8 = n &^ 7
	}
	grouped := grouped8
	if haveDotQ8x4(in) {
		grouped = grouped8 + (n-grouped8)&^3
	}
	v.st = grow(v.st, grouped8*nb)
	for r := 0; r < grouped8; r += 8 {
		transposeScales(v.st[r*nb:(r+8)*nb], v.s[r*nb:(r+8)*nb], nb)
	}
	parallel.For(outDim, 64, func(_, lo, hi int) {
		var d [4]float32
		var d8 [8]float32
		for j0 := lo; j0 < hi; j0 += chunkRows {
			j1 := min(hi, j0+chunkRows)
			for j := j0; j < j1; j++ {
				q, s := w.Q[j*in:(j+1)*in], w.Scales[j*nb:(j+1)*nb]
				for r := 0; r < grouped8; r += 8 {
					dotQ8x8(q, s, v.q[r*in:], v.st[r*nb:(r+8)*nb], &d8)
					putColumn(out, outDim, r, j, d8[:], beta != 0)
				}
				for r := grouped8; r < grouped; r += 4 {
					dotQ8x4(q, s, v.q[r*in:], v.s[r*nb:], &d)
					putColumn(out, outDim, r, j, d[:], beta != 0)
				}
			}
			for r := grouped; r < n; r++ {
				dotQ8Rows(out[r*outDim+j0:r*outDim+j1], w.Q[j0*in:j1*in], w.Scales[j0*nb:j1*nb],
					v.q[r*in:(r+1)*in], v.s[r*nb:(r+1)*nb], beta != 0, r == 0 && n > 1)
			}
		}
	})
	q8Vectors.Put(v)
}

// dotGroupRows sets (with add, adds to) out[r, j] the products of rows
// j0..j1 of w with the rows of x in groups of eight, then of four, each
// weight read once per group (two rows of W at a time through the pair
// kernel for the groups of eight, where it runs), and returns how many
// rows of x it did (the rest go one at a time). Only where haveDotGroup.
func (w *Matrix) dotGroupRows(out []float32, outDim, j0, j1 int, x []float32, n int, add bool) int {
	c := w.Cols
	pairs := haveDotPair(w.DType, c) && n >= 8
	var d [8]float32
	var p [16]float32
	done := 0
	for j := j0; j < j1; {
		r, rows := 0, 1
		if pairs && j+2 <= j1 {
			rows = 2
			for ; r+8 <= n; r += 8 {
				w.dotPair(j, x[r*c:], c, &p)
				putColumn(out, outDim, r, j, p[:8], add)
				putColumn(out, outDim, r, j+1, p[8:], add)
			}
		}
		for jj := j; jj < j+rows; jj++ {
			rr := r
			for _, g := range [2]int{8, 4} {
				for ; rr+g <= n; rr += g {
					w.dotGroup(jj, x[rr*c:], c, d[:g])
					putColumn(out, outDim, rr, jj, d[:g], add)
				}
			}
			done = rr
		}
		j += rows
	}
	return done
}

// putColumn sets (with add, adds to) out[r+i, j] v[i] for every i: a group
// kernel's products of one row of W with consecutive rows of x.
func putColumn(out []float32, outDim, r, j int, v []float32, add bool) {
	for i, s := range v {
		if add {
			out[(r+i)*outDim+j] += s
		} else {
			out[(r+i)*outDim+j] = s
		}
	}
}

// gemmRowsF32 is gemmRows for float32 weights, through the BLAS, except
// that a few rows go through gonum's matrix-vector product whatever the
// BLAS: one dot product per row of W in Go assembly, which streams W
// faster than OpenBLAS's (on a random Qwen2-0.5B, 14.5 tokens/s against
// 9 on 2 cores).
func gemmRowsF32(out, x []float32, n, in int, w []float32, outDim int, beta float32) {
	impl := matmul.Impl()
	parallel.For(outDim, 64, func(_, lo, hi int) {
		if n <= gemvRows {
			for r := range n {
				gonum.Implementation{}.Sgemv(blas.NoTrans, hi-lo, in, 1, w[lo*in:hi*in], in, x[r*in:(r+1)*in], 1, beta, out[r*outDim+lo:r*outDim+hi], 1)
			}
			return
		}
		if n <= smallBatch {
			// W·Xᵀ, [rows of W, n], is the shape BLAS kernels run
			// fastest when n is small; its transpose goes to out.
			t := make([]float32, (hi-lo)*n)
			impl.Sgemm(blas.NoTrans, blas.Trans, hi-lo, n, in, 1, w[lo*in:hi*in], in, x, in, 0, t, n)
			for r := range n {
				o := out[r*outDim+lo : r*outDim+hi]
				if beta == 0 {
					for i := range o {
						o[i] = t[i*n+r]
					}
				} else {
					for i := range o {
						o[i] += t[i*n+r]
					}
				}
			}
			return
		}
		impl.Sgemm(blas.NoTrans, blas.Trans, n, hi-lo, in, 1, x, in, w[lo*in:hi*in], in, beta, out[lo:], outDim)
	})
}

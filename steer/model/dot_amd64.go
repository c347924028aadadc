//go:build amd64 && !purego

package model

import (
	"fmt"

	"golang.org/x/sys/cpu"
)

// The AVX2 kernels (dot_amd64.s) take whole runs of 8 elements (Q8: whole
// blocks); the rest of a row goes through the pure-Go ones. They need AVX2
// and FMA, and F16C for float16.
var (
	haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	haveF16C = haveAVX2 && cpuid1ECX()&(1<<29) != 0 // CPUID.1:ECX.F16C[bit 29]
)

// cpuid1ECX returns ECX of CPUID leaf 1 (x/sys/cpu does not report F16C).
func cpuid1ECX() uint32

//go:noescape
func dotBF16AVX2(w *uint16, x *float32, n int) float32

//go:noescape
func dotF16AVX2(w *uint16, x *float32, n int) float32

//go:noescape
func dotQ8AVX2(q *int8, scales *float32, xq *int8, xs *float32, blocks int) float32

//go:noescape
func dotQ8x4AVX2(q *int8, scales *float32, xq *int8, xs *float32, xstride, sstride, blocks int, out *float32)

//go:noescape
func dotQ8PrefetchAVX2(q *int8, scales *float32, xq *int8, xs *float32, blocks int) float32

// haveDotQ8x4 reports whether dotQ8x4 runs for rows of n weights.
func haveDotQ8x4(n int) bool { return haveAVX2 && n > 0 && n%Q8Block == 0 }

// dotQ8x4 sets out[i] to the dot product of the Q8 row q (its blocks'
// scales in scales) with the Q8 vector xq[i·len(q):], scales xs[i·nb:], for
// i < 4, reading the row once; out[i] is what dotQ8 gives to the bit. Only
// where haveDotQ8x4(len(q)).
func dotQ8x4(q []int8, scales []float32, xq []int8, xs []float32, out *[4]float32) {
	n, nb := len(q), len(scales)
	_ = xq[3*n+n-1]
	_ = xs[3*nb+nb-1]
	dotQ8x4AVX2(&q[0], &scales[0], &xq[0], &xs[0], n, nb, nb, &out[0])
}

// dot16 is the dot product of the 16-bit row w (dtype BF16 or F16) with
// x: whole runs of 8 by the AVX2 kernel, the rest by the pure-Go one.
func dot16(d DType, w []uint16, x []float32) float32 {
	n := len(x) &^ 7
	fast := haveAVX2
	if d == F16 {
		fast = haveF16C
	}
	if !fast || n == 0 {
		return dot16Go(d, w, x)
	}
	w = w[:len(x)]
	var s float32
	if d == BF16 {
		s = dotBF16AVX2(&w[0], &x[0], n)
	} else {
		s = dotF16AVX2(&w[0], &x[0], n)
	}
	if n < len(x) {
		s += dot16Go(d, w[n:], x[n:])
	}
	return s
}

func dotQ8(q []int8, scales []float32, xq []int8, xs []float32, prefetch bool) float32 {
	nb := len(xq) / Q8Block
	if !haveAVX2 || nb == 0 {
		return dotQ8Go(q, scales, xq, xs)
	}
	q = q[:len(xq)]
	scales = scales[:len(xs)]
	var s float32
	if prefetch {
		s = dotQ8PrefetchAVX2(&q[0], &scales[0], &xq[0], &xs[0], nb)
	} else {
		s = dotQ8AVX2(&q[0], &scales[0], &xq[0], &xs[0], nb)
	}
	if n := nb * Q8Block; n < len(xq) {
		s += dotQ8Go(q[n:], scales[nb:], xq[n:], xs[nb:])
	}
	return s
}

//go:noescape
func widenBF16AVX2(dst *float32, src *uint16, n int)

//go:noescape
func widenF16AVX2(dst *float32, src *uint16, n int)

//go:noescape
func widenQ8AVX2(dst *float32, q *int8, scales *float32, blocks int)

// widen16 writes the 16-bit values src (dtype BF16 or F16) as float32
// into dst: whole runs of 8 by the AVX2 kernel, the rest by the pure-Go
// loop.
func widen16(d DType, dst []float32, src []uint16) {
	n := len(src) &^ 7
	fast := haveAVX2
	if d == F16 {
		fast = haveF16C
	}
	if fast && n > 0 {
		dst = dst[:len(src)]
		if d == BF16 {
			widenBF16AVX2(&dst[0], &src[0], n)
		} else {
			widenF16AVX2(&dst[0], &src[0], n)
		}
	} else {
		n = 0
	}
	widen16Go(d, dst[n:], src[n:])
}

// widenQ8 writes one row of Q8 blocks as float32 into dst.
func widenQ8(dst []float32, q []int8, scales []float32) {
	nb := len(q) / Q8Block
	if haveAVX2 && nb > 0 {
		dst = dst[:len(q)]
		scales = scales[:blocksPerRow(len(q))]
		widenQ8AVX2(&dst[0], &q[0], &scales[0], nb)
	} else {
		nb = 0
	}
	widenQ8Go(dst[nb*Q8Block:], q[nb*Q8Block:], scales[nb:])
}

//go:noescape
func dotBF16x4AVX2(w *uint16, x *float32, stride, n int, out *float32)

//go:noescape
func dotF16x4AVX2(w *uint16, x *float32, stride, n int, out *float32)

//go:noescape
func dotF32x4AVX2(w *float32, x *float32, stride, n int, out *float32)

//go:noescape
func dotF32x8AVX2(w *float32, x *float32, stride, n int, out *float32)

//go:noescape
func dotBF16x8AVX2(w *uint16, x *float32, stride, n int, out *float32)

//go:noescape
func dotF16x8AVX2(w *uint16, x *float32, stride, n int, out *float32)

// haveDotGroup reports whether dotGroup has a kernel for rows of n
// weights of dtype d (F32, BF16 or F16).
func haveDotGroup(d DType, n int) bool {
	return n > 0 && n%8 == 0 && haveAVX2 && (d == F32 || d == BF16 || d == F16 && haveF16C)
}

// dotGroup sets out[i] to the dot product of row j of w (dtype F32, BF16
// or F16) with x[i·stride : i·stride+w.Cols] for i < len(out), 4 or 8
// vectors, reading the row once. Only where haveDotGroup.
func (w *Matrix) dotGroup(j int, x []float32, stride int, out []float32) {
	n := w.Cols
	g := len(out)
	_ = x[(g-1)*stride+n-1]
	var h *uint16
	if w.DType != F32 {
		h = &w.Half[j*n : (j+1)*n][0]
	}
	switch {
	case w.DType == F32 && g == 8:
		dotF32x8AVX2(&w.F32[j*n : (j+1)*n][0], &x[0], stride, n, &out[0])
	case w.DType == F32 && g == 4:
		dotF32x4AVX2(&w.F32[j*n : (j+1)*n][0], &x[0], stride, n, &out[0])
	case w.DType == BF16 && g == 8:
		dotBF16x8AVX2(h, &x[0], stride, n, &out[0])
	case w.DType == BF16 && g == 4:
		dotBF16x4AVX2(h, &x[0], stride, n, &out[0])
	case w.DType == F16 && g == 8:
		dotF16x8AVX2(h, &x[0], stride, n, &out[0])
	case w.DType == F16 && g == 4:
		dotF16x4AVX2(h, &x[0], stride, n, &out[0])
	default:
		panic(fmt.Sprintf("model: dotGroup of %d vectors and %v weights", g, w.DType))
	}
}

//go:noescape
func dotBF16Pair8AVX512(w *uint16, wstride int, x *float32, stride, n int, out *float32)

//go:noescape
func dotF16Pair8AVX512(w *uint16, wstride int, x *float32, stride, n int, out *float32)

//go:noescape
func dotF32Pair8AVX512(w *float32, wstride int, x *float32, stride, n int, out *float32)

// haveAVX512 reports whether the pair kernels (dot_avx512_amd64.s) run
// here (they use AVX512BW's byte and word forms and AVX512DQ's
// VEXTRACTF32X8 besides AVX512F), and haveQ8x8 whether dotQ8x8 does.
var (
	haveAVX512 = haveAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ
	haveQ8x8   = haveAVX512 && cpu.X86.HasAVX512VNNI
)

//go:noescape
func dotQ8x8AVX512(q *int8, scales *float32, xq *int8, xst *float32, xstride, blocks int, out *float32)

// haveDotQ8x8 reports whether dotQ8x8 runs for rows of n weights (an even
// number of blocks).
func haveDotQ8x8(n int) bool { return haveQ8x8 && n > 0 && n%(2*Q8Block) == 0 }

// dotQ8x8 is dotQ8x4 for eight vectors, whose block scales xst holds
// block by block (transposeScales): out[i] is what dotQ8 gives, to the
// bit. Only where haveDotQ8x8(len(q)).
func dotQ8x8(q []int8, scales []float32, xq []int8, xst []float32, out *[8]float32) {
	n, nb := len(q), len(scales)
	_ = xq[7*n+n-1]
	_ = xst[8*nb-1]
	dotQ8x8AVX512(&q[0], &scales[0], &xq[0], &xst[0], n, nb, &out[0])
}

// haveDotPair reports whether dotPair has a kernel for rows of n weights
// of dtype d.
func haveDotPair(d DType, n int) bool {
	return haveAVX512 && n > 0 && n%16 == 0 && (d == F32 || d == BF16 || d == F16)
}

// dotPair sets out[i] to the dot product of row j of w with
// x[i·stride : i·stride+w.Cols] and out[8+i] that of row j+1, for i < 8,
// reading each run of weights once for the eight vectors and each run of
// x once for the two rows. Only where haveDotPair.
func (w *Matrix) dotPair(j int, x []float32, stride int, out *[16]float32) {
	n := w.Cols
	_ = x[7*stride+n-1]
	switch w.DType {
	case F32:
		_ = w.F32[(j+2)*n-1]
		dotF32Pair8AVX512(&w.F32[j*n], n, &x[0], stride, n, &out[0])
	case BF16:
		_ = w.Half[(j+2)*n-1]
		dotBF16Pair8AVX512(&w.Half[j*n], n, &x[0], stride, n, &out[0])
	case F16:
		_ = w.Half[(j+2)*n-1]
		dotF16Pair8AVX512(&w.Half[j*n], n, &x[0], stride, n, &out[0])
	default:
		panic(fmt.Sprintf("model: dotPair of %v weights", w.DType))
	}
}

// dotKernels names the kernels in use, for benchmarks.
var dotKernels = map[bool]string{true: "avx2", false: "go"}[haveAVX2]

//go:noescape
func quantizeQ8AVX2(q *int8, scales *float32, x *float32, blocks int) bool

// quantizeVector quantises an activation vector to Q8 blocks, ties to
// even: whole blocks by the AVX2 kernel, the tail (and a vector holding a
// NaN or an infinity) by quantizeVectorGo, which gives the same result.
func quantizeVector(q []int8, scales []float32, x []float32) {
	nb := len(x) / Q8Block
	if !haveAVX2 || nb == 0 {
		quantizeVectorGo(q, scales, x)
		return
	}
	q = q[:len(x)]
	scales = scales[:blocksPerRow(len(x))]
	if !quantizeQ8AVX2(&q[0], &scales[0], &x[0], nb) {
		quantizeVectorGo(q, scales, x)
		return
	}
	if n := nb * Q8Block; n < len(x) {
		quantizeVectorGo(q[n:], scales[nb:], x[n:])
	}
}

//go:build amd64 && !purego

package model

import "golang.org/x/sys/cpu"

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
func dotQ8AVX2(q *int8, scales *float32, x *float32, blocks int) float32

func dotBF16(w []uint16, x []float32) float32 {
	n := len(x) &^ 7
	if !haveAVX2 || n == 0 {
		return dotBF16Go(w, x)
	}
	w = w[:len(x)]
	s := dotBF16AVX2(&w[0], &x[0], n)
	if n < len(x) {
		s += dotBF16Go(w[n:], x[n:])
	}
	return s
}

func dotF16(w []uint16, x []float32) float32 {
	n := len(x) &^ 7
	if !haveF16C || n == 0 {
		return dotF16Go(w, x)
	}
	w = w[:len(x)]
	s := dotF16AVX2(&w[0], &x[0], n)
	if n < len(x) {
		s += dotF16Go(w[n:], x[n:])
	}
	return s
}

func dotQ8(q []int8, scales []float32, x []float32) float32 {
	nb := len(x) / Q8Block
	if !haveAVX2 || nb == 0 {
		return dotQ8Go(q, scales, x)
	}
	q = q[:len(x)]
	scales = scales[:blocksPerRow(len(x))]
	s := dotQ8AVX2(&q[0], &scales[0], &x[0], nb)
	if n := nb * Q8Block; n < len(x) {
		s += dotQ8Go(q[n:], scales[nb:], x[n:])
	}
	return s
}

// dotKernels names the kernels in use, for benchmarks.
var dotKernels = map[bool]string{true: "avx2", false: "go"}[haveAVX2]

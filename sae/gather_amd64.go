//go:build amd64 && !purego

package sae

import "golang.org/x/sys/cpu"

// haveGatherAVX2 reports whether the AVX2 kernels of gather_amd64.s run
// here (they need AVX2 and FMA).
var haveGatherAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// haveGatherAVX512 reports whether the 512-bit kernels run here (the dot
// kernel's VEXTRACTF32X8 is AVX512DQ's).
var haveGatherAVX512 = haveGatherAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ

//go:noescape
func gatherAxpy64AVX2(dense, base *float32, stride int, idx *int32, e *float32, n int)

//go:noescape
func gatherDot64AVX2(dense, base *float32, stride int, idx *int32, e *float32, n int)

//go:noescape
func gatherAxpy64AVX512(dense, base *float32, stride int, idx *int32, e *float32, n int)

//go:noescape
func gatherDot64AVX512(dense, base *float32, stride int, idx *int32, e *float32, n int)

var (
	gatherAxpyKernels = gatherKernels{chunk: gatherKernel(gatherAxpy64AVX512, gatherAxpy64AVX2), loop: gatherAxpyGo}
	gatherDotKernels  = gatherKernels{chunk: gatherKernel(gatherDot64AVX512, gatherDot64AVX2), loop: gatherDotGo}
)

// gatherKernel picks the AVX-512 kernel or the AVX2 one, or none.
func gatherKernel(k512, k2 chunkKernel) chunkKernel {
	switch {
	case haveGatherAVX512:
		return k512
	case haveGatherAVX2:
		return k2
	}
	return nil
}

//go:noescape
func adamAVX2(p, grad, m, v *float32, n int, c *adamConsts)

// adamUpdate is adamUpdateGo, whole runs of 8 by the AVX2 kernel (the same
// result to the bit).
func adamUpdate(p, g, m, v []float32, c *adamConsts) {
	n := len(p) &^ 7
	if haveGatherAVX2 && n > 0 {
		g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
		adamAVX2(&p[0], &g[0], &m[0], &v[0], n, c)
	} else {
		n = 0
	}
	adamUpdateGo(p[n:], g[n:], m[n:], v[n:], c)
}

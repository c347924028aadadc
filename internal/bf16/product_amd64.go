//go:build amd64 && !purego

package bf16

import (
	"golang.org/x/sys/cpu"
)

var native = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BF16

// tile6x64 is in product_amd64.s; lda and ldc are in bytes.
//
//go:noescape
func tile6x64(a *uint16, lda uintptr, b *uint16, kp int, c *float32, ldc uintptr)

// tile adds one 6 x 64 tile of A·B to C (see tileGo), with the
// assembly kernel where the CPU has AVX512_BF16.
func tile(a []uint16, lda int, b []uint16, kp int, c []float32, ldc int) {
	if !native {
		tileGo(a, lda, b, kp, c, ldc)
		return
	}
	_ = a[(tileRows-1)*lda+2*kp-1]
	_ = b[kp*2*panelCols-1]
	_ = c[(tileRows-1)*ldc+panelCols-1]
	tile6x64(&a[0], uintptr(lda)*2, &b[0], kp, &c[0], uintptr(ldc)*4)
}

// roundAVX512 is in product_amd64.s; n is a multiple of 16.
//
//go:noescape
func roundAVX512(dst *uint16, src *float32, n int)

// roundRow sets dst[i] to src[i] rounded to bfloat16 (Round), 16 at a time
// where the CPU converts natively. The CPU's conversion reads a denormal
// as zero, which the products (VDPBF16PS) do anyway.
func roundRow(dst []uint16, src []float32) {
	n := 0
	if native {
		n = len(src) &^ 15
		if n > 0 {
			_ = dst[n-1]
			roundAVX512(&dst[0], &src[0], n)
		}
	}
	for i := n; i < len(src); i++ {
		dst[i] = Round(src[i])
	}
}

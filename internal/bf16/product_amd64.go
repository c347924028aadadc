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

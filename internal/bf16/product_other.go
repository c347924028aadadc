//go:build !amd64 || purego

package bf16

const native = false

// tile adds one 6 x 64 tile of A·B to C; see tileGo.
func tile(a []uint16, lda int, b []uint16, kp int, c []float32, ldc int) {
	tileGo(a, lda, b, kp, c, ldc)
}

//go:build !amd64 || purego

package bf16

const native = false

// tile adds one 6 x 64 tile of A·B to C; see tileGo.
func tile(a []uint16, lda int, b []uint16, kp int, c []float32, ldc int) {
	tileGo(a, lda, b, kp, c, ldc)
}

// roundRow sets dst[i] to src[i] rounded to bfloat16 (Round).
func roundRow(dst []uint16, src []float32) {
	for i, v := range src {
		dst[i] = Round(v)
	}
}

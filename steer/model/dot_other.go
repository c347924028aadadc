//go:build !amd64 || purego

package model

// Without the amd64 kernels, the pure-Go ones.
func dot16(d DType, w []uint16, x []float32) float32 { return dot16Go(d, w, x) }
func dotQ8(q []int8, scales []float32, xq []int8, xs []float32, _ bool) float32 {
	return dotQ8Go(q, scales, xq, xs)
}

func quantizeVector(q []int8, scales []float32, x []float32) { quantizeVectorGo(q, scales, x) }

func widen16(d DType, dst []float32, src []uint16)      { widen16Go(d, dst, src) }
func widenQ8(dst []float32, q []int8, scales []float32) { widenQ8Go(dst, q, scales) }

// No kernel here does several vectors at once.
func haveDotGroup(DType, int) bool { return false }

func (w *Matrix) dotGroup(int, []float32, int, []float32) { panic("model: no dotGroup kernel") }

func haveDotPair(DType, int) bool { return false }

func (w *Matrix) dotPair(int, []float32, int, *[16]float32) { panic("model: no dotPair kernel") }

func haveDotQ8x4(int) bool { return false }

func dotQ8x4([]int8, []float32, []int8, []float32, *[4]float32) { panic("model: no dotQ8x4 kernel") }

func haveDotQ8x8(int) bool { return false }

func dotQ8x8([]int8, []float32, []int8, []float32, *[8]float32) { panic("model: no dotQ8x8 kernel") }

// dotKernels names the kernels in use, for benchmarks.
const dotKernels = "go"

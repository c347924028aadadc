// Package matmul is the float32 matrix product that the SAE engines, the
// atlas and the model runtime share, and the choice of BLAS behind it.
//
// The BLAS is gonum's pure-Go implementation, which uses all cores for
// large products. Built with "-tags openblas" (the Makefile does this when
// libopenblas-dev is present), openblas.go swaps in OpenBLAS through
// gonum's netlib binding, about eight times faster on a 2-core machine.
package matmul

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/rise-interp/rise/internal/parallel"
)

// BLASName names the BLAS in use, for benchmarks and logs.
var BLASName = "gonum"

// splitGemm makes Gemm split large products across cores itself, for a BLAS
// that runs single-threaded.
var splitGemm = false

// Gemm computes C = alpha·op(A)·op(B) + beta·C on row-major float32
// matrices through the BLAS in use. When that BLAS is single-threaded, a
// large product is split by rows of C across cores.
func Gemm(ta, tb blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	impl := blas32.Implementation()
	if !splitGemm || m < 2*parallel.Workers() || int64(m)*int64(n)*int64(k) < 1<<21 {
		impl.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	parallel.For(m, 1, func(_, lo, hi int) {
		aOff := lo * lda // rows lo..hi of op(A) = rows of A
		if ta == blas.Trans {
			aOff = lo // = columns of A
		}
		impl.Sgemm(ta, tb, hi-lo, n, k, alpha, a[aOff:], lda, b, ldb, beta, c[lo*ldc:], ldc)
	})
}

// Impl is the float32 BLAS in use, for the products that call it directly
// (matrix-vector products, products split by the caller).
func Impl() blas.Float32 { return blas32.Implementation() }

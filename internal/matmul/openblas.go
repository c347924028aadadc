//go:build openblas

package matmul

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int);
*/
import "C"

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/netlib/blas/netlib"
)

// OpenBLAS runs single-threaded here and Gemm splits large products across
// goroutines itself. OpenBLAS's own threads spin for a while after each call,
// and on a machine with few cores that spinning takes the cores from the Go
// code between products.
func init() {
	C.openblas_set_num_threads(1)
	blas32.Use(netlib.Implementation{})
	BLASName = "openblas"
	splitGemm = true
}

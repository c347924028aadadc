package sae

// The float32 BLAS behind every matrix product is gonum's pure-Go
// implementation, which uses all cores for large products. Built with
// "-tags openblas" (the Makefile does this when libopenblas-dev is present),
// blas_openblas.go swaps in OpenBLAS through gonum's netlib binding, about
// eight times faster on a 2-core machine.

// BLASName names the BLAS in use, for benchmarks and logs.
var BLASName = "gonum"

// splitGemm makes gemm split large products across cores itself, for a BLAS
// that runs single-threaded.
var splitGemm = false

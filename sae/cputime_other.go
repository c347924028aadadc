//go:build !unix

package sae

// processCPU reports no CPU time where getrusage is missing.
func processCPU() (float64, bool) { return 0, false }

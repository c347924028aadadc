//go:build !amd64 || purego

package sae

var (
	gatherAxpyKernels = gatherKernels{loop: gatherAxpyGo}
	gatherDotKernels  = gatherKernels{loop: gatherDotGo}
)

func adamUpdate(p, g, m, v []float32, c *adamConsts) { adamUpdateGo(p, g, m, v, c) }

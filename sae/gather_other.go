//go:build !amd64 || purego

package sae

func gatherAxpy64(out []float32, base []float32, stride int, idx []int32, v []float32) {
	gatherAxpyGo(out[:gatherChunk], base, stride, idx, v)
}

func gatherDot64(x []float32, base []float32, stride int, idx []int32, out []float32) {
	gatherDotGo(x[:gatherChunk], base, stride, idx, out)
}

func adamUpdate(p, g, m, v []float32, c *adamConsts) { adamUpdateGo(p, g, m, v, c) }

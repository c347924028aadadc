package sae

import (
	"context"
	"math"

	"github.com/rise-interp/rise/activations"
)

// GeometricMedian estimates the geometric median of a layer's rows (the
// point with the least summed distance to them) by Weiszfeld's algorithm on
// a sample of at most maxRows rows. Unlike the mean it is not dragged by
// outlying rows; SAELens offers it to initialise b_dec.
func GeometricMedian(ctx context.Context, layer *activations.Layer, maxRows int, seed uint64) ([]float64, error) {
	d := layer.DModel
	n := min(layer.Rows, maxRows)
	x := make([]float32, 0, n*d)
	it := layer.Batches(activations.BatchOptions{Size: min(n, 1024), Shuffle: layer.Rows > n, Seed: seed})
	for len(x) < n*d && it.Next(ctx) {
		take := min(it.Len(), n-len(x)/d)
		x = append(x, it.X()[:take*d]...)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	n = len(x) / d
	y := make([]float64, d)
	for r := range n {
		for i := range d {
			y[i] += float64(x[r*d+i])
		}
	}
	for i := range y {
		y[i] /= float64(n)
	}
	num := make([]float64, d)
	for iter := 0; iter < 100; iter++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		clear(num)
		var den float64
		for r := range n {
			var sq float64
			for i := range d {
				e := float64(x[r*d+i]) - y[i]
				sq += e * e
			}
			w := 1 / math.Max(math.Sqrt(sq), 1e-12)
			den += w
			for i := range d {
				num[i] += w * float64(x[r*d+i])
			}
		}
		var move float64
		for i := range d {
			v := num[i] / den
			move += (v - y[i]) * (v - y[i])
			y[i] = v
		}
		if math.Sqrt(move) < 1e-7 {
			break
		}
	}
	return y, nil
}

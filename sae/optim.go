package sae

import (
	"math"

	"github.com/rise-interp/rise/internal/parallel"
)

// adam is the Adam optimiser (Kingma and Ba 2015) with bias correction.
type adam struct {
	params       [][]float32
	m, v         [][]float32
	beta1, beta2 float64
	eps          float64
	t            int
}

func newAdam(params [][]float32, b1, b2 float64) *adam {
	a := &adam{params: params, beta1: b1, beta2: b2, eps: 1e-8}
	for _, p := range params {
		a.m = append(a.m, make([]float32, len(p)))
		a.v = append(a.v, make([]float32, len(p)))
	}
	return a
}

func (a *adam) step(grads [][]float32, lr float64) {
	a.t++
	c1 := 1 - math.Pow(a.beta1, float64(a.t))
	c2 := 1 - math.Pow(a.beta2, float64(a.t))
	b1, b2 := float32(a.beta1), float32(a.beta2)
	c := &adamConsts{b1: b1, omb1: 1 - b1, b2: b2, omb2: 1 - b2,
		step: float32(lr / c1), sc2: float32(1 / math.Sqrt(c2)), eps: float32(a.eps)}
	for k, p := range a.params {
		g, m, v := grads[k], a.m[k], a.v[k]
		parallel.For(len(p), 1<<14, func(_, lo, hi int) {
			adamUpdate(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], c)
		})
	}
}

// adamConsts are one Adam step's coefficients, in the layout the AVX2
// kernel reads.
type adamConsts struct {
	b1, omb1, b2, omb2 float32 // β1, 1−β1, β2, 1−β2
	step, sc2, eps     float32 // lr/(1−β1ᵗ), 1/√(1−β2ᵗ), ε
}

// adamUpdateGo updates the parameters p and the moments m, v from the
// gradients g: the Adam step, elementwise.
func adamUpdateGo(p, g, m, v []float32, c *adamConsts) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i, gi := range g {
		m[i] = c.b1*m[i] + c.omb1*gi
		v[i] = c.b2*v[i] + c.omb2*gi*gi
		p[i] -= c.step * m[i] / (sqrt32(v[i])*c.sc2 + c.eps)
	}
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// clipGlobalNorm scales all gradients so that their joint norm is at most c.
func clipGlobalNorm(grads [][]float32, c float64) {
	var sq float64
	for _, g := range grads {
		for _, v := range g {
			sq += float64(v) * float64(v)
		}
	}
	if n := math.Sqrt(sq); n > c {
		f := float32(c / n)
		for _, g := range grads {
			for i := range g {
				g[i] *= f
			}
		}
	}
}

// normaliseRows scales each row of the [rows, cols] matrix w to unit norm.
func normaliseRows(w []float32, rows, cols int) {
	parallel.For(rows, 64, func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			row := w[j*cols : (j+1)*cols]
			var sq float64
			for _, v := range row {
				sq += float64(v) * float64(v)
			}
			if sq > 0 {
				f := float32(1 / math.Sqrt(sq))
				for i := range row {
					row[i] *= f
				}
			}
		}
	})
}

// removeParallel removes from each gradient row its component along the
// matching (unit) row of w.
func removeParallel(g, w []float32, rows, cols int) {
	parallel.For(rows, 64, func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			gr, wr := g[j*cols:(j+1)*cols], w[j*cols:(j+1)*cols]
			var dot, nn float64
			for i := range gr {
				dot += float64(gr[i]) * float64(wr[i])
				nn += float64(wr[i]) * float64(wr[i])
			}
			if nn > 0 {
				f := float32(dot / nn)
				for i := range gr {
					gr[i] -= f * wr[i]
				}
			}
		}
	})
}

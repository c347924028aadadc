package steer

import (
	"fmt"
	"math/rand/v2"

	"github.com/rise-interp/rise/internal/vec"
)

// Control is a set of vectors a sweep runs beside the chosen ones, to show
// what steering with something that is not the behaviour's direction does
// at the same layer, positions and strengths.
type Control struct {
	Name    string
	Vectors []Vector
}

// RandomControls returns n controls, each replacing every vector's
// direction by a random unit direction (Gaussian, then normalised: uniform
// on the sphere) of the same width, keeping its layer, operator, strength
// and positions. Control i draws from its own stream of seed, so adding
// controls does not change the first ones.
func RandomControls(vs []Vector, n int, seed uint64) []Control {
	out := make([]Control, n)
	for i := range out {
		rng := rand.New(rand.NewPCG(seed, 0xc0117e01+uint64(i)))
		c := Control{Name: fmt.Sprintf("random %d", i+1), Vectors: make([]Vector, len(vs))}
		for j, v := range vs {
			g := make([]float32, len(v.Dir))
			for {
				for k := range g {
					g[k] = float32(rng.NormFloat64())
				}
				if u, err := vec.Unit(g); err == nil {
					g = u
					break
				}
			}
			v.Dir = g
			c.Vectors[j] = v
		}
		out[i] = c
	}
	return out
}

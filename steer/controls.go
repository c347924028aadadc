package steer

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae/atlas"
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

// ShuffledControl returns the control that replaces every vector's
// direction by its atlas's shuffled-label vector (atlas.BehaviourInfo's
// ShuffledVector): the same construction on the same steps with the
// behaviour labels shuffled. Every vector must come from an atlas
// ("atlas:ATLAS.json#BEHAVIOUR") written with shuffled vectors (rise atlas
// writes them); otherwise the error says which vector has none.
func ShuffledControl(vs []Vector) (Control, error) {
	c := Control{Name: "shuffled labels", Vectors: make([]Vector, len(vs))}
	for i, v := range vs {
		kind, rest, _ := strings.Cut(v.Source, ":")
		path, name, ok := strings.Cut(rest, "#")
		if kind != "atlas" || !ok {
			return Control{}, fmt.Errorf("vector %d (%s): a shuffled-label control needs a behaviour vector of an atlas (atlas:ATLAS.json#BEHAVIOUR)", i, v.Source)
		}
		a, err := atlas.Load(path)
		if err != nil {
			return Control{}, err
		}
		info, ok := a.Behaviours[name]
		if !ok || len(info.ShuffledVector) == 0 {
			return Control{}, fmt.Errorf("vector %d (%s): the atlas has no shuffled-label vector for %q (made by an older rise atlas, or with --hold-out and shuffling off)", i, v.Source, name)
		}
		u, err := vec.Unit(info.ShuffledVector)
		if err != nil || len(u) != len(v.Dir) {
			return Control{}, fmt.Errorf("vector %d (%s): the shuffled-label vector has %d values, the vector %d", i, v.Source, len(info.ShuffledVector), len(v.Dir))
		}
		v.Dir = u
		c.Vectors[i] = v
	}
	return c, nil
}

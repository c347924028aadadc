package steer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer/model"
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

// ControlRuns is one control's sweep.
type ControlRuns struct {
	Name string `json:"name"`
	Runs []Run  `json:"runs"`
}

// MeasureRange is, per strength, the lowest and highest mean of a measure
// over the controls.
type MeasureRange struct {
	Lo []float64 `json:"lo"`
	Hi []float64 `json:"hi"`
}

// ControlBand spans the controls' means at each strength, for every
// behaviour (and accuracy when the prompts have answers).
func ControlBand(controls []ControlRuns, strengths int) map[string]MeasureRange {
	if len(controls) == 0 {
		return nil
	}
	band := map[string]MeasureRange{}
	widen := func(name string, i int, v float64) {
		r, ok := band[name]
		if !ok {
			r = MeasureRange{Lo: make([]float64, strengths), Hi: make([]float64, strengths)}
			for k := range r.Lo {
				r.Lo[k], r.Hi[k] = math.Inf(1), math.Inf(-1)
			}
			band[name] = r
		}
		r.Lo[i], r.Hi[i] = math.Min(r.Lo[i], v), math.Max(r.Hi[i], v)
	}
	for _, c := range controls {
		for i, r := range c.Runs {
			for b, iv := range r.Behaviours {
				widen(b, i, iv.Mean)
			}
			if r.Accuracy != nil {
				widen("accuracy", i, *r.Accuracy)
			}
		}
	}
	return band
}

// SweepControlled runs Sweep for the first set of vectors and for every
// control after it, with the same prompts, strengths and seeds, and returns
// the first set's runs and each control's. progress sees the work of all
// the sets as one count.
func SweepControlled(ctx context.Context, b Backend, sets []Control, strengths []float64, prompts []Prompt,
	o model.GenerateOptions, so SweepOptions, progress func(done, total int)) ([]Run, []ControlRuns, error) {
	var runs []Run
	var ctrl []ControlRuns
	for si, set := range sets {
		rs, err := Sweep(ctx, b, set.Vectors, strengths, prompts, o, so, func(done, total int) {
			if progress != nil {
				progress(si*total+done, len(sets)*total)
			}
		})
		if err != nil {
			return nil, nil, err
		}
		if si == 0 {
			runs = rs
		} else {
			ctrl = append(ctrl, ControlRuns{Name: set.Name, Runs: rs})
		}
	}
	return runs, ctrl, nil
}

package atlas

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/sae"
)

// sweepDump stacks planted dumps of the same steps whose behaviour groups
// are more and more coherent (one per layer, layer 4i) and trains a TopK SAE
// on each layer.
func sweepDump(t *testing.T, coherence []float64) (*activations.Dump, []activations.Step, []*sae.SAE) {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	var srcs []string
	var layers []int
	for i, c := range coherence {
		cfg := synth.DefaultConfig()
		cfg.Rows, cfg.DModel, cfg.Features, cfg.GroupCoherence = 8000, 96, 256, c
		src := filepath.Join(tmp, fmt.Sprint("c", i))
		if _, err := synth.Generate(ctx, src, cfg, false, nil); err != nil {
			t.Fatal(err)
		}
		srcs, layers = append(srcs, src), append(layers, 4*i)
	}
	path := filepath.Join(tmp, "stacked")
	if err := activations.Stack(ctx, path, srcs, layers, false); err != nil {
		t.Fatal(err)
	}
	d, steps := openDump(t, path)
	saes := make([]*sae.SAE, len(d.Layers))
	for i, l := range d.Layers {
		var err error
		saes[i], _, err = sae.Train(ctx, l, sae.TrainConfig{Arch: sae.TopK, Width: 512, K: 12, Batch: 256, Samples: 300_000, Seed: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	return d, steps, saes
}

// TestSeparate checks the layer sweep against planted truth: the columns of
// behaviour groups that are coherent in a layer separate there (silhouette
// well above the shuffled baseline), and better the more coherent they are,
// while on a layer whose groups are scattered at random they score about
// what shuffled labels do; steps separate by behaviour and by length.
func TestSeparate(t *testing.T) {
	d, steps, saes := sweepDump(t, []float64{0, 0.55, 0.8})
	ctx := context.Background()
	var seps []*Separation
	for i, l := range d.Layers {
		sp, err := Separate(ctx, saes[i], l, steps, SeparationOptions{Seed: 1, MaxSteps: 2000})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("layer %d: columns %v steps %v counts %v missing %v", sp.Layer, sp.Columns, sp.Steps, sp.SpecificColumns, sp.Missing)
		if sp.Layer != l.Number || sp.SampledSteps != 2000 {
			t.Errorf("layer %d, %d sampled steps; want %d and 2000", sp.Layer, sp.SampledSteps, l.Number)
		}
		// Short responses have no planted features of their own, so a
		// layer may have no column specific to them: then the column
		// silhouette of lengths is missing, and says why.
		for _, k := range []string{"behaviours", "behaviours_shuffled"} {
			if _, ok := sp.Columns[k]; !ok {
				t.Errorf("layer %d: no column silhouette %q (%v)", sp.Layer, k, sp.Missing)
			}
		}
		if _, ok := sp.Columns["length"]; !ok && sp.Missing["columns_length"] == "" {
			t.Errorf("layer %d: no column silhouette of lengths, and no reason given", sp.Layer)
		}
		for _, k := range []string{"behaviours", "behaviours_shuffled", "length", "length_shuffled"} {
			if _, ok := sp.Steps[k]; !ok {
				t.Errorf("layer %d: no step silhouette %q (%v)", sp.Layer, k, sp.Missing)
			}
		}
		seps = append(seps, sp)
	}
	if t.Failed() {
		return
	}
	last := seps[len(seps)-1]
	if c := last.Columns["behaviours"]; c < 0.15 || c < last.Columns["behaviours_shuffled"]+0.15 {
		t.Errorf("coherent layer: column silhouette of behaviours %.3f, shuffled %.3f: want clearly positive", c, last.Columns["behaviours_shuffled"])
	}
	if !(seps[0].Columns["behaviours"] < seps[1].Columns["behaviours"] && seps[1].Columns["behaviours"] < seps[2].Columns["behaviours"]) {
		t.Errorf("column silhouette of behaviours by layer %.3f %.3f %.3f: want it to grow with the groups' coherence",
			seps[0].Columns["behaviours"], seps[1].Columns["behaviours"], seps[2].Columns["behaviours"])
	}
	if c := seps[0].Columns["behaviours"]; math.Abs(c) > 0.1 {
		t.Errorf("scattered layer: column silhouette of behaviours %.3f, want about 0", c)
	}
	// Steps carry their label's features whether or not those lie close
	// together, so steps separate (a little) on every layer.
	for _, sp := range seps {
		for _, k := range []string{"behaviours", "length"} {
			if s := sp.Steps[k]; s < sp.Steps[k+"_shuffled"]+0.005 {
				t.Errorf("layer %d: step silhouette of %s %.3f, shuffled %.3f: want above the shuffle", sp.Layer, k, s, sp.Steps[k+"_shuffled"])
			}
		}
	}
	layers, curves, err := SweepCurves(seps)
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 || len(curves["columns: behaviours"]) != 3 || len(curves["steps: length"]) != 3 {
		t.Errorf("curves %v over layers %v", curves, layers)
	}
}

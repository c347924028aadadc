package sae

import (
	"context"
	"math"
	"testing"

	"github.com/rise-interp/rise/activations"
)

// TestResampleDrawsEachRowOnce resamples 40 dead latents on a batch of 16
// rows where one row's error dwarfs the rest (as an outlier's does): each
// row seeds at most one latent, so no two resampled latents share a
// direction (drawn with replacement, the outlier seeded nearly all of them
// and TopK kept one of the twins at most), and the latents left over stay
// dead for the next round.
func TestResampleDrawsEachRowOnce(t *testing.T) {
	layer, _ := plantedLayer(t, 512, 16, 8)
	cfg := TrainConfig{Arch: TopK, Width: 64, K: 4, Batch: 16, Steps: 10, Seed: 3}.Defaults(layer.DModel, layer.Rows)
	if err := cfg.Validate(layer.DModel, layer.Rows); err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer(context.Background(), layer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const rows, deadN = 16, 40
	d := tr.s.DIn
	x := make([]float32, rows*d)
	it := layer.Batches(activations.BatchOptions{Size: rows})
	if !it.Next(context.Background()) {
		t.Fatal(it.Err())
	}
	copy(x, it.X())
	for i := range d { // an outlier: its error is thousands of times the others'
		x[i] *= 50
	}
	for j := range deadN {
		tr.dead[j] = true
	}
	n := tr.resample(x)
	if n != rows {
		t.Errorf("resampled %d latents, expected one for each of the %d rows", n, rows)
	}
	var revived []int
	for j := range deadN {
		if !tr.dead[j] {
			revived = append(revived, j)
		}
	}
	if len(revived) != n {
		t.Fatalf("%d latents marked live, %d resampled", len(revived), n)
	}
	for a, ja := range revived {
		for _, jb := range revived[a+1:] {
			var dot, na, nb float64
			for i := range d {
				va, vb := float64(tr.s.WDec[ja*d+i]), float64(tr.s.WDec[jb*d+i])
				dot += va * vb
				na += va * va
				nb += vb * vb
			}
			if c := dot / math.Sqrt(na*nb); c > 0.9999 {
				t.Fatalf("latents %d and %d were resampled to the same direction (cosine %.6f)", ja, jb, c)
			}
		}
	}
}

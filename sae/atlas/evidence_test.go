package atlas

import (
	"context"
	"testing"

	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/internal/vec"
)

// TestEvidenceRule: a column is tied to a behaviour only when it fires on
// enough of its steps and enough more often there than at large; a
// catch-all label needs only half the enrichment it could reach.
func TestEvidenceRule(t *testing.T) {
	// 100 steps: 20 reflection, 80 other. Column 0 fires on 15 reflection
	// and 15 other steps (enrichment 0.75/0.30 = 2.5); column 1 on 2
	// reflection steps only (too few); column 2 on every step (enrichment
	// 1); column 3 on 60 other steps (0.75/0.6 = 1.25, where other can
	// reach at most 1.25 and needs 1.125).
	a := &Attribution{
		Behaviours: []string{"other", "reflection"}, Counts: []int{80, 20}, Rows: 100, DSae: 4,
		Fires:   [][]int64{{15, 0, 80, 60}, {15, 2, 20, 0}},
		Rate:    [][]float32{{15.0 / 80, 0, 1, 0.75}, {0.75, 0.1, 1, 0}},
		RateAll: []float32{0.3, 0.02, 1, 0.6},
	}
	a.Mean = a.Rate
	a.Measure = MeasureMean
	rule, err := SpecificOptions{}.withDefaults(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		b, j int
		want bool
	}{{1, 0, true}, {1, 1, false}, {1, 2, false}, {0, 3, true}, {0, 2, false}} {
		if got := a.Evidence(c.b, c.j, rule); got != c.want {
			t.Errorf("behaviour %s, column %d: evidence %v (firings %d, enrichment %.3g), want %v",
				a.Behaviours[c.b], c.j, got, a.Firings(c.b, c.j), a.Enrichment(c.b, c.j), c.want)
		}
	}
	cols, err := a.SpecificColumns("reflection", SpecificOptions{Quantile: 0.5, StrongRatio: -1})
	if err != nil || len(cols) != 1 || cols[0] != 0 {
		t.Errorf("reflection's columns %v, %v; want [0]: column 1 fired twice and column 2 everywhere", cols, err)
	}
	off := SpecificOptions{Quantile: 0.5, StrongRatio: -1, MinFirings: -1, MinEnrichment: -1}
	if cols, _ := a.SpecificColumns("reflection", off); len(cols) != 3 {
		t.Errorf("without the rule reflection has columns %v, want 0, 1 and 2", cols)
	}
}

// TestHoldOutSplit: with half the traces held out, the planted behaviour
// columns are chosen on one half and hold up on the other: most are chosen
// again there, more than 1.5 times enriched; the atlas says which traces
// did what, and the vectors still point along the planted groups.
func TestHoldOutSplit(t *testing.T) {
	p := plantedDump(t)
	ctx := context.Background()
	opts := AttributionOptions{HoldOut: 0.5, HoldOutSeed: 3}
	attr, err := Attribute(ctx, p.sae, p.layer, p.steps, opts)
	if err != nil {
		t.Fatal(err)
	}
	h := attr.HeldOut
	if h == nil || attr.Rows+h.Rows != p.layer.Rows || attr.Traces == 0 || attr.HeldOutTraces == 0 {
		t.Fatalf("split: %d + %d rows of %d, traces %d / %d", attr.Rows, heldOutRows(attr), p.layer.Rows, attr.Traces, attr.HeldOutTraces)
	}
	if share := float64(h.Rows) / float64(p.layer.Rows); share < 0.4 || share > 0.6 {
		t.Errorf("held-out share of the steps %.2f, want about 0.5", share)
	}
	again, _ := Attribute(ctx, p.sae, p.layer, p.steps, opts)
	if again.HeldOut.Rows != h.Rows || again.Traces != attr.Traces {
		t.Error("the same seed split the traces differently")
	}
	a, err := Build(ctx, p.sae, p.layer, p.steps, Options{Layout: "pca", Clusters: 4, Seed: 1, Attribution: opts})
	if err != nil {
		t.Fatal(err)
	}
	if a.Split == nil || a.Split.SelectionSteps != attr.Rows || a.Split.HeldOutSteps != h.Rows || a.Split.MeasuredOn != "held_out" {
		t.Fatalf("atlas split %+v", a.Split)
	}
	if a.Rule == nil || a.Rule.MinFirings != DefaultMinFirings || a.Rule.MinEnrichment != DefaultMinEnrichment {
		t.Errorf("atlas rule %+v", a.Rule)
	}
	for _, b := range []string{synth.Reflection, synth.Backtracking} {
		info := a.Behaviours[b]
		ho := info.HeldOut
		if ho == nil || len(info.Columns) == 0 {
			t.Fatalf("%s: %+v", b, info)
		}
		t.Logf("%s: %d columns; held out: %d steps, kept %d, specificity %.3f, enrichment %.2f", b, len(info.Columns), ho.Steps, ho.Kept, ho.Specificity, ho.Enrichment)
		if 2*ho.Kept < len(info.Columns) || ho.Enrichment < DefaultMinEnrichment {
			t.Errorf("%s: held out, %d of %d columns kept, enrichment %.2f", b, ho.Kept, len(info.Columns), ho.Enrichment)
		}
		if c := vec.Cosine(info.Vector, groupDirection(t, p.truth, b)); c < 0.7 {
			t.Errorf("%s: vector from half the traces at cosine %.3f with the planted group", b, c)
		}
	}
}

// TestShuffledVector: an atlas built with Shuffled holds, per behaviour, the
// vector the same construction gives with the labels shuffled; it does not
// point along the planted group, as the real vector does.
func TestShuffledVector(t *testing.T) {
	p := plantedDump(t)
	a, err := Build(context.Background(), p.sae, p.layer, p.steps, Options{Layout: "pca", Clusters: 4, Seed: 1,
		Attribution: AttributionOptions{HoldOut: 0.5, HoldOutSeed: 3, Shuffled: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{synth.Reflection, synth.Backtracking} {
		info := a.Behaviours[b]
		if len(info.ShuffledVector) != p.sae.DIn {
			t.Fatalf("%s: shuffled vector of %d values", b, len(info.ShuffledVector))
		}
		real, shuf := vec.Cosine(info.Vector, groupDirection(t, p.truth, b)), vec.Cosine(info.ShuffledVector, groupDirection(t, p.truth, b))
		t.Logf("%s: cosine with the planted group %.3f, shuffled-label vector %.3f", b, real, shuf)
		if shuf > 0.3 || real < 0.7 {
			t.Errorf("%s: real vector at %.3f, shuffled at %.3f with the planted group", b, real, shuf)
		}
	}
}

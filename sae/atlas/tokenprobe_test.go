package atlas

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/sae"
)

// plantedTokenDump writes a planted dump whose features are orthonormal
// (features = d_model, no group coherence) and returns it with its truth
// and the oracle SAE: decoder rows the planted directions, encoder their
// transpose, b_dec the offset and b_enc a threshold far above the noise
// (noise of norm 0.5 over 128 dimensions projects with σ ≈ 0.044), so
// latent f is feature f's planted magnitude and the SAE's quality is not
// what the test measures.
func plantedTokenDump(t *testing.T, tokenRate float64) (string, *synth.Truth, *sae.SAE) {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Rows, cfg.DModel, cfg.Features, cfg.ActivePerRow, cfg.GroupCoherence = 6000, 128, 128, 6, 0
	cfg.TokenRate = tokenRate
	dir := filepath.Join(t.TempDir(), "dump")
	truth, err := synth.Generate(context.Background(), dir, cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sae.Oracle(truth.Directions, truth.Offset, truth.Features, truth.DModel, -0.25)
	if err != nil {
		t.Fatal(err)
	}
	return dir, truth, s
}

// TestProbeTokensData plants a token feature (it fires on every step whose
// text says "Wait", whatever its label) beside true reflection features.
// Chosen by contrast, the token features are among reflection's specific
// columns; the probe flags them, and only them, and the recorded atlas
// leaves them out of the reflection vector.
func TestProbeTokensData(t *testing.T) {
	dir, truth, s := plantedTokenDump(t, 0.05)
	d, steps := openDump(t, dir)
	layer := d.Layer(truth.Layer)
	ctx := context.Background()
	attr, err := Attribute(ctx, s, layer, steps, AttributionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cols, err := attr.SpecificColumns("reflection", SpecificOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token, refl := truth.Behaviours[synth.Token], truth.Behaviours[synth.Reflection]
	var tokenCols, reflCols []int
	for _, j := range cols {
		switch {
		case slices.Contains(token, j):
			tokenCols = append(tokenCols, j)
		case slices.Contains(refl, j):
			reflCols = append(reflCols, j)
		}
	}
	if len(tokenCols) == 0 || len(reflCols) == 0 {
		t.Fatalf("reflection columns %v: expected planted token features %v and reflection features %v among them (the premise)", cols, token, refl)
	}

	// Every planted reflection step carries one of the rule's phrases, so
	// with the rule's phrases as triggers the true steps are all of them;
	// with "Wait" alone they are those without it.
	var p *TokenProbe
	for _, triggers := range [][]string{nil, {"Wait"}} {
		var err error
		p, err = ProbeTokensData(ctx, s, layer, steps, cols, TokenProbeOptions{Behaviour: "reflection", Triggers: triggers})
		if err != nil {
			t.Fatal(err)
		}
		if p.TrueWithoutTrigger != (triggers != nil) || p.TriggerSteps < 100 || p.Mode != TokenModeData {
			t.Errorf("triggers %v: probe %+v: expected true steps without the trigger %v and over 100 trigger steps", triggers, *p, triggers != nil)
		}
		for _, sc := range p.Features {
			isToken := slices.Contains(token, sc.Feature)
			if sc.Flagged != isToken {
				t.Errorf("triggers %v: feature %d (planted token feature: %v): ratio %.3f (true %.3f, trigger %.3f), flagged %v", triggers, sc.Feature, isToken, sc.Ratio, sc.True, sc.Trigger, sc.Flagged)
			}
		}
	}

	a, err := Build(ctx, s, layer, steps, Options{Layout: "pca", Clusters: 3, Attributed: attr})
	if err != nil {
		t.Fatal(err)
	}
	before := a.Behaviours["reflection"].Vector
	if err := a.RecordTokenProbe(s, p, false); err != nil {
		t.Fatal(err)
	}
	info := a.Behaviours["reflection"]
	if !slices.Equal(info.TokenColumns, tokenCols) || !slices.Equal(info.VectorWithTokens, before) {
		t.Errorf("token columns %v, expected %v; vector with them kept: %v", info.TokenColumns, tokenCols, slices.Equal(info.VectorWithTokens, before))
	}
	// The directions are orthonormal: the vector without the token columns
	// is the normalised sum of the other columns' directions, orthogonal
	// to every token direction.
	want := make([]float64, truth.DModel)
	for _, j := range cols {
		if !slices.Contains(tokenCols, j) {
			for k, v := range truth.Direction(j) {
				want[k] += float64(v)
			}
		}
	}
	cosine := func(a []float32, b []float64) float64 {
		var ab, aa, bb float64
		for k := range a {
			ab += float64(a[k]) * b[k]
			aa += float64(a[k]) * float64(a[k])
			bb += b[k] * b[k]
		}
		return ab / math.Sqrt(aa*bb)
	}
	if c := cosine(info.Vector, want); c < 0.9999 {
		t.Errorf("vector without token columns: cosine %.5f with the mean of the kept columns' directions", c)
	}
	for _, j := range tokenCols {
		dir := make([]float64, truth.DModel)
		for k, v := range truth.Direction(j) {
			dir[k] = float64(v)
		}
		if c := cosine(info.Vector, dir); math.Abs(c) > 1e-3 {
			t.Errorf("vector without token columns: cosine %.4f with token feature %d", c, j)
		}
		if f := a.Features[j].Token; f == nil || !f.Flagged || f.Behaviour != "reflection" {
			t.Errorf("feature %d: token flag %+v", j, f)
		}
	}
	if tp := a.TokenProbes["reflection"]; tp == nil || tp.Flagged != len(tokenCols) || tp.Features != nil {
		t.Errorf("token probe summary %+v", tp)
	}

	// Kept on request: flags recorded, vector as built.
	if err := a.RecordTokenProbe(s, p, true); err != nil {
		t.Fatal(err)
	}
	if info := a.Behaviours["reflection"]; !slices.Equal(info.Vector, before) || info.VectorWithTokens != nil || len(info.TokenColumns) != len(tokenCols) {
		t.Errorf("with keep: vector as built %v, vector_with_token_features %v, token columns %v", slices.Equal(info.Vector, before), info.VectorWithTokens != nil, info.TokenColumns)
	}
}

// TestProbeTokensDataNoTriggerSteps: keyword-labelled steps never carry
// another behaviour's trigger, and the probe says so instead of dividing
// by nothing.
func TestProbeTokensDataNoTriggerSteps(t *testing.T) {
	dir, truth, s := plantedTokenDump(t, 0)
	d, steps := openDump(t, dir)
	layer := d.Layer(truth.Layer)
	_, err := ProbeTokensData(context.Background(), s, layer, steps, truth.Behaviours[synth.Reflection], TokenProbeOptions{Behaviour: "reflection"})
	if err == nil || !strings.Contains(err.Error(), "found 0") || !strings.Contains(err.Error(), "--model") {
		t.Errorf("got %v, expected an error that finds no trigger step outside reflection", err)
	}
	_, err = ProbeTokensData(context.Background(), s, layer, steps, []int{-1}, TokenProbeOptions{Behaviour: "reflection"})
	if err == nil || !strings.Contains(err.Error(), "feature -1") {
		t.Errorf("feature -1: got %v", err)
	}
}

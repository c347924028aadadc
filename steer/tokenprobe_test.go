package steer

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/label"
	"github.com/rise-interp/rise/activations/reason"
	"github.com/rise-interp/rise/internal/shared"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer/model"
)

// TestProbeTokensModel runs the injection probe on the project's tiny
// reasoning model and checks its means against a reference made apart:
// each trace is cut to one "other" step followed by its reflection steps,
// so the step the trigger goes into is known; the test writes the injected
// responses itself ("Wait, " + the step), records both sets of traces with
// Capture as rise dump does, encodes the rows with the SAE and averages
// them by the labels in steps.jsonl.
func TestProbeTokensModel(t *testing.T) {
	m, tok, err := model.Load(shared.Testdata(t, "tinyreason/model.bin"), shared.Testdata(t, "tinyreason/tok.bin"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := reason.Traces(reason.Config{N: 60, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	matcher := label.DefaultMatcher()
	var traces, injected []activations.Trace
	for _, tr := range all {
		var first string
		var refl []string
		for _, s := range label.Split(tr.Response, label.SegmentOptions{}) {
			isRefl := matcher.Labels(s.Text)[0] == label.Reflection
			switch {
			case first == "" && matcher.Labels(s.Text)[0] == label.Other:
				first = s.Text
			case isRefl && len(matcher.Labels(s.Text)) == 1:
				refl = append(refl, s.Text)
			}
		}
		if first == "" || len(refl) == 0 || len(traces) == 12 {
			continue
		}
		tr.Response = strings.Join(append([]string{first}, refl...), "\n\n")
		traces = append(traces, tr)
		inj := tr
		inj.Response = "Wait, " + tr.Response
		if first[0] >= 'A' && first[0] <= 'Z' {
			inj.Response = "Wait, " + strings.ToLower(first[:1]) + tr.Response[1:]
		}
		injected = append(injected, inj)
	}
	if len(traces) < 12 {
		t.Fatalf("found %d traces with an other step and a reflection step, expected 12", len(traces))
	}
	const layer = 2
	s, err := sae.New(sae.Standard, m.Dim, 24, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Init(5, 1, nil, 0)
	features := make([]int, s.DSae)
	for j := range features {
		features[j] = j
	}
	ctx := context.Background()
	p, err := ProbeTokensModel(ctx, m, tok, s, traces, features, TokenInjectOptions{
		TokenProbeOptions: atlas.TokenProbeOptions{Behaviour: "reflection", MinSteps: 5}, Layer: layer, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}

	// The reference: mean latents by group from the two dumps.
	means := func(dir string, traces []activations.Trace, keep func(activations.Step) bool) ([]float64, int) {
		if _, err := Capture(ctx, m, tok, traces, dir, CaptureOptions{Layers: []int{layer}}); err != nil {
			t.Fatal(err)
		}
		d, err := activations.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		steps, err := activations.ReadSteps(d.StepsPath)
		if err != nil {
			t.Fatal(err)
		}
		sum, n := make([]float64, s.DSae), 0
		it := d.Layer(layer).Batches(activations.BatchOptions{Size: 64})
		f := make([]float32, 64*s.DSae)
		for it.Next(ctx) {
			s.Encode(it.X(), f[:it.Len()*s.DSae])
			for i, row := range it.Rows() {
				if keep(steps[row]) {
					n++
					for j := range sum {
						sum[j] += float64(f[i*s.DSae+j])
					}
				}
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		for j := range sum {
			sum[j] /= float64(n)
		}
		return sum, n
	}
	tmp := t.TempDir()
	trueMean, nTrue := means(filepath.Join(tmp, "orig"), traces, func(s activations.Step) bool { return s.HasLabel("reflection") })
	baseMean, nBase := means(filepath.Join(tmp, "orig2"), traces, func(s activations.Step) bool { return s.Step == 0 })
	trigMean, nTrig := means(filepath.Join(tmp, "inj"), injected, func(s activations.Step) bool { return s.Step == 0 })
	if p.TrueSteps != nTrue || p.TriggerSteps != nTrig || p.BaselineSteps != nBase || p.Mode != atlas.TokenModeInjected {
		t.Fatalf("probe counts true %d, trigger %d, baseline %d (mode %s); reference %d, %d, %d", p.TrueSteps, p.TriggerSteps, p.BaselineSteps, p.Mode, nTrue, nTrig, nBase)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-4*(1+math.Abs(b)) }
	moved := 0
	for k, sc := range p.Features {
		if !near(sc.True, trueMean[k]) || !near(sc.Trigger, trigMean[k]) || !near(sc.Baseline, baseMean[k]) {
			t.Errorf("feature %d: true %.5f, trigger %.5f, baseline %.5f; reference %.5f, %.5f, %.5f", sc.Feature, sc.True, sc.Trigger, sc.Baseline, trueMean[k], trigMean[k], baseMean[k])
		}
		if math.Abs(sc.Trigger-sc.Baseline) > 1e-3 {
			moved++
		}
		if sc.True > 0 && !near(sc.Ratio, math.Min(sc.Trigger/sc.True, atlas.MaxTokenRatio)) {
			t.Errorf("feature %d: ratio %.4f, expected trigger/true", sc.Feature, sc.Ratio)
		}
	}
	if moved == 0 {
		t.Error("the injected trigger moved no feature's mean: was it injected?")
	}
}

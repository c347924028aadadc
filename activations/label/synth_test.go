package label_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/label"
	"github.com/rise-interp/rise/activations/synth"
)

// TestSynthTracesRoundTrip cuts the responses of a planted dump into steps
// and labels them with the default rules: the steps and labels must be the
// planted ones exactly, since the planted texts are written to RISE's rules.
func TestSynthTracesRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	cfg := synth.DefaultConfig()
	cfg.Rows, cfg.DModel, cfg.Features = 3000, 16, 64
	if _, err := synth.Generate(context.Background(), dir, cfg, false, nil); err != nil {
		t.Fatal(err)
	}
	planted, err := activations.ReadSteps(filepath.Join(dir, "steps.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	traces, err := activations.ReadTraces(filepath.Join(dir, "traces.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	got := label.LabelTraces(traces, label.Options{})
	if len(got) != len(planted) {
		t.Fatalf("cut %d steps from the responses, the dump has %d", len(got), len(planted))
	}
	for i := range got {
		g, p := got[i], planted[i]
		if g.Trace != p.Trace || g.Step != p.Step || g.Text != p.Text || !slices.Equal(g.Labels, p.Labels) {
			t.Fatalf("step %d: got %s#%d %v %q, planted %s#%d %v %q", i, g.Trace, g.Step, g.Labels, g.Text, p.Trace, p.Step, p.Labels, p.Text)
		}
	}
}

package synth

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
)

// TestUnnamedBehaviour checks the planted behaviour whose label is
// withheld: its steps carry its phrase and the label "other", truth.json
// counts them and names their own group of features, disjoint from the
// four others.
func TestUnnamedBehaviour(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rows, cfg.DModel, cfg.Features, cfg.UnnamedRate = 3000, 32, 64, 0.1
	dir := filepath.Join(t.TempDir(), "dump")
	truth, err := Generate(context.Background(), dir, cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := activations.ReadSteps(filepath.Join(dir, "steps.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range steps {
		if strings.Contains(strings.ToLower(s.Text), UnnamedPhrase) {
			n++
			if !slices.Equal(s.Labels, []string{Other}) {
				t.Fatalf("step %s/%d %q: labels %v, expected the label withheld ([other])", s.Trace, s.Step, s.Text, s.Labels)
			}
		}
	}
	if n == 0 || truth.StepCounts[Unnamed] != n {
		t.Errorf("steps with %q: %d, truth counts %d", UnnamedPhrase, n, truth.StepCounts[Unnamed])
	}
	ownGroup(t, truth, Unnamed)
	cfg.GroupSize = 13 // 5 × 13 > 64
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "features/5") {
		t.Errorf("group size 13 of 64 features with five groups: got %v", err)
	}
}

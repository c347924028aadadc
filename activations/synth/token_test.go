package synth

import (
	"path/filepath"
	"regexp"
	"testing"
)

// triggerRule finds the token trigger as RISE's keyword rules do: the word
// "wait" in any case (an independent regexp, not the generator's matcher).
var triggerRule = regexp.MustCompile(`(?i)\bwait\b`)

// TestTokenFeature checks the planted token feature: steps of several
// labels carry the trigger, their labels stay as planned, truth.json counts
// them by label, and the token group fires on the trigger whatever the
// label (the rows' projections on a token direction, read with npyio, are
// large on trigger steps of every label and small elsewhere).
func TestTokenFeature(t *testing.T) {
	cfg := smallConfig(3000, 128, 128)
	cfg.TokenRate, cfg.GroupCoherence = 0.1, 0
	dir := filepath.Join(t.TempDir(), "dump")
	truth := generateT(t, dir, cfg)
	ids := ownGroup(t, truth, Token)

	type step struct {
		Text   string   `json:"text"`
		Labels []string `json:"labels"`
	}
	steps := readJSONLines[step](t, dir, "steps.jsonl")
	x, shape := readShard(t, dir, cfg.Layer)
	if shape[0] != len(steps) {
		t.Fatalf("%d rows, %d steps", shape[0], len(steps))
	}
	D := cfg.DModel
	dir0 := truth.Direction(ids[0])
	counts := map[string]int{}
	// firings of a token feature, read from the projection on its direction
	// (offset removed), by label and by whether the step carries the trigger
	type key struct {
		label   string
		trigger bool
	}
	sum, n := map[key]float64{}, map[key]int{}
	for i, s := range steps {
		if len(s.Labels) != 1 {
			t.Fatalf("step %d: labels %v, expected one", i, s.Labels)
		}
		l, trig := s.Labels[0], triggerRule.MatchString(s.Text)
		if trig {
			counts[l]++
		}
		row := x[i*D : (i+1)*D]
		p := 0.0
		for d := range D {
			p += float64(row[d]-truth.Offset[d]) * float64(dir0[d])
		}
		k := key{l, trig}
		if p > ScaleMin/4 { // fired: orthonormal directions, noise of norm 0.5 over 128 dimensions
			sum[k]++
		}
		n[k]++
	}
	labels := 0
	for _, l := range []string{Other, Backtracking} {
		if counts[l] > 0 {
			labels++
		}
	}
	if labels < 2 || counts[Reflection] == 0 {
		t.Fatalf("trigger steps by label %v: expected some in reflection, other and backtracking", counts)
	}
	if !mapsEqual(counts, truth.TriggerSteps) {
		t.Errorf("trigger steps by label: counted %v, truth.json says %v", counts, truth.TriggerSteps)
	}
	// The feature fires with probability MaxBoostedRate on a trigger step
	// and at its base rate elsewhere (about ActivePerRow/Features for a
	// feature of middling rank).
	for _, l := range []string{Other, Reflection, Backtracking} {
		on, off := sum[key{l, true}]/float64(n[key{l, true}]), sum[key{l, false}]/float64(max(1, n[key{l, false}]))
		if n[key{l, true}] < 10 || on < 0.85 || off > 0.3 {
			t.Errorf("%s: the token feature fired on %.2f of %d trigger steps and %.2f of %d others: expected at least 0.85 and at most 0.3", l, on, n[key{l, true}], off, n[key{l, false}])
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

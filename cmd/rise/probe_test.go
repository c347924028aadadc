package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// oracleSAE saves, for the planted dump at dir, the SAE whose latents are
// the planted features: decoder rows the planted directions, encoder their
// transpose, b_dec the offset and b_enc a threshold well above the noise
// (orthonormal directions when features = d_model and coherence is 0).
func oracleSAE(t *testing.T, dir, out string) *synth.Truth {
	t.Helper()
	truth, err := synth.ReadTruth(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sae.Oracle(truth.Directions, truth.Offset, truth.Features, truth.DModel, -0.25)
	if err != nil {
		t.Fatal(err)
	}
	s.Metadata.HookLayer = truth.Layer
	if err := sae.Save(out, s, sae.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return truth
}

// TestProbeTokensPlanted is the acceptance test of rise probe-tokens: on a
// planted dump whose token feature fires on "Wait" whatever the step's
// label, the atlas ties the token feature to reflection (it is chosen by
// contrast), and the probe flags it, leaves the planted reflection
// features unflagged and the vector without it.
func TestProbeTokensPlanted(t *testing.T) {
	tmp := t.TempDir()
	dump, saeDir, atlasPath := filepath.Join(tmp, "d"), filepath.Join(tmp, "s"), filepath.Join(tmp, "atlas.json")
	if code, _, stderr := runRise(t, "synth", "--out", dump, "--rows", "6000", "--d-model", "256", "--features", "256",
		"--group-coherence", "0", "--token-rate", "0.05"); code != 0 {
		t.Fatalf("synth: %s", stderr)
	}
	truth := oracleSAE(t, dump, saeDir)
	mustRise(t, "atlas", "--sae", saeDir, "--data", dump, "--layout", "pca", "--clusters", "3", "--hold-out", "0", "--out", atlasPath)
	code, stdout, stderr := runRise(t, "probe-tokens", "--atlas", atlasPath, "--sae", saeDir, "--data", dump, "--behaviour", "reflection", "--trigger", "reflection=Wait")
	if code != 0 {
		t.Fatalf("probe-tokens: exit %d: %s", code, stderr)
	}
	a, err := atlas.Load(atlasPath)
	if err != nil {
		t.Fatal(err)
	}
	info := a.Behaviours["reflection"]
	token, refl := truth.Behaviours[synth.Token], truth.Behaviours[synth.Reflection]
	var wantFlagged []int
	nRefl := 0
	for _, j := range info.Columns {
		f := a.Features[j].Token
		if f == nil {
			t.Fatalf("feature %d of reflection's columns has no token verdict", j)
		}
		switch {
		case slices.Contains(token, j):
			wantFlagged = append(wantFlagged, j)
			if !f.Flagged {
				t.Errorf("planted token feature %d: ratio %.3f, not flagged", j, f.Ratio)
			}
		case slices.Contains(refl, j):
			nRefl++
			if f.Flagged {
				t.Errorf("planted reflection feature %d: ratio %.3f, flagged", j, f.Ratio)
			}
		}
	}
	if len(wantFlagged) == 0 || nRefl == 0 {
		t.Fatalf("reflection columns %v: expected planted token features %v and reflection features %v among them", info.Columns, token, refl)
	}
	if !slices.Equal(info.TokenColumns, wantFlagged) || info.VectorWithTokens == nil || info.Vector == nil {
		t.Errorf("token columns %v, expected %v; vector %v, vector with token features %v", info.TokenColumns, wantFlagged, info.Vector != nil, info.VectorWithTokens != nil)
	}
	if tp := a.TokenProbes["reflection"]; tp == nil || tp.Mode != atlas.TokenModeData || !tp.TrueWithoutTrigger {
		t.Errorf("token probe %+v", tp)
	}
	if !strings.Contains(stdout, "token feature") || !strings.Contains(stdout, "leaving out") {
		t.Errorf("output:\n%s", stdout)
	}
}

// TestProbeTokensErrors: mistakes in the command line exit 2, and a dump
// where no step outside the behaviour carries its trigger exits 1 with
// one line that says so.
func TestProbeTokensErrors(t *testing.T) {
	tmp := t.TempDir()
	dump, saeDir, atlasPath := filepath.Join(tmp, "d"), filepath.Join(tmp, "s"), filepath.Join(tmp, "atlas.json")
	mustRise(t, "synth", "--out", dump, "--rows", "2000", "--d-model", "64", "--features", "64", "--group-coherence", "0")
	oracleSAE(t, dump, saeDir)
	mustRise(t, "atlas", "--sae", saeDir, "--data", dump, "--layout", "pca", "--clusters", "3", "--out", atlasPath)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--sae", saeDir, "--data", dump}, 2, "--atlas and --sae are required"},
		{[]string{"--atlas", atlasPath, "--sae", saeDir}, 2, "give --model"},
		{[]string{"--atlas", atlasPath, "--sae", saeDir, "--data", dump, "--trigger", "Wait"}, 2, "expected BEHAVIOUR=PHRASE"},
		{[]string{"--atlas", atlasPath, "--sae", saeDir, "--data", dump, "--behaviour", "doubt"}, 1, `no behaviour "doubt"`},
		{[]string{"--atlas", atlasPath, "--sae", saeDir, "--data", dump, "--behaviour", "reflection"}, 1, "found 0"},
	} {
		code, _, stderr := runRise(t, append([]string{"probe-tokens"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; expected exit %d and one line with %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

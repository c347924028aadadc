package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/saetest"
	"github.com/rise-interp/rise/sae"
)

// writeEvalDump writes a dump of 200 random rows of width 4 for each of the
// given layers, with the planted directions e_0..e_3 as truth.npy beside it.
func writeEvalDump(t *testing.T, layers ...int) string {
	t.Helper()
	const d, n = 4, 200
	dir := filepath.Join(t.TempDir(), "dump")
	w, err := activations.Create(dir, activations.WriterOptions{Model: "m", DModel: d, Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*d)
	for _, l := range layers {
		for i := range x {
			x[i] = float32(rng.NormFloat64()) + 5
		}
		if err := w.WriteRows(l, x); err != nil {
			t.Fatal(err)
		}
	}
	steps := make([]activations.Step, n)
	for i := range steps {
		steps[i] = activations.Step{Trace: "a", Step: i, Text: "step"}
	}
	w.WriteSteps(steps...)
	truth := make([]float32, d*d)
	for i := range d {
		truth[i*d+i] = 1
	}
	if err := w.WriteFile("truth.npy", activations.EncodeNpy(truth, d, d)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// saveIdentitySAE saves a ReLU SAE that reconstructs rows of width d
// exactly (decoder rows ±e_i), recording hookLayer.
func saveIdentitySAE(t *testing.T, d, hookLayer int) string {
	t.Helper()
	s, err := sae.New(sae.Standard, d, 2*d, 0)
	if err != nil {
		t.Fatal(err)
	}
	saetest.SignedIdentity(s.WEnc, s.WDec, d)
	s.Metadata = sae.Metadata{ModelName: "m", HookName: "blocks.6.hook_resid_post", HookLayer: hookLayer}
	dir := filepath.Join(t.TempDir(), "id.sae")
	if err := sae.Save(dir, s, sae.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestEvalCommand(t *testing.T) {
	dump := writeEvalDump(t, 6)
	sdir := saveIdentitySAE(t, 4, 6)

	code, out, errOut := runRise(t, "eval", "--data", dump, "--sae", sdir, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("--json output is not one JSON object: %v\n%s", err, out)
	}
	if m["fvu"] != 0.0 || m["explained_variance"] != 1.0 || m["rows"] != 200.0 || m["d_in"] != 4.0 || m["d_sae"] != 8.0 || m["arch"] != "standard" {
		t.Errorf("metrics %v", m)
	}
	if _, ok := m["recovery"]; ok {
		t.Errorf("recovery reported without --truth: %s", out)
	}

	code, out, errOut = runRise(t, "eval", "--data", dump, "--sae", sdir, "--truth", filepath.Join(dump, "truth.npy"), "--max-rows", "50", "--json")
	if code != 0 {
		t.Fatalf("--truth: exit %d: %s", code, errOut)
	}
	m = nil
	json.Unmarshal([]byte(out), &m)
	if m["recovery"] != 1.0 || m["rows"] != 50.0 {
		t.Errorf("--truth --max-rows 50: %v", m)
	}

	// The readable table, with a hint about truth.npy.
	code, out, errOut = runRise(t, "eval", "--data", dump, "--sae", sdir)
	if code != 0 {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	squashed := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"d_in 4, d_sae 8", "layer 6 (the SAE's hook layer), 200 of 200 rows", "fvu 0 ", "explained_variance 1", "cos_sim 1", "max_decoder_cos 1", "--truth " + filepath.Join(dump, "truth.npy")} {
		if !strings.Contains(squashed, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalCommandFeatureStats(t *testing.T) {
	dump := writeEvalDump(t, 6)
	sdir := saveIdentitySAE(t, 4, 6)
	code, out, errOut := runRise(t, "eval", "--data", dump, "--sae", sdir, "--feature-stats", "--top", "5")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, filepath.Join(sdir, sae.FeatureStatsFile)) {
		t.Errorf("output does not name the feature statistics:\n%s", out)
	}
	fs, err := sae.LoadFeatureStats(sdir)
	if err != nil {
		t.Fatal(err)
	}
	if fs.Rows != 200 || fs.DSae != 8 || fs.TopN != 5 || fs.Layer != 6 {
		t.Errorf("feature statistics: rows %d d_sae %d top %d layer %d", fs.Rows, fs.DSae, fs.TopN, fs.Layer)
	}
	// Rows are 5 + noise: latent 2i (+x_i) fires on nearly every row.
	if f := fs.Feature(0); f.Fires < 190 || len(f.Top) != 5 || f.Top[0].Value != f.Max {
		t.Errorf("latent 0: %+v", f)
	}
	// The SAE still loads with the statistics beside it.
	if code, _, errOut := runRise(t, "eval", "--data", dump, "--sae", sdir, "--json"); code != 0 {
		t.Errorf("eval after --feature-stats: exit %d: %s", code, errOut)
	}
}

func TestEvalCommandLayersAndErrors(t *testing.T) {
	two := writeEvalDump(t, 6, 9)
	sdir := saveIdentitySAE(t, 4, 6)
	if code, out, errOut := runRise(t, "eval", "--data", two, "--sae", sdir); code != 0 || !strings.Contains(out, "layer 6 (the SAE's hook layer)") {
		t.Errorf("hook layer: exit %d: %s%s", code, out, errOut)
	}
	if code, out, errOut := runRise(t, "eval", "--data", two, "--sae", sdir, "--layer", "9"); code != 0 || !strings.Contains(out, "layer 9, 200 of 200") {
		t.Errorf("--layer 9: exit %d: %s%s", code, out, errOut)
	}
	// An SAE whose hook layer the dump lacks: a usage error listing the layers.
	other := saveIdentitySAE(t, 4, 12)
	if code, _, errOut := runRise(t, "eval", "--data", two, "--sae", other); code != 2 || !strings.Contains(errOut, "[6 9]") || !strings.Contains(errOut, "--layer") {
		t.Errorf("no matching layer: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runRise(t, "eval", "--data", two, "--sae", sdir, "--layer", "7"); code != 2 || !strings.Contains(errOut, "[6 9]") {
		t.Errorf("--layer 7: exit %d: %s", code, errOut)
	}
	// Width mismatch: exit 1, naming both widths.
	wide := saveIdentitySAE(t, 5, 6)
	if code, out, errOut := runRise(t, "eval", "--data", two, "--sae", wide); code != 1 || out != "" || !strings.Contains(errOut, "d_in 5") || !strings.Contains(errOut, "d_model 4") {
		t.Errorf("width mismatch: exit %d: %q %q", code, out, errOut)
	}
	// Planted directions of the wrong width.
	bad := filepath.Join(t.TempDir(), "bad.npy")
	os.WriteFile(bad, activations.EncodeNpy([]float32{1, 0, 0}, 1, 3), 0o644)
	if code, _, errOut := runRise(t, "eval", "--data", two, "--sae", sdir, "--truth", bad); code != 1 || !strings.Contains(errOut, "3 columns") {
		t.Errorf("bad truth: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{
		{"eval"}, {"eval", "--data", two}, {"eval", "--sae", sdir},
		{"eval", "--data", two, "--sae", sdir, "extra"},
		{"eval", "--data", two, "--sae", sdir, "--max-rows", "-1"},
		{"eval", "--data", two, "--sae", sdir, "--feature-stats", "--top", "0"},
	} {
		if code, _, errOut := runRise(t, args...); code != 2 || !strings.HasPrefix(errOut, "rise eval: ") {
			t.Errorf("%v: exit %d, %q; want 2", args, code, errOut)
		}
	}
	if code, _, errOut := runRise(t, "eval", "--data", two, "--sae", filepath.Join(t.TempDir(), "nope")); code != 1 || !strings.Contains(errOut, "nope") {
		t.Errorf("missing SAE: exit %d: %s", code, errOut)
	}
}

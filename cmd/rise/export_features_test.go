package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportFeatures runs rise export --neuronpedia and --dashboard on a
// small planted dump and checks their command lines: what each needs, and
// what each writes.
func TestExportFeatures(t *testing.T) {
	dir := t.TempDir()
	dump, saeDir := synthAndTrain(t, dir, []string{"--rows", "1500", "--d-model", "64", "--features", "32"},
		[]string{"--arch", "topk", "--k", "4", "--width", "32", "--steps", "150"})
	usage := []struct {
		args []string
		want string
	}{
		{[]string{"--neuronpedia", "--dashboard", "--sae", saeDir, "--data", dump, "--out", dir}, "not both"},
		{[]string{"--dashboard", "--sae", saeDir, "--data", dump, "--out", filepath.Join(dir, "d.html")}, "needs --features"},
		{[]string{"--dashboard", "--sae", saeDir, "--data", dump, "--out", filepath.Join(dir, "d.html"), "--features", "1,x"}, `--features: expected latent numbers separated by commas, found "x"`},
		{[]string{"--dashboard", "--sae", saeDir, "--data", dump, "--out", filepath.Join(dir, "d.html"), "--features", "32"}, "latent 32 is outside the SAE's 32 latents"},
		{[]string{"--dashboard", "--sae", saeDir, "--data", dump, "--out", filepath.Join(dir, "d.html"), "--top", "3", "--by", "size"}, "--by: expected frequency, max or f1"},
		{[]string{"--neuronpedia", "--sae", saeDir, "--data", dump}, "--out are required"},
	}
	for _, u := range usage {
		if code, _, stderr := runRise(t, append([]string{"export"}, u.args...)...); code != 2 || !strings.Contains(stderr, u.want) {
			t.Errorf("export %v: exit %d, %q; expected 2 and %q", u.args, code, stderr, u.want)
		}
	}
	html := filepath.Join(dir, "d.html")
	if code, stdout, stderr := runRise(t, "export", "--dashboard", "--sae", saeDir, "--data", dump, "--out", html, "--top", "3", "--by", "f1",
		"--model", filepath.Join("..", "..", "testdata", "hf", "llama")); code != 0 || !strings.Contains(stdout, "3 feature pages") {
		t.Fatalf("dashboard: exit %d, %q %q", code, stdout, stderr)
	}
	if b, err := os.ReadFile(html); err != nil || strings.Count(string(b), `<section class="feature"`) != 3 || strings.Count(string(b), "<h3>Logit lens</h3>") != 3 {
		t.Errorf("dashboard file: %v, %d sections, %d logit lenses", err, strings.Count(string(b), `<section class="feature"`), strings.Count(string(b), "<h3>Logit lens</h3>"))
	}
	np := filepath.Join(dir, "np")
	if code, stdout, stderr := runRise(t, "export", "--neuronpedia", "--sae", saeDir, "--data", dump, "--out", np, "--model-id", "tiny", "--batch", "16"); code != 0 || !strings.Contains(stdout, "32 features in 2 batches") {
		t.Fatalf("neuronpedia: exit %d, %q %q", code, stdout, stderr)
	}
	matches, _ := filepath.Glob(filepath.Join(np, "tiny", "*-rise", "*", "batch-*.jsonl.gz"))
	if len(matches) != 6 {
		t.Errorf("batch files %v, expected features, activations and explanations in 2 batches each", matches)
	}
}

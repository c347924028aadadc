package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExplainCommand plants an unnamed behaviour with rise synth, trains an
// SAE on it and explains the SAE: one line per feature, scored, and some
// feature explained by the withheld phrase.
func TestExplainCommand(t *testing.T) {
	dir := t.TempDir()
	dump, saeDir := synthAndTrain(t, dir, []string{"--rows", "8000", "--d-model", "64", "--features", "128", "--unnamed-rate", "0.08"},
		[]string{"--arch", "topk", "--k", "8", "--width", "256", "--steps", "1000"})
	out := filepath.Join(dir, "explanations.jsonl")
	code, stdout, stderr := runRise(t, "explain", "--sae", saeDir, "--data", dump, "--out", out)
	if code != 0 {
		t.Fatalf("explain: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "256 features explained") || !strings.Contains(stdout, "mean F1") {
		t.Errorf("explain output:\n%s", stdout)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n, named := 0, false
	for sc.Scan() {
		var l explainLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if l.ID != n || l.Detection == nil || l.Detection.Steps == 0 || l.Phrases == nil {
			t.Fatalf("line %d: %s", n+1, sc.Text())
		}
		for _, p := range l.Phrases {
			named = named || p.Text == "to sum up"
		}
		n++
	}
	if n != 256 {
		t.Errorf("%d lines, expected 256", n)
	}
	if !named {
		t.Error("no feature is explained by the withheld phrase \"to sum up\"")
	}

	if code, _, stderr := runRise(t, "explain", "--sae", saeDir, "--data", dump); code != 2 || !strings.Contains(stderr, "--out") {
		t.Errorf("no --out: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runRise(t, "explain", "--sae", saeDir, "--data", dump, "--out", out, "--hold-out", "1"); code != 2 || !strings.Contains(stderr, "--hold-out") {
		t.Errorf("--hold-out 1: exit %d, %s", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var o, e strings.Builder
	if code := run(ctx, []string{"explain", "--sae", saeDir, "--data", dump, "--out", out}, &o, &e); code != 1 || !strings.Contains(e.String(), "interrupted") {
		t.Errorf("cancelled: exit %d, stderr %q", code, e.String())
	}
}

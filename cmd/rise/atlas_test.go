package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAtlasCommand(t *testing.T) {
	dir := t.TempDir()
	saeDir := filepath.Join(dir, "sae")
	if code, _, stderr := runRise(t, "train", "--data", tinyDump, "--arch", "topk", "--k", "4", "--width", "64", "--steps", "200", "--out", saeDir); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "atlas.json")
	code, stdout, stderr := runRise(t, "atlas", "--sae", saeDir, "--data", tinyDump, "--clusters", "4", "--out", out, "--svg", dir)
	if code != 0 {
		t.Fatalf("atlas: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "wrote "+out+": 64 features, umap layout, 4 clusters") {
		t.Errorf("atlas output:\n%s", stdout)
	}
	var a struct {
		Features []struct {
			ID      int     `json:"id"`
			X       float64 `json:"x"`
			Cluster int     `json:"cluster"`
		} `json:"features"`
		Behaviours map[string]json.RawMessage `json:"behaviours"`
		Silhouette map[string]float64         `json:"silhouette"`
	}
	b, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(b, &a) != nil {
		t.Fatalf("atlas.json unreadable: %v", err)
	}
	if len(a.Features) != 64 || a.Features[5].ID != 5 || a.Behaviours["reflection"] == nil {
		t.Errorf("atlas.json: %d features, behaviours %v", len(a.Features), a.Behaviours)
	}
	for _, f := range []string{"map.svg", "map.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s was not drawn: %v", f, err)
		}
	}
	// The same seed, the same bytes.
	out2 := filepath.Join(dir, "again.json")
	runRise(t, "atlas", "--sae", saeDir, "--data", tinyDump, "--clusters", "4", "--out", out2)
	b2, _ := os.ReadFile(out2)
	if string(b) != string(b2) {
		t.Error("the same seed gave two atlas.json files")
	}
	if code, _, _ := runRise(t, "atlas", "--sae", saeDir, "--data", tinyDump, "--layout", "tsne", "--out", out); code != 2 {
		t.Errorf("unknown layout: exit %d, want 2", code)
	}
	if code, _, stderr := runRise(t, "atlas", "--sae", filepath.Join(dir, "nope"), "--data", tinyDump, "--out", out); code != 1 || !strings.Contains(stderr, "nope") {
		t.Errorf("missing SAE: exit %d, %q", code, stderr)
	}
}

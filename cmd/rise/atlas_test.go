package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAtlasCommand(t *testing.T) {
	dir := t.TempDir()
	saeDir := filepath.Join(dir, "sae")
	mustRise(t, "train", "--data", tinyDump, "--arch", "topk", "--k", "4", "--width", "64", "--steps", "200", "--out", saeDir)
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

// TestAtlasSweep stacks three planted dumps into one of three layers with
// more and more coherent behaviour groups, trains an SAE per layer and
// sweeps them.
func TestAtlasSweep(t *testing.T) {
	dir := t.TempDir()
	var pairs []string
	for i, c := range []string{"0", "0.5", "0.9"} {
		src := filepath.Join(dir, "c"+c)
		mustRise(t, "synth", "--out", src, "--rows", "3000", "--d-model", "32", "--features", "128", "--group-coherence", c)
		pairs = append(pairs, fmt.Sprintf("L%d=%s", 4*i+2, src))
	}
	stacked := filepath.Join(dir, "stacked")
	if code, stdout, stderr := runRise(t, append([]string{"stack", "--out", stacked}, pairs...)...); code != 0 || !strings.Contains(stdout, "layers [2 6 10]") {
		t.Fatalf("stack: exit %d: %s%s", code, stdout, stderr)
	}
	args := []string{"atlas", "--sweep", "--data", stacked}
	for _, l := range []string{"10", "2", "6"} { // any order
		saeDir := filepath.Join(dir, "sae"+l)
		mustRise(t, "train", "--data", stacked, "--layer", l, "--arch", "topk", "--k", "6", "--width", "256", "--steps", "400", "--out", saeDir)
		args = append(args, "--sae", saeDir)
	}
	out := filepath.Join(dir, "sweep.json")
	code, stdout, stderr := runRise(t, append(args, "--out", out, "--svg", dir, "--steps", "1000")...)
	if code != 0 {
		t.Fatalf("sweep: exit %d: %s", code, stderr)
	}
	t.Log(stdout)
	var f struct {
		Format string `json:"format"`
		Layers []struct {
			Layer   int                `json:"layer"`
			Columns map[string]float64 `json:"columns"`
			Steps   map[string]float64 `json:"steps"`
		} `json:"layers"`
		Best map[string]int `json:"best"`
	}
	b, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(b, &f) != nil {
		t.Fatalf("sweep.json unreadable: %v", err)
	}
	if f.Format != "rise-sweep/1" || len(f.Layers) != 3 || f.Layers[0].Layer != 2 || f.Layers[2].Layer != 10 {
		t.Fatalf("sweep.json: %s", b)
	}
	if f.Best["columns: behaviours"] != 10 {
		t.Errorf("best layer for behaviour columns %d, want 10 (the coherent one)", f.Best["columns: behaviours"])
	}
	if !strings.Contains(stdout, "best layer for columns: behaviours: 10") {
		t.Errorf("output:\n%s", stdout)
	}
	for _, name := range []string{"silhouette.svg", "silhouette.png"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s was not drawn: %v", name, err)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--layers", "2,6"}, 2, "2 layers for 3 SAEs"},
		{[]string{"--layers", "2,2,6"}, 2, "both belong to layer 2"},
		{[]string{"--layers", "2,x,6"}, 2, "expected comma-separated layer numbers"},
		{[]string{"--layers", "2,6,7"}, 2, "--layer 7"},
	} {
		code, _, stderr := runRise(t, append(append([]string{}, args...), append(tc.args, "--out", out)...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	if code, _, stderr := runRise(t, "atlas", "--sae", "a", "--sae", "b", "--data", stacked, "--out", out); code != 2 || !strings.Contains(stderr, "--sweep") {
		t.Errorf("two SAEs without --sweep: exit %d, %q", code, stderr)
	}
}

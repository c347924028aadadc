package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyBench is a command line that runs rise bench on sizes that take
// milliseconds.
var tinyBench = []string{"bench", "--steps", "1", "--warmup", "0", "--d-in", "16", "--d-sae", "32", "--batch", "8", "--k", "4"}

func TestBenchCommandJSON(t *testing.T) {
	code, stdout, stderr := runRise(t, append(tinyBench, "--json", "--config", "relu", "--torch", "off")...)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr %q, want nothing", stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, stdout)
	}
	if len(rows) != 2 {
		t.Fatalf("%d objects, want 2 (fused and graph on relu):\n%s", len(rows), stdout)
	}
	for i, engine := range []string{"fused", "graph"} {
		r := rows[i]
		if r["engine"] != engine || r["arch"] != "relu" || r["d_in"] != 16.0 || r["d_sae"] != 32.0 || r["batch"] != 8.0 {
			t.Errorf("object %d = %v, want %s relu at d_in 16, d_sae 32, batch 8", i, r, engine)
		}
		for _, key := range []string{"samples_per_s", "gflops", "seconds_per_step", "threads"} {
			if v, _ := r[key].(float64); !(v > 0) {
				t.Errorf("object %d: %s = %v, want a positive number", i, key, r[key])
			}
		}
		if _, ok := r["k"]; ok {
			t.Errorf("object %d has k for relu: %v", i, r)
		}
		if _, ok := r["torch_ratio"]; ok {
			t.Errorf("object %d has torch_ratio without PyTorch: %v", i, r)
		}
		if b, _ := r["blas"].(string); b == "" {
			t.Errorf("object %d names no BLAS: %v", i, r)
		}
	}
}

func TestBenchCommandTable(t *testing.T) {
	code, stdout, stderr := runRise(t, append(tinyBench, "--engine", "fused", "--torch", "off", "--threads", "1")...)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"1 threads", "samples/s", "vs torch", "fused", "relu", "topk"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "graph") {
		t.Errorf("--engine fused ran the graph engine:\n%s", stdout)
	}
}

// TestPlanBench checks the default steps: the configuration's for the fused
// engine and PyTorch, fewer for the graph engine, and one timed step for it
// on topk's large activations; --steps and --warmup replace them all.
func TestPlanBench(t *testing.T) {
	type plan struct {
		engine, config string
		steps, warmup  int
	}
	got := func(jobs []benchJob) []plan {
		var ps []plan
		for _, j := range jobs {
			ps = append(ps, plan{j.engine, j.preset.name, j.steps, j.warmup})
		}
		return ps
	}
	all := planBench(benchPresets, []string{"fused", "graph"}, true, 0, -1)
	want := []plan{
		{"fused", "relu", 10, 2}, {"graph", "relu", 3, 1}, {"torch", "relu", 10, 2},
		{"fused", "topk", 3, 1}, {"graph", "topk", 1, 1}, {"torch", "topk", 3, 1},
	}
	if !slices.Equal(got(all), want) {
		t.Errorf("default plan %v, want %v", got(all), want)
	}
	some := planBench(benchPresets[1:], []string{"graph"}, false, 5, 0)
	if want := []plan{{"graph", "topk", 5, 0}}; !slices.Equal(got(some), want) {
		t.Errorf("plan with --steps 5 --warmup 0: %v, want %v", got(some), want)
	}
}

func TestBenchCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--engine", "cuda"}, "--engine must be fused, graph or all"},
		{[]string{"bench", "--config", "jumprelu"}, "--config must be relu, topk or all"},
		{[]string{"bench", "--steps", "-1"}, "--steps must not be negative"},
		{[]string{"bench", "--warmup", "-1"}, "--warmup must not be negative"},
		{[]string{"bench", "--warmup", "two"}, "expected an integer"},
		{[]string{"bench", "--config", "topk", "--d-sae", "8", "--k", "9"}, "k 9 is larger than d_sae 8"},
		{[]string{"bench", "--torch", filepath.Join(t.TempDir(), "missing.py")}, "expected the PyTorch reference script"},
		{[]string{"bench", "extra"}, "expected no arguments"},
	} {
		code, _, stderr := runRise(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestBenchCommandTorch runs the comparison against the PyTorch reference
// when the reference and a python3 with torch are on this machine.
func TestBenchCommandTorch(t *testing.T) {
	script := torchReference(t, defaultTorchScript)
	code, stdout, stderr := runRise(t, append(tinyBench, "--json", "--engine", "fused", "--torch", script)...)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, stdout)
	}
	want := []struct{ engine, arch string }{{"fused", "relu"}, {"torch", "relu"}, {"fused", "topk"}, {"torch", "topk"}}
	if len(rows) != len(want) {
		t.Fatalf("%d objects, want %d:\n%s", len(rows), len(want), stdout)
	}
	for i, w := range want {
		r := rows[i]
		if r["engine"] != w.engine || r["arch"] != w.arch {
			t.Errorf("object %d is %v %v, want %s %s", i, r["engine"], r["arch"], w.engine, w.arch)
		}
		key := "torch_ratio"
		if w.engine == "torch" {
			key = "gflops"
		}
		if v, _ := r[key].(float64); !(v > 0) {
			t.Errorf("object %d: %s = %v, want a positive number", i, key, r[key])
		}
	}
}

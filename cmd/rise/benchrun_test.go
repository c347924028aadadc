package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/bf16"
)

// smallRunDump writes a planted dump of 2500 rows of width 32 (rise synth).
func smallRunDump(t *testing.T) string {
	t.Helper()
	dump := filepath.Join(t.TempDir(), "dump")
	if code, _, stderr := runRise(t, "synth", "--out", dump, "--rows", "2500", "--d-model", "32", "--features", "64"); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	return dump
}

// TestBenchRunBF16 runs the whole-run benchmark in float32 and bfloat16
// in one run: each row says its precision, the table names the bfloat16
// run, and its final loss is within 1% of float32's on the same rows and
// initial weights (and not equal to it: it did run in bfloat16).
func TestBenchRunBF16(t *testing.T) {
	if !bf16.Native() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	dump := smallRunDump(t)
	stdout := mustRise(t, "bench", "--run", dump, "--steps", "20", "--d-sae", "48", "--torch", "off", "--precision", "f32,bf16", "--json")
	var rows []runRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("want two JSON runs, got %v:\n%s", err, stdout)
	}
	if rows[0].Precision != "f32" || rows[1].Precision != "bf16" {
		t.Errorf("runs say precision %q and %q, want f32 and bf16", rows[0].Precision, rows[1].Precision)
	}
	if d := math.Abs(rows[1].FinalLoss-rows[0].FinalLoss) / rows[0].FinalLoss; d > 0.01 || d == 0 {
		t.Errorf("final loss f32 %.7g, bf16 %.7g: relative difference %.3g, want above 0 and at most 0.01", rows[0].FinalLoss, rows[1].FinalLoss, d)
	}
	if out := mustRise(t, "bench", "--run", dump, "--steps", "2", "--d-sae", "48", "--torch", "off", "--precision", "all"); !strings.Contains(out, "fused bf16") || !strings.Contains(out, "rise bf16 per step") {
		t.Errorf("the table does not name the bfloat16 run:\n%s", out)
	}
}

// TestBenchRunPrecisionRefused: --precision takes f32, bf16, a list of
// them or all, and applies to --run only.
func TestBenchRunPrecisionRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--run", "x", "--precision", "f16"}, `--precision: expected f32, bf16, a list of them or all, found "f16"`},
		{[]string{"--run", "x", "--precision", "f32,f32"}, "--precision: f32 is listed twice"},
		{[]string{"--precision", "bf16"}, "--precision applies to --run"},
	} {
		code, _, stderr := runRise(t, append([]string{"bench"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// TestBenchRunTorch trains the RISE recipe for a few steps with rise and
// with the PyTorch reference (testdata/bench/torch_run.py), which starts
// from the weights rise wrote and reads the same rows: the two final losses,
// MSEs and L0s must agree to float32 rounding, which holds rise's whole
// training step (engine, Adam, schedule, data order) to an independent
// implementation.
func TestBenchRunTorch(t *testing.T) {
	script := torchReference(t, defaultTorchRunScript)
	dump := smallRunDump(t)
	code, stdout, stderr := runRise(t, "bench", "--run", dump, "--steps", "6", "--d-sae", "48", "--threads", "1", "--json", "--torch", script)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var rows []runRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("output is not a JSON array of runs: %v\n%s", err, stdout)
	}
	if len(rows) != 2 || rows[0].Engine != "fused" || rows[1].Engine != "torch" {
		t.Fatalf("want the fused run then the torch run (stderr %q):\n%s", stderr, stdout)
	}
	r, p := rows[0], rows[1]
	if r.Steps != 6 || p.Steps != 6 || p.Batch != 1024 || p.DSae != 48 || p.DIn != 32 {
		t.Errorf("runs %+v and %+v: want 6 steps of 1024 rows at d_in 32, d_sae 48", r, p)
	}
	for _, c := range []struct {
		name string
		a, b float64
	}{{"loss", r.FinalLoss, p.FinalLoss}, {"MSE", r.FinalMSE, p.FinalMSE}, {"L0", r.FinalL0, p.FinalL0}} {
		if math.Abs(c.a-c.b) > 1e-3*math.Abs(c.b) {
			t.Errorf("final %s: rise %v, PyTorch %v", c.name, c.a, c.b)
		}
	}
	if r.TorchRatio == nil || r.LossRelDiff == nil || math.Abs(*r.LossRelDiff) > 1e-3 {
		t.Errorf("rise's run lacks torch_ratio or loss_rel_diff, or the difference is large: %+v", r)
	}
}

// TestBenchRunCommand checks the table without PyTorch and the flags --run
// refuses.
func TestBenchRunCommand(t *testing.T) {
	dump := smallRunDump(t)
	code, stdout, stderr := runRise(t, "bench", "--run", dump, "--steps", "2", "--d-sae", "16", "--torch", "off", "--threads", "1")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"RISE recipe", "1 threads", "samples/s", "final loss", "active steps", "fused"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", "topk"}, "--config do not apply to --run"},
		{[]string{"--steps", "-2"}, "must not be negative"},
		{[]string{"--torch", filepath.Join(t.TempDir(), "missing.py")}, "expected the PyTorch reference script"},
	} {
		code, _, stderr := runRise(t, append([]string{"bench", "--run", dump}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if code, _, stderr := runRise(t, "bench", "--layer", "3", "--torch", "off"); code != 2 || !strings.Contains(stderr, "--layer applies to --run") {
		t.Errorf("--layer without --run: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(dump); err != nil {
		t.Fatal(err)
	}
}

// TestBenchRunTorchBF16: with --precision f32,bf16 PyTorch repeats each
// run at its precision (bf16 under its autocast), each rise run is compared
// with the PyTorch run of its own precision, and the bfloat16 runs end
// within 1% of each other (they round differently: PyTorch's products
// return bfloat16, rise's float32).
func TestBenchRunTorchBF16(t *testing.T) {
	if !bf16.Native() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	script := torchReference(t, defaultTorchRunScript)
	dump := smallRunDump(t)
	stdout := mustRise(t, "bench", "--run", dump, "--steps", "6", "--d-sae", "48", "--threads", "1", "--json", "--torch", script, "--precision", "f32,bf16")
	var rows []runRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil || len(rows) != 4 {
		t.Fatalf("want four runs (rise f32, rise bf16, torch f32, torch bf16), got %v:\n%s", err, stdout)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.Engine+" "+r.Precision)
	}
	if want := []string{"fused f32", "fused bf16", "torch f32", "torch bf16"}; !slices.Equal(got, want) {
		t.Fatalf("runs %q, want %q", got, want)
	}
	if d := rows[0].LossRelDiff; d == nil || math.Abs(*d) > 1e-3 {
		t.Errorf("rise f32 against torch f32: loss_rel_diff %v, want within 1e-3", d)
	}
	if d := rows[1].LossRelDiff; d == nil || math.Abs(*d) > 0.01 || *rows[1].TorchRatio != rows[1].SamplesPerS/rows[3].SamplesPerS {
		t.Errorf("rise bf16 against torch bf16: loss_rel_diff %v (want within 0.01), ratio %v", d, rows[1].TorchRatio)
	}
}

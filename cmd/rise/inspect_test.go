package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
)

func writeSmallDump(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "d")
	w, err := activations.Create(dir, activations.WriterOptions{Model: "m", DModel: 3, Layers: []int{6}})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteRows(6, []float32{3, 4, 0, 0, 0, 2})
	w.WriteSteps(
		activations.Step{Trace: "a", Step: 0, Text: "Wait, let me check.", Labels: []string{"reflection"}},
		activations.Step{Trace: "a", Step: 1, Text: "So 2 + 2 = 4.", Labels: []string{"other"}},
	)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInspectCommand(t *testing.T) {
	dir := writeSmallDump(t)
	code, out, errOut := runRise(t, "inspect", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	squashed := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"rows 2 d_model 3", "steps 2 in 1 traces", "reflection 1 (50.0%)", "mean ‖x‖", "6 2 float32 1 24 B 3.5 1.5 2 5", "[reflection] Wait, let me check."} {
		if !strings.Contains(squashed, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runRise(t, "inspect", "--json", dir)
	var s activations.Summary
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.Rows != 2 || s.Layers[0].MeanNorm != 3.5 {
		t.Errorf("--json: exit %d, summary %+v", code, s)
	}

	// A broken dump: exit 1 and one line naming the file.
	os.WriteFile(filepath.Join(dir, "layer6-00000.npy"), []byte("garbage"), 0o644)
	code, out, errOut = runRise(t, "inspect", dir)
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "layer6-00000.npy: not a .npy file") {
		t.Errorf("broken dump: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Usage errors: exit 2.
	for _, args := range [][]string{{"inspect"}, {"inspect", "a", "b"}, {"inspect", "--bogus", dir}, {"inspect", "--steps", "-1", dir}} {
		if code, _, errOut := runRise(t, args...); code != 2 || !strings.HasPrefix(errOut, "rise inspect: ") {
			t.Errorf("%v: exit %d, stderr %q; want 2", args, code, errOut)
		}
	}
	if code, _, errOut := runRise(t, "inspect", filepath.Join(dir, "nope")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing path: exit %d, %q", code, errOut)
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := runRise(t, "help")
	if code != 0 || !strings.Contains(out, "inspect") || !strings.Contains(out, "version") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
	for name := range commands {
		code, out, _ := runRise(t, "help", name)
		if code != 0 || !strings.Contains(out, "Usage: rise "+name) || !strings.Contains(out, "Example") {
			t.Errorf("help %s: exit %d, want usage and an example:\n%s", name, code, out)
		}
		if code, out2, _ := runRise(t, name, "-h"); code != 0 || out2 != out {
			t.Errorf("%s -h: exit %d, differs from 'rise help %s'", name, code, name)
		}
	}
	if code, out, _ := runRise(t, "version"); code != 0 || !strings.HasPrefix(out, "rise ") {
		t.Errorf("version: exit %d %q", code, out)
	}
	if code, _, _ := runRise(t); code != 2 {
		t.Errorf("no arguments: exit %d, want 2", code)
	}
	if code, _, errOut := runRise(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d %q", code, errOut)
	}
}

func TestDemoCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	code, out, errOut := runRise(t, "demo", "--dir", dir)
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errOut)
	}
	squashed := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"wrote " + filepath.Join(dir, "dump"), "rows 20000 d_model 256", "reflection", "inspect " + filepath.Join(dir, "dump")} {
		if !strings.Contains(squashed, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// A second run reuses the dump.
	code, out, _ = runRise(t, "demo", "--dir", dir)
	if code != 0 || strings.Contains(out, "wrote ") {
		t.Errorf("second demo run: exit %d, rewrote the dump:\n%s", code, out)
	}
}

// TestInspectBrokenDumpsExitOne damages the small dump in the main ways a
// dump breaks and checks the command's contract: exit status 1, nothing on
// stdout, one line on stderr naming the damaged file. (The activations
// package tests every kind of damage and the exact messages.)
func TestInspectBrokenDumpsExitOne(t *testing.T) {
	shard := "layer6-00000.npy"
	cases := []struct {
		name   string
		file   string
		damage func(b []byte) []byte
	}{
		{"truncated shard", shard, func(b []byte) []byte { return b[:len(b)-5] }},
		{"float64 shard", shard, func(b []byte) []byte { return bytes.Replace(b, []byte("'<f4'"), []byte("'<f8'"), 1) }},
		{"NaN value", shard, func(b []byte) []byte { copy(b[len(b)-4:], []byte{0, 0, 0xc0, 0x7f}); return b }},
		{"absurd header", shard, func(b []byte) []byte { b[8], b[9] = 0xff, 0xff; return b }},
		{"steps line missing", "steps.jsonl", func(b []byte) []byte { return b[:bytes.IndexByte(b, '\n')+1] }},
		{"malformed steps line", "steps.jsonl", func(b []byte) []byte { return append(b[:bytes.IndexByte(b, '\n')+1], "{oops\n"...) }},
		{"manifest not JSON", "manifest.json", func(b []byte) []byte { return b[:10] }},
		{"missing shard", shard, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeSmallDump(t)
			p := filepath.Join(dir, c.file)
			if c.damage == nil {
				os.Remove(p)
			} else {
				b, _ := os.ReadFile(p)
				os.WriteFile(p, c.damage(b), 0o644)
			}
			code, out, errOut := runRise(t, "inspect", dir)
			if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.file) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line naming %s", code, out, errOut, c.file)
			}
		})
	}
}

// TestStrayArguments runs every command that takes no arguments with one:
// each refuses it as a usage error before doing anything.
func TestStrayArguments(t *testing.T) {
	for name, c := range commands {
		if !c.noArgs {
			continue
		}
		code, out, errOut := runRise(t, name, "extra")
		if want := "rise " + name + `: expected no arguments, found "extra"`; code != 2 || out != "" || !strings.HasPrefix(errOut, want) {
			t.Errorf("%s extra: exit %d, stdout %q, stderr %q; want 2 and %q", name, code, out, errOut, want)
		}
	}
}

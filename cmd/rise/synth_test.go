package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations/synth"
)

func TestSynthCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "S")
	args := []string{"synth", "--out", dir, "--rows", "300", "--d-model", "32", "--features", "64", "--seed", "3", "--layer", "5", "--dtype", "float16"}
	code, stdout, stderr := runRise(t, args...)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr %q, want nothing when it is not a terminal", stderr)
	}
	for _, want := range []string{dir, "300 rows", "d_model 32", "64 planted features", "layer 5", "float16", "seed 3", "reflection", "backtracking", "other", "took"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	for _, name := range []string{"manifest.json", "steps.jsonl", "traces.jsonl", "layer5-00000.npy", "truth.json", "truth.npy", "offset.npy"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("dump lacks %s: %v", name, err)
		}
	}
	var m map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err := json.Unmarshal(data, &m); err != nil || m["format"] != "rise-activations/1" || m["d_model"] != 32.0 {
		t.Errorf("manifest %s: %v", data, err)
	}
	tr, err := synth.ReadTruth(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Rows != 300 || tr.DModel != 32 || tr.Features != 64 || tr.Seed != 3 || tr.Layer != 5 || tr.DTypeName != "float16" {
		t.Errorf("truth %+v does not match the flags", tr.Config)
	}

	// The same command again fails (exit 1) until --force is given.
	if code, _, stderr := runRise(t, args...); code != 1 || !strings.Contains(stderr, "--force") {
		t.Errorf("rerun: exit %d, stderr %q; want 1 and a hint about --force", code, stderr)
	}
	if code, _, stderr := runRise(t, append(args, "--force")...); code != 0 {
		t.Errorf("rerun with --force: exit %d, stderr %q", code, stderr)
	}
}

func TestSynthUsageErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "S")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"synth"}, "--out"},
		{[]string{"synth", "--out", dir, "--rows", "-1"}, "--rows"},
		{[]string{"synth", "--out", dir, "--rows", "0"}, "--rows"},
		{[]string{"synth", "--out", dir, "--d-model", "1"}, "--d-model"},
		{[]string{"synth", "--out", dir, "--features", "4"}, "--features"},
		{[]string{"synth", "--out", dir, "--layer", "-2"}, "--layer"},
		{[]string{"synth", "--out", dir, "--dtype", "int8"}, "--dtype"},
		{[]string{"synth", "--out", dir, "--rows", "many"}, "rows"},
		{[]string{"synth", "--out", dir, "extra"}, "extra"},
		{[]string{"synth", "--out", dir, "--features", "1000000", "--d-model", "65536"}, "--features"},
	} {
		code, _, stderr := runRise(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message about %s", tc.args, code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s was created by a refused command line", dir)
	}
}

func TestSynthHelp(t *testing.T) {
	code, stdout, _ := runRise(t, "help", "synth")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(stdout), "rise synth --out S --rows 20000 --d-model 256 --features 512 --seed 1") {
		t.Errorf("help synth: exit %d, output does not end with the example:\n%s", code, stdout)
	}
}

func TestSynthInterrupted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "S")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"synth", "--out", dir, "--rows", "100", "--d-model", "8", "--features", "8"}, &out, &errb); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("stderr %q, want it to say interrupted", errb.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s exists after an interrupted run", dir)
	}
}

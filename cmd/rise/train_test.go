package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrainCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sae")
	args := []string{"train", "--data", tinyDump, "--arch", "topk", "--k", "4", "--width", "32", "--batch", "64", "--steps", "30", "--checkpoint-every", "10", "--out", out}
	code, stdout, stderr := runRise(t, args...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "saved "+out+": topk SAE, d_in 16, d_sae 32, k 4") || !strings.Contains(stdout, "trained 30 steps") {
		t.Errorf("train output:\n%s", stdout)
	}
	for _, f := range []string{"cfg.json", "sae_weights.safetensors", "training.ckpt"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s was not written: %v", f, err)
		}
	}
	// The same command again refuses to overwrite the run; --resume finds it finished.
	if code, _, stderr := runRise(t, args...); code != 1 || !strings.Contains(stderr, "--resume") {
		t.Errorf("second run: exit %d, %q; want 1 and a hint to --resume", code, stderr)
	}
	code, stdout, stderr = runRise(t, append(args, "--resume")...)
	if code != 0 || !strings.Contains(stdout, "resumed from step 30") {
		t.Errorf("--resume of a finished run: exit %d, %s %s", code, stdout, stderr)
	}

	// rise eval reads what rise train saved.
	code, stdout, stderr = runRise(t, "eval", "--data", tinyDump, "--sae", out, "--truth", filepath.Join(tinyDump, "truth.npy"), "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, stdout)
	}
	for _, k := range []string{"mse", "fvu", "explained_variance", "l0", "dead_fraction", "dense_fraction", "cos_sim", "max_decoder_cos", "recovery", "mean_max_cos"} {
		if _, ok := m[k]; !ok {
			t.Errorf("eval --json lacks %q", k)
		}
	}
	if l0 := m["l0"].(float64); l0 <= 0 || l0 > 4 {
		t.Errorf("a topk SAE with k 4 has l0 %v", l0)
	}
}

func TestTrainCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--arch", "gated", "--width", "8"}, 2, "unknown architecture"},
		{[]string{"--arch", "topk", "--width", "8"}, 2, "needs --k"},
		{[]string{"--arch", "topk", "--k", "9", "--width", "8"}, 2, "k between 1 and the width 8"},
		{[]string{"--batch", "100000", "--width", "8"}, 2, "larger than the 400 rows"},
		{[]string{"--width", "8", "--layer", "3"}, 2, "has layers [12]"},
		{[]string{"--width", "8", "--epochs", "2", "--steps", "3"}, 2, "not both"},
		{[]string{"--preset", "sae-bench", "--width", "8"}, 2, "unknown recipe"},
	} {
		args := append([]string{"train", "--data", tinyDump, "--out", filepath.Join(dir, "x")}, c.args...)
		code, _, stderr := runRise(t, args...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}

	// A dump with a NaN row: exit 1, naming the shard and the row.
	bad := filepath.Join(dir, "bad")
	if err := os.CopyFS(bad, os.DirFS(tinyDump)); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(bad, "layer12-00000.npy")
	b, _ := os.ReadFile(shard)
	binary.LittleEndian.PutUint32(b[len(b)-16*4*3:], math.Float32bits(float32(math.NaN())))
	os.WriteFile(shard, b, 0o644)
	code, _, stderr := runRise(t, "train", "--data", bad, "--width", "8", "--steps", "5", "--out", filepath.Join(dir, "y"))
	if code != 1 || !strings.Contains(stderr, "layer12-00000.npy: row 397") || !strings.Contains(stderr, "not finite") {
		t.Errorf("NaN row: exit %d, stderr %q", code, stderr)
	}
}

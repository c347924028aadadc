package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/memory"
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
		// Sizes that overflowed d_in × width and panicked in makeslice.
		{[]string{"--width", "9223372036854775807"}, 2, "d_in 16 × width 9223372036854775807 is too large"},
		{[]string{"--width", "576460752303423488"}, 2, "d_in 16 × width 576460752303423488 is too large"},
		// Within the matrix bound, and needing about 500 GiB (see below).
		{[]string{"--arch", "topk", "--k", "4", "--width", "134217728"}, 2, "of memory, but"},
		// Numbers of the wrong sign or out of range, each refused by name.
		{[]string{"--width", "8", "--steps", "-1"}, 2, "steps must be at least 1, got -1"},
		{[]string{"--width", "8", "--epochs", "-1"}, 2, "epochs must not be negative"},
		{[]string{"--width", "-8"}, 2, "width must be at least 1, got -8"},
		{[]string{"--width", "8", "--k", "-1"}, 2, "k must not be negative"},
		{[]string{"--width", "8", "--batch", "-1"}, 2, "batch must be at least 1"},
		{[]string{"--width", "8", "--lr", "-1"}, 2, "learning rate must be a positive number, got -1"},
		{[]string{"--width", "8", "--lr", "NaN"}, 2, "learning rate must be a positive number, got NaN"},
		{[]string{"--width", "8", "--l1", "NaN"}, 2, "sparsity coefficient λ must be a finite number ≥ 0, got NaN"},
		{[]string{"--width", "8", "--l1", "-1"}, 2, "sparsity coefficient λ must be a finite number ≥ 0, got -1"},
		{[]string{"--width", "8", "--warmup", "1.5"}, 2, "warm-up must be a fraction in [0, 1)"},
		{[]string{"--width", "8", "--l1-warmup", "-0.5"}, 2, "sparsity warm-up must be a fraction in [0, 1]"},
		{[]string{"--width", "8", "--clip", "-1"}, 2, "clip norm must be a finite number ≥ 0"},
		{[]string{"--arch", "topk", "--k", "2", "--width", "8", "--auxk", "-1"}, 2, "AuxK coefficient must be a finite number ≥ 0"},
		{[]string{"--width", "8", "--dead-window", "-1"}, 2, "dead window must be at least 1 sample"},
		{[]string{"--width", "8", "--checkpoint-every", "-1"}, 2, "checkpoint interval must not be negative"},
		{[]string{"--width", "8", "--layer", "-5"}, 2, "--layer: expected a layer number"},
		{[]string{"--width", "8", "--precision", "f16"}, 2, `precision must be f32 or bf16, got "f16"`},
		{[]string{"--width", "8", "--engine", "graph", "--precision", "bf16"}, 2, "precision bf16 is the fused engine's, not the graph engine's"},
	} {
		if n, _ := memory.Available(); slices.Contains(c.args, "134217728") && n > 400<<30 {
			continue // a machine this large would start the run
		}
		args := append([]string{"train", "--data", tinyDump, "--out", filepath.Join(dir, "x")}, c.args...)
		code, _, stderr := runRise(t, args...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "x", "sae_weights.safetensors")); err == nil {
			t.Fatalf("%v: refused, but saved an SAE", c.args)
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

// TestTrainResumeAndInterrupt: --resume where no run was checkpointed is
// an error naming the missing file; a run interrupted before its first
// step (here in the statistics pass, by a context cancelled at once) says
// that nothing was checkpointed, and nothing was; an all-zero dump is
// refused naming its shard.
func TestTrainResumeAndInterrupt(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "sae")
	code, _, stderr := runRise(t, "train", "--data", tinyDump, "--arch", "topk", "--k", "4", "--width", "32", "--steps", "5", "--out", out, "--resume")
	if code != 1 || !strings.Contains(stderr, "there is no checkpoint at "+filepath.Join(out, "training.ckpt")) {
		t.Errorf("--resume without a checkpoint: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "sae_weights.safetensors")); err == nil {
		t.Error("--resume without a checkpoint trained and saved an SAE")
	}

	// A bare .npy without steps.jsonl: nothing in opening it looks at the
	// context, so the first thing to see it cancelled is the statistics pass.
	npy := filepath.Join(dir, "layer12.npy")
	b, err := os.ReadFile(filepath.Join(tinyDump, "layer12-00000.npy"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(npy, b, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var sout, serr strings.Builder
	out2 := filepath.Join(dir, "sae2")
	code = run(ctx, []string{"train", "--data", npy, "--arch", "topk", "--k", "4", "--width", "32", "--steps", "5", "--out", out2}, &sout, &serr)
	ck := filepath.Join(out2, "training.ckpt")
	if code != 1 || !strings.Contains(serr.String(), "interrupted before the first training step: no checkpoint was written ("+ck+" does not exist)") || strings.Contains(serr.String(), "checkpointed in") {
		t.Errorf("interrupted in the statistics pass: exit %d, %q", code, serr.String())
	}
	if _, err := os.Stat(ck); err == nil {
		t.Errorf("%s exists after a run interrupted before its first step", ck)
	}

	zero := copyTiny(t)
	shard := filepath.Join(zero, "layer12-00000.npy")
	z, _ := os.ReadFile(shard)
	clear(z[128:]) // rise writes 128-byte .npy headers
	os.WriteFile(shard, z, 0o644)
	code, _, stderr = runRise(t, "train", "--data", zero, "--arch", "topk", "--k", "4", "--width", "32", "--steps", "5", "--out", filepath.Join(dir, "sae3"))
	if code != 1 || !strings.Contains(stderr, shard+": every one of the 400 rows of layer 12 is zero") {
		t.Errorf("an all-zero dump: exit %d, %q", code, stderr)
	}
}

// copyTiny copies the committed tiny dump into a fresh directory.
func copyTiny(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := os.CopyFS(dir, os.DirFS(tinyDump)); err != nil {
		t.Fatal(err)
	}
	return dir
}

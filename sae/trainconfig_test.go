package sae

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
)

// limitMemory makes the sae package see avail bytes of free memory for the
// rest of the test, so that refusals do not depend on the machine.
func limitMemory(t *testing.T, avail uint64) {
	t.Helper()
	prev := availableMemory
	availableMemory = func() (uint64, string) { return avail, "test limit" }
	t.Cleanup(func() { availableMemory = prev })
}

// TestTrainConfigRanges runs every numeric training setting through
// Defaults and Validate (as rise train and the API both do) with a value
// of the wrong sign or out of range, NaN and infinities included: each is
// refused with one line naming it.
func TestTrainConfigRanges(t *testing.T) {
	limitMemory(t, 1<<40)
	const dIn, rows = 16, 400
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		name string
		edit func(c *TrainConfig)
		want string
	}{
		{"steps -1", func(c *TrainConfig) { c.Steps = -1 }, "steps must be at least 1, got -1"},
		{"steps beyond int32", func(c *TrainConfig) { c.Steps = 1 << 40 }, "steps must be at most 2147483647"},
		{"epochs -1", func(c *TrainConfig) { c.Epochs = -1 }, "epochs must not be negative, got -1"},
		{"epochs overflowing", func(c *TrainConfig) { c.Epochs = math.MaxInt / 2 }, "epochs of 1 steps are more than 2147483647 steps"},
		{"width MaxInt64", func(c *TrainConfig) { c.Width = math.MaxInt64 }, "d_in 16 × width 9223372036854775807 is too large"},
		{"width 2^59", func(c *TrainConfig) { c.Width = 1 << 59 }, "d_in 16 × width 576460752303423488 is too large"},
		{"width -3", func(c *TrainConfig) { c.Width = -3 }, "width must be at least 1, got -3"},
		{"k -1", func(c *TrainConfig) { c.K = -1 }, "k must not be negative"},
		{"topk k 0", func(c *TrainConfig) { c.Arch, c.K = TopK, 0 }, "topk needs k between 1 and the width"},
		{"batch -1", func(c *TrainConfig) { c.Batch = -1 }, "batch must be at least 1, got -1"},
		{"lr -1", func(c *TrainConfig) { c.LR = -1 }, "learning rate must be a positive number, got -1"},
		{"lr NaN", func(c *TrainConfig) { c.LR = nan }, "learning rate must be a positive number, got NaN"},
		{"lr +Inf", func(c *TrainConfig) { c.LR = inf }, "learning rate must be a positive number, got +Inf"},
		{"l1 -1", func(c *TrainConfig) { c.Sparsity = -1 }, "sparsity coefficient λ must be a finite number ≥ 0, got -1"},
		{"l1 NaN", func(c *TrainConfig) { c.Sparsity = float32(nan) }, "sparsity coefficient λ must be a finite number ≥ 0, got NaN"},
		{"l1 +Inf", func(c *TrainConfig) { c.Sparsity = float32(inf) }, "got +Inf"},
		{"warm-up NaN", func(c *TrainConfig) { c.Warmup = nan }, "warm-up must be a fraction in [0, 1), got NaN"},
		{"warm-up 1", func(c *TrainConfig) { c.Warmup = 1 }, "warm-up must be a fraction in [0, 1), got 1"},
		{"l1 warm-up 2", func(c *TrainConfig) { c.SparsityWarmup = 2 }, "sparsity warm-up must be a fraction in [0, 1], got 2"},
		{"l1 warm-up NaN", func(c *TrainConfig) { c.SparsityWarmup = nan }, "sparsity warm-up must be a fraction in [0, 1], got NaN"},
		{"clip NaN", func(c *TrainConfig) { c.ClipNorm = nan }, "clip norm must be a finite number ≥ 0 (0: off), got NaN"},
		{"clip -1", func(c *TrainConfig) { c.ClipNorm = -1 }, "clip norm must be a finite number ≥ 0"},
		{"auxk -1", func(c *TrainConfig) { c.AuxKCoeff = -1 }, "AuxK coefficient must be a finite number ≥ 0, got -1"},
		{"auxk latents -1", func(c *TrainConfig) { c.AuxKLatents = -1 }, "AuxK latents must not be negative"},
		{"bandwidth -1", func(c *TrainConfig) { c.Bandwidth = -1 }, "JumpReLU bandwidth must be a positive number"},
		{"threshold -1", func(c *TrainConfig) { c.InitThreshold = -1 }, "JumpReLU initial threshold must be a positive number"},
		{"beta1 1.5", func(c *TrainConfig) { c.Beta1 = 1.5 }, "Adam's β1 and β2 must be fractions in [0, 1)"},
		{"dead window -1", func(c *TrainConfig) { c.DeadWindow = -1 }, "dead window must be at least 1 sample, got -1"},
		{"checkpoint every -1", func(c *TrainConfig) { c.CheckpointEvery = -1 }, "checkpoint interval must not be negative"},
		{"samples -1", func(c *TrainConfig) { c.Samples = -1; c.Steps = 10 }, "samples must not be negative"},
	} {
		cfg := TrainConfig{Width: 32, Steps: 10}
		c.edit(&cfg)
		err := cfg.Defaults(dIn, rows).Validate(dIn, rows)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line saying %q", c.name, err, c.want)
		}
	}
	if err := (TrainConfig{Width: 32, Steps: 10}).Defaults(dIn, rows).Validate(dIn, rows); err != nil {
		t.Errorf("a sound configuration: %v", err)
	}
}

// TestTrainRefusesNegativeSteps trains with Steps -1: an error, not an
// untrained SAE.
func TestTrainRefusesNegativeSteps(t *testing.T) {
	layer, _ := plantedLayer(t, 200, 8, 16)
	s, _, err := Train(context.Background(), layer, TrainConfig{Arch: TopK, K: 2, Width: 16, Steps: -1}, nil)
	if s != nil || err == nil || !strings.Contains(err.Error(), "steps must be at least 1, got -1") {
		t.Fatalf("Steps -1: SAE %v, error %v", s != nil, err)
	}
}

// TestSizesCheckedAgainstMemory asks for SAEs whose weights overflow int64
// or exceed the memory the system has: New and Validate refuse them with
// one line instead of a makeslice panic or an out-of-memory crash.
func TestSizesCheckedAgainstMemory(t *testing.T) {
	for _, w := range []int{math.MaxInt64, 1 << 59, 1 << 40} {
		if _, err := New(TopK, 16, w, 4); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("New with width %d: %v", w, err)
		}
	}
	limitMemory(t, 1<<30)
	_, err := New(Standard, 16, 1<<26, 0) // 2 × 16 × 2^26 floats: 8 GiB
	if err == nil || !strings.Contains(err.Error(), "the weights of an SAE with d_in 16 and d_sae 67108864 need 8.5 GiB of memory, but 1.0 GiB is available (test limit)") {
		t.Errorf("New beyond memory: %v", err)
	}
	cfg := TrainConfig{Arch: TopK, K: 4, Width: 1 << 26, Steps: 5}.Defaults(16, 400)
	err = cfg.Validate(16, 400)
	if err == nil || !strings.Contains(err.Error(), "training a topk SAE of width 67108864 on d_in 16 with batch 400") || !strings.Contains(err.Error(), "1.0 GiB is available") {
		t.Errorf("Validate beyond memory: %v", err)
	}
}

// TestResumeWithoutCheckpoint resumes a run that never wrote a checkpoint:
// an error naming the missing file, not a fresh run.
func TestResumeWithoutCheckpoint(t *testing.T) {
	layer, _ := plantedLayer(t, 200, 8, 16)
	ck := filepath.Join(t.TempDir(), "training.ckpt")
	cfg := TrainConfig{Arch: TopK, K: 2, Width: 16, Steps: 5, Checkpoint: ck, Resume: true}
	s, _, err := Train(context.Background(), layer, cfg, nil)
	if s != nil || err == nil || !strings.Contains(err.Error(), "there is no checkpoint at "+ck+" to continue from") {
		t.Errorf("resuming without a checkpoint: SAE %v, error %v", s != nil, err)
	}
	if _, err := os.Stat(ck); err == nil {
		t.Error("a refused resume wrote a checkpoint")
	}
}

// TestAllZeroLayer trains on a layer whose rows are all zero, with and
// without input normalisation: an error naming the shard file.
func TestAllZeroLayer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "zeros")
	w, err := activations.Create(dir, activations.WriterOptions{Model: "m", DModel: 8, Layers: []int{4}})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteRows(4, make([]float32, 100*8))
	for i := range 100 {
		w.WriteSteps(activations.Step{Trace: "t", Step: i, Text: "step"})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := activations.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	shard := d.Layers[0].Shards()[0]
	for _, norm := range []activations.Normalization{activations.NormMeanNorm, activations.NormNone} {
		_, _, err := Train(context.Background(), d.Layers[0], TrainConfig{Arch: TopK, K: 2, Width: 16, Steps: 5, Normalization: norm}, nil)
		if err == nil || !strings.Contains(err.Error(), shard+": every one of the 100 rows of layer 4 is zero") {
			t.Errorf("normalisation %s: %v", norm, err)
		}
	}
}

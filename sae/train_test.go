package sae

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/synth"
)

// plantedLayer writes a small planted dump and opens its layer.
func plantedLayer(t testing.TB, rows, d, features int) (*activations.Layer, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dump")
	cfg := synth.DefaultConfig()
	cfg.Rows, cfg.DModel, cfg.Features, cfg.Seed = rows, d, features, 5
	if _, err := synth.Generate(context.Background(), dir, cfg, false, nil); err != nil {
		t.Fatal(err)
	}
	dump, err := activations.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dump.Close() })
	return dump.Layers[0], dir
}

func sameWeights(a, b *SAE) bool {
	return slices.Equal(a.WEnc, b.WEnc) && slices.Equal(a.WDec, b.WDec) && slices.Equal(a.BEnc, b.BEnc) &&
		slices.Equal(a.BDec, b.BDec) && slices.Equal(a.Threshold, b.Threshold)
}

func TestTrainIsDeterministicAndResumes(t *testing.T) {
	layer, _ := plantedLayer(t, 1200, 16, 32)
	for _, arch := range []Arch{Standard, TopK, BatchTopK, JumpReLU} {
		t.Run(string(arch), func(t *testing.T) {
			cfg := TrainConfig{Arch: arch, Width: 48, K: 4, Batch: 64, Steps: 40, Seed: 3, DeadWindow: 256, Sparsity: 1e-3}
			if arch == JumpReLU {
				cfg.Sparsity, cfg.Bandwidth, cfg.InitThreshold = 0.01, 0.05, 0.05
			}
			ctx := context.Background()
			whole, res, err := Train(ctx, layer, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Steps != 40 || !(res.Final.MSE > 0) {
				t.Fatalf("ran %d steps, final loss %+v", res.Steps, res.Final)
			}
			again, _, _ := Train(ctx, layer, cfg, nil)
			if !sameWeights(whole, again) {
				t.Fatal("the same seed and data gave two SAEs")
			}
			other := cfg
			other.Seed = 4
			if o, _, _ := Train(ctx, layer, other, nil); sameWeights(whole, o) {
				t.Fatal("seeds 3 and 4 gave the same SAE")
			}

			// A run that dies after its step-10 checkpoint, resumed from it.
			dir := t.TempDir()
			ck := filepath.Join(dir, "run.ckpt")
			cfg.Checkpoint, cfg.CheckpointEvery = ck, 10
			cctx, cancel := context.WithCancel(ctx)
			var saved []byte
			_, _, err = Train(cctx, layer, cfg, func(ev TrainEvent) {
				if ev.Step == 10 && ev.Checkpointed {
					saved, _ = os.ReadFile(ck)
				}
				if ev.Step == 17 {
					cancel()
				}
			})
			if err != context.Canceled || saved == nil {
				t.Fatalf("interrupted run: err %v, checkpoint at step 10 saved: %v", err, saved != nil)
			}
			// Cancelling checkpoints the step it stopped at; resume from it.
			cfg.Resume = true
			resumed, res, err := Train(ctx, layer, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.ResumedFrom != 17 || !sameWeights(whole, resumed) {
				t.Fatalf("resumed from step %d; same as the unbroken run: %v", res.ResumedFrom, sameWeights(whole, resumed))
			}
			// A crash leaves only the periodic checkpoint.
			os.WriteFile(ck, saved, 0o644)
			resumed, res, err = Train(ctx, layer, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.ResumedFrom != 10 || !sameWeights(whole, resumed) {
				t.Fatalf("resumed from step %d; same as the unbroken run: %v", res.ResumedFrom, sameWeights(whole, resumed))
			}
			// Other settings refuse the checkpoint.
			cfg.LR = 1
			if _, _, err := Train(ctx, layer, cfg, nil); err == nil {
				t.Error("a checkpoint made with another learning rate was resumed")
			}
		})
	}
}

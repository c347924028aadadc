package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/web/report"
)

// chooseLayer picks the layer a command works on (activations.ChooseLayer:
// --layer, else the SAE's hook layer when hook is not negative, else the
// dump's only layer); no choice is a usage error that names --layer.
func chooseLayer(d *activations.Dump, want, hook int) (*activations.Layer, string, error) {
	l, why, err := d.ChooseLayer(want, hook)
	if e, ok := err.(*activations.LayerChoiceError); ok {
		if want >= 0 {
			return nil, "", usagef("--layer %d: the dump %s has layers %v", want, e.Path, e.Layers)
		}
		return nil, "", usagef("%v with --layer", e)
	}
	return l, why, err
}

func init() {
	var (
		data, out, archName, preset, engine, decay, norm, bdec, dtype        string
		precision                                                            string
		layer, width, k, batch, epochs, steps, ckEvery, deadWindow, resample int
		l1, lr, warmup, l1Warmup, clip, auxk                                 float64
		seed                                                                 uint64
		resume, jsonOut, l1PerDim, bDecInput                                 bool
	)
	register(&command{
		name:    "train",
		summary: "train a sparse autoencoder on one layer of an activation dump",
		usage:   "--data DUMP [--layer L] --arch standard|relu|topk|batchtopk|jumprelu --width M [--k K] [--l1 LAMBDA] [--batch B] [--lr LR] [--epochs E | --steps N] [--engine fused|graph] [--precision f32|bf16] [--seed S] [--preset rise] [--resume] --out SAE_DIR",
		help: `Trains an SAE and saves it as a SAELens v6 directory (cfg.json and
sae_weights.safetensors), usable on raw activations: the input normalisation
is folded into the weights. The objective per architecture:

	standard  MSE + λ·Σ f_j·||W_dec[j]|| (L1 weighted by decoder-row norm; RISE)
	topk      MSE with the k largest latents per row, + AuxK for dead latents
	batchtopk MSE with the k·B largest latents of the batch, + AuxK;
	          saved as jumprelu with the learned threshold
	jumprelu  MSE + λ·L0, thresholds trained by straight-through estimators

Adam, a linear warm-up over --warmup of the steps, then cosine (or
constant) decay. Without --steps or --epochs a run sees 4 million rows (at
least one epoch). --preset rise is RISE's recipe: standard, λ 2e-3 per
dimension, batch 1024, lr 1e-4, 10% warm-up then cosine, width 2048, and 32
million rows, which lr 1e-4 needs to settle (other flags override it).
Rows are shuffled across shards with --seed; the same seed and data give the
same SAE. The run is checkpointed to SAE_DIR/training.ckpt every
--checkpoint-every steps, at the end, and on Ctrl-C; --resume continues it to
the same result as an unbroken run (and is an error when there is no
checkpoint to continue). Every size and coefficient is checked before the
run starts: counts must be positive, fractions within [0, 1], and the run's
memory must fit in what the system has.

Examples:

	rise train --data S --arch topk --k 16 --width 1024 --out S.topk
	rise train --data dump --layer 14 --preset rise --out rise.sae`,
		setFlags: func(fs *flag.FlagSet) {
			fs.StringVar(&data, "data", "", "activation dump to train on (required)")
			fs.IntVar(&layer, "layer", -1, "layer of the dump (default: its only layer)")
			fs.StringVar(&out, "out", "", "directory to save the SAE in (required)")
			fs.StringVar(&preset, "preset", "", "start from a recipe: rise")
			fs.StringVar(&archName, "arch", "", "architecture: standard (relu), topk, batchtopk or jumprelu (default standard)")
			fs.IntVar(&width, "width", 0, "number of latents, d_sae (default 2048)")
			fs.IntVar(&k, "k", 0, "active latents per row for topk and batchtopk")
			fs.Float64Var(&l1, "l1", 0, "sparsity coefficient λ: L1 for standard (default 2e-3), L0 for jumprelu")
			fs.BoolVar(&l1PerDim, "l1-per-dim", false, "read --l1 against an MSE averaged over dimensions, as RISE does (λ·d_in); --preset rise sets it")
			fs.Float64Var(&l1Warmup, "l1-warmup", 0, "fraction of the steps over which λ rises from 0")
			fs.Float64Var(&auxk, "auxk", 0, "AuxK coefficient for topk and batchtopk (default 1/32)")
			fs.IntVar(&batch, "batch", 0, "rows per step (default 1024)")
			fs.Float64Var(&lr, "lr", 0, "Adam learning rate (default 1e-4 for standard; 2e-3·√(1024/width) otherwise)")
			fs.Float64Var(&warmup, "warmup", 0, "fraction of the steps with a linear learning-rate warm-up")
			fs.StringVar(&decay, "decay", "", "learning-rate decay after the warm-up: cosine (default) or constant")
			fs.Float64Var(&clip, "clip", 0, "clip the global gradient norm to this (0: off)")
			fs.IntVar(&epochs, "epochs", 0, "passes over the data (default: enough for 4 million rows, at least 1)")
			fs.IntVar(&steps, "steps", 0, "optimiser steps (instead of --epochs)")
			fs.StringVar(&engine, "engine", "fused", "fused (hand-written, fast) or graph (gorgonia autodiff, the reference)")
			fs.StringVar(&precision, "precision", "f32", "precision of the fused engine's dense products: f32, or bf16 (bfloat16 inputs, float32 sums, weights and optimiser; CPUs with AVX512_BF16)")
			fs.Uint64Var(&seed, "seed", 1, "random seed for initialisation and data order")
			fs.StringVar(&norm, "norm", "", "input normalisation: expected_average_only_in (default) or none")
			fs.BoolVar(&bDecInput, "apply-b-dec-to-input", true, "subtract b_dec from the input before the encoder (SAELens apply_b_dec_to_input)")
			fs.StringVar(&bdec, "b-dec-init", "", "b_dec at init: mean (default), median (geometric) or zero")
			fs.IntVar(&deadWindow, "dead-window", 0, "samples without firing after which a latent is dead (default min(1e6, 2 epochs))")
			fs.IntVar(&resample, "resample-every", 0, "re-initialise dead latents every N steps in the first half of the run (0: never; not batchtopk)")
			fs.IntVar(&ckEvery, "checkpoint-every", 500, "steps between checkpoints")
			fs.BoolVar(&resume, "resume", false, "continue the run checkpointed in --out (its training.ckpt must exist)")
			fs.StringVar(&dtype, "dtype", "float32", "tensor type of the saved weights: float32, float16 or bfloat16")
			fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if fs.NArg() > 0 {
				return usagef("expected no arguments, found %q", fs.Arg(0))
			}
			if data == "" || out == "" {
				return usagef("--data and --out are required")
			}
			if epochs > 0 && steps > 0 {
				return usagef("give --epochs or --steps, not both")
			}
			if layer < -1 {
				return usagef("--layer: expected a layer number (0, 1, ...), found %d", layer)
			}
			cfg, err := sae.Settings{Preset: preset, Arch: archName, Width: width, K: k, Batch: batch, Epochs: epochs, Steps: steps,
				DeadWindow: deadWindow, Resample: resample, Sparsity: l1, AuxK: auxk, LR: lr, Warmup: warmup, Decay: decay}.Config()
			var missingK *sae.MissingKError
			if errors.As(err, &missingK) {
				return usagef("--arch %s needs --k", missingK.Arch)
			} else if err != nil {
				return usagef("--%v", err)
			}
			if l1PerDim {
				cfg.SparsityPerDim = true
			}
			cfg.SparsityWarmup, cfg.ClipNorm, cfg.Seed, cfg.EngineName, cfg.BDecInit = l1Warmup, clip, seed, engine, bdec
			cfg.Precision = precision
			cfg.SkipBDecInput = !bDecInput
			if norm != "" {
				n, err := activations.ParseNormalization(norm)
				if err != nil {
					return usagef("--norm: %v", err)
				}
				cfg.Normalization = n
			}
			cfg.Checkpoint, cfg.CheckpointEvery, cfg.Resume = filepath.Join(out, "training.ckpt"), ckEvery, resume

			dump, err := activations.OpenContext(ctx, data)
			if err != nil {
				return err
			}
			defer dump.Close()
			l, _, err := chooseLayer(dump, layer, -1)
			if err != nil {
				return err
			}
			full := cfg.Defaults(l.DModel, l.Rows)
			if err := full.Validate(l.DModel, l.Rows); err != nil {
				return usagef("%v", err)
			}
			if !resume && exists(cfg.Checkpoint) {
				return fmt.Errorf("%s holds an unfinished or earlier run (%s): pass --resume to continue it, or choose another --out", out, cfg.Checkpoint)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			bar := newProgress(e.stderr, "training")
			var curve report.TrainingCurve
			s, res, err := sae.Train(ctx, l, cfg, func(ev sae.TrainEvent) {
				curve.Add(ev)
				bar.updateInfo(int64(ev.Step), int64(ev.Steps), fmt.Sprintf("loss %.4g mse %.4g L0 %.1f dead %.1f%% %.0f/s",
					ev.Loss.Total, ev.Loss.MSE, ev.Loss.L0, 100*ev.DeadFraction, ev.SamplesPerSec))
			})
			bar.done()
			if err != nil {
				if ctx.Err() != nil {
					// A run stopped before its first step (in the pass
					// over the data that sets the normalisation and
					// b_dec, say) has written no checkpoint; one that
					// was refused --resume could not have found one.
					if !exists(cfg.Checkpoint) {
						return fmt.Errorf("interrupted before the first training step: no checkpoint was written (%s does not exist) and there is nothing to resume: %w", cfg.Checkpoint, err)
					}
					return fmt.Errorf("interrupted; the run is checkpointed in %s, continue it with --resume: %w", cfg.Checkpoint, err)
				}
				return err
			}
			s.Metadata = sae.Metadata{ModelName: dump.Manifest.Model, HookName: fmt.Sprintf("blocks.%d.hook_resid_post", l.Number),
				HookLayer: l.Number, Dataset: data, Position: dump.Manifest.Position}
			extra := map[string]any{"rise_training": res.Record(), report.CurveKey: curve}
			if err := sae.Save(out, s, sae.SaveOptions{DType: dtype, Extra: extra}); err != nil {
				return err
			}
			if jsonOut {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(res.Record())
			}
			printTrainResult(e.stdout, out, s, res)
			return nil
		},
	})
}

func setInt(dst *int, v int) {
	if v != 0 {
		*dst = v
	}
}

func printTrainResult(w io.Writer, out string, s *sae.SAE, r *sae.TrainResult) {
	c := r.Config
	fmt.Fprintf(w, "saved %s: %s SAE, d_in %d, d_sae %d", out, s.InferenceArch(), s.DIn, s.DSae)
	if s.Arch == sae.TopK || s.Arch == sae.BatchTopK {
		fmt.Fprintf(w, ", k %d", s.K)
	}
	fmt.Fprintf(w, "\ntrained %d steps of %d rows (%s engine) in %s", r.Steps, c.Batch, c.EngineName, r.Elapsed.Round(time.Millisecond))
	if r.ResumedFrom > 0 {
		fmt.Fprintf(w, ", resumed from step %d", r.ResumedFrom)
	}
	fmt.Fprintf(w, "\nfinal batch: loss %.5g, mse %.5g, L0 %.2f; dead latents %.1f%%\n", r.Final.Total, r.Final.MSE, r.Final.L0, 100*r.DeadFraction)
}

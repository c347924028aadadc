package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/reason"
	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/steer/model"
)

func init() {
	var (
		mf                                     modelFlags
		saePath, tracesPath, promptsPath, out  string
		layer, iters, batch, states, maxTokens int
		limit, evalTraces                      int
		lr, temperature                        float64
		seed                                   uint64
	)
	register(&command{
		name:    "confidence",
		noArgs:  true,
		summary: "learn a confidence vector over an SAE's decoder columns (RISE Eq. 7) and measure what it does",
		usage:   "--model PATH --sae SAE_DIR --layer L --traces traces.jsonl --out conf.json [--prompts FILE] [--iters N] [--batch B] [--lr R]",
		help: `Learns RISE's confidence scores (arXiv 2512.23988, Eq. 7): a score per decoder
column of the SAE such that adding scores·W_dec to the residual stream after
block --layer at a step boundary minimises the entropy of the model's
next-token distribution there. The blocks above the layer are differentiated
by gorgonia, reading each boundary's earlier tokens as they were; Adam with
a cosine decay, over the step boundaries of --traces.

conf.json holds the top columns, the learned vector (unit length, with its
norm), and what it does on held-out traces and prompts (the traces after
the first --states, or traces drawn afresh when --traces is rise-made):
entropy_before and entropy_after at the step boundaries with the vector
added there at its norm, and reflection_steps_before and _after per generation
of --prompts (greedy, or sampled at --temperature with the seed). CONF.spec.json beside it is a steering spec that
uses the vector (source "confidence:conf.json"), for rise steer.

Example:

	rise confidence --model testdata/tinyreason/model.bin --sae S --layer 2 --traces traces.jsonl --prompts heldout.jsonl --out conf.json`,
		setFlags: func(fs *flag.FlagSet) {
			mf.set(fs)
			fs.StringVar(&saePath, "sae", "", "the SAE whose decoder columns are scored (required)")
			fs.IntVar(&layer, "layer", -1, "the block whose output gets the vector (default: the SAE's hook layer)")
			fs.StringVar(&tracesPath, "traces", "", "traces whose step boundaries train the scores (required)")
			fs.StringVar(&promptsPath, "prompts", "", "held-out prompts to count reflection steps on, before and after")
			fs.IntVar(&limit, "limit", 50, "prompts to use at most")
			fs.IntVar(&maxTokens, "max-tokens", 400, "tokens per generation")
			fs.Float64Var(&temperature, "temperature", 0, "sampling temperature of the generations before and after (0: greedy)")
			fs.StringVar(&out, "out", "", "where to write conf.json (required)")
			fs.IntVar(&iters, "iters", 1000, "Adam steps")
			fs.IntVar(&batch, "batch", 32, "boundary states per step")
			fs.Float64Var(&lr, "lr", 0.01, "Adam learning rate (cosine decay)")
			fs.IntVar(&states, "states", 512, "boundary states to learn from")
			fs.IntVar(&evalTraces, "eval-traces", 100, "held-out traces to measure the entropy on")
			fs.Uint64Var(&seed, "seed", 1, "random seed")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if saePath == "" || tracesPath == "" || out == "" {
				return usagef("--sae, --traces and --out are required")
			}
			b, err := mf.load(ctx)
			if err != nil {
				return err
			}
			cb, ok := b.(steer.ConfidenceBackend)
			if !ok {
				return fmt.Errorf("the backend cannot learn confidence vectors")
			}
			s, err := sae.LoadAny(saePath)
			if err != nil {
				return err
			}
			if layer < 0 {
				layer = s.Metadata.HookLayer
			}
			traces, err := activations.ReadTraces(tracesPath)
			if err != nil {
				return err
			}
			// Held-out traces for the entropy: the file's tail, or, for a
			// file of rise traces, fresh ones.
			held := traces[len(traces)-min(evalTraces, len(traces)/2):]
			train := traces[:len(traces)-len(held)]
			if strings.HasPrefix(traces[0].Trace, "reason-") {
				fresh, err := reason.Traces(reason.Config{N: evalTraces, Seed: seed + 1000})
				if err == nil {
					held, train = fresh, traces
				}
			}
			bar := newProgress(e.stderr, "learning confidence scores")
			res, err := cb.LearnConfidence(ctx, s, train, steer.ConfidenceOptions{
				Layer: layer, Iters: iters, Batch: batch, LR: lr, MaxStates: states, Seed: seed,
				Progress: func(step, steps int, h float64) {
					bar.updateInfo(int64(step), int64(steps), fmt.Sprintf("entropy %.4f", h))
				}})
			bar.done()
			if err != nil {
				return err
			}
			vec := steer.Vector{VectorSpec: steer.VectorSpec{Layer: layer, Op: steer.OpAdd, Strength: res.Norm, Positions: steer.PosStepBoundary}, Dir: res.Vector}
			f := steer.ConfidenceFile{Format: steer.ConfidenceFormat, Model: mf.model, SAE: saePath, ConfidenceResult: *res, Iters: iters}
			if f.EntropyBefore, f.EntropyStates, err = cb.BoundaryEntropy(ctx, held, nil); err != nil {
				return err
			}
			if f.EntropyAfter, _, err = cb.BoundaryEntropy(ctx, held, []steer.Vector{vec}); err != nil {
				return err
			}
			if promptsPath != "" {
				prompts, err := steer.ReadPrompts(promptsPath)
				if err != nil {
					return err
				}
				if limit > 0 && limit < len(prompts) {
					prompts = prompts[:limit]
				}
				f.Prompts = len(prompts)
				gbar := newProgress(e.stderr, "generating before and after")
				runs, err := steer.Sweep(ctx, b, []steer.Vector{vec}, []float64{0, 1}, prompts, model.GenerateOptions{MaxTokens: maxTokens, Temperature: temperature, Seed: seed},
					steer.SweepOptions{Wrap: mf.wrapFunc()}, func(d, t int) { gbar.update(int64(d), int64(t)) })
				gbar.done()
				if err != nil {
					return err
				}
				f.ReflectionStepsBefore, f.ReflectionStepsAfter = runs[0].ReflectionSteps, runs[1].ReflectionSteps
			}
			f.Spec = steer.Spec{Vectors: []steer.VectorSpec{{Source: "confidence:" + filepath.Base(out), Layer: layer, Op: steer.OpAdd,
				Strength: res.Norm, Positions: steer.PosStepBoundary}}}
			js, err := json.MarshalIndent(f, "", " ")
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := atomicfile.Write(out, append(js, '\n')); err != nil {
				return err
			}
			spec, _ := json.MarshalIndent(f.Spec, "", " ")
			specPath := strings.TrimSuffix(out, ".json") + ".spec.json"
			if err := atomicfile.Write(specPath, append(spec, '\n')); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s and %s: layer %d, %d boundary states, vector norm %.3g\n", out, specPath, layer, res.States, res.Norm)
			fmt.Fprintf(e.stdout, "entropy at step boundaries (%d held-out): %.4f before, %.4f after\n", f.EntropyStates, f.EntropyBefore, f.EntropyAfter)
			if f.Prompts > 0 {
				fmt.Fprintf(e.stdout, "reflection steps per generation (%d prompts): %.2f before, %.2f after\n", f.Prompts, f.ReflectionStepsBefore, f.ReflectionStepsAfter)
			}
			top := res.Top[:min(5, len(res.Top))]
			fmt.Fprintf(e.stdout, "top columns:")
			for _, c := range top {
				fmt.Fprintf(e.stdout, " %d (%.3g)", c.ID, c.Score)
			}
			fmt.Fprintln(e.stdout)
			return nil
		},
	})
}

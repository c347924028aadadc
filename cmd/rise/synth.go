package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/synth"
)

func init() {
	var (
		out                 string
		rows, dModel, feats int
		seed                uint64
		dtype               string
		layer               int
		force               bool
		coherence, unnamed  float64
		tokenRate           float64
	)
	def := synth.DefaultConfig()
	register(&command{
		name:    "synth",
		noArgs:  true,
		summary: "write a synthetic activation dump with known behaviour features",
		usage:   "--out DIR [--rows N] [--d-model D] [--features F] [--seed S] [--dtype float32|float16] [--layer L] [--group-coherence C] [--unnamed-rate R] [--token-rate R] [--force]",
		help: `Writes a rise-activations/1 dump whose rows are sparse non-negative
combinations of F planted unit directions, plus a shared mean offset and a
little noise, the way residual streams look to a sparse autoencoder. The rows
are the steps of arithmetic word-problem traces, labelled reflection,
backtracking or other by RISE's keyword rules, in short (<1000 tokens) and long
(>8000 tokens) responses. One group of planted features per behaviour, and one
for long responses, fires several times more often on its steps, and the
features of a group lie close together (each has cosine --group-coherence with
the group's shared direction), as behaviour features do on RISE's decoder map.
--unnamed-rate R plants one more behaviour, drawn on a share R of the steps:
steps that sum up the running total ("to sum up"), with their own group of
features, whose label is withheld (steps.jsonl says "other"; truth.json names
the group "unnamed"), to test what finds behaviours nobody named.
--token-rate R plants a token feature: a group of features (truth.json's
group "token") that fires on every step whose text carries "Wait", whatever
its label, and writes "Wait, " at the head of a share R of the steps that
are not reflection steps (their labels stay as planned), to test what tells
behaviour features from features that only see a trigger word
(rise probe-tokens).

Beside the dump's own files the directory holds the ground truth:
truth.json (behaviour feature groups, firing rates, every parameter and the
realised counts), truth.npy (the planted directions, float32 [F, D]) and
offset.npy (the mean offset, float32 [1, D]). The same seed gives the same
bytes on any number of cores.

Example:

	rise synth --out S --rows 20000 --d-model 256 --features 512 --seed 1`,
		setFlags: func(fs *flag.FlagSet) {
			fs.StringVar(&out, "out", "", "directory to write the dump to (required)")
			fs.IntVar(&rows, "rows", def.Rows, "number of rows (reasoning steps)")
			fs.IntVar(&dModel, "d-model", def.DModel, "width of every row")
			fs.IntVar(&feats, "features", def.Features, "number of planted directions (at least 8)")
			fs.Uint64Var(&seed, "seed", def.Seed, "random seed")
			fs.StringVar(&dtype, "dtype", def.DType.String(), "element type of the shards: float32 or float16")
			fs.IntVar(&layer, "layer", def.Layer, "layer number recorded in the manifest")
			fs.Float64Var(&coherence, "group-coherence", def.GroupCoherence, "cosine of each behaviour feature with its group's shared direction (0: groups as scattered as any features)")
			fs.Float64Var(&unnamed, "unnamed-rate", 0, "share of the steps given to a planted behaviour whose label is withheld (0: none)")
			fs.Float64Var(&tokenRate, "token-rate", 0, "share of the non-reflection steps that get the trigger \"Wait\", on which a planted token feature fires (0: none)")
			fs.BoolVar(&force, "force", false, "replace an existing dump at --out")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if out == "" {
				return usagef("--out is required: the directory to write the dump to")
			}
			dt, err := activations.ParseDType(dtype)
			if err != nil {
				return usagef("--dtype: %v", err)
			}
			cfg := synth.DefaultConfig()
			cfg.Rows, cfg.DModel, cfg.Features, cfg.Seed, cfg.Layer, cfg.DType = rows, dModel, feats, seed, layer, dt
			cfg.GroupCoherence, cfg.UnnamedRate, cfg.TokenRate = coherence, unnamed, tokenRate
			if err := cfg.Validate(); err != nil {
				return usagef("%s", synthFlagNames(err))
			}
			bar := newProgress(e.stderr, "rise synth")
			start := time.Now()
			truth, err := synth.Generate(ctx, out, cfg, force, bar.progressFunc())
			bar.done()
			if err != nil {
				return err
			}
			printSynthSummary(e.stdout, out, truth, time.Since(start))
			return nil
		},
	})
}

// synthFlagNames words a configuration error in terms of the command's flags.
func synthFlagNames(err error) string {
	msg := err.Error()
	for _, r := range []struct{ field, flag string }{
		{"rows:", "--rows:"}, {"d_model:", "--d-model:"},
		{"features × d_model:", "--features × --d-model:"}, {"features:", "--features:"},
		{"layer:", "--layer:"}, {"dtype:", "--dtype:"}, {"group coherence:", "--group-coherence:"},
		{"reflection, backtracking and unnamed rates:", "--unnamed-rate (with the reflection and backtracking rates):"},
		{"token rate:", "--token-rate:"},
	} {
		if rest, ok := strings.CutPrefix(msg, r.field); ok {
			return r.flag + rest
		}
	}
	return msg
}

// printSynthSummary reports what was written.
func printSynthSummary(w io.Writer, dir string, t *synth.Truth, took time.Duration) {
	sc, tc := t.StepCounts, t.TraceCounts
	fmt.Fprintf(w, "wrote %s: %d rows, d_model %d, %d planted features, layer %d, %s, seed %d\n",
		dir, t.Rows, t.DModel, t.Features, t.Layer, t.DTypeName, t.Seed)
	fmt.Fprintf(w, "labels: %s %d, %s %d, %s %d; steps in %s traces %d, in %s traces %d\n",
		synth.Other, sc[synth.Other], synth.Reflection, sc[synth.Reflection], synth.Backtracking, sc[synth.Backtracking],
		synth.Short, sc[synth.Short], synth.Long, sc[synth.Long])
	fmt.Fprintf(w, "traces: %d short, %d long; planted behaviour features: %d per group; max |cos| between directions %.3g\n",
		tc[synth.Short], tc[synth.Long], t.GroupSize, t.MaxAbsCos)
	fmt.Fprintf(w, "took %s\n", took.Round(time.Millisecond))
}

package main

import (
	"context"
	"flag"
	"fmt"
	"sort"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/label"
	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/steer/model"
)

func init() {
	var (
		mf                           modelFlags
		tracesPath, promptsPath, out string
		layers, delimiter            string
		generate, force              bool
		maxTokens, limit             int
		temperature, topP            float64
		seed                         uint64
	)
	register(&command{
		name:    "dump",
		noArgs:  true,
		summary: "run a model over reasoning traces and record one activation per step",
		usage:   "--model PATH|--backend URL --traces traces.jsonl --layers L,L... --out DIR [--chat r1|chatml|qwen3|qwen3-nothink] | --model PATH --generate --prompts FILE --layers L,L... --out DIR",
		help: `Runs each trace (its prompt, then its response) through the model, cuts the
response into steps at the delimiter ("\n\n"), and records, for every step
and every layer of --layers, the residual stream after that block at the
token that completes the step's delimiter (RISE's step representation). The
result is a rise-activations/1 dump with steps.jsonl labelled by RISE's
keyword rules, each step's token span, and the response length class
(short under 1000 tokens, long over 8000) for the short/long analysis.

traces.jsonl holds {"trace", "prompt", "response"} objects. With --generate
the responses are generated first from --prompts (one per line, or JSON
lines with "prompt" or "question"), with --max-tokens, --temperature and
--seed.

Examples:

	rise dump --model M --traces traces.jsonl --layers 8,16 --out D
	rise dump --model ../shared/data/stories260K/stories260K.bin --generate --prompts prompts.txt --layers 2,4 --out D`,
		setFlags: func(fs *flag.FlagSet) {
			mf.set(fs)
			fs.StringVar(&tracesPath, "traces", "", "traces.jsonl to run")
			fs.BoolVar(&generate, "generate", false, "generate the responses from --prompts first")
			fs.StringVar(&promptsPath, "prompts", "", "with --generate: the prompts")
			fs.IntVar(&limit, "limit", 0, "use only the first N traces or prompts (0: all)")
			fs.StringVar(&layers, "layers", "", "blocks whose output to record, comma-separated, from 0 (required)")
			fs.StringVar(&out, "out", "", "the dump to write (required)")
			fs.StringVar(&delimiter, "delimiter", label.DefaultDelimiter, "the step delimiter")
			fs.IntVar(&maxTokens, "max-tokens", 512, "with --generate: tokens per response at most")
			fs.Float64Var(&temperature, "temperature", 0, "with --generate: sampling temperature")
			fs.Float64Var(&topP, "top-p", 1, "with --generate: nucleus sampling mass")
			fs.Uint64Var(&seed, "seed", 1, "with --generate: random seed")
			fs.BoolVar(&force, "force", false, "replace an existing dump at --out")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if out == "" || layers == "" {
				return usagef("--layers and --out are required")
			}
			if generate == (tracesPath != "") {
				return usagef("give --traces, or --generate with --prompts")
			}
			if generate && promptsPath == "" {
				return usagef("--generate needs --prompts")
			}
			ls, err := parseLayers(layers)
			if err != nil {
				return usagef("--layers: %v", err)
			}
			b, err := mf.load(ctx)
			if err != nil {
				return err
			}
			var traces []activations.Trace
			if generate {
				prompts, err := steer.ReadPrompts(promptsPath)
				if err != nil {
					return err
				}
				if limit > 0 && limit < len(prompts) {
					prompts = prompts[:limit]
				}
				inputs := make([]string, len(prompts))
				special := false
				for i, p := range prompts {
					inputs[i], special = mf.wrap(p.Text)
				}
				bar := newProgress(e.stderr, "generating")
				gens, err := b.Generate(ctx, inputs, model.GenerateOptions{MaxTokens: maxTokens, Temperature: temperature,
					TopP: topP, Seed: seed, Special: special, Progress: func(d, t int) { bar.update(int64(d), int64(t)) }})
				bar.done()
				if err != nil {
					return err
				}
				for i, g := range gens {
					traces = append(traces, activations.Trace{Trace: fmt.Sprintf("gen-%05d", i), Prompt: prompts[i].Text, Response: g.Text})
				}
			} else {
				if traces, err = activations.ReadTraces(tracesPath); err != nil {
					return err
				}
				if limit > 0 && limit < len(traces) {
					traces = traces[:limit]
				}
			}
			bar := newProgress(e.stderr, "recording")
			sum, err := b.Capture(ctx, traces, out, steer.CaptureOptions{Layers: ls, Delimiter: delimiter,
				Wrap: mf.wrapFunc(), Overwrite: force, Progress: func(d, t int) { bar.update(int64(d), int64(t)) }})
			bar.done()
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s: %d steps from %d traces (%d tokens), layers %v, d_model %d\n", out, sum.Steps, sum.Traces, sum.Tokens, ls, b.Info().DModel)
			var names []string
			for k := range sum.Labels {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				fmt.Fprintf(e.stdout, "  %-14s %d steps\n", k, sum.Labels[k])
			}
			if sum.Truncated > 0 {
				fmt.Fprintf(e.stdout, "  %d steps past the model's context of %d tokens were left out\n", sum.Truncated, b.Info().MaxSeq)
			}
			return nil
		},
	})
}

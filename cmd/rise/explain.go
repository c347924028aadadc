package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/sae/atlas"
)

// explainLine is one line of explanations.jsonl.
type explainLine struct {
	ID        int              `json:"id"`
	Phrases   []atlas.Phrase   `json:"phrases"`
	Detection *atlas.Detection `json:"detection"`
	Fires     int64            `json:"fires"`
	// Next and NextDetection explain the feature by the steps after the
	// ones it fires on (atlas.FeatureExplanation.Next).
	Next          []atlas.Phrase   `json:"next,omitempty"`
	NextDetection *atlas.Detection `json:"next_detection,omitempty"`
}

func init() {
	var (
		saePath, data, out string
		layer, top, keep   int
		holdOut            float64
		seed               uint64
		numbers            bool
	)
	register(&command{
		name:    "explain",
		noArgs:  true,
		summary: "explain every SAE feature by the phrases of its steps, scored on held-out steps",
		usage:   "--sae SAE_DIR --data DUMP [--layer L] [--hold-out 0.5] [--seed S] [--top N] [--keep N] [--numbers] --out explanations.jsonl",
		help: `Explains every feature of an SAE without a language model. One pass over
the layer's rows encodes them with the SAE and keeps, per feature, its
top-activating steps and a sample of its firing steps in activation bands;
the explanation is the word n-grams (1 to 4 words, lower-cased) most
over-represented in those steps against all steps (each phrase counted
once per step that holds it), by the log-odds ratio with an informative
prior of Monroe, Colaresi and Quinn (2008), each with its z-score. Each explanation is then scored like the
detection score of Paulo et al. (2024), its phrases standing in for the
judge: on the held-out traces (--hold-out, split by a hash of the trace id
and --seed, as rise atlas does), a step is predicted to fire when it holds
a phrase; precision, recall and F1 of that prediction and the AUC of the
summed z-scores of the phrases a step holds. Phrases with a digit are
left out unless --numbers: in reasoning traces the operands of each step
crowd out the words. A step's state is read at the delimiter that ends it,
so a feature often fires on the step before a behaviour shows: the
phrases of the steps that follow its examples (next) are scored the same
way, each step judged by the step after it.

explanations.jsonl has one line per feature: id, phrases (text, z),
detection (precision, recall, f1, auc, positives, steps), fires (steps of
the whole dump on which it fires), and next and next_detection.

Example:

	rise explain --sae S.topk --data S --out S.topk/explanations.jsonl`,
		setFlags: func(fs *flag.FlagSet) {
			fs.StringVar(&saePath, "sae", "", "the SAE (SAELens or sparsify directory, or Gemma Scope params.npz)")
			fs.StringVar(&data, "data", "", "the activation dump whose steps.jsonl holds the step texts")
			fs.IntVar(&layer, "layer", -1, "layer of the dump (default: the SAE's, or the dump's only layer)")
			fs.StringVar(&out, "out", "", "where to write explanations.jsonl (required)")
			fs.Float64Var(&holdOut, "hold-out", 0.5, "share of the traces held out to score the explanations (0: score on the steps they were drawn from)")
			fs.Uint64Var(&seed, "seed", 1, "seed of the held-out split and of the banded sample")
			fs.IntVar(&top, "top", 20, "top-activating example steps per feature")
			fs.IntVar(&keep, "keep", 6, "most phrases per explanation")
			fs.BoolVar(&numbers, "numbers", false, "keep phrases with a digit in them")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if saePath == "" || data == "" || out == "" {
				return usagef("--sae, --data and --out are required")
			}
			if !(holdOut >= 0 && holdOut < 1) {
				return usagef("--hold-out: expected a share in [0, 1), found %v", holdOut)
			}
			if top < 1 || keep < 1 {
				return usagef("--top and --keep: expected at least 1, found %d and %d", top, keep)
			}
			in, steps, err := openSAESteps(ctx, saePath, data, layer, "explanations need the steps' texts")
			if err != nil {
				return err
			}
			defer in.dump.Close()
			split := holdOut
			if split == 0 {
				split = -1 // Explain's in-sample scoring
			}
			start := time.Now()
			bar := newProgress(e.stderr, "explain")
			ex, err := atlas.Explain(ctx, in.sae, in.layer, steps, atlas.ExplainOptions{Top: top, HoldOut: split, HoldOutSeed: seed,
				Phrases:  atlas.PhraseOptions{Keep: keep, Numbers: numbers},
				Progress: func(stage string, done, total int) { bar.updateInfo(int64(done), int64(total), stage) }})
			bar.done()
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			enc := json.NewEncoder(w)
			var f1, bf1 float64
			scored := 0
			for _, fe := range ex.Features {
				if err := enc.Encode(explainLine{ID: fe.ID, Phrases: fe.Phrases, Detection: fe.Detection, Fires: fe.Fires,
					Next: fe.Next, NextDetection: fe.NextDetection}); err != nil {
					return err
				}
				if fe.Detection != nil && fe.Detection.Positives > 0 {
					f1 += fe.Detection.F1
					bf1 += fe.Detection.BalancedF1
					scored++
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := atomicfile.Write(out, buf.Bytes()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s: %d features explained in %s\n", out, len(ex.Features), time.Since(start).Round(time.Millisecond))
			if scored > 0 {
				fmt.Fprintf(e.stdout, "detection on %s: mean F1 %.3f over the %d features that fire there (%.3f on as many firing steps as not, as Delphi scores)\n",
					scoredOn(holdOut), f1/float64(scored), scored, bf1/float64(scored))
			}
			return nil
		},
	})
}

func scoredOn(holdOut float64) string {
	if holdOut > 0 {
		return "the held-out traces"
	}
	return "the steps the explanations came from"
}

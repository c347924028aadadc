package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/rise-interp/rise/activations/reason"
	"github.com/rise-interp/rise/internal/atomicfile"
)

func init() {
	var (
		out            string
		n              int
		seed           uint64
		prompts        bool
		minOps, maxOps int
		maxValue       int
	)
	register(&command{
		name:    "traces",
		noArgs:  true,
		summary: "write synthetic reasoning traces (arithmetic in steps, with reflection and backtracking) or held-out prompts",
		usage:   "--out FILE [--n N] [--seed S] [--prompts] [--min-ops A] [--max-ops B] [--max-value V]",
		help: `Writes traces.jsonl of arithmetic problems solved in steps separated by
"\n\n", in RISE's shape: reflection steps ("Wait, let me check: 19 x 3 = 57.
Yes.") and backtracking steps ("Alternatively, ...") whose chances depend on
the trace's hidden disposition (careful, exploring or plain), on the
problem's difficulty and on a mistake just made; mistakes that a reflection
catches and corrects; a final answer whose correctness is recorded (the
extra fields answer, mistakes, disposition, difficulty). The tiny reasoning
model in testdata/tinyreason was trained on these.

With --prompts it writes problems only, as JSON lines {"prompt", "answer"}
for rise steer and rise dump --generate; draw held-out problems with
another seed than the training traces'.

Examples:

	rise traces --out traces.jsonl --n 20000 --seed 1
	rise traces --prompts --out heldout.jsonl --n 100 --seed 99`,
		setFlags: func(fs *flag.FlagSet) {
			fs.StringVar(&out, "out", "", "the file to write (required)")
			fs.IntVar(&n, "n", 1000, "traces or problems")
			fs.Uint64Var(&seed, "seed", 1, "random seed")
			fs.BoolVar(&prompts, "prompts", false, "write problems only: {\"prompt\", \"answer\"}")
			fs.IntVar(&minOps, "min-ops", 2, "operations per problem, at least")
			fs.IntVar(&maxOps, "max-ops", 5, "operations per problem, at most")
			fs.IntVar(&maxValue, "max-value", 99, "largest start, intermediate and final value (999: three-digit chains)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if out == "" {
				return usagef("--out is required")
			}
			cfg := reason.Config{N: n, Seed: seed, MinOps: minOps, MaxOps: maxOps, MaxValue: maxValue}
			if err := cfg.Validate(); err != nil {
				return usagef("%v", err)
			}
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if prompts {
				for _, p := range reason.Problems(cfg) {
					enc.Encode(map[string]any{"prompt": p.Prompt(), "answer": fmt.Sprint(p.Answer)})
				}
			} else {
				trs, err := reason.Traces(cfg)
				if err != nil {
					return err
				}
				counts := map[string]int{}
				right := 0
				for _, t := range trs {
					if err := enc.Encode(t); err != nil {
						return err
					}
					if *t.Correct {
						right++
					}
					var d string
					json.Unmarshal(t.Extra["disposition"], &d)
					counts[d]++
				}
				defer fmt.Fprintf(e.stdout, "dispositions: careful %d, exploring %d, plain %d; final answers right: %d (%.1f%%)\n",
					counts[reason.Careful], counts[reason.Exploring], counts[reason.Plain], right, 100*float64(right)/float64(len(trs)))
			}
			if err := atomicfile.Write(out, b.Bytes()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s: %d %s\n", out, n, map[bool]string{true: "problems", false: "traces"}[prompts])
			return nil
		},
	})
}

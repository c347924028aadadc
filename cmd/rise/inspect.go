package main

import (
	"context"
	"encoding/json"
	"flag"

	"github.com/rise-interp/rise/activations"
)

func init() {
	var (
		asJSON bool
		quick  bool
		first  int
	)
	register(&command{
		name:    "inspect",
		summary: "check an activation dump and summarise it: layers, rows, labels, norms",
		usage:   "[--json] [--quick] [--steps N] PATH",
		help: `PATH is a rise-activations/1 directory, a .npy file (with steps.jsonl beside
it, if any) or an .npz archive with one array per layer. Every header, file
size and steps.jsonl line is checked; without --quick every row is read too,
which checks every value (NaN, Inf) and gives the norm statistics. A defect is
a one-line error naming the file and row, with exit status 1.

Example:

	rise synth --out S --rows 20000 --d-model 256 --features 512 --seed 1
	rise inspect S`,
		setFlags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
			fs.BoolVar(&quick, "quick", false, "check headers and steps only; do not read the rows")
			fs.IntVar(&first, "steps", 5, "how many of the first steps to show")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if fs.NArg() != 1 {
				return usagef("expected one dump path, found %d arguments", fs.NArg())
			}
			if first < 0 {
				return usagef("--steps must be at least 0, got %d", first)
			}
			bar := newProgress(e.stderr, "reading rows")
			s, err := activations.Inspect(ctx, fs.Arg(0), activations.InspectOptions{
				Stats: !quick, FirstSteps: first, Progress: bar.progressFunc(),
			})
			bar.done()
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			return s.WriteText(e.stdout)
		},
	})
}

package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/activations"
)

func init() {
	var (
		out   string
		force bool
	)
	register(&command{
		name:    "stack",
		summary: "combine single-layer dumps of the same steps into one multi-layer dump",
		usage:   "--out DIR [--force] LAYER=DUMP LAYER=DUMP...",
		help: `Writes one rise-activations/1 dump holding several layers from dumps that
each hold one layer of the same steps (one recording run per layer, say).
Every source must have the same rows, d_model and steps.jsonl; the steps and
traces of the first are kept. The layer sweep of rise atlas reads the result.

Example:

	rise stack --out D L8=run8 L16=run16 L24=run24
	rise stack --out D 8=run8 16=run16`,
		setFlags: func(fs *flag.FlagSet) {
			fs.StringVar(&out, "out", "", "directory to write the dump to (required)")
			fs.BoolVar(&force, "force", false, "replace an existing dump at --out")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if out == "" {
				return usagef("--out is required: the directory to write the dump to")
			}
			if fs.NArg() < 1 {
				return usagef("expected LAYER=DUMP arguments, one per layer, found none")
			}
			var srcs []string
			var layers []int
			for _, arg := range fs.Args() {
				l, src, ok := strings.Cut(arg, "=")
				n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(l, "L"), "l"))
				if !ok || err != nil || n < 0 || src == "" {
					return usagef("expected LAYER=DUMP such as 16=run16 or L16=run16, found %q", arg)
				}
				srcs, layers = append(srcs, src), append(layers, n)
			}
			if err := activations.Stack(ctx, out, srcs, layers, force); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s: layers %v\n", out, layers)
			return nil
		},
	})
}

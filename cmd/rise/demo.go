package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/synth"
)

func init() {
	var dir string
	register(&command{
		name:    "demo",
		noArgs:  true,
		summary: "set up the built-in demo: a planted dump to explore, and what to run next",
		usage:   "[--dir DIR]",
		help: `Writes the built-in demo dump (rise synth with its defaults: 20000 steps,
d_model 256, 512 planted features, seed 1) to DIR unless it is there already,
checks it, summarises it, and prints the commands to try on it. "make run"
runs this.

Example:

	rise demo --dir .rise/demo`,
		setFlags: func(fs *flag.FlagSet) {
			fs.StringVar(&dir, "dir", defaultDemoDir(), "where the demo dump lives")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			dump := filepath.Join(dir, "dump")
			if _, err := os.Stat(filepath.Join(dump, "manifest.json")); err != nil {
				bar := newProgress(e.stderr, "writing the demo dump")
				start := time.Now()
				truth, err := synth.Generate(ctx, dump, synth.DefaultConfig(), false, bar.progressFunc())
				bar.done()
				if err != nil {
					return err
				}
				printSynthSummary(e.stdout, dump, truth, time.Since(start))
				fmt.Fprintln(e.stdout)
			}
			s, err := activations.Inspect(ctx, dump, activations.InspectOptions{Stats: true, FirstSteps: 5})
			if err != nil {
				return fmt.Errorf("the demo dump at %s is damaged (remove it and run again): %w", dump, err)
			}
			if err := s.WriteText(e.stdout); err != nil {
				return err
			}
			self := os.Args[0]
			if filepath.Base(self) != "rise" {
				self = "rise"
			}
			fmt.Fprintf(e.stdout, `
The demo dump is ready. Its ground truth (which planted features belong to
which behaviour) is in %[2]s/truth.json. Try:

	%[1]s inspect %[2]s
	%[1]s label --traces %[2]s/traces.jsonl --out %[3]s/relabelled
	%[1]s train --data %[2]s --arch topk --k 16 --width 1024 --out %[3]s/topk
	%[1]s eval --data %[2]s --sae %[3]s/topk --truth %[2]s/truth.npy
`, self, dump, dir)
			if anchors := filepath.Join("..", "shared", "data", "thought-anchors"); exists(anchors) {
				fmt.Fprintf(e.stdout, "\t%s label --traces %s --eval\n", self, anchors)
			}
			fmt.Fprintf(e.stdout, "\t%s help\n", self)
			return nil
		},
	})
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// defaultDemoDir is .rise/demo under the working directory, where "make run"
// keeps it.
func defaultDemoDir() string { return filepath.Join(".rise", "demo") }

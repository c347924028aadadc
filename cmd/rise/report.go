package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/web/report"
)

func init() {
	var (
		data, model, sweepPath, out  string
		saes, atlases, steers, confs stringList
		evalRows                     int
	)
	register(&command{
		name:    "report",
		noArgs:  true,
		summary: "write one self-contained HTML report (and report.md) of a dataset, its SAEs, atlases and steering sweeps",
		usage:   "--data DUMP [--sae SAE_DIR...] [--model PATH] [--atlas atlas.json...] [--sweep sweep.json] [--steer results.json...] [--confidence conf.json...] --out report.html",
		help: `Writes report.html, one page that needs nothing else (figures inline as
SVG, no script, no request to any server), and report.md beside it with the
same tables: the dump's layers, steps and labels; each SAE's metrics on the
first --eval-rows rows of its layer and its training curve (recorded by rise
train in cfg.json); each atlas's map and behaviours; the separation by
layer of sweep.json; the behaviour vectors and their cosines; each steering
sweep (results.json of rise steer) with its bootstrap intervals, p-values
and controls; the confidence vectors of rise confidence; and the commands,
versions (rise, Go), seeds and SHA-256 digests of the inputs behind every
number. The same inputs give the same bytes.

Example (on the outputs of make steer-demo):

	D=out/steer-demo
	rise report --data $D/dump --sae $D/sae-l1 --sae $D/sae-l2 --sae $D/sae-l3 \
		--atlas $D/atlas-l1.json --atlas $D/atlas-l2.json --atlas $D/atlas-l3.json \
		--sweep $D/sweep.json --steer $D/results.json \
		--model testdata/tinyreason/model.bin --out $D/report.html`,
		setFlags: func(fs *flag.FlagSet) {
			saes, atlases, steers, confs = nil, nil, nil, nil
			fs.StringVar(&data, "data", "", "the activation dump the SAEs were trained on (required)")
			fs.Var(&saes, "sae", "an SAE to measure and show (repeat for several)")
			fs.StringVar(&model, "model", "", "the language model (file or directory), recorded with its SHA-256")
			fs.Var(&atlases, "atlas", "an atlas.json of rise atlas (repeat for several)")
			fs.StringVar(&sweepPath, "sweep", "", "the sweep.json of rise atlas --sweep")
			fs.Var(&steers, "steer", "a results.json of rise steer (repeat for several)")
			fs.Var(&confs, "confidence", "a conf.json of rise confidence (repeat for several)")
			fs.IntVar(&evalRows, "eval-rows", report.DefaultEvalRows, "rows of its layer each SAE is measured on")
			fs.StringVar(&out, "out", "", "where to write the HTML report; report.md goes beside it (required)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if data == "" || out == "" {
				return usagef("--data and --out are required")
			}
			if evalRows < 1 {
				return usagef("--eval-rows: expected at least 1, found %d", evalRows)
			}
			bar := newProgress(e.stderr, "report")
			r, err := report.Build(ctx, report.Inputs{Data: data, SAEs: saes, Model: model, Atlases: atlases, Sweep: sweepPath,
				Steer: steers, Confidence: confs, Command: reportCommand(fs), Version: versionString(), EvalRows: evalRows,
				Progress: func(stage string, done, total int) { bar.updateInfo(int64(done), int64(total), stage) }})
			bar.done()
			if err != nil {
				return err
			}
			md := strings.TrimSuffix(out, filepath.Ext(out)) + ".md"
			if md == out {
				md = out + ".md"
			}
			if dir := filepath.Dir(out); dir != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			var h, m bytes.Buffer
			if err := r.WriteHTML(&h); err != nil {
				return err
			}
			if err := r.WriteMarkdown(&m); err != nil {
				return err
			}
			if err := atomicfile.Write(out, h.Bytes()); err != nil {
				return err
			}
			if err := atomicfile.Write(md, m.Bytes()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s (%d figures) and %s\n", out, r.Figures(), md)
			return nil
		},
	})
}

// reportCommand writes the command line as the flags parsed it (repeated
// flags in their order), so that the same request reads the same whatever
// the order it was typed in.
func reportCommand(fs *flag.FlagSet) string {
	args := []string{"rise", "report"}
	fs.VisitAll(func(f *flag.Flag) {
		if l, ok := f.Value.(*stringList); ok {
			for _, v := range *l {
				args = append(args, "--"+f.Name, v)
			}
			return
		}
		if v := f.Value.String(); v != f.DefValue {
			args = append(args, "--"+f.Name, v)
		}
	})
	return shellJoin(args)
}

// shellJoin writes arguments as a shell reads them back, quoting those
// that need it.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:@+%", r))
		}) < 0 {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

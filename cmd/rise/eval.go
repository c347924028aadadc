package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
)

func init() {
	var (
		data, saePath, truthPath string
		layer, maxRows, topN     int
		asJSON, featureStats     bool
	)
	register(&command{
		name:    "eval",
		noArgs:  true,
		summary: "measure an SAE on a layer of an activation dump: reconstruction, sparsity, decoder geometry",
		usage:   "--data DUMP [--layer L] --sae SAE_DIR [--truth truth.npy] [--max-rows N] [--json] [--feature-stats [--top N]]",
		help: `Encodes and decodes the layer's rows in batches and reports, in the raw
activation space:

	mse                 mean over rows of ||x - x_hat||², summed over dimensions
	fvu                 Σ||x - x_hat||² / Σ||x - mean(x)||² (variance around the
	                    rows' mean, not around zero as SAELens 6.18 and SAEBench)
	explained_variance  1 - fvu
	cos_sim             mean over rows of cos(x, x_hat)
	l0                  mean active latents per row
	dead_fraction       latents that fire on none of the rows
	dense_fraction      latents that fire on more than 10% of the rows
	max_decoder_cos     largest |cos| between two decoder rows

With --truth (planted directions, float32 [F, d_in], such as the truth.npy
that 'rise synth' writes) it also reports recovery, the fraction of planted
directions some decoder row matches with cosine at least 0.9, and
mean_max_cos, the mean best cosine.

SAE_DIR is a SAELens directory, a sparsify directory or a Gemma Scope
params.npz. The layer defaults to the SAE's hook layer when the dump has it,
else to the dump's only layer. --feature-stats also gathers, in the same pass,
each latent's firing frequency, mean and largest value, a log-spaced
histogram and its --top largest activations, and saves them beside the SAE
(feature_stats.json and feature_stats.bin) for feature pages.

Example:

	rise eval --data S --sae S.sae --truth S/truth.npy`,
		setFlags: func(fs *flag.FlagSet) {
			fs.StringVar(&data, "data", "", "activation dump to evaluate on (required)")
			fs.IntVar(&layer, "layer", -1, "layer of the dump (default: the SAE's hook layer, else the dump's only layer)")
			fs.StringVar(&saePath, "sae", "", "the SAE: a SAELens or sparsify directory, or a Gemma Scope params.npz (required)")
			fs.StringVar(&truthPath, "truth", "", "planted directions (.npy, float32 [F, d_in]) to measure their recovery")
			fs.IntVar(&maxRows, "max-rows", 0, "evaluate the first N rows only (0: all)")
			fs.BoolVar(&asJSON, "json", false, "print the metrics as one JSON object")
			fs.BoolVar(&featureStats, "feature-stats", false, "compute per-latent statistics and save them beside the SAE")
			fs.IntVar(&topN, "top", sae.DefaultFeatureTopN, "largest activations to keep per latent, with --feature-stats")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if data == "" || saePath == "" {
				return usagef("--data and --sae are required")
			}
			if maxRows < 0 {
				return usagef("--max-rows must be 0 (all rows) or positive, got %d", maxRows)
			}
			if topN < 1 || topN > 1000 {
				return usagef("--top must be between 1 and 1000, got %d", topN)
			}
			in, err := openSAELayer(ctx, saePath, data, layer)
			if err != nil {
				return err
			}
			defer in.dump.Close()
			s, l := in.sae, in.layer
			opts := sae.EvalOptions{MaxRows: maxRows}
			if truthPath != "" {
				x, rows, cols, err := activations.ReadNpy(truthPath)
				if err != nil {
					return err
				}
				if cols != s.DIn {
					return fmt.Errorf("%s: the planted directions have %d columns, but the SAE %s takes d_in %d", truthPath, cols, saePath, s.DIn)
				}
				if rows == 0 {
					return fmt.Errorf("%s: expected planted directions, found an array with no rows", truthPath)
				}
				opts.Truth, opts.TruthRows = x, rows
			}
			if featureStats {
				opts.FeatureStats = &sae.FeatureStatsOptions{TopN: topN}
			}
			rowsBar := newProgress(e.stderr, "evaluating")
			geomBar := newProgress(e.stderr, "decoder geometry")
			opts.Progress = rowsBar.progressFunc()
			if geomBar != nil {
				opts.GeometryProgress = func(done, total int64) {
					rowsBar.done()
					geomBar.update(done, total)
				}
			}
			m, err := sae.Evaluate(ctx, s, l, opts)
			rowsBar.done()
			geomBar.done()
			if err != nil {
				return err
			}

			var statsDir string
			if featureStats {
				statsDir = saePath
				if st, err := os.Stat(saePath); err == nil && !st.IsDir() {
					statsDir = filepath.Dir(saePath)
				}
				m.FeatureStats.Dataset = data
				if abs, err := filepath.Abs(data); err == nil {
					m.FeatureStats.Dataset = abs
				}
				if err := m.FeatureStats.Save(statsDir); err != nil {
					return err
				}
			}

			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(m); err != nil {
					return err
				}
				if featureStats {
					fmt.Fprintf(e.stderr, "feature statistics saved to %s\n", filepath.Join(statsDir, sae.FeatureStatsFile))
				}
				return nil
			}
			printEval(e.stdout, m, evalContext{
				sae: saePath, data: data, layer: l, dumpRows: l.Rows, why: in.why,
				truthHint: truthHint(in.dump, truthPath), statsDir: statsDir,
			})
			return nil
		},
	})
}

// truthHint names the planted directions beside a dump when --truth was not
// given, so the report can suggest measuring their recovery.
func truthHint(d *activations.Dump, truthPath string) string {
	if truthPath != "" {
		return ""
	}
	dir := d.Path
	if d.Kind != activations.KindDir {
		dir = filepath.Dir(d.Path)
	}
	p := filepath.Join(dir, "truth.npy")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p
	}
	return ""
}

// evalContext is what the readable report says besides the metrics.
type evalContext struct {
	sae, data string
	layer     *activations.Layer
	dumpRows  int
	why       string // how the layer was chosen, when not by --layer
	truthHint string // truth.npy beside the dump, when --truth was not given
	statsDir  string // where feature statistics were saved, if they were
}

// printEval writes the metrics as an aligned table.
func printEval(w io.Writer, m *sae.Metrics, c evalContext) {
	layer := fmt.Sprintf("layer %s", c.layer.Name)
	if c.why != "" {
		layer += " (" + c.why + ")"
	}
	fmt.Fprintf(w, "SAE   %s: %s, d_in %d, d_sae %d\n", c.sae, m.Arch, m.DIn, m.DSae)
	fmt.Fprintf(w, "data  %s, %s, %d of %d rows\n\n", c.data, layer, m.Rows, c.dumpRows)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, v float64, note string) {
		if note != "" {
			note = "\t" + note
		}
		fmt.Fprintf(tw, "%s\t%.4g%s\n", name, v, note)
	}
	row("mse", m.MSE, "mean ||x - x_hat||² per row")
	row("fvu", m.FVU, "variance unexplained, around the mean")
	row("explained_variance", m.ExplainedVariance, "")
	row("cos_sim", m.CosSim, "mean cos(x, x_hat)")
	row("l0", m.L0, "active latents per row")
	row("dead_fraction", m.DeadFraction, fmt.Sprintf("%d latents never fire", countWhere(m.Fired, func(c int64) bool { return c == 0 })))
	row("dense_fraction", m.DenseFraction, fmt.Sprintf("%d latents fire on more than 10%% of rows", countWhere(m.Fired, func(c int64) bool { return float64(c) > sae.DenseThreshold*float64(m.Rows) })))
	row("max_decoder_cos", m.MaxDecoderCos, "largest |cos| between two decoder rows")
	if m.Recovery != nil {
		row("recovery", *m.Recovery, "planted directions matched with cos ≥ 0.9")
		row("mean_max_cos", *m.MeanMaxCos, "mean best cos per planted direction")
	}
	tw.Flush()
	if c.truthHint != "" {
		fmt.Fprintf(w, "\n%s holds planted directions: add --truth %s to measure their recovery\n", c.truthHint, c.truthHint)
	}
	if c.statsDir != "" {
		fmt.Fprintf(w, "\nfeature statistics saved to %s and %s\n", filepath.Join(c.statsDir, sae.FeatureStatsFile), sae.FeatureStatsDataFile)
	}
}

func countWhere(xs []int64, pred func(int64) bool) int {
	n := 0
	for _, x := range xs {
		if pred(x) {
			n++
		}
	}
	return n
}

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/sae/atlas"
)

func init() {
	var (
		saePaths                   stringList
		data, out, layout, svgDir  string
		holdOut                    float64
		attribute                  string
		layer, clusters, neighbors int
		seed                       uint64
		minDist                    float64
		sweep                      bool
		layers                     string
		maxSteps                   int
	)
	register(&command{
		name:    "atlas",
		noArgs:  true,
		summary: "lay out, cluster and attribute an SAE's decoder columns; behaviour vectors",
		usage: "--sae SAE_DIR --data DUMP [--layer L] [--clusters K] [--seed S] [--layout umap|pca] [--svg DIR] --out atlas.json\n" +
			"       rise atlas --sweep --sae SAE_DIR --sae SAE_DIR... --data DUMP [--layers L,L...] [--svg DIR] --out sweep.json",
		help: `Builds the decoder atlas of RISE (arXiv 2512.23988, §4): the unit decoder
columns laid out in two dimensions (UMAP with cosine distance, or PCA),
clustered by spherical k-means (k chosen by silhouette unless --clusters),
and tied to the behaviour labels of the dump's steps: per column its top
behaviour and specificity, per behaviour its specific columns and the
renormalised mean of their decoder rows (the behaviour vector). The
silhouettes of the clusters and of the behaviour-specific columns (with a
shuffled-label baseline) go in atlas.json too. --svg DIR also draws the map
as map.svg and map.png. The same seed gives the same atlas.json.

With --sweep it measures instead, for a dump of several layers and one SAE
per layer (each SAE on its hook layer, or on the layers of --layers in
order), how well behaviours separate on each layer (RISE Fig. 3) and how
well steps of short and long responses do (RISE Appendix E): cosine
silhouettes over the behaviour-specific decoder columns and over a sample
of steps placed in decoder space, each beside a shuffled-label baseline.
sweep.json holds every figure; --svg DIR draws the curves as
silhouette.svg and silhouette.png.

Examples:

	rise atlas --sae S.topk --data S --out S.topk/atlas.json --svg S.topk
	rise atlas --sweep --data D --sae D.l8 --sae D.l16 --sae D.l24 --out sweep.json --svg plots`,
		setFlags: func(fs *flag.FlagSet) {
			saePaths = nil
			fs.Var(&saePaths, "sae", "the SAE (SAELens or sparsify directory, or Gemma Scope params.npz); with --sweep, once per layer")
			fs.StringVar(&data, "data", "", "the activation dump whose steps carry behaviour labels")
			fs.IntVar(&layer, "layer", -1, "layer of the dump (default: the SAE's, or the dump's only layer)")
			fs.StringVar(&out, "out", "", "where to write atlas.json (required)")
			fs.StringVar(&layout, "layout", "umap", "map layout: umap or pca")
			fs.IntVar(&clusters, "clusters", 0, "number of clusters (default: chosen by silhouette)")
			fs.IntVar(&neighbors, "neighbors", 15, "UMAP n_neighbors")
			fs.Float64Var(&minDist, "min-dist", 0.1, "UMAP min_dist")
			fs.Uint64Var(&seed, "seed", 1, "random seed for the layout and the clusters")
			fs.StringVar(&svgDir, "svg", "", "also draw the map (or, with --sweep, the silhouette curves) into DIR as SVG and PNG")
			fs.BoolVar(&sweep, "sweep", false, "measure the separation of behaviours and of response lengths on each layer, one SAE per layer")
			fs.StringVar(&layers, "layers", "", "with --sweep: the layer of each --sae, comma-separated (default: each SAE's hook layer)")
			fs.IntVar(&maxSteps, "steps", atlas.DefaultSeparationSteps, "with --sweep: steps sampled for the step silhouettes")
			fs.Float64Var(&holdOut, "hold-out", 0.5, "share of the traces held out: the behaviour columns are chosen on the others and judged on these (0: use every trace for both)")
			fs.StringVar(&attribute, "attribute", "own", "tie each step state to its own step's labels (own) or to the next step's (next: the behaviour the model is about to write)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if len(saePaths) == 0 || data == "" || out == "" {
				return usagef("--sae, --data and --out are required")
			}
			if !(holdOut >= 0 && holdOut < 1) {
				return usagef("--hold-out: expected a share in [0, 1), found %v", holdOut)
			}
			if attribute != "own" && attribute != "next" {
				return usagef("--attribute: expected own or next, found %q", attribute)
			}
			split := atlas.AttributionOptions{HoldOut: holdOut, HoldOutSeed: seed, Shuffled: true, NextStep: attribute == "next"}
			if sweep {
				return runSweep(ctx, e, sweepArgs{saes: saePaths, data: data, out: out, svgDir: svgDir, layers: layers, seed: seed, maxSteps: maxSteps, attribution: split})
			}
			if len(saePaths) > 1 {
				return usagef("--sae was given %d times: one SAE makes an atlas (use --sweep to compare layers)", len(saePaths))
			}
			if layers != "" {
				return usagef("--layers goes with --sweep; for one atlas choose the layer with --layer")
			}
			saePath := saePaths[0]
			if layout != "umap" && layout != "pca" {
				return usagef("--layout must be umap or pca, got %q", layout)
			}
			in, steps, err := openSAESteps(ctx, saePath, data, layer, "the atlas needs the steps' behaviour labels")
			if err != nil {
				return err
			}
			defer in.dump.Close()
			bar := newProgress(e.stderr, "atlas")
			a, err := atlas.Build(ctx, in.sae, in.layer, steps, atlas.Options{Layout: layout, Clusters: clusters, Seed: seed,
				Neighbors: neighbors, MinDist: minDist, Attribution: split,
				Progress: func(stage string, done, total int) { bar.updateInfo(int64(done), int64(total), stage) }})
			bar.done()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := a.Save(out); err != nil {
				return err
			}
			if svgDir != "" {
				if err := drawAtlas(svgDir, a); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stdout, "wrote %s: %d features, %s layout, %d clusters\n", out, len(a.Features), a.Layout, len(a.Clusters))
			for _, n := range slices.Sorted(maps.Keys(a.Behaviours)) {
				b := a.Behaviours[n]
				fmt.Fprintf(e.stdout, "  %-14s %6d steps  %4d specific columns", n, b.Steps, len(b.Columns))
				if ho := b.HeldOut; ho != nil && len(b.Columns) > 0 {
					fmt.Fprintf(e.stdout, "; held out: %d kept, enrichment %.2f", ho.Kept, ho.Enrichment)
				}
				if b.Error != "" {
					fmt.Fprintf(e.stdout, "  (no vector: %s)", b.Error)
				}
				fmt.Fprintln(e.stdout)
			}
			if sp := a.Split; sp != nil {
				fmt.Fprintf(e.stdout, "  columns chosen on %d traces (%d steps), judged on %d held-out traces (%d steps)\n",
					sp.SelectionTraces, sp.SelectionSteps, sp.HeldOutTraces, sp.HeldOutSteps)
			}
			for _, k := range slices.Sorted(maps.Keys(a.Silhouette)) {
				fmt.Fprintf(e.stdout, "  silhouette %-20s %.3f\n", k, a.Silhouette[k])
			}
			return nil
		},
	})
}

// drawAtlas writes the atlas's map, coloured by behaviour, as SVG and PNG.
func drawAtlas(dir string, a *atlas.Atlas) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []atlas.Format{atlas.SVG, atlas.PNG} {
		path := filepath.Join(dir, "map."+string(f))
		var b bytes.Buffer
		if err := atlas.RenderMap(&b, f, fmt.Sprintf("decoder columns (%s)", a.Layout), a.XY(), a.Groups()); err != nil {
			return err
		}
		if err := atomicfile.Write(path, b.Bytes()); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

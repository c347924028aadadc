package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer/model"
	"github.com/rise-interp/rise/web/dashboard"
)

// featureExport holds the flags of rise export --neuronpedia and
// --dashboard.
type featureExport struct {
	neuronpedia, dashboard bool
	saePath, data          string
	layer                  int
	features               string
	topN                   int
	by                     string
	examples, bands        int
	perBand                int
	holdOut                float64
	seed                   uint64
	modelID, sourceSet     string
	creator, release, url  string
	batch                  int
}

const featureExportHelp = `
--neuronpedia writes Neuronpedia's feature export of an SAE into the
directory --out, in the layout of Neuronpedia's own export and import
scripts: OUT/<--model-id>/<layer>-<--source-set>/ with model.jsonl,
release.jsonl, sourceset.jsonl, source.jsonl and features/, activations/
and explanations/ of batch-N.jsonl.gz files (--batch features each). Every
feature (or those of --features / --top) gets its frequency, density
histogram, decoder row as its vector, top and banded example steps, and
rise's phrase explanation with its detection score (as rise explain
computes them). rise has one activation per step, at the delimiter that
ends it, so an example's tokens are the previous step of its trace and
the step itself cut into words, each followed by the delimiter; the words
carry 0 and each delimiter its step's value (the last token is the
example's).

--dashboard writes one self-contained HTML file (--out) with the feature
pages of the features chosen by --features 1,2,3 or --top N --by
frequency|max|f1: density histogram, top and banded example steps with the
step before each, explanation and detection scores, and the logit lens
when --model gives the model. It opens from disk, without a server or a
network.

Examples:

	rise export --neuronpedia --sae S.topk --data S --out np --model-id deepseek-r1-distill-qwen-1.5b --source-set rise-topk
	rise export --dashboard --sae S.topk --data S --top 20 --by f1 --out features.html`

func (fx *featureExport) setFlags(fs *flag.FlagSet) {
	fs.BoolVar(&fx.neuronpedia, "neuronpedia", false, "write Neuronpedia's feature export of --sae over --data into the directory --out")
	fs.BoolVar(&fx.dashboard, "dashboard", false, "write a self-contained HTML dashboard of chosen features to --out")
	fs.StringVar(&fx.saePath, "sae", "", "the SAE (--neuronpedia, --dashboard)")
	fs.StringVar(&fx.data, "data", "", "the activation dump with steps.jsonl (--neuronpedia, --dashboard)")
	fs.IntVar(&fx.layer, "layer", -1, "layer of the dump (default: the SAE's, or the dump's only layer)")
	fs.StringVar(&fx.features, "features", "", "features to export, e.g. 1,2,3 (default for --neuronpedia: all)")
	fs.IntVar(&fx.topN, "top", 0, "export the N features first by --by instead of --features")
	fs.StringVar(&fx.by, "by", "frequency", "order of --top: frequency, max or f1 (the explanation's detection F1)")
	fs.IntVar(&fx.examples, "examples", 10, "top-activating example steps per feature")
	fs.IntVar(&fx.bands, "bands", 4, "activation bands of equal width for the banded examples")
	fs.IntVar(&fx.perBand, "per-band", 3, "examples per band")
	fs.Float64Var(&fx.holdOut, "hold-out", 0.5, "share of the traces held out to score the explanations (0: score on the steps they came from)")
	fs.Uint64Var(&fx.seed, "seed", 1, "seed of the held-out split and of the banded sample")
	fs.StringVar(&fx.modelID, "model-id", "", "Neuronpedia's id of the model (--neuronpedia; default: the SAE's model name)")
	fs.StringVar(&fx.sourceSet, "source-set", "rise", "Neuronpedia source set; the layer is put in front (--neuronpedia)")
	fs.StringVar(&fx.creator, "creator", "", "creator name (--neuronpedia)")
	fs.StringVar(&fx.release, "release", "", "release title (--neuronpedia)")
	fs.StringVar(&fx.url, "url", "", "a URL of the release (--neuronpedia)")
	fs.IntVar(&fx.batch, "batch", 128, "features per batch file (--neuronpedia)")
}

func (fx *featureExport) run(ctx context.Context, e *env, out, modelPath string) error {
	switch {
	case fx.neuronpedia && fx.dashboard:
		return usagef("give --neuronpedia or --dashboard, not both")
	case fx.saePath == "" || fx.data == "" || out == "":
		return usagef("--sae, --data and --out are required")
	case fx.examples < 1 || fx.bands < 1 || fx.perBand < 0 || fx.batch < 1:
		return usagef("--examples, --bands and --batch: expected at least 1, --per-band at least 0")
	case !(fx.holdOut >= 0 && fx.holdOut < 1):
		return usagef("--hold-out: expected a share in [0, 1), found %v", fx.holdOut)
	case fx.features != "" && fx.topN != 0:
		return usagef("give --features or --top, not both")
	case fx.topN < 0:
		return usagef("--top: expected a number of features, found %d", fx.topN)
	case fx.by != "frequency" && fx.by != "max" && fx.by != "f1":
		return usagef("--by: expected frequency, max or f1, found %q", fx.by)
	case fx.dashboard && fx.features == "" && fx.topN == 0:
		return usagef("--dashboard needs --features 1,2,3 or --top N")
	}
	in, err := openSAELayer(ctx, fx.saePath, fx.data, fx.layer)
	if err != nil {
		return err
	}
	defer in.dump.Close()
	s := in.sae
	var ids []int
	if fx.features != "" {
		if ids, err = parseFeatures(fx.features, s.DSae); err != nil {
			return usagef("--features: %v", err)
		}
	}
	steps, err := in.readSteps(fx.data, "feature pages need the steps' texts")
	if err != nil {
		return err
	}
	delim := dashboard.DefaultDelimiter
	if in.dump.Manifest != nil && in.dump.Manifest.Delimiter != "" {
		delim = in.dump.Manifest.Delimiter
	}
	bar := newProgress(e.stderr, "export")
	prog := func(stage string, done, total int) { bar.updateInfo(int64(done), int64(total), stage) }
	split := fx.holdOut
	if split == 0 {
		split = -1
	}
	stats, err := sae.ComputeFeatureStats(ctx, s, in.layer, sae.FeatureStatsOptions{TopN: fx.examples,
		Progress: func(done, total int64) { prog("statistics", int(done), int(total)) }})
	if err != nil {
		bar.done()
		return err
	}
	ex, err := atlas.Explain(ctx, s, in.layer, steps, atlas.ExplainOptions{Top: fx.examples, Bands: fx.bands, PerBand: fx.perBand,
		HoldOut: split, HoldOutSeed: fx.seed, Progress: prog})
	if err != nil {
		bar.done()
		return err
	}
	if fx.topN > 0 {
		ids = topFeatures(stats, ex, fx.by, fx.topN)
	}
	opts := dashboard.Options{Features: ids, Top: fx.examples, Bands: fx.bands, PerBand: fx.perBand, HoldOut: split, Seed: fx.seed,
		Stats: stats, Explanations: ex, Progress: prog}
	if modelPath != "" {
		m, tok, err := model.Load(modelPath, "")
		if err != nil {
			bar.done()
			return err
		}
		if m.Dim != s.DIn {
			bar.done()
			return fmt.Errorf("the model %s has a residual stream of %d values, the SAE %s takes %d", modelPath, m.Dim, fx.saePath, s.DIn)
		}
		opts.Lens = dashboard.ModelLens(m, tok, 10)
	}
	rep, err := dashboard.Build(ctx, s, in.layer, steps, opts)
	bar.done()
	if err != nil {
		return err
	}
	if fx.dashboard {
		page, err := dashboard.WriteHTML(rep, dashboard.HTMLOptions{SAE: fx.saePath, Data: fx.data, Delimiter: delim})
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(out, page); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s: %d feature pages (%d bytes, self-contained)\n", out, len(rep.Features), len(page))
		return nil
	}
	modelID := fx.modelID
	if modelID == "" {
		modelID = strings.ToLower(filepath.Base(s.Metadata.ModelName))
	}
	if modelID == "" || modelID == "." {
		return usagef("--model-id: the SAE names no model: give Neuronpedia's id of the model")
	}
	dir, err := dashboard.WriteNeuronpedia(ctx, out, rep, dashboard.NeuronpediaMeta{ModelID: modelID, SourceSet: fx.sourceSet,
		SourceSetDescription: fmt.Sprintf("%s, step delimiters, %d latents", s.InferenceArch(), s.DSae), CreatorName: fx.creator,
		ReleaseTitle: fx.release, URL: fx.url, Dataset: fx.data, Delimiter: delim, BatchSize: fx.batch})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s: %d features in %d batches\n", dir, len(rep.Features), (len(rep.Features)+fx.batch-1)/fx.batch)
	return nil
}

// parseFeatures reads a comma-separated list of latent indices below dSae.
func parseFeatures(v string, dSae int) ([]int, error) {
	var ids []int
	seen := map[int]bool{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		j, err := strconv.Atoi(part)
		if err != nil {
			return nil, fmt.Errorf("expected latent numbers separated by commas, found %q", part)
		}
		if j < 0 || j >= dSae {
			return nil, fmt.Errorf("latent %d is outside the SAE's %d latents [0, %d)", j, dSae, dSae)
		}
		if !seen[j] {
			seen[j] = true
			ids = append(ids, j)
		}
	}
	return ids, nil
}

// topFeatures returns the n latents first by frequency, maximum or the
// detection F1 of their explanation (ties by index).
func topFeatures(stats *sae.FeatureStats, ex *atlas.Explanations, by string, n int) []int {
	key := func(j int) float64 {
		switch by {
		case "max":
			return float64(stats.Max[j])
		case "f1":
			if d := ex.Features[j].Detection; d != nil && d.Positives > 0 {
				return d.F1
			}
			return -1
		}
		return float64(stats.Fires[j])
	}
	ids := make([]int, stats.DSae)
	for j := range ids {
		ids[j] = j
	}
	sort.SliceStable(ids, func(a, b int) bool { return key(ids[a]) > key(ids[b]) })
	return ids[:min(n, len(ids))]
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// stringList is a flag that may be given several times.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

type sweepArgs struct {
	saes                      []string
	data, out, svgDir, layers string
	seed                      uint64
	maxSteps                  int
	attribution               atlas.AttributionOptions
}

// parseLayers reads a comma-separated list of layer numbers.
func parseLayers(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("expected comma-separated layer numbers such as 8,16,24, found %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func runSweep(ctx context.Context, e *env, a sweepArgs) error {
	var want []int
	if a.layers != "" {
		var err error
		if want, err = parseLayers(a.layers); err != nil {
			return usagef("--layers: %v", err)
		}
		if len(want) != len(a.saes) {
			return usagef("--layers names %d layers for %d SAEs: give one layer per --sae", len(want), len(a.saes))
		}
	}
	if a.maxSteps < 1 {
		return usagef("--steps: expected at least 1, found %d", a.maxSteps)
	}
	dump, err := activations.OpenContext(ctx, a.data)
	if err != nil {
		return err
	}
	defer dump.Close()
	if dump.StepsPath == "" {
		return fmt.Errorf("%s has no steps.jsonl: the sweep needs the steps' behaviour labels", a.data)
	}
	steps, err := activations.ReadSteps(dump.StepsPath)
	if err != nil {
		return err
	}

	type job struct {
		path  string
		sae   *sae.SAE
		layer *activations.Layer
	}
	var jobs []job
	used := map[int]string{}
	for i, p := range a.saes {
		s, err := sae.LoadAny(p)
		if err != nil {
			return err
		}
		w := -1
		if want != nil {
			w = want[i]
		}
		l, _, err := chooseLayer(dump, w, hookLayer(s))
		if err != nil {
			return fmt.Errorf("SAE %s: %w", p, err)
		}
		if prev, ok := used[l.Number]; ok {
			return usagef("SAEs %s and %s both belong to layer %d: the sweep takes one SAE per layer (name the layers with --layers)", prev, p, l.Number)
		}
		used[l.Number] = p
		if err := checkSAEWidth(s, p, l, a.data); err != nil {
			return err
		}
		jobs = append(jobs, job{p, s, l})
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].layer.Number < jobs[j].layer.Number })

	f := &atlas.SweepFile{Format: atlas.SweepFormat, Data: a.data, Seed: a.seed, Best: map[string]int{}}
	bar := newProgress(e.stderr, "sweep")
	for i, j := range jobs {
		bar.updateInfo(int64(i), int64(len(jobs)), fmt.Sprintf("layer %d", j.layer.Number))
		sp, err := atlas.Separate(ctx, j.sae, j.layer, steps, atlas.SeparationOptions{Seed: a.seed, MaxSteps: a.maxSteps, Attribution: a.attribution})
		if err != nil {
			bar.done()
			return err
		}
		sp.SAE = j.path
		f.Layers = append(f.Layers, sp)
	}
	bar.update(int64(len(jobs)), int64(len(jobs)))
	bar.done()
	f.Best = atlas.BestLayers(f.Layers)

	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(a.out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(a.out, append(b, '\n')); err != nil {
		return err
	}
	if a.svgDir != "" {
		if len(f.Layers) < 2 {
			fmt.Fprintf(e.stderr, "rise atlas: one layer makes no curve; no chart drawn in %s\n", a.svgDir)
		} else if err := drawSweep(a.svgDir, f.Layers); err != nil {
			return err
		}
	}
	printSweep(e.stdout, a.out, f)
	return nil
}

// drawSweep writes the silhouette curves as SVG and PNG.
func drawSweep(dir string, seps []*atlas.Separation) error {
	layers, curves, err := atlas.SweepCurves(seps)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []atlas.Format{atlas.SVG, atlas.PNG} {
		path := filepath.Join(dir, "silhouette."+string(f))
		var b bytes.Buffer
		if err := atlas.RenderCurves(&b, f, "separation by layer (cosine silhouette)", "layer", "silhouette", layers, curves); err != nil {
			return err
		}
		if err := atomicfile.Write(path, b.Bytes()); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// printSweep prints one line per layer and the best layers.
func printSweep(w io.Writer, out string, f *atlas.SweepFile) {
	fmt.Fprintf(w, "wrote %s: %d layers\n", out, len(f.Layers))
	fmt.Fprintf(w, "%6s  %-22s  %-22s  %-22s  %-22s\n", "layer", "columns: behaviours", "columns: length", "steps: behaviours", "steps: length")
	cell := func(m map[string]float64, k string) string {
		v, ok := m[k]
		if !ok {
			return "-"
		}
		return fmt.Sprintf("%.3f (shuffled %.3f)", v, m[k+"_shuffled"])
	}
	for _, sp := range f.Layers {
		fmt.Fprintf(w, "%6d  %-22s  %-22s  %-22s  %-22s\n", sp.Layer, cell(sp.Columns, "behaviours"), cell(sp.Columns, "length"),
			cell(sp.Steps, "behaviours"), cell(sp.Steps, "length"))
	}
	keys := make([]string, 0, len(f.Best))
	for k := range f.Best {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "best layer for %s: %d\n", k, f.Best[k])
	}
}

package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/label"
	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// Dataset is an opened dump with its steps, indexed for the step browser.
type Dataset struct {
	Name   string
	Path   string
	Dump   *activations.Dump
	Steps  []activations.Step
	Traces map[string]activations.Trace

	labels     map[string]int
	lengths    map[string]int
	stepLength []string // each step's "length" field, "" when absent
	lower      []string // each step's text, lower-cased, for search
	traceOrder []string // trace ids in order of first appearance
	traceRows  map[string][]int
	named      label.Rules // behaviours named in the workspace (named.go)

	// NextStep ties each step state to the labels of the step after it
	// when SAE columns are attributed to behaviours
	// (atlas.AttributionOptions.NextStep); the model demo sets it.
	NextStep bool
}

// SAE states.
const (
	SAETraining  = "training"
	SAEAnalysing = "analysing"
	SAEReady     = "ready"
	SAEFailed    = "failed"
	// SAEInterrupted is a training that stopped before it ended (cancelled,
	// or the server stopped): its checkpoint and request are kept, and
	// POST /api/saes/{sae}/resume continues it.
	SAEInterrupted = "interrupted"
)

// SAE is an SAE in the workspace with what the pages show about it (the
// runtime's model is steer.Backend's business, not this).
type SAE struct {
	Name    string
	Path    string // its SAELens directory
	Dataset *Dataset
	Layer   *activations.Layer

	// owned is set for an SAE the workspace trained (under Dir/saes): it
	// may be deleted, files and all. SAEs given on the command line never
	// are.
	owned bool
	// train is the request that trains it, kept to resume an interrupted
	// training.
	train *TrainRequest

	mu    sync.Mutex
	state string
	job   string
	err   string
	sae   *sae.SAE
	an    *analysis
}

// analysis is what an SAE's atlas job computes.
type analysis struct {
	atlas   *atlas.Atlas
	attr    *atlas.Attribution
	stats   *sae.FeatureStats
	unit    []float32 // unit decoder rows, [d_sae, d_in]
	venhoff map[string][]float32
	ex      *atlas.Explanations // every feature's explanation (explain.go)
	// kclusters keeps the clusterings of other k than the atlas's, by k
	// (atlasapi.go).
	kclusters sync.Map
}

func (m *SAE) snapshot() (state, job, errMsg string, s *sae.SAE, an *analysis) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state, m.job, m.err, m.sae, m.an
}

func (m *SAE) set(state, job, errMsg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state, m.job, m.err = state, job, errMsg
}

// Workspace holds the datasets and SAEs a server shows.
type Workspace struct {
	Dir string // where trained SAEs and analyses are written

	mu       sync.RWMutex
	datasets []*Dataset
	saes     []*SAE
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// checkName reports whether s may name a dataset or an SAE: it appears in
// URLs and as a directory name under the workspace.
func checkName(what, s string) error {
	if !nameRE.MatchString(s) || s == "." || s == ".." {
		return fmt.Errorf("%s name: expected 1 to 64 letters, digits, '.', '_' or '-' (not starting with a punctuation mark), found %q", what, s)
	}
	return nil
}

// uniqueName derives a free name from base.
func (w *Workspace) uniqueName(base string, taken func(string) bool) string {
	base = strings.Map(func(r rune) rune {
		if r < 128 && (r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '-'
	}, base)
	base = strings.TrimLeft(base, ".-_")
	if base == "" {
		base = "x"
	}
	if len(base) > 56 {
		base = base[:56]
	}
	name := base
	for i := 2; taken(name); i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return name
}

// AddDataset opens the dump at path and adds it under a name derived from
// its directory (or name, when not empty). Opening stops when ctx ends.
func (w *Workspace) AddDataset(ctx context.Context, path, name string) (*Dataset, error) {
	d, err := activations.OpenContext(ctx, path)
	if err != nil {
		return nil, err
	}
	ds := &Dataset{Path: path, Dump: d, Traces: map[string]activations.Trace{}, labels: map[string]int{}, lengths: map[string]int{},
		traceRows: map[string][]int{}}
	if d.StepsPath != "" {
		if ds.Steps, err = activations.ReadSteps(d.StepsPath); err != nil {
			d.Close()
			return nil, err
		}
	}
	if d.TracesPath != "" {
		trs, err := activations.ReadTraces(d.TracesPath)
		if err != nil {
			d.Close()
			return nil, err
		}
		for _, t := range trs {
			ds.Traces[t.Trace] = t
		}
	}
	ds.index()

	w.mu.Lock()
	defer w.mu.Unlock()
	if name == "" {
		base := filepath.Base(filepath.Clean(path))
		if base == "dump" { // rise demo's layout: name it after the parent
			base = filepath.Base(filepath.Dir(filepath.Clean(path)))
		}
		name = w.uniqueName(strings.TrimSuffix(strings.TrimSuffix(base, ".npy"), ".npz"), w.datasetTakenLocked)
	} else if err := checkName("dataset", name); err != nil {
		d.Close()
		return nil, err
	} else if w.datasetTakenLocked(name) {
		d.Close()
		return nil, fmt.Errorf("dataset name %q is taken", name)
	}
	ds.Name = name
	if w.Dir != "" {
		all, err := w.readNamed()
		if err != nil {
			d.Close()
			return nil, err
		}
		if rules := all[name]; len(rules) > 0 {
			if _, err := ds.applyNamed(rules); err != nil {
				d.Close()
				return nil, fmt.Errorf("%s: dataset %s: %v", namedFile, name, err)
			}
		}
	}
	w.datasets = append(w.datasets, ds)
	return ds, nil
}

// datasetTakenLocked reports whether a dataset has the name; the caller
// holds w.mu.
func (w *Workspace) datasetTakenLocked(n string) bool { return w.datasetLocked(n) != nil }

// saeTakenLocked reports whether an SAE has the name; the caller holds
// w.mu.
func (w *Workspace) saeTakenLocked(n string) bool { return w.saeLocked(n) != nil }

// datasetLocked returns the dataset with the name, or nil; the caller
// holds w.mu.
func (w *Workspace) datasetLocked(name string) *Dataset {
	for _, d := range w.datasets {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// saeLocked returns the SAE with the name, or nil; the caller holds w.mu.
func (w *Workspace) saeLocked(name string) *SAE {
	for _, m := range w.saes {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// index builds the search and trace indexes.
func (ds *Dataset) index() {
	ds.lower = make([]string, len(ds.Steps))
	ds.stepLength = make([]string, len(ds.Steps))
	for i := range ds.Steps {
		st := &ds.Steps[i]
		ds.lower[i] = strings.ToLower(st.Text)
		if len(st.Labels) == 0 {
			ds.labels["unlabelled"]++
		}
		for _, l := range st.Labels {
			ds.labels[l]++
		}
		if raw, ok := st.Extra[atlas.LengthField]; ok {
			var l string
			if json.Unmarshal(raw, &l) == nil && l != "" {
				ds.stepLength[i] = l
				ds.lengths[l]++
			}
		}
		if _, ok := ds.traceRows[st.Trace]; !ok {
			ds.traceOrder = append(ds.traceOrder, st.Trace)
		}
		ds.traceRows[st.Trace] = append(ds.traceRows[st.Trace], i)
	}
	if ds.labels["unlabelled"] == 0 {
		delete(ds.labels, "unlabelled")
	}
}

// Datasets lists the datasets in the order they were added.
func (w *Workspace) Datasets() []*Dataset {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return append([]*Dataset(nil), w.datasets...)
}

// Dataset returns the dataset with the name, or nil.
func (w *Workspace) Dataset(name string) *Dataset {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.datasetLocked(name)
}

// SAEs lists the SAEs in the order they were added.
func (w *Workspace) SAEs() []*SAE {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return append([]*SAE(nil), w.saes...)
}

// SAE returns the SAE with the name, or nil.
func (w *Workspace) SAE(name string) *SAE {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.saeLocked(name)
}

// reserveSAE adds an SAE that is still being made.
func (w *Workspace) reserveSAE(name string, ds *Dataset, layer *activations.Layer, job string) (*SAE, error) {
	if err := checkName("SAE", name); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.saeTakenLocked(name) {
		return nil, fmt.Errorf("SAE name %q is taken", name)
	}
	dir := filepath.Join(w.saesDir(), name)
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("SAE name %q is taken by the files in %s, which this server did not read back (see its log); delete them to reuse the name", name, dir)
	}
	m := &SAE{Name: name, Path: dir, Dataset: ds, Layer: layer, state: SAETraining, job: job, owned: true}
	w.saes = append(w.saes, m)
	return m, nil
}

// AddSAE loads the SAE at path and ties it to a dataset: the one it was
// trained on (by path) if the workspace has it, otherwise the first with a
// layer of the SAE's hook layer and width.
func (w *Workspace) AddSAE(path string) (*SAE, error) { return w.addSAE(path, false) }

func (w *Workspace) addSAE(path string, owned bool) (*SAE, error) {
	s, err := sae.LoadAny(path)
	if err != nil {
		return nil, err
	}
	ds, layer := w.matchDataset(s)
	if ds == nil {
		return nil, fmt.Errorf("SAE %s (d_in %d, hook layer %d): no dataset given has a layer %d of width %d; add its dump with --data",
			path, s.DIn, s.Metadata.HookLayer, s.Metadata.HookLayer, s.DIn)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	name := w.uniqueName(filepath.Base(filepath.Clean(path)), w.saeTakenLocked)
	m := &SAE{Name: name, Path: path, Dataset: ds, Layer: layer, state: SAEAnalysing, sae: s, owned: owned}
	w.saes = append(w.saes, m)
	return m, nil
}

func (w *Workspace) matchDataset(s *sae.SAE) (*Dataset, *activations.Layer) {
	fits := func(ds *Dataset) *activations.Layer {
		if l := ds.Dump.Layer(s.Metadata.HookLayer); l != nil && l.DModel == s.DIn {
			return l
		}
		if len(ds.Dump.Layers) == 1 && ds.Dump.Layers[0].DModel == s.DIn && s.Metadata.HookName == "" {
			return ds.Dump.Layers[0]
		}
		return nil
	}
	dss := w.Datasets()
	if s.Metadata.Dataset != "" {
		want, _ := filepath.Abs(s.Metadata.Dataset)
		for _, ds := range dss {
			if p, _ := filepath.Abs(ds.Path); p == want {
				if l := fits(ds); l != nil {
					return ds, l
				}
			}
		}
	}
	for _, ds := range dss {
		if l := fits(ds); l != nil {
			return ds, l
		}
	}
	return nil, nil
}

// analyse computes an SAE's atlas, attribution and feature statistics, and
// keeps the atlas and statistics in the workspace so the next start reads
// them back instead of computing them again. They are read back only when
// cacheDir's derived.json names the same weights and data; otherwise they
// are computed again, and derived.json is written after them.
func analyse(ctx context.Context, m *SAE, s *sae.SAE, seed uint64, cacheDir string, progress func(stage string, done, total int64)) (*analysis, error) {
	ds := m.Dataset
	if len(ds.Steps) == 0 {
		return nil, fmt.Errorf("dataset %s has no steps.jsonl: the atlas needs the steps' behaviour labels", ds.Name)
	}
	an := &analysis{unit: vec.UnitRows(s.WDec, s.DSae, s.DIn), venhoff: map[string][]float32{}}
	progress("attribution", 0, 1)
	attr, err := atlas.Attribute(ctx, s, m.Layer, ds.Steps, atlas.AttributionOptions{NextStep: ds.NextStep})
	if err != nil {
		return nil, err
	}
	an.attr = attr
	progress("feature statistics", 0, int64(m.Layer.Rows))
	derived := derivedFor(m, s)
	reuse := cacheDir != "" && derivedMatches(cacheDir, derived)
	if cacheDir != "" && !reuse {
		// Whatever is there was derived from other weights or data.
		if err := os.Remove(filepath.Join(cacheDir, derivedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if reuse {
		if st, err := sae.LoadFeatureStats(cacheDir); err == nil && st.DSae == s.DSae && st.Rows == m.Layer.Rows {
			an.stats = st
		}
	}
	if an.stats == nil {
		st, err := sae.ComputeFeatureStats(ctx, s, m.Layer, sae.FeatureStatsOptions{TopN: 50})
		if err != nil {
			return nil, err
		}
		st.Dataset = ds.Path
		an.stats = st
		if cacheDir != "" {
			if err := st.Save(cacheDir); err != nil {
				return nil, err
			}
		}
	}
	atlasPath := filepath.Join(cacheDir, "atlas.json")
	if reuse {
		if a, err := atlas.Load(atlasPath); err == nil && a.DSae == s.DSae && a.DIn == s.DIn && a.Rows == m.Layer.Rows && a.Seed == seed {
			an.atlas = a
		}
	}
	if an.atlas == nil {
		a, err := atlas.Build(ctx, s, m.Layer, ds.Steps, atlas.Options{Seed: seed, Attributed: attr,
			Progress: func(stage string, done, total int) { progress(stage, int64(done), int64(total)) }})
		if err == nil {
			err = probeTokenFeatures(ctx, a, s, m.Layer, ds.Steps)
		}
		if err != nil {
			return nil, err
		}
		an.atlas = a
		if cacheDir != "" {
			if err := a.Save(atlasPath); err != nil {
				return nil, err
			}
		}
	}
	if err := explainAnalysis(ctx, m, s, an, seed, cacheDir, reuse, progress); err != nil {
		return nil, err
	}
	if cacheDir != "" && !reuse {
		if err := writeDerived(cacheDir, derived); err != nil {
			return nil, err
		}
	}
	progress("venhoff vectors", 0, 1)
	for _, b := range attr.Behaviours {
		_, unit, err := atlas.VenhoffVectors(ctx, m.Layer, ds.Steps, b)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			continue
		}
		an.venhoff[b] = unit
	}
	return an, nil
}

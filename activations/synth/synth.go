// Package synth writes synthetic rise-activations/1 dumps whose ground truth
// is known, so that every later stage of the RISE method (SAE training,
// decoder clustering, behaviour attribution, short/long separation) can be
// checked against the truth instead of against intuition.
//
// A dump holds one row per reasoning step. Each row is built the way sparse
// dictionary learning assumes real residual streams are built:
//
//	x = offset + sum over active features f of a_f * d_f + noise
//
// where d_f are Features planted unit directions (truth.npy), a_f are
// heavy-tailed non-negative magnitudes, offset is a mean vector shared by all
// rows (offset.npy) and noise is small isotropic Gaussian noise. Which
// features are active depends on the step: the steps come from traces of
// arithmetic word problems, each step labelled reflection, backtracking or
// other by RISE's keyword rules, and each trace is short (under 1000 tokens)
// or long (over 8000 tokens). Four groups of planted features, one per
// behaviour and one for long responses, fire several times more often on the
// steps they belong to. truth.json records the groups, the firing rates and
// every parameter, so a test can ask whether a pipeline found the planted
// behaviour features.
//
// Generation is deterministic for a seed: every row draws from its own random
// stream derived from (seed, row), so the bytes written do not depend on the
// number of cores that computed them.
package synth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync/atomic"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/parallel"
)

// Behaviour and length names used in steps.jsonl, traces.jsonl and truth.json.
const (
	Reflection   = "reflection"   // a step that re-checks earlier work (RISE's reflection)
	Backtracking = "backtracking" // a step that tries a different route (RISE's backtracking)
	Other        = "other"        // every other step
	Short        = "short"        // a trace whose response has under 1000 tokens
	Long         = "long"         // a trace whose response has over 8000 tokens
)

// Behaviours lists the keys of Truth.Behaviours in a fixed order: the three
// step labels, then the long-response group.
var Behaviours = []string{Reflection, Backtracking, Other, Long}

// File names inside a synthetic dump, beside the dump's own files.
const (
	TruthFile      = "truth.json" // the Truth, as JSON
	DirectionsFile = "truth.npy"  // planted directions, float32 [features, d_model]
	OffsetFile     = "offset.npy" // the shared mean offset, float32 [1, d_model]
)

// TruthFormat is the format tag of truth.json.
const TruthFormat = "rise-synth-truth/1"

// Rate limits of the firing model. A base rate is capped so that no feature
// is dense; a boosted rate is capped so that even a behaviour's own features
// stay probabilistic.
const (
	MaxBaseRate    = 0.5
	MaxBoostedRate = 0.95
)

// Per-feature scales are drawn log-uniformly from [ScaleMin, ScaleMax], so
// that planted features differ in typical strength as SAE latents do.
const (
	ScaleMin = 0.5
	ScaleMax = 2.0
)

// Size limits, so that a mistyped flag is an error rather than an attempt to
// allocate the machine's memory.
const (
	maxDModel     = 1 << 16
	maxFeatures   = 1 << 20
	maxDirections = 1 << 26 // features * d_model: 256 MiB of float32 directions
)

// Config describes a synthetic dump. Start from DefaultConfig and change what
// you need: zero is a meaningful value for most model parameters (no noise,
// no offset, no long traces), and only GroupSize and ActivePerRow treat zero
// as "pick a value that suits Features".
type Config struct {
	Rows     int               `json:"rows"`     // steps (rows) in the dump
	DModel   int               `json:"d_model"`  // width of every row
	Features int               `json:"features"` // planted directions
	Seed     uint64            `json:"seed"`     // seed of every random choice
	Layer    int               `json:"layer"`    // layer number recorded in the manifest
	DType    activations.DType `json:"-"`        // element type of the shards

	// ActivePerRow is the mean number of features active on a row before
	// behaviour boosts. Sparse codes of real residual streams have tens of
	// active latents per token; 0 picks min(12, Features/4).
	ActivePerRow float64 `json:"active_per_row"`
	// PowerLaw is the exponent a of the base firing rates, p ∝ (rank+1)^-a.
	// SAE latent frequencies are heavy-tailed (a few latents fire on many
	// tokens, most on few), which a power law reproduces; 0 makes every
	// feature equally frequent.
	PowerLaw float64 `json:"power_law"`
	// GroupSize is the number of planted features owned by each of the four
	// groups (reflection, backtracking, other, long); 0 picks
	// Features/32 clamped to [1, 16].
	GroupSize int `json:"group_size"`
	// Boost is how many times more often a group's features fire on the
	// steps the group belongs to (capped at MaxBoostedRate).
	Boost float64 `json:"boost"`
	// GroupCoherence is the cosine between each feature of a group and the
	// group's shared direction (the normalised sum of the group's drawn
	// directions). Features of one behaviour in real models are not
	// scattered at random: RISE finds them close together on the decoder
	// map, which is what lets a behaviour be separated by clustering. With
	// coherence c and group size G, two members of a group have cosine
	// c² − (1−c²)/(G−1) when the directions are orthonormal, and each stays
	// orthogonal to everything outside its group. 0 leaves the groups as
	// drawn, as unrelated as any other features.
	GroupCoherence float64 `json:"group_coherence"`
	// MagnitudeSigma is the sigma of the log-normal factor of an active
	// feature's magnitude: a_f = scale_f * exp(sigma * z), z standard normal.
	// SAE activations are heavy-tailed; 0 gives every firing its feature's
	// scale exactly.
	MagnitudeSigma float64 `json:"magnitude_sigma"`
	// OffsetNorm is the norm of the mean offset shared by all rows. Real
	// residual streams sit far from the origin, with a mean that is larger
	// than the variation that carries information; an SAE has to learn it as
	// its decoder bias, and analyses have to subtract it.
	OffsetNorm float64 `json:"offset_norm"`
	// NoiseNorm is the expected norm of the isotropic Gaussian noise of a row
	// (each coordinate has standard deviation NoiseNorm/sqrt(DModel)).
	NoiseNorm float64 `json:"noise_norm"`
	// LongFraction is the share of traces that are long. Long traces have
	// about twenty times as many steps as short ones, so the default 0.05
	// gives long traces about half of the steps.
	LongFraction float64 `json:"long_fraction"`
	// ReflectionRate and BacktrackingRate are the chances that a step, other
	// than a trace's opening, is a reflection or a backtracking step.
	ReflectionRate   float64 `json:"reflection_rate"`
	BacktrackingRate float64 `json:"backtracking_rate"`
	// UnnamedRate, when positive, plants a fifth behaviour nobody named:
	// steps drawn at this rate that sum up the running total with their own
	// phrase (UnnamedPhrase) and boost their own group of features
	// (Truth.Behaviours[Unnamed]), but carry the label "other" in
	// steps.jsonl. It is off by default, which leaves every dump as it was.
	UnnamedRate float64 `json:"unnamed_rate,omitempty"`
	// TokenRate, when positive, plants a token feature: a group of
	// features (Truth.Behaviours[Token]) that fire on every step whose
	// text carries TokenTrigger, whatever the step's label, and the
	// trigger is written at the head of this share of the steps that are
	// not reflection steps (some reflection templates carry it already).
	// Chosen by contrast, such features look like reflection features but
	// see only the word; "rise probe-tokens" is meant to tell them apart.
	// It is off by default, which leaves every dump as it was.
	TokenRate float64 `json:"token_rate,omitempty"`
}

// Unnamed names the planted behaviour whose label is withheld, in
// Truth.Behaviours and Truth.StepCounts; UnnamedPhrase is the phrase every
// one of its steps carries.
const (
	Unnamed       = "unnamed"
	UnnamedPhrase = "to sum up"
)

// Token names the planted token feature's group in Truth.Behaviours;
// TokenTrigger is the word that makes it fire (RISE's first reflection
// phrase, the trigger a contrast of reflection steps picks up first).
const (
	Token        = "token"
	TokenTrigger = "Wait"
)

// groups is the number of planted behaviour groups: four, one more when
// an unnamed behaviour is planted and one more for a token feature.
func (c Config) groups() int {
	return len(c.groupSlots())
}

// groupSlots lists the indices into model.groups of the planted groups, in
// the order features are dealt to them.
func (c Config) groupSlots() []int {
	slots := []int{0, 1, 2, groupLong}
	if c.UnnamedRate > 0 {
		slots = append(slots, groupUnnamed)
	}
	if c.TokenRate > 0 {
		slots = append(slots, groupToken)
	}
	return slots
}

// DefaultConfig returns the configuration of "rise synth" without flags:
// 20000 rows of width 256 built from 512 planted features, seed 1, layer 12.
func DefaultConfig() Config {
	return Config{
		Rows: 20000, DModel: 256, Features: 512, Seed: 1, Layer: 12, DType: activations.Float32,
		PowerLaw:         0.8,
		Boost:            6,
		GroupCoherence:   0.6,
		MagnitudeSigma:   0.5,
		OffsetNorm:       20,
		NoiseNorm:        0.5,
		LongFraction:     0.05,
		ReflectionRate:   0.15,
		BacktrackingRate: 0.06,
	}
}

// resolved fills the parameters whose zero value means "pick for Features".
func (c Config) resolved() Config {
	if c.GroupSize == 0 && c.Features > 0 {
		c.GroupSize = min(16, max(1, c.Features/32))
	}
	if c.ActivePerRow == 0 && c.Features > 0 {
		c.ActivePerRow = min(12, float64(c.Features)/4)
	}
	return c
}

// Validate reports the first setting that is out of range, saying what was
// expected and what was found.
func (c Config) Validate() error {
	c = c.resolved()
	in := func(x, lo, hi float64) bool { return x >= lo && x <= hi } // false for NaN
	switch {
	case c.Rows < 1:
		return fmt.Errorf("rows: expected at least 1, found %d", c.Rows)
	case c.DModel < 2 || c.DModel > maxDModel:
		return fmt.Errorf("d_model: expected 2 to %d, found %d", maxDModel, c.DModel)
	case c.Features < 8 || c.Features > maxFeatures:
		return fmt.Errorf("features: expected 8 to %d (four behaviour groups need at least one feature each, with room to spare), found %d", maxFeatures, c.Features)
	case int64(c.Features)*int64(c.DModel) > maxDirections:
		return fmt.Errorf("features × d_model: expected at most %d planted values, found %d × %d", maxDirections, c.Features, c.DModel)
	case c.Layer < 0:
		return fmt.Errorf("layer: expected a non-negative layer number, found %d", c.Layer)
	case c.DType != activations.Float32 && c.DType != activations.Float16:
		return fmt.Errorf("dtype: expected float32 or float16, found type code %d", int(c.DType))
	case c.GroupSize < 1 || c.groups()*c.GroupSize > c.Features:
		return fmt.Errorf("group size: expected 1 to %d (features/%d), found %d", c.Features/c.groups(), c.groups(), c.GroupSize)
	case !in(c.ActivePerRow, 1e-9, MaxBaseRate*float64(c.Features)):
		return fmt.Errorf("active features per row: expected more than 0 and at most %g (features × %g), found %g", MaxBaseRate*float64(c.Features), MaxBaseRate, c.ActivePerRow)
	}
	for _, r := range []struct {
		name      string
		x, lo, hi float64
		expected  string
	}{
		{"power law exponent", c.PowerLaw, 0, 4, "0 to 4"},
		{"boost", c.Boost, 1, 1000, "1 to 1000"},
		{"group coherence", c.GroupCoherence, 0, 1, "a cosine from 0 to 1"},
		{"magnitude sigma", c.MagnitudeSigma, 0, 1, "0 to 1 (larger values overflow float16)"},
		{"offset norm", c.OffsetNorm, 0, 1e4, "0 to 10000"},
		{"noise norm", c.NoiseNorm, 0, 1e4, "0 to 10000"},
		{"long fraction", c.LongFraction, 0, 1, "0 to 1"},
	} {
		if !in(r.x, r.lo, r.hi) {
			return fmt.Errorf("%s: expected %s, found %g", r.name, r.expected, r.x)
		}
	}
	switch {
	case !in(c.ReflectionRate, 0, 0.9) || !in(c.BacktrackingRate, 0, 0.9) || !in(c.UnnamedRate, 0, 0.9) || !in(c.ReflectionRate+c.BacktrackingRate+c.UnnamedRate, 0, 0.9):
		return fmt.Errorf("reflection, backtracking and unnamed rates: expected each and their sum in [0, 0.9], found %g, %g and %g", c.ReflectionRate, c.BacktrackingRate, c.UnnamedRate)
	case !in(c.TokenRate, 0, 0.9):
		return fmt.Errorf("token rate: expected 0 to 0.9, found %g", c.TokenRate)
	}
	return nil
}

// Truth is the ground truth of a synthetic dump, stored as truth.json. It
// holds the resolved Config (so the dump can be generated again), the planted
// behaviour groups, the firing rates and what was realised.
type Truth struct {
	Format string `json:"format"` // TruthFormat
	Config
	DTypeName string `json:"dtype"` // "float32" or "float16"

	// Behaviours maps reflection, backtracking, other and long to the ids
	// (rows of truth.npy) of the planted features that fire preferentially
	// on steps with that label or in long traces, sorted.
	Behaviours map[string][]int `json:"behaviours"`
	// Frequencies is each feature's base firing probability, by feature id.
	// On the steps of its own group a feature fires with probability
	// min(Boost × base, MaxBoostedRate) instead.
	Frequencies []float64 `json:"frequencies"`
	// Scales is each feature's typical magnitude, by feature id.
	Scales []float64 `json:"scales"`
	// Fired counts the rows each feature was active on.
	Fired []int64 `json:"fired"`
	// MeanActive is the realised mean number of active features per row.
	MeanActive float64 `json:"mean_active"`

	// Orthogonal tells whether the directions were orthonormalised (done
	// when features <= d_model and the factorisation is cheap); otherwise
	// they are independent random unit vectors, nearly orthogonal in high
	// dimension. Either way the members of a behaviour group are then
	// turned towards their group's shared direction (GroupCoherence).
	Orthogonal bool `json:"orthogonal"`
	// MaxAbsCos is the largest |cosine| between two planted directions over
	// MaxAbsCosPairs pairs: every pair when MaxAbsCosExact, otherwise the
	// pairs of the first features against all others, to bound the cost.
	MaxAbsCos      float64 `json:"max_abs_cos"`
	MaxAbsCosPairs int64   `json:"max_abs_cos_pairs"`
	MaxAbsCosExact bool    `json:"max_abs_cos_exact"`

	// StepCounts counts the steps (rows) per label and per trace length:
	// keys reflection, backtracking, other, short, long.
	StepCounts map[string]int `json:"step_counts"`
	// TriggerSteps counts, when a token feature is planted, the steps whose
	// text carries TokenTrigger, by label.
	TriggerSteps map[string]int `json:"trigger_steps,omitempty"`
	// TraceCounts counts the traces: keys short, long, and truncated (the
	// last trace, when the dump ends inside it; it is short).
	TraceCounts map[string]int `json:"trace_counts"`

	// DirectionsFile names the file of planted directions in the dump
	// (DirectionsFile by default), and OffsetFile the file of the offset.
	DirectionsFile string `json:"directions"`
	OffsetFile     string `json:"offset"`

	// Directions holds the planted directions, row-major [Features][DModel],
	// and Offset the mean offset [DModel]. Generate and ReadTruth fill them;
	// they are stored in their .npy files, not in truth.json.
	Directions []float32 `json:"-"`
	Offset     []float32 `json:"-"`
}

// Direction returns planted direction f, a view into t.Directions.
func (t *Truth) Direction(f int) []float32 {
	return t.Directions[f*t.DModel : (f+1)*t.DModel]
}

// Generate writes a synthetic dump of cfg.Rows rows to dir and returns its
// ground truth, which it also stores in the dump (truth.json, truth.npy,
// offset.npy). An existing dir is an error unless overwrite is set. Rows are
// generated on all cores and written in batches, so memory stays bounded for
// any number of rows. progress, when not nil, is called after every batch
// with the rows written so far and the total, from one goroutine that need
// not be the caller's. When ctx is cancelled, Generate stops within a batch,
// leaves nothing at dir (nor replaces what was there) and returns an error
// that wraps ctx.Err().
func Generate(ctx context.Context, dir string, cfg Config, overwrite bool, progress func(done, total int64)) (*Truth, error) {
	cfg = cfg.resolved()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("synth %s: %w", dir, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("synth %s: %w", dir, err)
	}
	extra := map[string]json.RawMessage{
		"synthetic": json.RawMessage(`true`),
		"truth":     json.RawMessage(`"` + TruthFile + `"`),
		"seed":      json.RawMessage(fmt.Sprint(cfg.Seed)),
	}
	w, err := activations.Create(dir, activations.WriterOptions{
		Model: "rise-synth", DModel: cfg.DModel, Layers: []int{cfg.Layer}, DType: cfg.DType,
		Overwrite: overwrite, Extra: extra,
	})
	if err != nil {
		return nil, err
	}
	t, err := generate(ctx, w, cfg, progress)
	if err != nil {
		w.Abort()
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, fmt.Errorf("synth %s: %w", dir, err)
		}
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return t, nil
}

// batchRows picks how many rows to generate between writes: about 16 MiB of
// float32 values, and at most 4096 rows.
func batchRows(dModel int) int {
	return max(64, min(4096, (16<<20)/(4*dModel)))
}

// worker holds one goroutine's random source and tallies.
type worker struct {
	gen    rowGen
	fired  []int64
	active int64
}

// batch is a run of consecutive rows with their steps, and the traces that
// start in them. Two batches take turns: one is computed while the other is
// written.
type batch struct {
	start, n int
	rows     []float32
	conds    []uint8
	steps    []activations.Step
	tokens   []int
	traces   []activations.Trace
}

// writeBatch hands a batch to the writer.
func writeBatch(w *activations.Writer, layer, dModel int, b *batch) error {
	if err := w.WriteSteps(b.steps...); err != nil {
		return err
	}
	if len(b.traces) > 0 {
		if err := w.WriteTraces(b.traces...); err != nil {
			return err
		}
	}
	return w.WriteRows(layer, b.rows[:b.n*dModel])
}

func generate(ctx context.Context, w *activations.Writer, cfg Config, progress func(done, total int64)) (*Truth, error) {
	m, err := newModel(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cos, err := maxAbsCos(ctx, m.dirs, cfg.Features, cfg.DModel)
	if err != nil {
		return nil, err
	}
	D, N := cfg.DModel, cfg.Rows
	B := min(batchRows(D), N)
	pl := newPlanner(cfg)
	workers := make([]*worker, parallel.Workers())
	for i := range workers {
		workers[i] = &worker{gen: m.newRowGen(), fired: make([]int64, cfg.Features)}
	}

	// The writer goroutine encodes and writes one batch while the workers
	// compute the next.
	free := make(chan *batch, 2)
	for range 2 {
		free <- &batch{rows: make([]float32, B*D), conds: make([]uint8, B), tokens: make([]int, 2*B)}
	}
	full := make(chan *batch)
	writerDone := make(chan error, 1)
	var writeFailed atomic.Bool
	go func() {
		var err error
		for b := range full {
			if err == nil {
				err = ctx.Err()
			}
			if err == nil {
				if err = writeBatch(w, cfg.Layer, D, b); err != nil {
					writeFailed.Store(true)
				} else if progress != nil {
					progress(int64(b.start+b.n), int64(N))
				}
			}
			free <- b
		}
		writerDone <- err
	}()

	const chunk = 32 // rows a worker takes at a time
	for done := 0; done < N && err == nil && !writeFailed.Load(); {
		if err = ctx.Err(); err != nil {
			break
		}
		b := <-free
		b.start, b.n = done, min(B, N-done)
		b.steps, b.traces = pl.plan(b.n, b.conds, b.steps[:0], b.tokens)
		parallel.Each((b.n+chunk-1)/chunk, func(w, t int) {
			wk := workers[w]
			for i := t * chunk; i < min((t+1)*chunk, b.n); i++ {
				wk.active += int64(wk.gen.row(uint64(b.start+i), b.conds[i], b.rows[i*D:(i+1)*D], wk.fired))
			}
		})
		full <- b
		done += b.n
	}
	close(full)
	if werr := <-writerDone; werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, err
	}

	t := &Truth{
		Format: TruthFormat, Config: cfg, DTypeName: cfg.DType.String(),
		Behaviours:  map[string][]int{},
		Frequencies: m.freq, Scales: make([]float64, cfg.Features), Fired: make([]int64, cfg.Features),
		Orthogonal: m.orthogonal, MaxAbsCos: cos.max, MaxAbsCosPairs: cos.pairs, MaxAbsCosExact: cos.exact,
		StepCounts: map[string]int{}, TraceCounts: map[string]int{},
		DirectionsFile: DirectionsFile, OffsetFile: OffsetFile,
		Directions: m.dirs, Offset: m.offset,
	}
	for g, name := range Behaviours {
		ids := append([]int(nil), m.groups[g]...)
		sort.Ints(ids)
		t.Behaviours[name] = ids
	}
	if cfg.UnnamedRate > 0 {
		ids := append([]int(nil), m.groups[groupUnnamed]...)
		sort.Ints(ids)
		t.Behaviours[Unnamed] = ids
	}
	if cfg.TokenRate > 0 {
		ids := append([]int(nil), m.groups[groupToken]...)
		sort.Ints(ids)
		t.Behaviours[Token] = ids
		t.TriggerSteps = map[string]int{}
		for l, c := range pl.triggerCounts {
			if c > 0 {
				t.TriggerSteps[labelNames[l]] += c
			}
		}
	}
	var active int64
	for _, wk := range workers {
		active += wk.active
		for f, c := range wk.fired {
			t.Fired[f] += c
		}
	}
	t.MeanActive = float64(active) / float64(N)
	for f, s := range m.scale {
		t.Scales[f] = float64(s)
	}
	for l, c := range pl.stepCounts {
		t.StepCounts[labelNames[l]] += c
	}
	if cfg.UnnamedRate > 0 {
		t.StepCounts[Unnamed] = pl.stepCounts[labelUnnamed]
	}
	t.StepCounts[Short], t.StepCounts[Long] = pl.lengthSteps[0], pl.lengthSteps[1]
	t.TraceCounts[Short], t.TraceCounts[Long] = pl.lengthTraces[0], pl.lengthTraces[1]
	t.TraceCounts["truncated"] = pl.truncated

	js, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := w.WriteFile(DirectionsFile, activations.EncodeNpy(m.dirs, cfg.Features, D)); err != nil {
		return nil, err
	}
	if err := w.WriteFile(OffsetFile, activations.EncodeNpy(m.offset, 1, D)); err != nil {
		return nil, err
	}
	if err := w.WriteFile(TruthFile, append(js, '\n')); err != nil {
		return nil, err
	}
	return t, nil
}

// maxTruthBytes bounds truth.json, which holds counts and settings.
const maxTruthBytes = 64 << 20

// ReadTruth reads the ground truth of the synthetic dump at dir: truth.json
// and the planted directions and offset from their .npy files, checking that
// their shapes agree with truth.json.
func ReadTruth(dir string) (*Truth, error) {
	path := filepath.Join(dir, TruthFile)
	data, err := files.ReadRegular(path, maxTruthBytes, "a synthetic dump's truth.json")
	if err != nil {
		return nil, fmt.Errorf("read synthetic truth: %w", err)
	}
	var t Truth
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("%s: malformed JSON: %v", path, err)
	}
	if t.Format != TruthFormat {
		return nil, fmt.Errorf("%s: field \"format\": expected %q, found %q", path, TruthFormat, t.Format)
	}
	dt, err := activations.ParseDType(t.DTypeName)
	if err != nil {
		return nil, fmt.Errorf("%s: field \"dtype\": %v", path, err)
	}
	t.Config.DType = dt
	if err := t.Config.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	F, D := t.Features, t.DModel
	for _, c := range []struct {
		name string
		n    int
	}{{"frequencies", len(t.Frequencies)}, {"scales", len(t.Scales)}, {"fired", len(t.Fired)}} {
		if name, n := c.name, c.n; n != F {
			return nil, fmt.Errorf("%s: field %q: expected %d values (one per feature), found %d", path, name, F, n)
		}
	}
	for _, name := range Behaviours {
		ids, ok := t.Behaviours[name]
		if !ok {
			return nil, fmt.Errorf("%s: field \"behaviours\": expected a group %q, found none", path, name)
		}
		for _, id := range ids {
			if id < 0 || id >= F {
				return nil, fmt.Errorf("%s: behaviour %q: feature id %d is outside [0, %d)", path, name, id, F)
			}
		}
	}
	for _, f := range []*string{&t.DirectionsFile, &t.OffsetFile} {
		if !filepath.IsLocal(*f) {
			return nil, fmt.Errorf("%s: %q must be a file name inside the dump directory", path, *f)
		}
	}
	if t.Directions, err = readNpyFloat32(filepath.Join(dir, t.DirectionsFile), F, D); err != nil {
		return nil, err
	}
	if t.Offset, err = readNpyFloat32(filepath.Join(dir, t.OffsetFile), 1, D); err != nil {
		return nil, err
	}
	return &t, nil
}

package atlas

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
)

// Measure names a per-behaviour activity statistic of a decoder column.
type Measure string

// The activity measures an Attribution holds for every behaviour and column.
const (
	// MeasureMax is the largest latent value over the steps with the label:
	// RISE's activity measure (arXiv 2512.23988, §4).
	MeasureMax Measure = "max"
	// MeasureMean is the mean latent value over the steps with the label
	// (steps where the latent is zero count as zero).
	MeasureMean Measure = "mean"
	// MeasureRate is the fraction of the steps with the label on which the
	// latent fires.
	MeasureRate Measure = "rate"
)

// DefaultAttributionBatch is the number of rows Attribute encodes at a time
// when AttributionOptions.BatchSize is zero.
const DefaultAttributionBatch = 1024

// AttributionOptions tune Attribute. The zero value is usable.
type AttributionOptions struct {
	// BatchSize is the number of rows encoded at a time; 0 means
	// DefaultAttributionBatch.
	BatchSize int
	// FireThreshold is the value a latent must exceed to count as firing
	// for the firing rate; default 0.
	FireThreshold float32
	// Measure is the statistic that ranks behaviours for Specificity and
	// Top and that SpecificColumns uses unless told otherwise; "" means
	// MeasureMean. RISE (arXiv 2512.23988, §4) ranks by the largest value
	// (MeasureMax, available here), but a maximum grows with the number of
	// steps it is taken over, so when one label (such as "other") covers
	// most steps it wins nearly every column: on a planted dump with 80% of
	// the steps labelled other, max-based selection finds no reflection
	// column at all, while the mean recovers the planted ones.
	Measure Measure
	// Specific are the options BehaviourVector uses.
	Specific SpecificOptions
	// HoldOut, when positive, is the share of the traces whose steps are
	// held out: the Attribution is measured on the other steps (the
	// selection half) and Attribution.HeldOut on these, so that columns
	// and vectors chosen on one half can be judged on the other. Traces are
	// assigned by a hash of their id and HoldOutSeed, so the split is the
	// same for every layer and SAE of a dump.
	HoldOut     float64
	HoldOutSeed uint64
	// NextStep ties each row to the labels of the step that follows it in
	// its trace (none after a trace's last step) instead of its own. A
	// step's state is read at the delimiter that ends it, where the model
	// is about to write the next step: columns specific to what comes
	// next are the directions that steering at step boundaries can move.
	NextStep bool
	// Shuffled also measures the selection steps with their labels
	// shuffled among them (seeded by HoldOutSeed) into
	// Attribution.Shuffled: the baseline a behaviour vector is held
	// against, and the source of the shuffled-label steering control.
	Shuffled bool
}

// Attribution holds, for every behaviour label found in a dump's steps and
// every SAE decoder column (latent), how active the column is on the steps
// with that label. Slices indexed [b][j] are by behaviour (the order of
// Behaviours) and then column.
type Attribution struct {
	Behaviours []string // the labels found in the steps, sorted
	Counts     []int    // steps carrying each behaviour
	Rows       int      // rows (steps) of the layer
	Unlabelled int      // steps without any label
	DSae       int      // columns

	Max  [][]float32 // largest latent value over the behaviour's steps
	Mean [][]float32 // mean latent value over the behaviour's steps
	Rate [][]float32 // fraction of the behaviour's steps on which the latent fires
	// Fires counts, per behaviour and column, the behaviour's steps on
	// which the latent fires; RateAll is the fraction of all the steps
	// (labelled or not) on which it fires, the baseline of Enrichment.
	Fires   [][]int64
	RateAll []float32

	// Measure is the statistic Specificity and Top were computed from.
	Measure Measure
	// Top is each column's most active behaviour (an index into
	// Behaviours) by Measure, or -1 when the column is never active.
	Top []int
	// Specificity is each column's share of activity that goes to its top
	// behaviour, act_top / Σ_b act_b by Measure: 1 for a column active on
	// one behaviour only, 1/len(Behaviours) for one equally active on all,
	// 0 for a column that never fires. RISE keeps columns whose activity
	// is concentrated on one behaviour; this is that notion as a number.
	Specificity []float32

	// Options are the options Attribute ran with, defaults filled in.
	Options AttributionOptions

	// HeldOut is the same measurement on the held-out traces' steps, when
	// Options.HoldOut is positive; Traces and HeldOutTraces count the
	// traces of each half.
	HeldOut               *Attribution
	Traces, HeldOutTraces int
	// Shuffled is the measurement of the selection steps with shuffled
	// labels, when Options.Shuffled is set.
	Shuffled *Attribution

	sae *sae.SAE
}

// Attribute encodes every row of layer with s in one streaming pass and
// measures, for every behaviour label in steps (a step may carry several;
// "other" is a behaviour like any other) and every column, the largest
// latent value, the mean latent value and the firing rate over the steps
// with that label. steps must hold one step per row of the layer, in row
// order, and s must take rows of the layer's width.
func Attribute(ctx context.Context, s *sae.SAE, layer *activations.Layer, steps []activations.Step, opts AttributionOptions) (*Attribution, error) {
	if err := checkEncodeInput("attribute", s, layer, steps); err != nil {
		return nil, err
	}
	switch {
	case opts.BatchSize < 0:
		return nil, fmt.Errorf("attribute: batch size must be positive (or 0 for the default), got %d", opts.BatchSize)
	case !(opts.HoldOut >= 0 && opts.HoldOut < 1):
		return nil, fmt.Errorf("attribute: hold-out share must lie in [0, 1), got %v", opts.HoldOut)
	case len(s.WDec) != s.DSae*s.DIn:
		return nil, fmt.Errorf("attribute: decoder holds %d values, expected d_sae × d_in = %d × %d", len(s.WDec), s.DSae, s.DIn)
	}
	opts.BatchSize = cmp.Or(opts.BatchSize, DefaultAttributionBatch)
	opts.Measure = cmp.Or(opts.Measure, MeasureMean)
	if err := opts.Measure.check(); err != nil {
		return nil, fmt.Errorf("attribute: %w", err)
	}

	names, stepLabels := indexLabels(steps)
	if len(names) == 0 {
		return nil, fmt.Errorf("attribute: none of the %d steps carries a behaviour label", len(steps))
	}
	if opts.NextStep {
		stepLabels = nextLabels(steps, stepLabels)
	}
	// half[row] is 1 for a held-out row, 0 for a selection row.
	half := make([]uint8, len(steps))
	traces := [2]map[string]bool{{}, {}}
	for i := range steps {
		if opts.HoldOut > 0 && heldOut(steps[i].Trace, opts.HoldOut, opts.HoldOutSeed) {
			half[i] = 1
		}
		traces[half[i]][steps[i].Trace] = true
	}
	// Each row feeds its half's accumulator with its labels and, for a
	// selection row with Shuffled, the shuffled accumulator with another
	// selection row's labels.
	const sel, held, shuffled = 0, 1, 2
	shuffledLabels := make([][]int, len(steps))
	if opts.Shuffled {
		var rows []int
		for i := range steps {
			if half[i] == sel {
				rows = append(rows, i)
			}
		}
		perm := rand.New(rand.NewPCG(opts.HoldOutSeed, 0x5b0ff1e)).Perm(len(rows))
		for k, i := range rows {
			shuffledLabels[i] = stepLabels[rows[perm[k]]]
		}
	}
	type target struct {
		group  int
		labels []int
	}
	var tbuf [2]target
	targets := func(row int) []target { // reuses tbuf: no allocation per row
		tbuf[0] = target{int(half[row]), stepLabels[row]}
		if opts.Shuffled && half[row] == sel {
			tbuf[1] = target{shuffled, shuffledLabels[row]}
			return tbuf[:2]
		}
		return tbuf[:1]
	}
	nb, m := len(names), s.DSae
	accs := [3]*Attribution{}
	sums := [3][][]float64{}
	firesAll := [3][]int64{}
	for g := range accs {
		accs[g] = &Attribution{Behaviours: names, Counts: make([]int, nb), DSae: m,
			Max: grid(nb, m), Mean: grid(nb, m), Rate: grid(nb, m), RateAll: make([]float32, m), Options: opts, sae: s}
		accs[g].Fires = make([][]int64, nb)
		sums[g] = make([][]float64, nb)
		for b := range nb {
			accs[g].Fires[b] = make([]int64, m)
			sums[g][b] = make([]float64, m)
		}
		firesAll[g] = make([]int64, m)
	}
	for i := range stepLabels {
		for _, t := range targets(i) {
			a := accs[t.group]
			a.Rows++
			if len(t.labels) == 0 {
				a.Unlabelled++
			}
			for _, b := range t.labels {
				a.Counts[b]++
			}
		}
	}

	_, err := s.EncodeLayer(ctx, layer, layer.Rows, opts.BatchSize, nil, func(_, f []float32, rows []int) {
		for i, row := range rows {
			fr := f[i*m : (i+1)*m]
			for _, t := range targets(row) {
				a, sum, all := accs[t.group], sums[t.group], firesAll[t.group]
				for j, v := range fr {
					if v == 0 {
						continue
					}
					if v > opts.FireThreshold {
						all[j]++
					}
					for _, b := range t.labels {
						sum[b][j] += float64(v)
						if v > a.Max[b][j] {
							a.Max[b][j] = v
						}
						if v > opts.FireThreshold {
							a.Fires[b][j]++
						}
					}
				}
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("attribute: %w", err)
	}
	for g, a := range accs {
		for b := range nb {
			c := float64(a.Counts[b])
			if c == 0 {
				continue
			}
			for j := range m {
				a.Mean[b][j] = float32(sums[g][b][j] / c)
				a.Rate[b][j] = float32(float64(a.Fires[b][j]) / c)
			}
		}
		if a.Rows > 0 {
			for j := range m {
				a.RateAll[j] = float32(float64(firesAll[g][j]) / float64(a.Rows))
			}
		}
		a.rank()
	}
	a := accs[sel]
	a.Traces = len(traces[sel])
	if opts.HoldOut > 0 {
		a.HeldOut, a.HeldOutTraces = accs[held], len(traces[held])
		a.HeldOut.Traces = len(traces[held])
	}
	if opts.Shuffled {
		a.Shuffled = accs[shuffled]
		a.Shuffled.Traces = a.Traces
	}
	return a, nil
}

// checkEncodeInput checks what a streaming pass that encodes a layer's
// rows with an SAE needs: both given, widths that agree, one step per row.
// what names the pass in the error.
func checkEncodeInput(what string, s *sae.SAE, layer *activations.Layer, steps []activations.Step) error {
	switch {
	case s == nil:
		return fmt.Errorf("%s: no SAE given", what)
	case layer == nil:
		return fmt.Errorf("%s: no layer given", what)
	case s.DIn != layer.DModel:
		return fmt.Errorf("%s: the SAE takes rows of %d values but layer %s has rows of %d", what, s.DIn, layer.Name, layer.DModel)
	case len(steps) != layer.Rows:
		return fmt.Errorf("%s: expected one step per row of layer %s (%d), found %d steps", what, layer.Name, layer.Rows, len(steps))
	}
	return nil
}

// heldOut reports whether a trace falls in the held-out share of a split:
// FNV-1a of the seed and the trace id, mixed by MurmurHash3's 64-bit
// finaliser (FNV alone barely moves its top bits when ids differ only at
// the end), scaled to [0, 1).
func heldOut(trace string, share float64, seed uint64) bool {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	h.Write([]byte(trace))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return float64(x>>11)/(1<<53) < share
}

// Firings is the number of the behaviour's steps on which column j fires.
func (a *Attribution) Firings(b, j int) int64 { return a.Fires[b][j] }

// Enrichment is how much more often column j fires on behaviour b's steps
// than on steps at large: Rate[b][j] / RateAll[j] (0 for a column that
// never fires).
func (a *Attribution) Enrichment(b, j int) float64 {
	if a.RateAll[j] == 0 {
		return 0
	}
	return float64(a.Rate[b][j]) / float64(a.RateAll[j])
}

// nextLabels returns, for each step, the labels of the step after it in
// the same trace (nil for a trace's last step).
func nextLabels(steps []activations.Step, labels [][]int) [][]int {
	out := make([][]int, len(labels))
	for i := range steps {
		if i+1 < len(steps) && steps[i+1].Trace == steps[i].Trace {
			out[i] = labels[i+1]
		}
	}
	return out
}

// indexLabels lists the distinct labels of steps (sorted) and each step's
// label indices (a label repeated within a step counts once).
func indexLabels(steps []activations.Step) (names []string, labels [][]int) {
	seen := map[string]bool{}
	for i := range steps {
		for _, l := range steps[i].Labels {
			seen[l] = true
		}
	}
	for l := range seen {
		names = append(names, l)
	}
	sort.Strings(names)
	index := make(map[string]int, len(names))
	for i, l := range names {
		index[l] = i
	}
	labels = make([][]int, len(steps))
	for i := range steps {
		var ls []int
		for _, l := range steps[i].Labels {
			if b := index[l]; !slices.Contains(ls, b) {
				ls = append(ls, b)
			}
		}
		labels[i] = ls
	}
	return names, labels
}

func grid(rows, cols int) [][]float32 {
	g := make([][]float32, rows)
	for i := range g {
		g[i] = make([]float32, cols)
	}
	return g
}

func (m Measure) check() error {
	switch m {
	case MeasureMax, MeasureMean, MeasureRate:
		return nil
	}
	return fmt.Errorf("unknown activity measure %q, expected %q, %q or %q", string(m), MeasureMax, MeasureMean, MeasureRate)
}

// Activity returns the table of the measure m, indexed [behaviour][column].
func (a *Attribution) Activity(m Measure) ([][]float32, error) {
	switch m {
	case MeasureMax:
		return a.Max, nil
	case MeasureMean:
		return a.Mean, nil
	case MeasureRate:
		return a.Rate, nil
	}
	return nil, m.check()
}

// rank fills Top and Specificity from a.Options.Measure.
func (a *Attribution) rank() {
	act, _ := a.Activity(a.Options.Measure)
	a.Measure = a.Options.Measure
	a.Top = make([]int, a.DSae)
	a.Specificity = make([]float32, a.DSae)
	for j := range a.DSae {
		top, best, sum := -1, float32(0), 0.0
		for b := range act {
			v := act[b][j]
			sum += float64(v)
			if v > best {
				top, best = b, v
			}
		}
		a.Top[j] = top
		if sum > 0 {
			a.Specificity[j] = float32(float64(best) / sum)
		}
	}
}

// Behaviour returns the index of a behaviour in a.Behaviours, or an error
// naming the behaviours there are.
func (a *Attribution) Behaviour(name string) (int, error) {
	i := sort.SearchStrings(a.Behaviours, name)
	if i < len(a.Behaviours) && a.Behaviours[i] == name {
		return i, nil
	}
	return -1, fmt.Errorf("attribution: no steps carry behaviour %q; the behaviours are %v", name, a.Behaviours)
}

// VenhoffVectors returns the steering vector of Venhoff et al. for a label:
// the mean activation of the steps that carry the label minus the mean of
// all rows, raw and scaled to unit norm. It reads the layer once. steps must
// hold one step per row of the layer, in row order.
func VenhoffVectors(ctx context.Context, layer *activations.Layer, steps []activations.Step, label string) (raw, unit []float32, err error) {
	switch {
	case layer == nil:
		return nil, nil, errors.New("venhoff vector: no layer given")
	case len(steps) != layer.Rows:
		return nil, nil, fmt.Errorf("venhoff vector: expected one step per row of layer %s (%d), found %d steps", layer.Name, layer.Rows, len(steps))
	}
	d := layer.DModel
	all := make([]float64, d)
	lab := make([]float64, d)
	nLab := 0
	it := layer.Batches(activations.BatchOptions{Size: DefaultAttributionBatch})
	for it.Next(ctx) {
		x := it.X()
		for i, row := range it.Rows() {
			xr := x[i*d : (i+1)*d]
			has := steps[row].HasLabel(label)
			if has {
				nLab++
			}
			for k, v := range xr {
				all[k] += float64(v)
				if has {
					lab[k] += float64(v)
				}
			}
		}
	}
	if err := it.Err(); err != nil {
		return nil, nil, fmt.Errorf("venhoff vector: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("venhoff vector: %w", err)
	}
	if nLab == 0 {
		return nil, nil, fmt.Errorf("venhoff vector: expected steps labelled %q, found none among %d", label, len(steps))
	}
	diff := make([]float64, d)
	raw = make([]float32, d)
	for k := range d {
		diff[k] = lab[k]/float64(nLab) - all[k]/float64(layer.Rows)
		raw[k] = float32(diff[k])
	}
	unit, ok := vec.Scale64(diff, 1)
	if !ok {
		return raw, nil, fmt.Errorf("venhoff vector: the mean of the %d steps labelled %q equals the overall mean; there is no direction", nLab, label)
	}
	return raw, unit, nil
}

func norm32(v []float32) float64 {
	s := 0.0
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

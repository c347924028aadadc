// Package dashboard gathers what a feature page shows about chosen SAE
// features (density, top and banded example steps with their context,
// explanations and their detection scores, the logit lens) and writes it
// in two forms that need no rise server: Neuronpedia's feature export
// (jsonl.gz batches of features, activations and explanations) and one
// self-contained HTML file that opens from disk.
package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// Options choose what Build gathers. The zero value is usable.
type Options struct {
	// Features are the latents to gather; nil means every latent.
	Features []int
	// Top is the number of top-activating steps per feature (default 10);
	// Bands and PerBand the activation bands of equal width over (0, max]
	// and the examples drawn per band (defaults 4 and 3).
	Top, Bands, PerBand int
	// HistBins is the number of equal-width bins of the density histogram
	// over (0, max] (default 40).
	HistBins int
	// HoldOut and Seed split the traces for the explanations' detection
	// score as rise explain does (HoldOut 0 means 0.5; negative scores on
	// the steps the explanations came from).
	HoldOut float64
	Seed    uint64
	// Explanations, when not nil, are used instead of running atlas.Explain
	// (they must be of the same SAE and steps).
	Explanations *atlas.Explanations
	// Stats, when not nil, are used instead of computing the features'
	// statistics (sae.ComputeFeatureStats of the same SAE and layer, with
	// TopN at least Top).
	Stats *sae.FeatureStats
	// Lens, when not nil, gives a decoder direction's logit lens.
	Lens func(dir []float32) (*Lens, error)
	// Progress, when not nil, is told which stage runs and how far it is.
	Progress func(stage string, done, total int)
}

// Lens is a direction's logit lens: the tokens it promotes and suppresses
// most through the model's final norm and unembedding.
type Lens struct {
	Promoted   []LensToken `json:"promoted"`
	Suppressed []LensToken `json:"suppressed"`
}

// LensToken is one token of a logit lens.
type LensToken struct {
	Token string  `json:"token"`
	ID    int     `json:"id"`
	Logit float32 `json:"logit"`
}

// Report is what Build gathered.
type Report struct {
	DIn, DSae int
	Arch      sae.Arch
	Layer     int
	LayerName string
	Rows      int
	Metadata  sae.Metadata
	Bands     int
	HoldOut   float64 // the detection split's held-out share (negative: in-sample)
	Features  []Feature
}

// Feature is one latent's page.
type Feature struct {
	Index      int
	Fires      int64   // rows on which it is non-zero
	Frequency  float64 // Fires / rows
	MeanActive float64 // mean value where it fires
	Max        float32
	// Hist counts its non-zero values in HistBins equal bins over (0, Max].
	Hist []int64
	// BandFires counts its non-zero values in the Bands equal bands over
	// (0, Max].
	BandFires []int64
	Phrases   []atlas.Phrase
	Detection *atlas.Detection
	Top       []Example // largest values first, over all rows
	Banded    []Example // by band, low to high
	Decoder   []float32 // the decoder row (W_dec[j]), d_in values
	Lens      *Lens
}

// Example is one step on which a feature fires, with the step before it in
// the same trace for context.
type Example struct {
	Row   int
	Value float32
	// Band is the example's band (0 = lowest) for banded examples, -1 for
	// top examples; BandLo and BandHi bound it.
	Band           int
	BandLo, BandHi float32
	Step           activations.Step
	// Prev is the step before, in the same trace (nil for a trace's first
	// step), with the feature's value on it.
	Prev      *activations.Step
	PrevRow   int
	PrevValue float32
}

// Build encodes the layer's rows (one step per row) with s and gathers the
// chosen features: a pass for their frequencies, maxima and top rows
// (sae.ComputeFeatureStats, over all rows), the explanations with their
// detection scores and banded example rows (atlas.Explain, whose examples
// come from the traces not held out), and a last pass for the values of
// the banded examples and of every example's previous step, the band
// counts and the density histogram.
func Build(ctx context.Context, s *sae.SAE, layer *activations.Layer, steps []activations.Step, opts Options) (*Report, error) {
	switch {
	case s == nil || layer == nil:
		return nil, fmt.Errorf("dashboard: no SAE or layer given")
	case s.DIn != layer.DModel:
		return nil, fmt.Errorf("dashboard: the SAE takes rows of %d values but layer %s has rows of %d", s.DIn, layer.Name, layer.DModel)
	case len(steps) != layer.Rows:
		return nil, fmt.Errorf("dashboard: expected one step per row of layer %s (%d), found %d steps", layer.Name, layer.Rows, len(steps))
	}
	opts.Top = cmp.Or(opts.Top, 10)
	opts.Bands = cmp.Or(opts.Bands, 4)
	opts.PerBand = cmp.Or(opts.PerBand, 3)
	opts.HistBins = cmp.Or(opts.HistBins, 40)
	opts.HoldOut = cmp.Or(opts.HoldOut, 0.5)
	ids := opts.Features
	if ids == nil {
		ids = make([]int, s.DSae)
		for j := range ids {
			ids[j] = j
		}
	}
	for _, j := range ids {
		if j < 0 || j >= s.DSae {
			return nil, fmt.Errorf("dashboard: feature %d is outside the SAE's %d latents [0, %d)", j, s.DSae, s.DSae)
		}
	}
	prog := func(stage string, done, total int) {
		if opts.Progress != nil {
			opts.Progress(stage, done, total)
		}
	}

	stats := opts.Stats
	if stats == nil {
		var err error
		stats, err = sae.ComputeFeatureStats(ctx, s, layer, sae.FeatureStatsOptions{TopN: opts.Top,
			Progress: func(done, total int64) { prog("statistics", int(done), int(total)) }})
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
	} else if stats.DSae != s.DSae || stats.Rows != layer.Rows {
		return nil, fmt.Errorf("dashboard: the feature statistics cover %d latents over %d rows, the SAE has %d latents and the layer %d rows", stats.DSae, stats.Rows, s.DSae, layer.Rows)
	}
	ex := opts.Explanations
	if ex == nil {
		var err error
		ex, err = atlas.Explain(ctx, s, layer, steps, atlas.ExplainOptions{Top: opts.Top, Bands: opts.Bands, PerBand: opts.PerBand,
			HoldOut: opts.HoldOut, HoldOutSeed: opts.Seed, Progress: prog})
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
	} else if len(ex.Features) != s.DSae {
		return nil, fmt.Errorf("dashboard: the explanations cover %d features, the SAE has %d", len(ex.Features), s.DSae)
	}

	rep := &Report{DIn: s.DIn, DSae: s.DSae, Arch: s.InferenceArch(), Layer: layer.Number, LayerName: layer.Name,
		Rows: layer.Rows, Metadata: s.Metadata, Bands: opts.Bands, HoldOut: opts.HoldOut, Features: make([]Feature, len(ids))}
	// prevOf is the row of the step before row r in its trace, or -1.
	prevOf := func(r int) int {
		if r > 0 && steps[r-1].Trace == steps[r].Trace && steps[r-1].Step == steps[r].Step-1 {
			return r - 1
		}
		return -1
	}
	// need lists, per row, the (feature slot, example) values the last
	// pass fills: the example's own value (banded) or its previous step's.
	type want struct {
		slot, ex int
		banded   bool // fill Banded[ex] (else Top[ex])
		prev     bool // fill the previous step's value (else the example's)
	}
	need := map[int][]want{}
	slotOf := map[int]int{}
	for k, j := range ids {
		slotOf[j] = k
		sum := stats.Feature(j)
		f := Feature{Index: j, Fires: sum.Fires, Frequency: sum.Frequency, MeanActive: sum.MeanActive, Max: sum.Max,
			Hist: make([]int64, opts.HistBins), BandFires: make([]int64, opts.Bands),
			Phrases: ex.Features[j].Phrases, Detection: ex.Features[j].Detection,
			Decoder: slices.Clone(s.WDec[j*s.DIn : (j+1)*s.DIn])}
		inTop := map[int]bool{}
		for _, t := range sum.Top[:min(len(sum.Top), opts.Top)] {
			r := int(t.Row)
			inTop[r] = true
			f.Top = append(f.Top, Example{Row: r, Value: t.Value, Band: -1, Step: steps[r], PrevRow: -1})
		}
		for _, r32 := range ex.Features[j].Examples {
			if r := int(r32); !inTop[r] {
				f.Banded = append(f.Banded, Example{Row: r, Step: steps[r], PrevRow: -1})
			}
		}
		for _, list := range []struct {
			xs     []Example
			banded bool
		}{{f.Top, false}, {f.Banded, true}} {
			for e := range list.xs {
				x := &list.xs[e]
				if list.banded {
					need[x.Row] = append(need[x.Row], want{k, e, true, false})
				}
				if p := prevOf(x.Row); p >= 0 {
					x.Prev, x.PrevRow = &steps[p], p
					need[p] = append(need[p], want{k, e, list.banded, true})
				}
			}
		}
		rep.Features[k] = f
		if opts.Lens != nil {
			if k%32 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("dashboard: %w", err)
				}
				prog("logit lens", k, len(ids))
			}
			l, err := opts.Lens(f.Decoder)
			if err != nil {
				return nil, fmt.Errorf("dashboard: feature %d: logit lens: %w", j, err)
			}
			rep.Features[k].Lens = l
		}
	}

	// The last pass: values where the examples need them, and the counts
	// per band and histogram bin.
	batch := 256
	it := layer.Batches(activations.BatchOptions{Size: batch})
	m := s.DSae
	fb := make([]float32, batch*m)
	xc := make([]float32, batch*s.DIn)
	done := 0
	for it.Next(ctx) {
		n := it.Len()
		x := it.X()
		s.PreActivations(x, xc[:len(x)], fb[:n*m])
		s.Activate(fb[:n*m])
		for i, row := range it.Rows() {
			f := fb[i*m : (i+1)*m]
			for _, w := range need[row] {
				ft := &rep.Features[w.slot]
				xs := ft.Top
				if w.banded {
					xs = ft.Banded
				}
				if w.prev {
					xs[w.ex].PrevValue = f[ft.Index]
				} else {
					xs[w.ex].Value = f[ft.Index]
				}
			}
			for k, j := range ids {
				v := f[j]
				if v <= 0 {
					continue
				}
				ft := &rep.Features[k]
				if ft.Max <= 0 {
					continue
				}
				ft.Hist[binOf(v, ft.Max, len(ft.Hist))]++
				ft.BandFires[binOf(v, ft.Max, len(ft.BandFires))]++
			}
		}
		done += n
		prog("examples", done, layer.Rows)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	for k := range rep.Features {
		ft := &rep.Features[k]
		for e := range ft.Banded {
			x := &ft.Banded[e]
			x.Band = binOf(x.Value, ft.Max, opts.Bands)
			x.BandLo = ft.Max * float32(x.Band) / float32(opts.Bands)
			x.BandHi = ft.Max * float32(x.Band+1) / float32(opts.Bands)
		}
		sort.SliceStable(ft.Banded, func(a, b int) bool {
			return ft.Banded[a].Band < ft.Banded[b].Band || ft.Banded[a].Band == ft.Banded[b].Band && ft.Banded[a].Value > ft.Banded[b].Value
		})
	}
	return rep, nil
}

// binOf is the bin of v among n equal bins over (0, hi]: bin b holds
// (b·hi/n, (b+1)·hi/n], and v = hi falls in the last.
func binOf(v, hi float32, n int) int {
	b := int(float64(v) / float64(hi) * float64(n))
	if float64(b)*float64(hi)/float64(n) == float64(v) && b > 0 {
		b-- // a value on a bin's upper edge belongs to it
	}
	return max(0, min(b, n-1))
}

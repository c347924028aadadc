package atlas

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
)

// Choosing the behaviour-specific columns of an Attribution under the
// evidence rule, and the behaviour vectors built from them.

// Defaults of SpecificOptions.
const (
	DefaultSpecificQuantile = 0.9
	DefaultStrongRatio      = 0.5
	// A column is tied to a behaviour only when it fires on at least
	// DefaultMinFirings of the behaviour's steps and at least
	// DefaultMinEnrichment times as often there as on steps at large (or,
	// for a behaviour too common for that, half way from 1 to the most it
	// can reach): a column that fired once or twice, or one that fires on
	// every kind of step alike, says nothing about a behaviour however its
	// activity ranks.
	DefaultMinFirings    = 10
	DefaultMinEnrichment = 1.5
)

// SpecificOptions choose the behaviour-specific columns of an Attribution.
// The zero value means the documented defaults.
type SpecificOptions struct {
	// Measure is the activity statistic; "" means the Attribution's Measure.
	Measure Measure
	// Quantile: a column is highly active for behaviour b when its activity
	// for b is positive and at least this quantile of b's activities over
	// all columns. Default DefaultSpecificQuantile (0.9: the top tenth).
	Quantile float64
	// StrongRatio: a column is strongly active for another behaviour b'
	// when its activity for b' is at least StrongRatio times its activity
	// for b. Such a column is active for several behaviours and is dropped,
	// as RISE drops them. Default DefaultStrongRatio (0.5); a negative
	// value turns the test off.
	StrongRatio float64
	// MinSpecificity, when positive, also requires the column's share of
	// activity for b, act_b / Σ_b' act_b', to be at least this.
	MinSpecificity float64
	// Ignore lists behaviours that do not count as "another behaviour" when
	// columns are dropped (for instance "other", when it is a catch-all).
	Ignore []string
	// MinFirings and MinEnrichment are the evidence a column needs (see
	// DefaultMinFirings); 0 means the default, a negative value none.
	MinFirings    int
	MinEnrichment float64
}

func (o SpecificOptions) withDefaults(a *Attribution) (SpecificOptions, error) {
	o.Measure = cmp.Or(o.Measure, a.Measure)
	if err := o.Measure.check(); err != nil {
		return o, err
	}
	o.Quantile = cmp.Or(o.Quantile, DefaultSpecificQuantile)
	o.StrongRatio = cmp.Or(o.StrongRatio, DefaultStrongRatio)
	o.MinFirings = cmp.Or(o.MinFirings, DefaultMinFirings)
	o.MinEnrichment = cmp.Or(o.MinEnrichment, DefaultMinEnrichment)
	if !(o.Quantile >= 0 && o.Quantile <= 1) {
		return o, fmt.Errorf("quantile must lie in [0, 1], got %v", o.Quantile)
	}
	if !(o.MinSpecificity >= 0 && o.MinSpecificity <= 1) {
		return o, fmt.Errorf("minimum specificity must lie in [0, 1], got %v", o.MinSpecificity)
	}
	if math.IsNaN(o.StrongRatio) {
		return o, errors.New("strong ratio must be a number, got NaN")
	}
	return o, nil
}

// SpecificColumns returns the columns, in increasing order, that are highly
// active for behaviour (at or above the Quantile of that behaviour's
// activities) and not strongly active for any other behaviour (below
// StrongRatio times their activity for the behaviour): RISE's
// behaviour-specific decoder columns (arXiv 2512.23988, §4).
func (a *Attribution) SpecificColumns(behaviour string, opts SpecificOptions) ([]int, error) {
	b, err := a.Behaviour(behaviour)
	if err != nil {
		return nil, err
	}
	opts, err = opts.withDefaults(a)
	if err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	act, _ := a.Activity(opts.Measure)
	ignore := map[int]bool{b: true}
	for _, name := range opts.Ignore {
		i, err := a.Behaviour(name)
		if err != nil {
			return nil, err
		}
		ignore[i] = true
	}
	thr := quantile(act[b], opts.Quantile)
	var cols []int
columns:
	for j, v := range act[b] {
		if v <= 0 || v < thr || !a.Evidence(b, j, opts) {
			continue
		}
		sum := 0.0
		for o := range act {
			w := act[o][j]
			sum += float64(w)
			if opts.StrongRatio >= 0 && !ignore[o] && float64(w) >= opts.StrongRatio*float64(v) {
				continue columns
			}
		}
		if opts.MinSpecificity > 0 && float64(v)/sum < opts.MinSpecificity {
			continue
		}
		cols = append(cols, j)
	}
	return cols, nil
}

// Evidence reports whether column j fires often enough on behaviour b's
// steps, and often enough more there than at large, to be tied to b (the
// MinFirings and MinEnrichment of opts, defaults filled in).
func (a *Attribution) Evidence(b, j int, opts SpecificOptions) bool {
	if opts.MinFirings > 0 && a.Fires[b][j] < int64(opts.MinFirings) {
		return false
	}
	return opts.MinEnrichment <= 0 || a.Enrichment(b, j) >= a.enrichmentNeeded(b, opts.MinEnrichment)
}

// enrichmentNeeded is the enrichment a column needs for behaviour b: min,
// or, for a behaviour so common that min is out of reach (a catch-all
// "other" on 80% of the steps can be at most 1/0.8 = 1.25 times enriched),
// half way from 1 to the most it can reach.
func (a *Attribution) enrichmentNeeded(b int, min float64) float64 {
	if a.Rows == 0 || a.Counts[b] == 0 {
		return min
	}
	most := float64(a.Rows) / float64(a.Counts[b])
	return math.Min(min, (1+most)/2)
}

// quantile returns the q-quantile of v (nearest rank on the sorted values).
func quantile(v []float32, q float64) float32 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float32(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// BehaviourVector returns the behaviour's unit vector (d_in values): the
// mean of the unit-normalised decoder rows of its specific columns
// (SpecificColumns with a.Options.Specific), normalised again, as in RISE
// (arXiv 2512.23988, §4). It fails when no column is specific to the
// behaviour or the mean vanishes.
func (a *Attribution) BehaviourVector(behaviour string) ([]float32, error) {
	v, _, err := a.BehaviourVectorWith(behaviour, a.Options.Specific)
	return v, err
}

// BehaviourVectorWith is BehaviourVector with the given options; it also
// returns the specific columns it averaged.
func (a *Attribution) BehaviourVectorWith(behaviour string, opts SpecificOptions) ([]float32, []int, error) {
	cols, err := a.SpecificColumns(behaviour, opts)
	if err != nil {
		return nil, nil, err
	}
	if len(cols) == 0 {
		return nil, nil, fmt.Errorf("attribution: expected at least one column specific to %q, found none", behaviour)
	}
	if a.sae == nil {
		return nil, cols, errors.New("attribution: no SAE attached; build an Attribution with Attribute")
	}
	v, err := MeanDirection(a.sae, cols)
	if err != nil {
		return nil, cols, fmt.Errorf("attribution: the %d columns specific to %q: %w", len(cols), behaviour, err)
	}
	return v, cols, nil
}

// MeanDirection is the renormalised mean of the unit decoder rows of cols
// (rows of zero norm left out): a behaviour's vector, and that of any
// group of features (RISE, §4.2).
func MeanDirection(s *sae.SAE, cols []int) ([]float32, error) {
	d := s.DIn
	sum := make([]float64, d)
	for _, j := range cols {
		if j < 0 || j >= s.DSae {
			return nil, fmt.Errorf("feature id %d, expected 0 to %d", j, s.DSae-1)
		}
		row := s.WDec[j*d : (j+1)*d]
		n := norm32(row)
		if n == 0 {
			continue
		}
		for i, x := range row {
			sum[i] += float64(x) / n
		}
	}
	v, ok := vec.Scale64(sum, 1)
	if !ok {
		return nil, fmt.Errorf("the mean of the unit decoder rows of %d features is zero", len(cols))
	}
	return v, nil
}

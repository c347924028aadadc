package activations

import (
	"context"
	"fmt"
	"math"
)

// Stats summarises a layer's rows. Variances are population variances
// (divided by the row count).
type Stats struct {
	Rows     int
	DModel   int
	Mean     []float64 // per-dimension mean
	Var      []float64 // per-dimension variance
	TotalVar float64   // sum of Var: the mean squared distance to the mean, E||x - mean||^2

	MeanNorm   float64 // E||x||
	NormStd    float64 // standard deviation of ||x||
	MinNorm    float64
	MaxNorm    float64
	MeanSqNorm float64 // E||x||^2
}

// Stats reads every row of the layer once, in order, and summarises it. It
// reads in batches, so memory does not grow with the layer. progress, when
// not nil, is called after each batch with the rows read so far.
func (l *Layer) Stats(ctx context.Context, progress func(done, total int64)) (*Stats, error) {
	acc := NewStatsAccumulator(l.DModel)
	it := l.Batches(BatchOptions{Size: max(1, (4<<20)/(4*l.DModel))})
	for it.Next(ctx) {
		acc.Add(it.X())
		if progress != nil {
			progress(int64(acc.Rows()), int64(l.Rows))
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	return acc.Stats(), nil
}

// StatsAccumulator builds Stats from batches of rows. Each batch is
// summarised exactly (in float64) and merged with the running totals by the
// pairwise update of Chan, Golub and LeVeque (1979), which stays accurate
// when the mean is large next to the spread, as in residual streams.
type StatsAccumulator struct {
	d                int
	n                int
	mean, m2         []float64
	bmean, bm2       []float64
	normSum, normSq  float64
	minNorm, maxNorm float64
}

// NewStatsAccumulator starts an empty summary of rows of width d.
func NewStatsAccumulator(d int) *StatsAccumulator {
	return &StatsAccumulator{
		d: d, mean: make([]float64, d), m2: make([]float64, d),
		bmean: make([]float64, d), bm2: make([]float64, d),
		minNorm: math.Inf(1), maxNorm: math.Inf(-1),
	}
}

// Rows returns how many rows have been added.
func (a *StatsAccumulator) Rows() int { return a.n }

// Add adds whole rows of width d.
func (a *StatsAccumulator) Add(x []float32) {
	d := a.d
	nb := len(x) / d
	if nb == 0 {
		return
	}
	clear(a.bmean)
	clear(a.bm2)
	for r := range nb {
		row := x[r*d : (r+1)*d]
		var sq float64
		for j, v := range row {
			f := float64(v)
			a.bmean[j] += f
			sq += f * f
		}
		nrm := math.Sqrt(sq)
		a.normSum += nrm
		a.normSq += sq
		a.minNorm = math.Min(a.minNorm, nrm)
		a.maxNorm = math.Max(a.maxNorm, nrm)
	}
	for j := range a.bmean {
		a.bmean[j] /= float64(nb)
	}
	for r := range nb {
		row := x[r*d : (r+1)*d]
		for j, v := range row {
			e := float64(v) - a.bmean[j]
			a.bm2[j] += e * e
		}
	}
	na, nbf := float64(a.n), float64(nb)
	tot := na + nbf
	for j := range a.mean {
		delta := a.bmean[j] - a.mean[j]
		a.mean[j] += delta * nbf / tot
		a.m2[j] += a.bm2[j] + delta*delta*na*nbf/tot
	}
	a.n += nb
}

// Stats returns the summary of the rows added so far.
func (a *StatsAccumulator) Stats() *Stats {
	s := &Stats{Rows: a.n, DModel: a.d, Mean: append([]float64(nil), a.mean...), Var: make([]float64, a.d)}
	if a.n == 0 {
		return s
	}
	n := float64(a.n)
	for j := range s.Var {
		s.Var[j] = a.m2[j] / n
		s.TotalVar += s.Var[j]
	}
	s.MeanNorm = a.normSum / n
	s.MeanSqNorm = a.normSq / n
	s.NormStd = math.Sqrt(math.Max(0, s.MeanSqNorm-s.MeanNorm*s.MeanNorm))
	s.MinNorm, s.MaxNorm = a.minNorm, a.maxNorm
	return s
}

// Normalization names a way to scale inputs before an SAE sees them.
type Normalization string

// The normalizations rise knows. The names are those of SAELens's
// normalize_activations setting, so that cfg.json files agree.
const (
	// NormNone leaves rows as they are.
	NormNone Normalization = "none"
	// NormMeanNorm scales every row by sqrt(d_model) / E||x||, so that the
	// average row norm is sqrt(d_model) whatever the layer's scale
	// (SAELens: "expected_average_only_in"). One scalar for the dataset; it
	// can be folded into an SAE's weights afterwards.
	NormMeanNorm Normalization = "expected_average_only_in"
)

// ParseNormalization reads a normalization name; "mean_norm" is accepted for
// NormMeanNorm.
func ParseNormalization(s string) (Normalization, error) {
	switch s {
	case "", "none":
		return NormNone, nil
	case "expected_average_only_in", "mean_norm":
		return NormMeanNorm, nil
	}
	return "", fmt.Errorf("unknown normalization %q: expected none or expected_average_only_in (mean_norm)", s)
}

// Normalizer applies a dataset-wide input normalization to batches.
type Normalizer struct {
	Mode  Normalization
	Scale float32 // rows are multiplied by Scale
}

// NewNormalizer derives a normalizer from a layer's statistics.
func NewNormalizer(mode Normalization, s *Stats) (*Normalizer, error) {
	switch mode {
	case NormNone, "":
		return &Normalizer{Mode: NormNone, Scale: 1}, nil
	case NormMeanNorm:
		if !(s.MeanNorm > 0) {
			return nil, fmt.Errorf("cannot normalize by the mean norm: the rows' mean norm is %v", s.MeanNorm)
		}
		return &Normalizer{Mode: mode, Scale: float32(math.Sqrt(float64(s.DModel)) / s.MeanNorm)}, nil
	}
	return nil, fmt.Errorf("unknown normalization %q", mode)
}

// Apply normalizes rows in place.
func (n *Normalizer) Apply(x []float32) {
	if n == nil || n.Scale == 1 {
		return
	}
	for i := range x {
		x[i] *= n.Scale
	}
}

package sae

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/matmul"
)

// RecoveryThreshold is the cosine a decoder row must reach with a planted
// direction for the direction to count as recovered.
const RecoveryThreshold = 0.9

// DenseThreshold is the firing frequency above which a latent counts as
// dense: it fires on more than this fraction of the evaluated rows.
const DenseThreshold = 0.1

// EvalOptions choose what Evaluate measures and on how many rows.
type EvalOptions struct {
	// MaxRows evaluates the first MaxRows rows of the layer; 0 means all.
	MaxRows int
	// BatchSize is the number of rows encoded at once; 0 picks a size that
	// keeps the latents of a batch near 32 MiB.
	BatchSize int

	// Truth holds planted directions, TruthRows rows of the SAE's d_in
	// values (row-major float32, as activations.ReadNpy returns them).
	// With them Evaluate measures how well the decoder recovers them.
	Truth     []float32
	TruthRows int

	// FeatureStats, when not nil, also gathers per-latent statistics in
	// the same pass over the rows (its MaxRows, BatchSize and Progress are
	// ignored in favour of these options'); they land in
	// Metrics.FeatureStats.
	FeatureStats *FeatureStatsOptions

	// Progress, when not nil, is called after each batch with the rows
	// evaluated so far and the rows to evaluate.
	Progress func(done, total int64)
	// GeometryProgress, when not nil, follows the comparison of decoder
	// rows that gives MaxDecoderCos (see there), which comes after the
	// rows and takes a while for large SAEs.
	GeometryProgress func(done, total int64)
}

// Metrics are an SAE's reconstruction, sparsity and decoder-geometry figures
// on a layer's rows. Reconstructions are compared with the rows in the raw
// input space, whatever the SAE's InputScale.
type Metrics struct {
	// MSE is the mean over rows of ||x - x_hat||², summed over dimensions.
	MSE float64 `json:"mse"`
	// FVU, the fraction of variance unexplained, is
	// Σ||x - x_hat||² / Σ||x - mean(x)||², the variance taken around the
	// rows' mean (not around zero).
	FVU float64 `json:"fvu"`
	// ExplainedVariance is 1 - FVU.
	ExplainedVariance float64 `json:"explained_variance"`
	// L0 is the mean number of active (non-zero) latents per row.
	L0 float64 `json:"l0"`
	// DeadFraction is the fraction of latents that fire on none of the rows.
	DeadFraction float64 `json:"dead_fraction"`
	// DenseFraction is the fraction of latents that fire on more than
	// DenseThreshold of the rows.
	DenseFraction float64 `json:"dense_fraction"`
	// CosSim is the mean over rows of cos(x, x_hat); a row and its
	// reconstruction that are both zero count as 1, one zero vector
	// against a non-zero one as 0.
	CosSim float64 `json:"cos_sim"`
	// MaxDecoderCos is the largest |cos| between two distinct decoder rows.
	MaxDecoderCos float64 `json:"max_decoder_cos"`

	// Recovery is the fraction of planted directions that some decoder
	// row matches with cosine at least RecoveryThreshold; nil without
	// planted directions.
	Recovery *float64 `json:"recovery,omitempty"`
	// MeanMaxCos is the mean over planted directions of the largest cosine
	// with any decoder row; nil without planted directions.
	MeanMaxCos *float64 `json:"mean_max_cos,omitempty"`

	Rows  int     `json:"rows"`  // rows evaluated
	DIn   int     `json:"d_in"`  // the SAE's input width
	DSae  int     `json:"d_sae"` // the SAE's latent count
	Arch  Arch    `json:"arch"`  // the SAE's architecture
	Fired []int64 `json:"-"`     // per latent: the rows on which it fired

	// FeatureStats holds the per-latent statistics when
	// EvalOptions.FeatureStats asked for them.
	FeatureStats *FeatureStats `json:"-"`
}

// Evaluate encodes and decodes the layer's rows in batches and measures the
// reconstruction, the sparsity of the latents and the geometry of the
// decoder. Memory is bounded by one batch and the SAE's weights, whatever
// the size of the layer. It stops at the next batch when ctx is done and
// returns ctx's error.
func Evaluate(ctx context.Context, s *SAE, layer *activations.Layer, opts EvalOptions) (*Metrics, error) {
	if err := checkEncodeInputs(s, layer, opts.MaxRows, opts.BatchSize); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if err := checkTruth(s, opts.Truth, opts.TruthRows); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	var facc *featureAccumulator
	if opts.FeatureStats != nil {
		var err error
		if facc, err = newFeatureAccumulator(s, layer, *opts.FeatureStats); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	d, m := s.DIn, s.DSae
	end := rowsToEncode(layer, opts.MaxRows)
	batch := encodeBatchSize(s, opts.BatchSize, end)
	xhat := make([]float32, batch*d)
	fired := make([]int64, m)
	acc := activations.NewStatsAccumulator(d)
	var sqErr, cosSum float64
	var active int64

	rows, err := s.EncodeLayer(ctx, layer, end, batch, opts.Progress, func(x, f []float32, ids []int) {
		n := len(ids)
		xhb := xhat[:n*d]
		s.Decode(f, xhb)
		acc.Add(x)
		for r := range n {
			xr, hr := x[r*d:(r+1)*d], xhb[r*d:(r+1)*d]
			var e2, xx, hh, xh float64
			for i, v := range xr {
				a, b := float64(v), float64(hr[i])
				e := a - b
				e2 += e * e
				xx += a * a
				hh += b * b
				xh += a * b
			}
			sqErr += e2
			switch {
			case xx == 0 && hh == 0:
				cosSum++
			case xx > 0 && hh > 0:
				cosSum += xh / math.Sqrt(xx*hh)
			}
		}
		for r := range n {
			for j, v := range f[r*m : (r+1)*m] {
				if v != 0 {
					fired[j]++
					active++
				}
			}
		}
		if facc != nil {
			facc.add(f, ids)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}

	st := acc.Stats()
	totVar := st.TotalVar * float64(rows)
	if !(totVar > 0) {
		return nil, fmt.Errorf("evaluate: layer %s: the %d evaluated rows do not vary (their variance around the mean is %v), so the fraction of variance unexplained is undefined; expected at least two distinct rows", layer.Name, rows, totVar)
	}
	met := &Metrics{
		MSE:    sqErr / float64(rows),
		FVU:    sqErr / totVar,
		L0:     float64(active) / float64(rows),
		CosSim: cosSum / float64(rows),
		Rows:   rows, DIn: d, DSae: m, Arch: s.Arch, Fired: fired,
	}
	met.ExplainedVariance = 1 - met.FVU
	var dead, dense int
	for _, c := range fired {
		if c == 0 {
			dead++
		}
		if float64(c) > DenseThreshold*float64(rows) {
			dense++
		}
	}
	met.DeadFraction = float64(dead) / float64(m)
	met.DenseFraction = float64(dense) / float64(m)

	norms := decoderRowNorms(s)
	if met.MaxDecoderCos, err = maxAbsRowCos(ctx, s.WDec, m, d, norms, opts.GeometryProgress); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if opts.TruthRows > 0 {
		rec, mean, err := plantedRecovery(ctx, s, opts.Truth, opts.TruthRows, norms)
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		met.Recovery, met.MeanMaxCos = &rec, &mean
	}
	for _, v := range []struct {
		name string
		x    float64
	}{{"mse", met.MSE}, {"fvu", met.FVU}, {"cos_sim", met.CosSim}} {
		if math.IsNaN(v.x) || math.IsInf(v.x, 0) {
			return nil, fmt.Errorf("evaluate: layer %s: %s is %v: the SAE's outputs overflow float32 on these rows (expected finite reconstructions)", layer.Name, v.name, v.x)
		}
	}
	if facc != nil {
		met.FeatureStats = facc.finish(rows)
	}
	return met, nil
}

// MaxDecoderCos returns the largest |cos| between two distinct rows of the
// SAE's decoder; rows of zero length are left out. It forms the upper
// triangle of the Gram matrix of the decoder rows in 256 × 256 blocks
// through the BLAS, so memory stays below a MiB for any d_sae; the work is
// d_sae² · d_in multiply-adds (at d_sae 16384 and d_in 1536, about half a
// minute with gonum on two cores, a few seconds with OpenBLAS). progress,
// when not nil, is called after each block row with the decoder rows done
// and d_sae.
func MaxDecoderCos(ctx context.Context, s *SAE, progress func(done, total int64)) (float64, error) {
	if s == nil || s.DIn <= 0 || s.DSae <= 0 || len(s.WDec) != s.DSae*s.DIn {
		return 0, fmt.Errorf("max decoder cosine: expected an SAE with W_dec of d_sae × d_in values")
	}
	return maxAbsRowCos(ctx, s.WDec, s.DSae, s.DIn, decoderRowNorms(s), progress)
}

// decoderRowNorms returns the Euclidean length of every decoder row.
func decoderRowNorms(s *SAE) []float64 {
	d := s.DIn
	out := make([]float64, s.DSae)
	for j := range out {
		var sq float64
		for _, v := range s.WDec[j*d : (j+1)*d] {
			sq += float64(v) * float64(v)
		}
		out[j] = math.Sqrt(sq)
	}
	return out
}

// maxAbsRowCos is the largest |cos| between two distinct rows of w [m, d],
// given the rows' norms.
func maxAbsRowCos(ctx context.Context, w []float32, m, d int, norms []float64, progress func(done, total int64)) (float64, error) {
	const bs = 256 // gonum's sgemm runs fastest near this block size
	if m < 2 {
		return 0, nil
	}
	g := make([]float32, min(bs, m)*min(bs, m))
	best := 0.0
	for i0 := 0; i0 < m; i0 += bs {
		ni := min(bs, m-i0)
		for j0 := i0; j0 < m; j0 += bs {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			nj := min(bs, m-j0)
			matmul.Gemm(blas.NoTrans, blas.Trans, ni, nj, d, 1, w[i0*d:(i0+ni)*d], d, w[j0*d:(j0+nj)*d], d, 0, g[:ni*nj], nj)
			for a := range ni {
				na := norms[i0+a]
				if na == 0 {
					continue
				}
				b0 := 0
				if j0 == i0 {
					b0 = a + 1
				}
				for b := b0; b < nj; b++ {
					nb := norms[j0+b]
					if nb == 0 {
						continue
					}
					if c := math.Abs(float64(g[a*nj+b])) / (na * nb); c > best {
						best = c
					}
				}
			}
		}
		if progress != nil {
			progress(int64(i0+ni), int64(m))
		}
	}
	return min(best, 1), nil
}

// checkTruth checks planted directions against the SAE's width.
func checkTruth(s *SAE, truth []float32, rows int) error {
	switch {
	case rows < 0:
		return fmt.Errorf("planted directions: the row count must not be negative, got %d", rows)
	case rows == 0 && len(truth) != 0:
		return fmt.Errorf("planted directions: %d values given with a row count of 0; expected the row count too", len(truth))
	case rows == 0:
		return nil
	case len(truth) != rows*s.DIn:
		return fmt.Errorf("planted directions: %d values do not make %d rows of the SAE's d_in %d (expected %d values)", len(truth), rows, s.DIn, rows*s.DIn)
	}
	return nil
}

// plantedRecovery compares planted directions truth [F, d_in] with the
// decoder rows: the fraction of directions some row matches with cosine at
// least RecoveryThreshold, and the mean best cosine.
func plantedRecovery(ctx context.Context, s *SAE, truth []float32, F int, norms []float64) (recovery, meanMax float64, err error) {
	d, m := s.DIn, s.DSae
	tn := make([]float64, F)
	for f := range F {
		var sq float64
		for _, v := range truth[f*d : (f+1)*d] {
			sq += float64(v) * float64(v)
		}
		if sq == 0 {
			return 0, 0, fmt.Errorf("planted direction %d is the zero vector; expected non-zero directions", f)
		}
		tn[f] = math.Sqrt(sq)
	}
	fb := max(1, min(F, (1<<20)/m)) // a block of cosines per context check
	out := make([]float32, fb*m)
	found := 0
	var sum float64
	for f0 := 0; f0 < F; f0 += fb {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		nf := min(fb, F-f0)
		matmul.Gemm(blas.NoTrans, blas.Trans, nf, m, d, 1, truth[f0*d:(f0+nf)*d], d, s.WDec, d, 0, out[:nf*m], m)
		for a := range nf {
			best := math.Inf(-1)
			for j, g := range out[a*m : (a+1)*m] {
				if norms[j] == 0 {
					continue
				}
				if c := float64(g) / (tn[f0+a] * norms[j]); c > best {
					best = c
				}
			}
			if math.IsInf(best, -1) { // every decoder row is zero
				best = 0
			}
			best = max(-1, min(1, best))
			if best >= RecoveryThreshold {
				found++
			}
			sum += best
		}
	}
	return float64(found) / float64(F), sum / float64(F), nil
}

// checkEncodeInputs checks an SAE and a layer before a pass over its rows.
func checkEncodeInputs(s *SAE, layer *activations.Layer, maxRows, batchSize int) error {
	if s == nil {
		return fmt.Errorf("no SAE given")
	}
	if layer == nil {
		return fmt.Errorf("no layer given")
	}
	if err := s.Check(); err != nil {
		return fmt.Errorf("SAE: %w", err)
	}
	if s.InferenceArch() == JumpReLU && len(s.Threshold) != s.DSae {
		return fmt.Errorf("SAE: %s needs %d thresholds, found %d", s.Arch, s.DSae, len(s.Threshold))
	}
	if layer.DModel != s.DIn {
		return fmt.Errorf("width mismatch: the SAE takes d_in %d, layer %s has d_model %d", s.DIn, layer.Name, layer.DModel)
	}
	if maxRows < 0 {
		return fmt.Errorf("the row limit must be 0 (all rows) or positive, got %d", maxRows)
	}
	if batchSize < 0 {
		return fmt.Errorf("the batch size must be 0 (automatic) or positive, got %d", batchSize)
	}
	if layer.Rows == 0 {
		return fmt.Errorf("layer %s holds no rows", layer.Name)
	}
	return nil
}

// rowsToEncode is the number of leading rows a pass reads.
func rowsToEncode(layer *activations.Layer, maxRows int) int {
	if maxRows > 0 && maxRows < layer.Rows {
		return maxRows
	}
	return layer.Rows
}

// encodeBatchSize picks the rows per batch: the request, or enough rows
// for about 32 MiB of latents, between 16 and 1024 rows, never more than
// the rows to read.
func encodeBatchSize(s *SAE, want, rows int) int {
	b := want
	if b <= 0 {
		b = max(16, min(1024, (32<<20)/(4*(s.DSae+2*s.DIn))))
	}
	return max(1, min(b, rows))
}

// EncodeLayer reads the first end rows of the layer in batches of batch
// rows, encodes each batch and hands visit the rows x, their latents f and
// their row indices (all valid until visit returns); progress, when not
// nil, hears the rows done after each batch. It returns the rows read. It
// stops at the next batch when ctx is done and returns ctx's error.
func (s *SAE) EncodeLayer(ctx context.Context, layer *activations.Layer, end, batch int, progress func(done, total int64), visit func(x, f []float32, ids []int)) (int, error) {
	d, m := s.DIn, s.DSae
	xc := make([]float32, batch*d)
	f := make([]float32, batch*m)
	it := layer.Batches(activations.BatchOptions{Size: batch, End: end})
	done := 0
	for it.Next(ctx) {
		n := it.Len()
		fb := f[:n*m]
		s.PreActivations(it.X(), xc[:n*d], fb)
		s.Activate(fb)
		visit(it.X(), fb, it.Rows())
		done += n
		if progress != nil {
			progress(int64(done), int64(end))
		}
	}
	if err := it.Err(); err != nil {
		return done, err
	}
	if err := ctx.Err(); err != nil {
		return done, err
	}
	if done != end {
		return done, fmt.Errorf("layer %s: read %d rows, expected %d", layer.Name, done, end)
	}
	return done, nil
}

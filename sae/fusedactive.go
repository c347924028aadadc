package sae

import (
	"slices"

	"github.com/rise-interp/rise/internal/parallel"
)

// The fused engine's path for ReLU and JumpReLU once the SAE has become
// sparse. The encoder product stays dense (every pre-activation is needed to
// know which latents fire), but the decoder product and the gradient
// products that involve the activations or their gradients need only the
// active (row, latent) entries, since ∂f/∂pre is zero elsewhere:
//
//	x_hat_b   = b_dec + Σ_{j active in b} f_bj W_dec[j]
//	∂pre_bj   = ∂x_hat_b · W_dec[j] (+ λ/B ||W_dec[j]|| for the L1)
//	∂W_dec[j] = Σ_{b: j active} f_bj ∂x_hat_b
//	∂W_enc[:, j] = Σ_{b: j active} ∂pre_bj x_c,b
//
// For JumpReLU the threshold's gradient also needs ∂x_hat_b · W_dec[j] at
// the entries inside the kernel's window |pre - θ| < ε/2, active or not, so
// those entries are kept too (with f = 0 when inactive).
//
// A step costs about 2·B·d_in·d_sae for the encoder plus 8·nnz·d_in for the
// rest, in gathered kernels (gather.go) that run several times slower per
// FLOP than sgemm: the path pays once the share of active entries falls
// below sparseMaxDensity, which an L1 SAE trained by the RISE recipe
// reaches within a few hundred steps. Each step measures its own density
// and picks the path, so the early, dense steps lose nothing.

// fusedMode chooses the fused engine's path for ReLU and JumpReLU.
type fusedMode int

const (
	fusedAuto   fusedMode = iota // by the step's density of active entries
	fusedDense                   // always the dense products
	fusedSparse                  // always the products over active entries
)

// sparseMaxDensity is the largest share of active (row, latent) entries at
// which a ReLU or JumpReLU step runs over active entries only, with the
// dense products in float32. BenchmarkFusedReLUDensity (d_in 1536, d_sae
// 2048, batch 1024, two threads, OpenBLAS) since the gathers read chunked
// operands: dense 183-194 ms a step at any density; over active entries
// 112 ms at 15%, 129 at 20%, 147 at 25%, 165 at 30%, 184 at 40%. The RISE
// recipe's whole run (rise bench --run, 1,000 steps, the 1536-wide planted
// dump, rise alone, alternated): 131.8 and 133.8 s with the switch at 18%
// (where it sat before the chunked gathers), 122.1, 123.4 and 126.1 s at
// 30%, 128.2 s at 40%. A real run's firings are less even than the
// benchmark's, so the switch sits below the benchmark's crossing.
const sparseMaxDensity = 0.30

// sparseMaxDensityBF16 is the same switch when the dense products run in
// bfloat16 (twice as fast): the whole run took 96.0 s at 18% and 100.2 s
// at 30%.
const sparseMaxDensityBF16 = 0.18

// sparseActive runs a ReLU or JumpReLU step over the active entries when
// the step's density calls for it (or the mode forces it) and reports
// whether it did; when it returns false nothing has been written and the
// dense path must run.
func (e *fusedEngine) sparseActive(s *SAE, cfg LossConfig, g *Gradients, fired []int64, loss *Loss) bool {
	if e.mode == fusedDense {
		e.lastSparse = false
		return false
	}
	b, d, m := e.b, e.d, e.m
	jump := s.Arch == JumpReLU
	eps := cfg.bandwidth()
	// inWindow is the JumpReLU kernel's support, computed as dense does.
	inWindow := func(p, th float32) bool {
		z := (p - th) / eps
		return z > -0.5 && z < 0.5
	}

	// Count the entries (and the active ones) of each row.
	parallel.For(b, 16, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			var n, on int32
			row := e.pre[r*m : (r+1)*m]
			if jump {
				for j, p := range row {
					th := s.Threshold[j]
					if p > th {
						on++
						n++
					} else if inWindow(p, th) {
						n++
					}
				}
			} else {
				for _, p := range row {
					if p > 0 {
						on++
					}
				}
				n = on
			}
			e.rowCount[r], e.activeCount[r] = n, on
		}
	})
	var total, active int64
	for r := range b {
		total += int64(e.rowCount[r])
		active += int64(e.activeCount[r])
	}
	limit := sparseMaxDensity
	if e.bf16 {
		limit = sparseMaxDensityBF16
	}
	if e.mode == fusedAuto && float64(total) > limit*float64(b)*float64(m) {
		e.lastSparse = false
		return false
	}
	e.lastSparse = true
	loss.L0 = float64(active) / float64(b)

	// List the entries row by row (CSR: latent and activation).
	at := int32(0)
	for r := range b {
		e.rowStart[r] = at
		at += e.rowCount[r]
	}
	e.rowStart[b] = at
	nnz := int(at)
	if cap(e.eLat) < nnz {
		c := nnz + nnz/4
		e.eLat, e.eVal, e.eD = make([]int32, c), make([]float32, c), make([]float32, c)
		e.cRow, e.cVal, e.cDp = make([]int32, c), make([]float32, c), make([]float32, c)
	}
	eLat, eVal, eD := e.eLat[:nnz], e.eVal[:nnz], e.eD[:nnz]
	parallel.For(b, 16, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			i := e.rowStart[r]
			row := e.pre[r*m : (r+1)*m]
			for j, p := range row {
				var on, keep bool
				if jump {
					th := s.Threshold[j]
					on = p > th
					keep = on || inWindow(p, th)
				} else {
					on = p > 0
					keep = on
				}
				if keep {
					v := float32(0)
					if on {
						v = p
					}
					eLat[i], eVal[i], eD[i] = int32(j), v, 0
					i++
				}
			}
		}
	})

	// x_hat_b = b_dec + Σ_j f_bj W_dec[j], a chunk of columns at a time
	// so that the chunk of W_dec stays in cache across the rows.
	wn := chunkedLen(m, d)
	e.wdecC = slices.Grow(e.wdecC[:0], wn)[:wn]
	packChunks(e.wdecC, s.WDec, m, d)
	wBlock := m * gatherChunk
	parallel.For(b, 16, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			copy(e.xhat[r*d:(r+1)*d], s.BDec)
		}
		for c0, q := 0, 0; c0 < d; c0, q = c0+gatherChunk, q+1 {
			c1 := min(d, c0+gatherChunk)
			for r := lo; r < hi; r++ {
				rs, re := e.rowStart[r], e.rowStart[r+1]
				gatherAxpy(e.xhat[r*d+c0:r*d+c1], e.wdecC[q*wBlock:], gatherChunk, eLat[rs:re], eVal[rs:re])
			}
		}
	})
	e.reconstructionGrad(g, loss)
	// ∂x_hat_b · W_dec[j] for every entry.
	parallel.For(b, 16, func(_, lo, hi int) {
		for c0, q := 0, 0; c0 < d; c0, q = c0+gatherChunk, q+1 {
			c1 := min(d, c0+gatherChunk)
			for r := lo; r < hi; r++ {
				rs, re := e.rowStart[r], e.rowStart[r+1]
				gatherDot(e.dxh[r*d+c0:r*d+c1], e.wdecC[q*wBlock:], gatherChunk, eLat[rs:re], eD[rs:re])
			}
		}
	})

	// The same entries latent by latent (CSC: row, activation, ∂pre).
	clear(e.latStart)
	for _, j := range eLat {
		e.latStart[j+1]++
	}
	for j := range m {
		e.latStart[j+1] += e.latStart[j]
	}
	if len(e.cursor) != m {
		e.cursor = make([]int32, m)
	}
	cursor := e.cursor
	copy(cursor, e.latStart[:m])
	cRow, cVal, cDp := e.cRow[:nnz], e.cVal[:nnz], e.cDp[:nnz]
	for r := range b {
		for i := e.rowStart[r]; i < e.rowStart[r+1]; i++ {
			j := eLat[i]
			k := cursor[j]
			cRow[k], cVal[k], cDp[k] = int32(r), eVal[i], eD[i]
			cursor[j]++
		}
	}

	lam := cfg.Sparsity
	lb := lam / float32(b)
	if !jump {
		e.rowNorms(s.WDec, m, d)
	}
	sumF := e.perLat2 // Σ_b f_bj (ReLU) or ∂/∂θ_j (JumpReLU)
	rn := chunkedLen(b, d)
	e.dxhC, e.xcC = slices.Grow(e.dxhC[:0], rn)[:rn], slices.Grow(e.xcC[:0], rn)[:rn]
	packChunks(e.dxhC, e.dxh, b, d)
	packChunks(e.xcC, e.xc, b, d)
	rBlock := b * gatherChunk
	// Per latent: ∂pre of its entries, ∂b_enc[j], the sparsity penalty's
	// share; then ∂W_dec[j] and ∂W_encᵀ[j] a chunk of columns at a time.
	parallel.For(m, 64, func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			ks, ke := e.latStart[j], e.latStart[j+1]
			var gb float32
			var acc float64
			var th, norm float32
			if jump {
				th = s.Threshold[j]
			} else {
				norm = e.colNorm[j]
			}
			for k := ks; k < ke; k++ {
				if cVal[k] != 0 && fired != nil {
					fired[j]++
				}
				dp := cDp[k]
				if jump {
					p := e.pre[int(cRow[k])*m+j]
					if inWindow(p, th) {
						acc += float64(dp) * float64(-th/eps)
						acc += float64(lb) * float64(-1/eps)
					}
					if !(p > th) {
						dp = 0
					}
				} else {
					acc += float64(cVal[k])
					dp += lb * norm
				}
				cDp[k] = dp
				gb += dp
			}
			g.BEnc[j] = gb
			sumF[j] = acc
			clear(g.WDec[j*d : (j+1)*d])
			clear(e.dWencT[j*d : (j+1)*d])
		}
		for c0, q := 0, 0; c0 < d; c0, q = c0+gatherChunk, q+1 {
			c1 := min(d, c0+gatherChunk)
			for j := lo; j < hi; j++ {
				ks, ke := e.latStart[j], e.latStart[j+1]
				if ks == ke {
					continue
				}
				gatherAxpy(g.WDec[j*d+c0:j*d+c1], e.dxhC[q*rBlock:], gatherChunk, cRow[ks:ke], cVal[ks:ke])
				gatherAxpy(e.dWencT[j*d+c0:j*d+c1], e.xcC[q*rBlock:], gatherChunk, cRow[ks:ke], cDp[ks:ke])
			}
		}
		if !jump {
			for j := lo; j < hi; j++ {
				if norm := e.colNorm[j]; norm > 0 && sumF[j] != 0 {
					// ∂n_j/∂W_dec[j] = W_dec[j] / n_j.
					vec.Saxpy(d, lb*float32(sumF[j])/norm, s.WDec[j*d:(j+1)*d], 1, g.WDec[j*d:(j+1)*d], 1)
				}
			}
		}
	})
	if jump {
		loss.Sparsity = float64(lb) * float64(active)
		for j := range m {
			g.LogThreshold[j] = float32(sumF[j]) * s.Threshold[j]
		}
	} else {
		var sp float64
		for j := range m {
			sp += sumF[j] * float64(e.colNorm[j])
		}
		loss.Sparsity = float64(lb) * sp
	}
	transpose(e.dWencT, m, d, g.WEnc)
	return true
}

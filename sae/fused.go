package sae

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/rise-interp/rise/internal/bf16"
	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/parallel"
)

// vec does the level-1 work (dots and axpys of one row): gonum's own kernels
// in assembly. Through cgo, OpenBLAS would pay a call's overhead per row,
// which costs more than the row.
var vec gonum.Implementation

// NewFusedEngine returns the hand-written engine: forward and backward
// passes derived by hand (see LossConfig for the objective) over float32
// BLAS, using all cores, with buffers kept between steps so that a step
// allocates nothing once the first has run. TopK and BatchTopK use a sparse
// decoder: only the active latents enter the decoder product and its
// gradients, so a step costs about 2·B·d_in·d_sae for the encoder plus
// O(B·k·d_in). ReLU and JumpReLU run five dense products while many latents
// fire, and only the encoder product plus products over the active entries
// once few do (fusedactive.go).
func NewFusedEngine() Engine { return &fusedEngine{} }

type fusedEngine struct {
	b, d, m int  // the shapes the buffers are sized for
	arch    Arch // and the architecture

	// bf16 runs the dense products in bfloat16 (TrainConfig.Precision),
	// each B rounded and packed into b16 as it comes.
	bf16 bool
	b16  bf16.Packed

	xs, xc, xhat, dxh []float32 // [B, D]
	pre, df           []float32 // [B, M]; df is used by the dense path
	colNorm           []float32 // [M]

	// sparse path
	main, aux []entry   // active (row, latent) pairs of the selection and of AuxK
	rowStart  []int32   // main entries of row b are main[rowStart[b]:rowStart[b+1]]
	auxStart  []int32   // same for aux
	rowCount  []int32   // scratch: entries per row
	byLatent  []int32   // indices into main++aux grouped by latent
	latStart  []int32   // [M+1]
	dWencT    []float32 // [M, D]
	// W_dec, ∂x_hat and x_c chunk by chunk (packChunks) for the gathered
	// products over active entries: wdecC is a second copy of W_dec
	// (4·d_sae·d_in bytes, 1 GiB at 65,536 x 4,096) once a step has run
	// sparse.
	wdecC, dxhC, xcC []float32
	ehat, dehat      []float32 // [B, D] AuxK reconstruction and its gradient
	deadIdx          []int
	cursor           []int32
	scratchIdx       [][]int
	scratchVal       [][]float32
	hist             [][]int64

	// per-step scratch, kept so that a step allocates nothing
	f64parts []float64   // one per worker
	i64parts []int64     // one per worker
	perLat   []float64   // [max(M, D)]
	perLat2  []float64   // [M]
	perWork  [][]float64 // one [M] per worker
	ties     []int32     // [B]

	// ReLU and JumpReLU: how the step chooses between the dense products
	// and the products over active entries (see sparseActive), and what
	// the last step chose.
	mode        fusedMode
	lastSparse  bool
	activeCount []int32 // [B] scratch: active entries per row
	// entries by row (latent, activation, ∂x_hat·W_dec) and by latent
	// (row, activation, ∂pre)
	eLat, cRow []int32
	eVal, eD   []float32
	cVal, cDp  []float32
}

// entry is one active latent of one row: its activation and the gradient
// of the loss with respect to its pre-activation.
type entry struct {
	row, lat int32
	v, d     float32
}

func (e *fusedEngine) Name() string { return "fused" }

func (e *fusedEngine) ensure(s *SAE, b int) {
	d, m := s.DIn, s.DSae
	if e.b == b && e.d == d && e.m == m && e.arch == s.Arch {
		return
	}
	e.b, e.d, e.m, e.arch = b, d, m, s.Arch
	e.xs, e.xc, e.xhat, e.dxh = make([]float32, b*d), make([]float32, b*d), make([]float32, b*d), make([]float32, b*d)
	e.pre = make([]float32, b*m)
	e.colNorm = make([]float32, m)
	nw := parallel.Workers()
	e.scratchIdx = make([][]int, nw)
	e.scratchVal = make([][]float32, nw)
	e.hist = make([][]int64, nw)
	e.f64parts, e.i64parts = make([]float64, nw), make([]int64, nw)
	e.perLat, e.perLat2 = make([]float64, max(m, d)), make([]float64, m)
	e.perWork = make([][]float64, nw)
	e.ties = make([]int32, b)
	e.rowStart, e.auxStart, e.rowCount = make([]int32, b+1), make([]int32, b+1), make([]int32, b)
	e.latStart = make([]int32, m+1)
	e.dWencT = make([]float32, m*d)
	e.activeCount = make([]int32, b)
	switch s.Arch {
	case TopK, BatchTopK:
		e.df = nil
		e.ehat, e.dehat = make([]float32, b*d), make([]float32, b*d)
	default:
		e.df = make([]float32, b*m)
		e.ehat, e.dehat = nil, nil
	}
}

func (e *fusedEngine) Step(s *SAE, x []float32, cfg LossConfig, dead []bool, g *Gradients, fired []int64) (Loss, error) {
	if err := checkStep(s, x, g, dead, fired); err != nil {
		return Loss{}, fmt.Errorf("sae: fused engine: %w", err)
	}
	d, m := s.DIn, s.DSae
	b := len(x) / d
	e.ensure(s, b)

	// x_s = c·x and the encoder input x_c = x_s - b_dec.
	c := s.InputScale
	if c == 0 {
		c = 1
	}
	parallel.For(b, 64, func(_, lo, hi int) {
		for i := lo * d; i < hi*d; i++ {
			v := x[i] * c
			e.xs[i] = v
			if s.ApplyBDecToInput {
				v -= s.BDec[i%d]
			}
			e.xc[i] = v
		}
		for r := lo; r < hi; r++ {
			copy(e.pre[r*m:(r+1)*m], s.BEnc)
		}
	})
	e.gemm(blas.NoTrans, blas.NoTrans, b, m, d, e.xc, d, s.WEnc, m, 1, e.pre, m)

	var loss Loss
	switch s.Arch {
	case Standard, JumpReLU:
		if !e.sparseActive(s, cfg, g, fired, &loss) {
			e.dense(s, cfg, g, fired, &loss)
		}
	case TopK, BatchTopK:
		e.sparse(s, cfg, dead, g, fired, &loss)
	default:
		return Loss{}, fmt.Errorf("sae: the fused engine has no architecture %q", s.Arch)
	}
	// Through the encoder input: ∂/∂b_dec -= W_enc · Σ_b ∂pre_b.
	if s.ApplyBDecToInput {
		matmul.Impl().Sgemv(blas.NoTrans, d, m, -1, s.WEnc, m, g.BEnc, 1, 1, g.BDec, 1)
	}
	loss.Total = loss.MSE + loss.Sparsity + loss.AuxK
	return loss, nil
}

// gemm computes C = op(A)·op(B) + beta·C (beta 0 or 1) for the engine's
// dense products: through the BLAS in float32, or in bfloat16 with float32
// sums when the engine runs in bfloat16.
func (e *fusedEngine) gemm(ta, tb blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !e.bf16 {
		matmul.Gemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if beta != 0 && beta != 1 {
		panic(fmt.Sprintf("sae: bfloat16 product with beta %v", beta))
	}
	if beta == 0 {
		parallel.For(m, 64, func(_, lo, hi int) {
			for r := lo; r < hi; r++ {
				clear(c[r*ldc : r*ldc+n])
			}
		})
	}
	if tb == blas.NoTrans {
		e.b16.Pack(b, k, n, ldb)
	} else {
		e.b16.PackTrans(b, k, n, ldb)
	}
	if ta == blas.NoTrans {
		e.b16.MulAdd(m, a, lda, c, ldc)
	} else {
		e.b16.MulAddTrans(m, a, lda, c, ldc)
	}
}

// reconstructionGrad computes e = x_hat - x_s, the MSE and ∂MSE/∂x_hat into
// dxh, and ∂/∂b_dec from the output.
func (e *fusedEngine) reconstructionGrad(g *Gradients, loss *Loss) {
	b, d := e.b, e.d
	scale := float32(2) / float32(b)
	parts := e.f64parts
	clear(parts)
	parallel.For(b, 64, func(w, lo, hi int) {
		var sum float64
		for i := lo * d; i < hi*d; i++ {
			r := e.xhat[i] - e.xs[i]
			sum += float64(r) * float64(r)
			e.dxh[i] = scale * r
		}
		parts[w] = sum
	})
	var mse float64
	for _, p := range parts {
		mse += p
	}
	loss.MSE = mse / float64(b)
	colSum(e.dxh, b, d, g.BDec, e.perLat)
}

// dense runs ReLU and JumpReLU with five dense products.
func (e *fusedEngine) dense(s *SAE, cfg LossConfig, g *Gradients, fired []int64, loss *Loss) {
	b, d, m := e.b, e.d, e.m
	f := e.pre // activations overwrite pre-activations only after use; keep pre in df first
	copy(e.df, e.pre)
	pre := e.df // pre-activations, kept until the masks are built
	jump := s.Arch == JumpReLU
	var active int64
	actParts := e.i64parts
	clear(actParts)
	parallel.For(b, 16, func(w, lo, hi int) {
		var n int64
		for i := lo * m; i < hi*m; i++ {
			v := pre[i]
			on := v > 0
			if jump {
				on = v > s.Threshold[i%m]
			}
			if on {
				n++
			} else {
				f[i] = 0
			}
		}
		actParts[w] = n
	})
	for _, n := range actParts {
		active += n
	}
	loss.L0 = float64(active) / float64(b)
	if fired != nil {
		countFired(f, b, m, fired)
	}
	// x_hat = f W_dec + b_dec.
	parallel.For(b, 64, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			copy(e.xhat[r*d:(r+1)*d], s.BDec)
		}
	})
	e.gemm(blas.NoTrans, blas.NoTrans, b, d, m, f, m, s.WDec, d, 1, e.xhat, d)
	e.reconstructionGrad(g, loss)
	// ∂W_dec = fᵀ ∂x_hat; ∂f = ∂x_hat W_decᵀ (into a buffer that no longer
	// needs pre: the masks below read f, which is nonzero exactly where the
	// unit is on, and the JumpReLU kernel needs pre, so it is rebuilt from
	// f's zero pattern only for ReLU).
	e.gemm(blas.Trans, blas.NoTrans, m, d, b, f, m, e.dxh, d, 0, g.WDec, d)
	lam := cfg.Sparsity
	switch s.Arch {
	case Standard:
		e.gemm(blas.NoTrans, blas.Trans, b, m, d, e.dxh, d, s.WDec, d, 0, pre, m)
		df := pre
		e.rowNorms(s.WDec, m, d)
		// L1 weighted by decoder-row norms: λ/B Σ f_bj n_j.
		lb := lam / float32(b)
		sumF := e.perLat2
		colSum64(f, b, m, sumF)
		var sp float64
		for j := range m {
			sp += sumF[j] * float64(e.colNorm[j])
		}
		loss.Sparsity = float64(lb) * sp
		parallel.For(b, 16, func(_, lo, hi int) {
			for i := lo * m; i < hi*m; i++ {
				if f[i] > 0 {
					df[i] += lb * e.colNorm[i%m]
				} else {
					df[i] = 0
				}
			}
		})
		// ∂n_j/∂W_dec[j] = W_dec[j] / n_j.
		parallel.For(m, 64, func(_, lo, hi int) {
			for j := lo; j < hi; j++ {
				if n := e.colNorm[j]; n > 0 {
					vec.Saxpy(d, lb*float32(sumF[j])/n, s.WDec[j*d:(j+1)*d], 1, g.WDec[j*d:(j+1)*d], 1)
				}
			}
		})
		e.encoderGrads(s, df, g)
	case JumpReLU:
		// pre (in df's buffer) is intact; f is no longer needed, so ∂f
		// takes f's buffer.
		eps := cfg.bandwidth()
		lb := lam / float32(b)
		thrGrad := e.perLat2 // ∂/∂θ
		clear(thrGrad)
		var l0 int64
		e.gemm(blas.NoTrans, blas.Trans, b, m, d, e.dxh, d, s.WDec, d, 0, f, m)
		df := f
		parts := e.perWork
		for _, p := range parts {
			clear(p)
		}
		cnt := e.i64parts
		clear(cnt)
		parallel.For(b, 16, func(w, lo, hi int) {
			if len(parts[w]) != m {
				parts[w] = make([]float64, m)
			}
			acc := parts[w]
			var n int64
			for r := lo; r < hi; r++ {
				for j := range m {
					i := r*m + j
					th := s.Threshold[j]
					p := pre[i]
					if z := (p - th) / eps; z > -0.5 && z < 0.5 {
						acc[j] += float64(df[i]) * float64(-th/eps)
						acc[j] += float64(lb) * float64(-1/eps)
					}
					if p > th {
						n++
					} else {
						df[i] = 0
					}
				}
			}
			cnt[w] = n
		})
		for w := range parts {
			for j, v := range parts[w] {
				thrGrad[j] += v
			}
			l0 += cnt[w]
		}
		loss.Sparsity = float64(lb) * float64(l0)
		for j := range m {
			g.LogThreshold[j] = float32(thrGrad[j]) * s.Threshold[j]
		}
		e.encoderGrads(s, df, g)
	}
}

// encoderGrads computes ∂W_enc = x_cᵀ ∂pre and ∂b_enc = Σ_b ∂pre.
func (e *fusedEngine) encoderGrads(s *SAE, dpre []float32, g *Gradients) {
	e.gemm(blas.Trans, blas.NoTrans, e.d, e.m, e.b, e.xc, e.d, dpre, e.m, 0, g.WEnc, e.m)
	colSum(dpre, e.b, e.m, g.BEnc, e.perLat)
}

func (e *fusedEngine) rowNorms(w []float32, rows, cols int) {
	parallel.For(rows, 64, func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			row := w[j*cols : (j+1)*cols]
			// √(row·row): gonum's Snrm2 guards against overflow with a
			// scaled sum that costs several times more.
			e.colNorm[j] = sqrt32(vec.Sdot(cols, row, 1, row, 1))
		}
	})
}

// countFired adds, per latent, the rows where f is nonzero.
func countFired(f []float32, b, m int, fired []int64) {
	parallel.For(m, 256, func(_, lo, hi int) {
		for r := range b {
			row := f[r*m : (r+1)*m]
			for j := lo; j < hi; j++ {
				if row[j] != 0 {
					fired[j]++
				}
			}
		}
	})
}

// colSum writes the column sums of the [rows, cols] matrix a into out,
// accumulating in float64 in tmp (at least cols long).
func colSum(a []float32, rows, cols int, out []float32, tmp []float64) {
	tmp = tmp[:cols]
	colSum64(a, rows, cols, tmp)
	for j, v := range tmp {
		out[j] = float32(v)
	}
}

func colSum64(a []float32, rows, cols int, out []float64) {
	parallel.For(cols, 64, func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			out[j] = 0
		}
		for r := range rows {
			row := a[r*cols : (r+1)*cols]
			for j := lo; j < hi; j++ {
				out[j] += float64(row[j])
			}
		}
	})
}

// sparse runs TopK and BatchTopK with a sparse decoder.
func (e *fusedEngine) sparse(s *SAE, cfg LossConfig, dead []bool, g *Gradients, fired []int64, loss *Loss) {
	b, d, m := e.b, e.d, e.m
	if s.Arch == TopK {
		e.selectTopK(s.K)
	} else {
		loss.BatchThreshold = e.selectBatchTopK(s.K * b)
	}
	loss.L0 = float64(len(e.main)) / float64(b)

	// x_hat_b = b_dec + Σ_j f_bj W_dec[j].
	impl := vec
	parallel.For(b, 16, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			out := e.xhat[r*d : (r+1)*d]
			copy(out, s.BDec)
			for _, en := range e.main[e.rowStart[r]:e.rowStart[r+1]] {
				impl.Saxpy(d, en.v, s.WDec[int(en.lat)*d:int(en.lat+1)*d], 1, out, 1)
			}
		}
	})
	e.reconstructionGrad(g, loss)
	// ∂pre_bj = ∂x_hat_b · W_dec[j] for active (b, j) (ReLU'd values > 0).
	parallel.For(b, 16, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			dx := e.dxh[r*d : (r+1)*d]
			for i := e.rowStart[r]; i < e.rowStart[r+1]; i++ {
				en := &e.main[i]
				en.d = impl.Sdot(d, dx, 1, s.WDec[int(en.lat)*d:int(en.lat+1)*d], 1)
			}
		}
	})
	e.aux = e.aux[:0]
	if cfg.AuxKCoeff > 0 && dead != nil {
		loss.AuxK = e.auxK(s, cfg, dead)
	}
	e.groupByLatent()
	// Per latent: ∂W_dec[j], ∂W_encᵀ[j] and ∂b_enc[j] from its entries.
	nMain := int32(len(e.main))
	parallel.For(m, 64, func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			gd := g.WDec[j*d : (j+1)*d]
			ge := e.dWencT[j*d : (j+1)*d]
			clear(gd)
			clear(ge)
			var gb float32
			for _, k := range e.byLatent[e.latStart[j]:e.latStart[j+1]] {
				var en *entry
				var dout []float32
				if k < nMain {
					en = &e.main[k]
					dout = e.dxh[int(en.row)*d : int(en.row+1)*d]
					if fired != nil {
						fired[j]++
					}
				} else {
					en = &e.aux[k-nMain]
					dout = e.dehat[int(en.row)*d : int(en.row+1)*d]
				}
				impl.Saxpy(d, en.v, dout, 1, gd, 1)
				impl.Saxpy(d, en.d, e.xc[int(en.row)*d:int(en.row+1)*d], 1, ge, 1)
				gb += en.d
			}
			g.BEnc[j] = gb
		}
	})
	transpose(e.dWencT, m, d, g.WEnc)
}

// auxK adds the AuxK term: per row, the k_aux largest pre-activations among
// dead latents reconstruct the residual x - x_hat (held constant).
func (e *fusedEngine) auxK(s *SAE, cfg LossConfig, dead []bool) float64 {
	b, d := e.b, e.d
	e.deadIdx = e.deadIdx[:0]
	for j, dd := range dead {
		if dd {
			e.deadIdx = append(e.deadIdx, j)
		}
	}
	nDead := len(e.deadIdx)
	if nDead == 0 {
		return 0
	}
	kCfg := cfg.auxKLatents(s)
	kAux := min(kCfg, nDead)
	scale := min(float32(nDead)/float32(kCfg), 1)
	if cap(e.aux) < b*kAux {
		e.aux = make([]entry, b*kAux)
	}
	e.aux = e.aux[:b*kAux]
	impl := vec
	m := e.m
	parallel.For(b, 8, func(w, lo, hi int) {
		idx := e.scratch(w, kAux)
		if cap(e.scratchVal[w]) < nDead {
			e.scratchVal[w] = make([]float32, nDead)
		}
		vals := e.scratchVal[w][:nDead]
		for r := lo; r < hi; r++ {
			row := e.pre[r*m : (r+1)*m]
			for i, j := range e.deadIdx {
				vals[i] = row[j]
			}
			sel := topKIndices(vals, kAux, idx)
			n := 0
			for _, i := range sel {
				if v := vals[i]; v > 0 {
					e.aux[r*kAux+n] = entry{row: int32(r), lat: int32(e.deadIdx[i]), v: v}
					n++
				}
			}
			e.rowCount[r] = int32(n)
		}
	})
	e.aux = compactRows(e.aux, kAux, e.rowCount[:b], e.auxStart)
	// e_hat_b = Σ a_bj W_dec[j]; the residual is x_s - x_hat = -(dxh·B/2).
	coef := 2 * cfg.AuxKCoeff * scale / float32(b)
	parts := e.f64parts
	clear(parts)
	parallel.For(b, 16, func(w, lo, hi int) {
		var sum float64
		for r := lo; r < hi; r++ {
			eh := e.ehat[r*d : (r+1)*d]
			clear(eh)
			for _, en := range e.aux[e.auxStart[r]:e.auxStart[r+1]] {
				impl.Saxpy(d, en.v, s.WDec[int(en.lat)*d:int(en.lat+1)*d], 1, eh, 1)
			}
			de := e.dehat[r*d : (r+1)*d]
			for i := range eh {
				res := e.xs[r*d+i] - e.xhat[r*d+i]
				diff := eh[i] - res
				sum += float64(diff) * float64(diff)
				de[i] = coef * diff
			}
			for i := e.auxStart[r]; i < e.auxStart[r+1]; i++ {
				en := &e.aux[i]
				en.d = impl.Sdot(d, de, 1, s.WDec[int(en.lat)*d:int(en.lat+1)*d], 1)
			}
		}
		parts[w] = sum
	})
	var sum float64
	for _, p := range parts {
		sum += p
	}
	return float64(cfg.AuxKCoeff) * float64(scale) * sum / float64(b)
}

// groupByLatent lists the indices of main and aux entries by latent
// (counting sort), aux indices offset by len(main).
func (e *fusedEngine) groupByLatent() {
	m := e.m
	clear(e.latStart)
	for _, en := range e.main {
		e.latStart[en.lat+1]++
	}
	for _, en := range e.aux {
		e.latStart[en.lat+1]++
	}
	for j := range m {
		e.latStart[j+1] += e.latStart[j]
	}
	total := len(e.main) + len(e.aux)
	if cap(e.byLatent) < total {
		e.byLatent = make([]int32, total)
	}
	e.byLatent = e.byLatent[:total]
	if len(e.cursor) != m {
		e.cursor = make([]int32, m)
	}
	cursor := e.cursor
	copy(cursor, e.latStart[:m])
	for i, en := range e.main {
		e.byLatent[cursor[en.lat]] = int32(i)
		cursor[en.lat]++
	}
	for i, en := range e.aux {
		e.byLatent[cursor[en.lat]] = int32(len(e.main) + i)
		cursor[en.lat]++
	}
}

// transpose writes the [rows, cols] matrix a as [cols, rows] into out,
// in cache-sized blocks.
func transpose(a []float32, rows, cols int, out []float32) {
	const blk = 64
	nb := (rows + blk - 1) / blk
	parallel.For(nb, 1, func(_, lo, hi int) {
		// Each tile is turned in a contiguous buffer and written out a
		// row at a time: written straight to out, a tile's 64 columns
		// lie rows·4 bytes apart, a power of two for the usual widths,
		// and fall into one cache set.
		var tile [blk * blk]float32
		for bi := lo; bi < hi; bi++ {
			r0 := bi * blk
			r1 := min(rows, r0+blk)
			h := r1 - r0
			for c0 := 0; c0 < cols; c0 += blk {
				c1 := min(cols, c0+blk)
				for r := r0; r < r1; r++ {
					src := a[r*cols+c0 : r*cols+c1]
					for i, v := range src {
						tile[i*blk+r-r0] = v
					}
				}
				for c := c0; c < c1; c++ {
					copy(out[c*rows+r0:c*rows+r1], tile[(c-c0)*blk:(c-c0)*blk+h])
				}
			}
		}
	})
}

// Package bf16 rounds float32 to bfloat16 and multiplies matrices in it
// with float32 sums, on AVX512_BF16 where the CPU has it.
package bf16

import (
	"fmt"
	"math"

	"github.com/rise-interp/rise/internal/parallel"
)

// Products in bfloat16 with float32 sums, for the SAE engine's dense
// products (sae.TrainConfig.Precision) and for reading a prompt with Q8
// weights (steer/model), where the CPU multiplies bfloat16 pairs natively:
// AVX512_BF16's VDPBF16PS does 32 multiply-adds per instruction where a
// float32 FMA does 16. Inputs are rounded to bfloat16 (8 bits of
// mantissa, float32's range), products are exact in float32, and sums are
// float32, so the result differs from float32's by the inputs' rounding
// (relative 2⁻⁹ per input), not by the sums.

// Tile sizes of the kernel: 6 rows of A by a panel of 64 columns of B.
const (
	tileRows  = 6
	panelCols = 64
)

// Packed is a matrix B (k x n) rounded to bfloat16 and packed for MulAdd:
// panels of 64 columns, each kp = ceil(k/2) runs of 64 columns x 2 rows of k
// (columns past n and the row past an odd k are zero). The zero value is
// empty; Pack fills it and reuses its memory.
type Packed struct {
	k, n, kp int
	panels   []uint16
	a        Rows      // A of MulAdd and MulAddTrans
	tiles    []float32 // per worker, a 6 x 64 tile for the edges of C
}

// Rows is a matrix A (m x k) rounded to bfloat16 once for products with
// several packed matrices (Packed.MulAddRows). The zero value is empty;
// Round fills it and reuses its memory.
type Rows struct {
	m, k int
	a    []uint16 // rows of 2·ceil(k/2), padded with zero rows to whole tiles
}

// Round rounds the row-major m x k matrix a (rows lda apart) into r.
func (r *Rows) Round(m int, a []float32, lda, k int) {
	if m < 0 || k < 0 || lda < k || (m > 0 && len(a) < (m-1)*lda+k) {
		panic(fmt.Sprintf("bf16: Rows.Round of %d x %d with lda %d over %d values", m, k, lda, len(a)))
	}
	rowLen := r.resize(m, k)
	parallel.For(m, 64, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			out := r.a[i*rowLen : (i+1)*rowLen]
			roundRow(out, a[i*lda:i*lda+k])
			clear(out[k:])
		}
	})
}

// resize makes room for m rows of k in bfloat16, padded to whole tiles
// (the padding rows zero), and returns the length of a row.
func (r *Rows) resize(m, k int) int {
	r.m, r.k = m, k
	tiles := (m + tileRows - 1) / tileRows
	rowLen := 2 * ((k + 1) / 2)
	size := tiles * tileRows * rowLen
	if cap(r.a) < size {
		r.a = make([]uint16, size)
	}
	r.a = r.a[:size]
	clear(r.a[m*rowLen:])
	return rowLen
}

// Native reports whether this CPU multiplies bfloat16 natively; without it
// MulAdd runs a portable loop that gives the same sums much more slowly.
func Native() bool { return native }

// Round rounds f to bfloat16, to nearest with ties to even, as the CPU's
// conversions do (which also read a denormal as zero); a NaN stays a NaN.
func Round(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// Widen widens a bfloat16 to float32 (exactly).
func Widen(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Pack rounds the row-major k x n matrix b (rows ldb apart) to bfloat16 and
// lays it out for MulAdd.
func (p *Packed) Pack(b []float32, k, n, ldb int) {
	if k < 0 || n < 0 || ldb < n || (k > 0 && len(b) < (k-1)*ldb+n) {
		panic(fmt.Sprintf("bf16: Packed.Pack of %d x %d with ldb %d over %d values", k, n, ldb, len(b)))
	}
	np := p.shape(k, n)
	parallel.For(np*p.kp, 64, func(_, lo, hi int) {
		var even16, odd16 [panelCols]uint16
		for t := lo; t < hi; t++ {
			// Pair of rows by pair of rows, so that the rows are read in
			// order (each panel's run of the pair is 256 bytes apart from
			// the next panel's in the source, kp·256 in the packing).
			q, panel := t/np, t%np
			at := (panel*p.kp + q) * 2 * panelCols
			out := p.panels[at : at+2*panelCols]
			col0 := panel * panelCols
			cols := min(panelCols, n-col0)
			roundRow(even16[:cols], b[2*q*ldb+col0:2*q*ldb+col0+cols])
			if 2*q+1 < k {
				roundRow(odd16[:cols], b[(2*q+1)*ldb+col0:(2*q+1)*ldb+col0+cols])
			} else {
				clear(odd16[:cols])
			}
			for c := range cols {
				out[2*c], out[2*c+1] = even16[c], odd16[c]
			}
			clear(out[2*cols:])
		}
	})
}

// PackTrans is Pack of the k x n matrix B given by its transpose: bt is
// row-major n x k, rows ldb apart.
func (p *Packed) PackTrans(bt []float32, k, n, ldb int) {
	if k < 0 || n < 0 || ldb < k || (n > 0 && len(bt) < (n-1)*ldb+k) {
		panic(fmt.Sprintf("bf16: Packed.PackTrans of %d x %d with ldb %d over %d values", k, n, ldb, len(bt)))
	}
	np := p.shape(k, n)
	parallel.For(np*panelCols, 16, func(_, lo, hi int) {
		// Column by column of B: each is a row of bt, read in order.
		rounded := make([]uint16, 2*p.kp)
		for col := lo; col < hi; col++ {
			var row []float32
			if col < n {
				row = bt[col*ldb : col*ldb+k]
			}
			p.putColumn(col, row, rounded)
		}
	})
}

// PackTransFunc is PackTrans with each column j of B (a row of its
// transpose) written by column into a scratch slice of k values, for a
// matrix held in another form (Q8 blocks, say) that need not be widened
// whole first.
func (p *Packed) PackTransFunc(k, n int, column func(j int, dst []float32)) {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("bf16: Packed.PackTransFunc of %d x %d", k, n))
	}
	np := p.shape(k, n)
	parallel.For(np*panelCols, 16, func(_, lo, hi int) {
		scratch := make([]float32, k)
		rounded := make([]uint16, 2*p.kp)
		for col := lo; col < hi; col++ {
			var row []float32
			if col < n {
				column(col, scratch)
				row = scratch
			}
			p.putColumn(col, row, rounded)
		}
	})
}

// putColumn rounds column col of B (k values; nil for a padding column
// past n) into its panel, through rounded (2·kp values of scratch): each
// pair of k is adjacent in the column and in the panel.
func (p *Packed) putColumn(col int, row []float32, rounded []uint16) {
	k, kp := p.k, p.kp
	panel, c := col/panelCols, col%panelCols
	out := p.panels[panel*kp*2*panelCols:]
	if row == nil {
		clear(rounded)
	} else {
		roundRow(rounded, row)
		if k%2 == 1 {
			rounded[k] = 0 // the pad past an odd k
		}
	}
	for q := range kp {
		out[q*2*panelCols+2*c], out[q*2*panelCols+2*c+1] = rounded[2*q], rounded[2*q+1]
	}
}

// shape sets p's shape to k x n, makes room for its panels and returns
// their number.
func (p *Packed) shape(k, n int) int {
	p.k, p.n, p.kp = k, n, (k+1)/2
	np := (n + panelCols - 1) / panelCols
	size := np * p.kp * 2 * panelCols
	if cap(p.panels) < size {
		p.panels = make([]uint16, size)
	}
	p.panels = p.panels[:size]
	return np
}

// MulAdd adds A·B to C, where A is the row-major m x k matrix a (rows lda
// apart), B the matrix last packed and C the m x n matrix c (rows ldc
// apart). A is rounded to bfloat16; each entry's sum runs over k in pairs,
// (k+1, then k) of each pair, in float32, and is then added to C's entry.
func (p *Packed) MulAdd(m int, a []float32, lda int, c []float32, ldc int) {
	k := p.k
	if m < 0 || lda < k || ldc < p.n || (m > 0 && (len(a) < (m-1)*lda+k || len(c) < (m-1)*ldc+p.n)) {
		panic(fmt.Sprintf("bf16: Packed.MulAdd of %d x %d by %d x %d with lda %d over %d values, ldc %d over %d", m, k, k, p.n, lda, len(a), ldc, len(c)))
	}
	if m == 0 || p.n == 0 || p.kp == 0 {
		return // nothing to add
	}
	p.a.Round(m, a, lda, k)
	p.product(&p.a, c, ldc)
}

// MulAddRows is MulAdd with A rounded beforehand; its k must be B's.
func (p *Packed) MulAddRows(a *Rows, c []float32, ldc int) {
	m := a.m
	if a.k != p.k || ldc < p.n || (m > 0 && len(c) < (m-1)*ldc+p.n) {
		panic(fmt.Sprintf("bf16: Packed.MulAddRows of %d x %d by %d x %d, ldc %d over %d", m, a.k, p.k, p.n, ldc, len(c)))
	}
	if m == 0 || p.n == 0 || p.kp == 0 {
		return // nothing to add
	}
	p.product(a, c, ldc)
}

// MulAddTrans is MulAdd with A given by its transpose: at is row-major
// k x m, rows lda apart.
func (p *Packed) MulAddTrans(m int, at []float32, lda int, c []float32, ldc int) {
	k := p.k
	if m < 0 || lda < m || ldc < p.n || (m > 0 && ((k > 0 && len(at) < (k-1)*lda+m) || len(c) < (m-1)*ldc+p.n)) {
		panic(fmt.Sprintf("bf16: Packed.MulAddTrans of %d x %d by %d x %d with lda %d over %d values, ldc %d over %d", m, k, k, p.n, lda, len(at), ldc, len(c)))
	}
	if m == 0 || p.n == 0 || p.kp == 0 {
		return // nothing to add
	}
	rowLen := p.a.resize(m, k)
	dst := p.a.a
	const block = 16 // rows of A (columns of at) a task transposes
	parallel.For((m+block-1)/block, 4, func(_, lo, hi int) {
		for b := lo; b < hi; b++ {
			r0, r1 := b*block, min(m, (b+1)*block)
			for j := range k {
				src := at[j*lda+r0 : j*lda+r1]
				for i, v := range src {
					dst[(r0+i)*rowLen+j] = Round(v)
				}
			}
			for r := r0; r < r1; r++ {
				clear(dst[r*rowLen+k : (r+1)*rowLen])
			}
		}
	})
	p.product(&p.a, c, ldc)
}

// product adds A·B to C from A in bfloat16 and B packed.
func (p *Packed) product(a *Rows, c []float32, ldc int) {
	m := a.m
	n, kp := p.n, p.kp
	rowLen := 2 * kp
	tiles := (m + tileRows - 1) / tileRows
	workers := parallel.Workers()
	tileSize := tileRows * panelCols
	if len(p.tiles) < workers*tileSize {
		p.tiles = make([]float32, workers*tileSize)
	}
	panels := (n + panelCols - 1) / panelCols
	parallel.For(tiles, 1, func(w, lo, hi int) {
		scratch := p.tiles[w*tileSize : (w+1)*tileSize]
		// Panel by panel, so that one panel (kp x 256 bytes) stays in the
		// core's cache while the worker's row tiles pass over it.
		for panel := range panels {
			b := p.panels[panel*kp*2*panelCols : (panel+1)*kp*2*panelCols]
			col0 := panel * panelCols
			cols := min(panelCols, n-col0)
			for t := lo; t < hi; t++ {
				row0 := t * tileRows
				rows := min(tileRows, m-row0)
				at := a.a[row0*rowLen : (row0+tileRows)*rowLen]
				if rows == tileRows && cols == panelCols {
					tile(at, rowLen, b, kp, c[row0*ldc+col0:], ldc)
					continue
				}
				// An edge of C: the tile goes through scratch, which
				// starts at zero as the kernel's sums do.
				clear(scratch)
				tile(at, rowLen, b, kp, scratch, panelCols)
				for r := range rows {
					dst := c[(row0+r)*ldc+col0 : (row0+r)*ldc+col0+cols]
					for j := range dst {
						dst[j] += scratch[r*panelCols+j]
					}
				}
			}
		}
	})
}

// tileGo is the kernel's arithmetic in Go: for each of the 6 x 64
// entries, a float32 sum over the pairs of k, adding the pair's second
// product and then its first (as VDPBF16PS does), added to C at the end.
// Products of two bfloat16 are exact in float32, so fusing a multiply
// with its add changes nothing. a holds 6 rows lda values apart; c 6 rows
// ldc apart.
func tileGo(a []uint16, lda int, b []uint16, kp int, c []float32, ldc int) {
	for r := range tileRows {
		row := a[r*lda : r*lda+2*kp]
		for j := range panelCols {
			var sum float32
			for q := range kp {
				w := b[q*2*panelCols+2*j:]
				sum += Widen(row[2*q+1]) * Widen(w[1])
				sum += Widen(row[2*q]) * Widen(w[0])
			}
			c[r*ldc+j] += sum
		}
	}
}

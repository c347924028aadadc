package model

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/x448/float16"
)

// DType is the precision a weight matrix is held in.
type DType uint8

// The precisions of weight matrices. Norm weights and biases are always
// float32: they are small, and RMSNorm reads them once per row.
const (
	// F32 holds float32, as the file or the checkpoint stores it (or
	// widened from 16 bits).
	F32 DType = iota
	// BF16 holds bfloat16: the upper 16 bits of a float32.
	BF16
	// F16 holds IEEE half precision.
	F16
	// Q8 holds 8-bit blocks (llama.cpp's Q8_0): each run of Q8Block
	// weights of a row shares one float32 scale, the block's largest
	// magnitude over 127, and stores round(w / scale) as an int8.
	Q8
)

// Q8Block is how many weights of a row share one scale in Q8.
const Q8Block = 32

var dtypeNames = map[DType]string{F32: "f32", BF16: "bf16", F16: "f16", Q8: "q8"}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// ParseDType reads a precision by its name: f32, bf16 or f16 (float32,
// bfloat16 and float16 are accepted too).
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "f32", "float32":
		return F32, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "f16", "float16":
		return F16, nil
	}
	return 0, fmt.Errorf("expected f32, bf16 or f16, found %q", s)
}

// ParseQuant reads a quantisation by its name: q8, or "" for none.
func ParseQuant(s string) (quant bool, err error) {
	switch strings.ToLower(s) {
	case "":
		return false, nil
	case "q8", "q8_0":
		return true, nil
	}
	return false, fmt.Errorf("expected q8, found %q", s)
}

// Matrix is a row-major [Rows, Cols] weight matrix in one of the DTypes.
// Exactly one of F32, Half and Q holds its values.
type Matrix struct {
	Rows, Cols int
	DType      DType
	F32        []float32 // F32
	Half       []uint16  // BF16 or F16 bit patterns
	Q          []int8    // Q8: the quantised weights, Rows·Cols
	Scales     []float32 // Q8: one per block, Rows·ceil(Cols/Q8Block)
}

// NewMatrix wraps float32 values [rows, cols] without copying them.
func NewMatrix(rows, cols int, v []float32) Matrix {
	return Matrix{Rows: rows, Cols: cols, DType: F32, F32: v}
}

// Len is the number of weights, whatever their precision.
func (w *Matrix) Len() int {
	switch w.DType {
	case F32:
		return len(w.F32)
	case BF16, F16:
		return len(w.Half)
	}
	return len(w.Q)
}

// Bytes is the memory the weights take.
func (w *Matrix) Bytes() int64 {
	return 4*int64(len(w.F32)) + 2*int64(len(w.Half)) + int64(len(w.Q)) + 4*int64(len(w.Scales))
}

// blocksPerRow is the number of Q8 blocks in a row of cols weights.
func blocksPerRow(cols int) int { return (cols + Q8Block - 1) / Q8Block }

// RowTo writes row r, widened to float32, into dst[:Cols].
func (w *Matrix) RowTo(dst []float32, r int) {
	c := w.Cols
	dst = dst[:c]
	switch w.DType {
	case F32:
		copy(dst, w.F32[r*c:(r+1)*c])
	case BF16, F16:
		widen16(w.DType, dst, w.Half[r*c:(r+1)*c])
	case Q8:
		nb := blocksPerRow(c)
		widenQ8(dst, w.Q[r*c:(r+1)*c], w.Scales[r*nb:(r+1)*nb])
	}
}

// Float32 returns the weights as float32: the matrix's own slice when it
// holds float32 (do not change it), else a widened copy.
func (w *Matrix) Float32() []float32 {
	if w.DType == F32 {
		return w.F32
	}
	out := make([]float32, w.Rows*w.Cols)
	for r := range w.Rows {
		w.RowTo(out[r*w.Cols:], r)
	}
	return out
}

// To returns the matrix held in precision d: w itself when it is held so
// already, else a converted copy. BF16 and F16 round to nearest, ties to
// even; Q8 quantises each block as llama.cpp's Q8_0 does.
func (w *Matrix) To(d DType) Matrix {
	if d == w.DType {
		return *w
	}
	out := newMatrix(w.Rows, w.Cols, d)
	row := make([]float32, w.Cols)
	for r := range w.Rows {
		w.RowTo(row, r)
		out.setRow(r, row)
	}
	return out
}

// newMatrix allocates a zero [rows, cols] matrix of precision d.
func newMatrix(rows, cols int, d DType) Matrix {
	out := Matrix{Rows: rows, Cols: cols, DType: d}
	switch d {
	case F32:
		out.F32 = make([]float32, rows*cols)
	case BF16, F16:
		out.Half = make([]uint16, rows*cols)
	case Q8:
		out.Q = make([]int8, rows*cols)
		out.Scales = make([]float32, rows*blocksPerRow(cols))
	default:
		panic(fmt.Sprintf("model: a matrix of %v", d))
	}
	return out
}

// setRow stores the float32 values v as row r, rounding them to the
// matrix's precision (BF16 and F16 to nearest, ties to even; Q8 as
// quantizeRow).
func (w *Matrix) setRow(r int, v []float32) {
	c := w.Cols
	switch w.DType {
	case F32:
		copy(w.F32[r*c:(r+1)*c], v)
	case BF16:
		h := w.Half[r*c : (r+1)*c]
		for i, x := range v[:c] {
			h[i] = f32ToBF16(x)
		}
	case F16:
		h := w.Half[r*c : (r+1)*c]
		for i, x := range v[:c] {
			h[i] = float16.Fromfloat32(x).Bits()
		}
	case Q8:
		nb := blocksPerRow(c)
		quantizeRow(w.Q[r*c:(r+1)*c], w.Scales[r*nb:(r+1)*nb], v[:c])
	}
}

// quantizeRow quantises one row into Q8 blocks: scale = max|w| / 127 and
// q = round(w / scale), half away from zero, as ggml's
// quantize_row_q8_0_ref does (with a float32 scale where ggml keeps a
// float16 one). A block holding a NaN or an infinity gets a NaN scale,
// so that every product with it is NaN.
func quantizeRow(q []int8, scales []float32, row []float32) {
	quantizeBlocks(q, scales, row, false)
}

// quantizeVectorGo quantises an activation vector as quantizeRow does a
// row of weights, but rounds ties to even, as ggml's vectorised quantiser
// of activations does (quantizeVector, its SIMD form, too).
func quantizeVectorGo(q []int8, scales []float32, x []float32) {
	quantizeBlocks(q, scales, x, true)
}

// quantizeBlocks is quantizeRow, rounding ties to even with even.
func quantizeBlocks(q []int8, scales []float32, row []float32, even bool) {
	for b := range scales {
		blk := row[b*Q8Block : min(len(row), (b+1)*Q8Block)]
		var amax float32
		finite := true
		for _, v := range blk {
			a := math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
			if a > amax {
				amax = a
			}
			finite = finite && a <= math.MaxFloat32
		}
		s := amax / 127
		if !finite {
			s = float32(math.NaN())
		}
		scales[b] = s
		inv := float32(0)
		if s != 0 && finite {
			inv = 1 / s
		}
		qb := q[b*Q8Block : b*Q8Block+len(blk)]
		if even {
			for i, v := range blk {
				qb[i] = int8(math.RoundToEven(float64(v * inv)))
			}
			continue
		}
		for i, v := range blk {
			// v·inv is within ±127 (a float32, so adding ±½ in float64
			// is exact) and conversion truncates: rounding half away
			// from zero, as math.Round, without a branch on the sign.
			r := float64(v * inv)
			half := math.Float64frombits(math.Float64bits(0.5) | math.Float64bits(r)&(1<<63))
			qb[i] = int8(r + half)
		}
	}
}

// bf16ToF32 widens a bfloat16 exactly.
func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// f32ToBF16 rounds to the nearest bfloat16, ties to even, as torch does;
// NaNs stay NaNs.
func f32ToBF16(v float32) uint16 {
	b := math.Float32bits(v)
	if v != v {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

var (
	f16Once sync.Once
	f16Tab  *[1 << 16]float32
)

// f16Table maps every float16 bit pattern to its float32 value (256 KiB),
// for the kernels that widen float16 without hardware conversion.
func f16Table() *[1 << 16]float32 {
	f16Once.Do(func() {
		f16Tab = new([1 << 16]float32)
		for i := range f16Tab {
			f16Tab[i] = float16.Frombits(uint16(i)).Float32()
		}
	})
	return f16Tab
}

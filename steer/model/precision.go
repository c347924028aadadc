package model

import (
	"encoding/binary"
	"fmt"
	"sync"
	"unsafe"

	"github.com/rise-interp/rise/internal/memory"
	"github.com/rise-interp/rise/internal/safetensors"
)

// Options choose the precision a model's weight matrices are held in.
// The zero value holds each as stored: BF16 and F16 safetensors stay 16-bit,
// F32 and F64 ones and llama2.c checkpoints are float32.
type Options struct {
	// DType, when SetDType is true, holds every weight matrix in this
	// precision (F32, BF16 or F16) whatever the file stores.
	DType    DType
	SetDType bool
	// Quant quantises every weight matrix to Q8 at load (it overrides
	// DType).
	Quant bool
}

// target is the precision a matrix stored as dtype is held in.
func (o Options) target(stored string) DType {
	switch {
	case o.Quant:
		return Q8
	case o.SetDType:
		return o.DType
	case stored == safetensors.BF16:
		return BF16
	case stored == safetensors.F16:
		return F16
	}
	return F32
}

// apply converts a model loaded in float32 to the options' precision.
func (o Options) apply(m *Model) {
	if d := o.target(safetensors.F32); d != F32 {
		m.Convert(d)
	}
}

// slabs holds readMatrix's conversion buffers.
var slabs sync.Pool

// readMatrix reads a [rows, cols] tensor of st into the precision the
// options give it. A 16-bit tensor kept at its precision is read into the
// matrix's own memory, a float32 one as before; any other conversion reads
// a slab of rows at a time as float32 and rounds it into the matrix.
func readMatrix(st *safetensors.File, name string, rows, cols int, o Options) (Matrix, error) {
	stored, _ := st.DType(name)
	d := o.target(stored)
	if (d == BF16 && stored == safetensors.BF16) || (d == F16 && stored == safetensors.F16) {
		h := make([]uint16, rows*cols)
		if len(h) > 0 {
			if err := st.ReadRaw(name, unsafe.Slice((*byte)(unsafe.Pointer(&h[0])), 2*len(h))); err != nil {
				return Matrix{}, err
			}
		}
		if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
			// The file is little-endian; this machine is not.
			for i, v := range h {
				h[i] = v>>8 | v<<8
			}
		}
		return Matrix{Rows: rows, Cols: cols, DType: d, Half: h}, nil
	}
	if d == F32 {
		t, err := st.Read(name)
		if err != nil {
			return Matrix{}, err
		}
		return NewMatrix(rows, cols, t.Data), nil
	}
	// Converted a slab of rows at a time, so that no float32 copy of the
	// whole tensor is ever held; the slab is reused from tensor to tensor,
	// so that loading leaves no garbage for the heap to grow over (a
	// fresh slab per tensor left 100 MB of it beside a 556 MB Q8 model).
	w := newMatrix(rows, cols, d)
	per := max(1, (1<<18)/max(1, cols))
	p, _ := slabs.Get().(*[]float32)
	if p == nil {
		p = new([]float32)
	}
	defer slabs.Put(p)
	*p = grow(*p, min(rows, per)*cols)
	buf := *p
	for r0 := 0; r0 < rows; r0 += per {
		r1 := min(rows, r0+per)
		slab := buf[:(r1-r0)*cols]
		if err := st.ReadFloats(name, slab, int64(r0)*int64(cols)); err != nil {
			return Matrix{}, err
		}
		for r := r0; r < r1; r++ {
			w.setRow(r, slab[(r-r0)*cols:(r-r0+1)*cols])
		}
	}
	return w, nil
}

// checkHFMemory refuses a model whose weights, at the precision they
// will be held in, do not fit in the memory available.
func checkHFMemory(dir string, tensors map[string]*safetensors.File, o Options) error {
	var need uint64
	for name, st := range tensors {
		shape, _ := st.Shape(name)
		n := uint64(1)
		for _, s := range shape {
			n = memory.Product(n, uint64(s))
		}
		stored, _ := st.DType(name)
		per := uint64(4)
		if len(shape) == 2 {
			switch o.target(stored) {
			case BF16, F16:
				per = 2
			case Q8:
				per = 1 // plus a scale per block, below
				n = memory.Sum(n, n/Q8Block*4)
			}
		}
		need = memory.Sum(need, memory.Product(per, n))
	}
	avail, source := memory.Available()
	return memory.Check(need, avail, source, fmt.Sprintf("load %s: its weights", dir))
}

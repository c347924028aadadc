package activations

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/x448/float16"
)

// DType is the element type of stored activations.
type DType int

// The element types a dump may hold.
const (
	Float32 DType = iota
	Float16
)

// Size returns the size of one element in bytes.
func (d DType) Size() int {
	if d == Float16 {
		return 2
	}
	return 4
}

// String returns "float32" or "float16".
func (d DType) String() string {
	if d == Float16 {
		return "float16"
	}
	return "float32"
}

// ParseDType reads "float32"/"f4" or "float16"/"f2".
func ParseDType(s string) (DType, error) {
	switch s {
	case "float32", "f4", "fp32":
		return Float32, nil
	case "float16", "f2", "fp16", "half":
		return Float16, nil
	}
	return 0, fmt.Errorf("unknown dtype %q: expected float32 or float16", s)
}

// decodeRow converts raw little- or big-endian bytes of n elements into dst.
// Float16 uses IEEE 754 half precision with subnormals, as numpy does.
func decodeRow(dst []float32, raw []byte, dt DType, order binary.ByteOrder) {
	switch dt {
	case Float32:
		for i := range dst {
			dst[i] = math.Float32frombits(order.Uint32(raw[4*i:]))
		}
	case Float16:
		for i := range dst {
			dst[i] = float16.Frombits(order.Uint16(raw[2*i:])).Float32()
		}
	}
}

// encodeRow writes src as little-endian elements of type dt into raw.
// Float16 rounds to nearest even, as numpy's astype does.
func encodeRow(raw []byte, src []float32, dt DType) {
	switch dt {
	case Float32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	case Float16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(raw[2*i:], float16.Fromfloat32(v).Bits())
		}
	}
}

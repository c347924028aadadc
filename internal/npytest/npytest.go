// Package npytest writes .npy files by hand, well formed or not, for the
// tests of the readers of activation dumps, SAE weights and steering
// vectors. Only tests import it.
package npytest

import (
	"encoding/binary"
	"fmt"
	"math"
)

// File encodes a version 1.0 .npy file: descr such as "<f4", the shape as
// Python writes it ("(3,)", "(2, 3)") and the raw data.
func File(descr string, fortran bool, shape string, data []byte) []byte {
	f := "False"
	if fortran {
		f = "True"
	}
	return FromDict(fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, f, shape), data)
}

// FromDict encodes a version 1.0 .npy file whose header is dict as given,
// padded with spaces and a newline to a multiple of 64 bytes as numpy pads
// it, followed by the raw data: headers File cannot write, such as broken
// or unusually spaced ones.
func FromDict(dict string, data []byte) []byte {
	h := []byte(dict)
	for (10+len(h)+1)%64 != 0 {
		h = append(h, ' ')
	}
	h = append(h, '\n')
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h)))
	b = append(b, h...)
	return append(b, data...)
}

// Float64s returns x as little-endian float64 bytes, the data of an "<f8"
// array.
func Float64s(x ...float64) []byte {
	b := make([]byte, 8*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return b
}

// Float32s returns x as little-endian float32 bytes, the data of a "<f4"
// array.
func Float32s(x ...float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

package npytest

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestFile: the header is padded to 64 bytes with its length in the
// preamble, and the data follows it.
func TestFile(t *testing.T) {
	b := File("<f4", false, "(2,)", Float32s(1, -2))
	want := "\x93NUMPY\x01\x00" + "\x76\x00" + "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
	if !bytes.HasPrefix(b, []byte(want)) {
		t.Fatalf("header %q, want it to start %q", b[:len(want)], want)
	}
	if len(b) != 128+8 || b[127] != '\n' || binary.LittleEndian.Uint16(b[8:]) != 118 {
		t.Fatalf("%d bytes, header ends %q", len(b), b[120:128])
	}
	if !bytes.Equal(b[128:], []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}) {
		t.Errorf("data % x", b[128:])
	}
	if f := File("<f4", true, "(2,)", nil); !bytes.Contains(f, []byte("'fortran_order': True")) {
		t.Errorf("fortran order: %q", f)
	}
}

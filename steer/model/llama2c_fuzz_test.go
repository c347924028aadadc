package model

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadLlama2C feeds damaged llama2.c checkpoints to the loader: it
// must return a model or an error, never panic or allocate without bound.
func FuzzLoadLlama2C(f *testing.F) {
	hdr := func(v ...int32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
		}
		return b
	}
	f.Add(hdr(8, 16, 1, 2, 2, 10, 4))
	f.Add(append(hdr(8, 16, 1, 2, 2, 10, 4), make([]byte, 4*400)...))
	f.Add(append(hdr(0x616b3432, 1, 8, 16, 1, 2, 2, 10, 4), make([]byte, 300)...))
	f.Add(hdr(1<<30, 1<<30, 1<<20, 1, 1, -(1 << 30), 1<<30))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		p := filepath.Join(dir, "m.bin")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := LoadLlama2C(p)
		if err == nil && (m.Dim < 1 || m.Embed.Len() != m.Vocab*m.Dim) {
			t.Fatalf("a model with dim %d and %d embedding values was accepted", m.Dim, m.Embed.Len())
		}
	})
}

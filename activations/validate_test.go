package activations

import (
	"archive/zip"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/npytest"
)

func shard0(dir string) string { return filepath.Join(dir, "layer3-00000.npy") }

func rewrite(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A damage breaks a dump and returns what the error must name.
type damage func(t *testing.T, dir string) string

// writeShard0 replaces the first shard of layer 3 with b.
func writeShard0(b []byte) damage {
	return func(t *testing.T, dir string) string {
		os.WriteFile(shard0(dir), b, 0o644)
		return shard0(dir)
	}
}

// rewriteShard0 rewrites the first shard of layer 3 with f.
func rewriteShard0(f func([]byte) []byte) damage {
	return func(t *testing.T, dir string) string {
		rewrite(t, shard0(dir), f)
		return shard0(dir)
	}
}

// replaceStepsLine replaces line n (from 1) of steps.jsonl with text; the
// error must name the file and the line, as in "steps.jsonl:7".
func replaceStepsLine(n int, text string) damage {
	return func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "steps.jsonl")
		rewrite(t, p, func(b []byte) []byte {
			lines := strings.SplitAfter(string(b), "\n")
			lines[n-1] = text
			return []byte(strings.Join(lines, ""))
		})
		return p + ":" + strconv.Itoa(n)
	}
}

// TestBrokenDumps damages a good dump in one way per case and checks that
// inspecting it fails with a short error naming the damaged file and saying
// what is wrong, and never panics.
func TestBrokenDumps(t *testing.T) {
	cases := []struct {
		name   string
		damage damage
		want   string
	}{
		{"steps line missing", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "steps.jsonl")
			rewrite(t, p, func(b []byte) []byte { return b[:strings.LastIndexByte(string(b[:len(b)-1]), '\n')+1] })
			return p
		}, "row count mismatch: 39 steps, but layer 3 has 40 rows"},
		{"layer rows differ", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "layer5-00000.npy")
			os.WriteFile(p, npytest.FromDict("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }", npytest.Float32s(1, 2, 3, 4)), 0o644)
			return dir
		}, "row count mismatch: layer 3 has 40 rows, layer 5 has"},
		{"d_model mismatch", writeShard0(npytest.FromDict("{'descr': '<f4', 'fortran_order': False, 'shape': (16, 5), }", make([]byte, 16*5*4))), "d_model mismatch: expected 4 columns, found shape (16, 5)"},
		{"float64", writeShard0(npytest.FromDict("{'descr': '<f8', 'fortran_order': False, 'shape': (16, 4), }", make([]byte, 16*4*8))), "unsupported dtype <f8 (float64)"},
		{"int32", writeShard0(npytest.FromDict("{'descr': '<i4', 'fortran_order': False, 'shape': (16, 4), }", make([]byte, 16*4*4))), "unsupported dtype <i4 (int32)"},
		{"fortran order", writeShard0(npytest.FromDict("{'descr': '<f4', 'fortran_order': True, 'shape': (16, 4), }", make([]byte, 16*4*4))), "Fortran (column-major) order"},
		{"three dimensions", writeShard0(npytest.FromDict("{'descr': '<f4', 'fortran_order': False, 'shape': (16, 2, 2), }", make([]byte, 16*4*4))), "expected two dimensions"},
		{"truncated data", rewriteShard0(func(b []byte) []byte { return b[:len(b)-10] }), "truncated: the header says 16 rows"},
		{"trailing bytes", rewriteShard0(func(b []byte) []byte { return append(b, 1, 2, 3) }), "corrupt: the header says 16 rows of 4 float32 values (256 bytes of data), but 3 more bytes follow"},
		{"truncated header", rewriteShard0(func(b []byte) []byte { return b[:40] }), "truncated .npy header"},
		{"empty file", writeShard0(nil), "not a .npy file"},
		{"bad magic", rewriteShard0(func(b []byte) []byte { b[1] = 'X'; return b }), "not a .npy file: expected the magic bytes"},
		{"absurd header length v2", writeShard0([]byte{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0x7f}), "absurd .npy header: length 2147483647 bytes"},
		{"absurd shape", writeShard0(npytest.FromDict("{'descr': '<f4', 'fortran_order': False, 'shape': (999999999999999, 4), }", nil)), "absurd .npy header: shape (999999999999999, 4) is over a petabyte"},
		{"negative shape", writeShard0(npytest.FromDict("{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 4), }", nil)), "absurd .npy header: shape (-3, 4)"},
		{"header not a dict", writeShard0(npytest.FromDict("hello world", nil)), "corrupt .npy header: expected a Python dict literal"},
		{"header key missing", writeShard0(npytest.FromDict("{'descr': '<f4', 'shape': (16, 4), }", make([]byte, 256))), "key 'fortran_order' is missing"},
		{"header shape garbage", writeShard0(npytest.FromDict("{'descr': '<f4', 'fortran_order': False, 'shape': (16, x), }", make([]byte, 256))), "corrupt .npy header"},
		{"missing shard", func(t *testing.T, dir string) string {
			os.Remove(shard0(dir))
			return filepath.Join(dir, "manifest.json")
		}, "layer 3: shard layer3-00000.npy is missing"},
		{"missing manifest", func(t *testing.T, dir string) string {
			os.Remove(filepath.Join(dir, "manifest.json"))
			return dir
		}, "manifest.json is missing"},
		{"malformed manifest", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "manifest.json")
			rewrite(t, p, func(b []byte) []byte { return b[:len(b)/2] })
			return p
		}, "malformed JSON"},
		{"manifest d_model wrong", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "manifest.json")
			rewrite(t, p, func(b []byte) []byte { return []byte(strings.Replace(string(b), `"d_model": 4`, `"d_model": 8`, 1)) })
			return shard0(dir)
		}, "d_model mismatch: expected 8 columns"},
		{"shard outside dump", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "manifest.json")
			rewrite(t, p, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `"layer3-00000.npy"`, `"../../etc/passwd"`, 1))
			})
			return p
		}, "must be a file name inside the dump directory"},
		{"malformed steps line", replaceStepsLine(7, "{\"trace\": \"x\", oops}\n"), "malformed JSON"},
		{"steps field wrong type", replaceStepsLine(3, "{\"trace\": \"x\", \"step\": \"two\"}\n"), `field "step": expected an integer, found "two"`},
		{"steps blank line", replaceStepsLine(4, "\n"), "empty line"},
		{"NaN value", rewriteShard0(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[npyHeaderSize+4*(5*4+2):], math.Float32bits(float32(math.NaN())))
			return b
		}), "row 5 (layer row 5), column 2: value NaN is not finite"},
		{"Inf value in second shard", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "layer3-00001.npy")
			rewrite(t, p, func(b []byte) []byte {
				binary.LittleEndian.PutUint32(b[npyHeaderSize+4*(3*4+0):], math.Float32bits(float32(math.Inf(-1))))
				return b
			})
			return p
		}, "row 3 (layer row 19), column 0: value -Inf is not finite"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := testDump(t, 40, 4, []int{3, 5}, 16, Float32)
			file := c.damage(t, dir)
			_, err := Inspect(context.Background(), dir, InspectOptions{Stats: true})
			if err == nil {
				t.Fatalf("no error for a dump with %s", c.name)
			}
			msg := err.Error()
			if !strings.Contains(msg, file) || !strings.Contains(msg, c.want) {
				t.Errorf("error\n  %s\nwant one naming %s and saying %q", msg, file, c.want)
			}
			if strings.Contains(msg, "\n") || len(msg) > 400 {
				t.Errorf("error is not one short line: %q", msg)
			}
		})
	}
}

func TestOpenBareNpyAndNpz(t *testing.T) {
	dir := t.TempDir()
	rows := []float32{1, 2, 3, 4, 5, 6}
	// A header the way other writers lay it out: no spaces, no trailing comma.
	p := filepath.Join(dir, "layer14.npy")
	os.WriteFile(p, npytest.FromDict("{'descr':'<f4','fortran_order':False,'shape':(3,2)}", npytest.Float32s(rows...)), 0o644)
	os.WriteFile(filepath.Join(dir, "steps.jsonl"), []byte("{\"trace\":\"a\",\"step\":0}\n{\"trace\":\"a\",\"step\":1}\n{\"trace\":\"a\",\"step\":2}\n"), 0o644)
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != KindNpy || d.Rows != 3 || d.DModel != 2 || d.Layers[0].Number != 14 || d.StepsPath == "" {
		t.Fatalf("bare npy opened as kind %s, %d rows, d_model %d, layer %d, steps %q", d.Kind, d.Rows, d.DModel, d.Layers[0].Number, d.StepsPath)
	}
	got := make([]float32, 6)
	if err := d.Layers[0].ReadRows(0, got); err != nil || got[5] != 6 {
		t.Fatalf("ReadRows: %v %v", got, err)
	}
	d.Close()

	for _, method := range []uint16{zip.Store, zip.Deflate} {
		z := filepath.Join(dir, "acts.npz")
		f, _ := os.Create(z)
		zw := zip.NewWriter(f)
		for _, m := range []struct {
			name string
			off  float32
		}{{"blocks.20.hook_resid_post.npy", 100}, {"blocks.4.hook_resid_post.npy", 0}} {
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: method})
			x := make([]float32, 6)
			for i := range x {
				x[i] = rows[i] + m.off
			}
			w.Write(npytest.FromDict("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", npytest.Float32s(x...)))
		}
		zw.Close()
		f.Close()
		d, err := Open(z)
		if err != nil {
			t.Fatalf("method %d: %v", method, err)
		}
		if d.Kind != KindNpz || len(d.Layers) != 2 || d.Layers[0].Number != 4 || d.Layers[1].Number != 20 {
			t.Fatalf("npz opened as %s with layers %v", d.Kind, d.LayerNumbers())
		}
		it := d.Layer(20).Batches(BatchOptions{Size: 2, Shuffle: true, Seed: 3, ChunkRows: 1})
		sum := float32(0)
		for it.Next(context.Background()) {
			for _, v := range it.X() {
				sum += v
			}
		}
		if it.Err() != nil || sum != 621 {
			t.Errorf("method %d: shuffled sum %v (err %v), want 621", method, sum, it.Err())
		}
		d.Close()
	}
}

func FuzzNpyHeader(f *testing.F) {
	f.Add(npytest.FromDict("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", nil))
	f.Add(npytest.FromDict("{'descr':'<f2','fortran_order':False,'shape':(3,2)}", nil))
	f.Add([]byte{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 10, 0, 0, 0, '{', '}', '\n'})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := readNpyHeader(strings.NewReader(string(b)))
		if err == nil && (a.Rows < 0 || a.Cols <= 0) {
			t.Fatalf("accepted shape (%d, %d)", a.Rows, a.Cols)
		}
	})
}

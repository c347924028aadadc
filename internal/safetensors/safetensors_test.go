package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stTestTensors is a small set of tensors with awkward values: negative,
// tiny (subnormal in float16), zero-sized and scalar.
func stTestTensors() []Tensor {
	w := make([]float32, 3*5)
	for i := range w {
		w[i] = float32(math.Sin(float64(i)*1.7)) * float32(i+1)
	}
	return []Tensor{
		{Name: "zeta", Shape: []int{3, 5}, Data: w},
		{Name: "alpha", Shape: []int{4}, Data: []float32{1, -2.5, 1e-6, 0}},
		{Name: "empty", Shape: []int{0, 7}, Data: []float32{}},
		{Name: "scalar", Shape: []int{}, Data: []float32{42}},
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		dtype string
		rel   float64 // relative precision of the dtype
		abs   float64 // absolute precision near zero (subnormals)
	}{
		{F32, 0, 0},
		{F16, 1.0 / 2048, 6e-8},
		{BF16, 1.0 / 256, 1e-38},
	} {
		t.Run(tc.dtype, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.safetensors")
			in := stTestTensors()
			if err := Write(path, in, tc.dtype, map[string]string{"note": "rise"}); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			n := binary.LittleEndian.Uint64(raw)
			if (8+n)%8 != 0 {
				t.Errorf("header of %d bytes leaves the data unaligned: expected 8+N to be a multiple of 8", n)
			}
			hdr := string(raw[8 : 8+n])
			if !strings.HasSuffix(strings.TrimRight(hdr, " "), "}") || strings.TrimRight(hdr, " ") != strings.TrimSpace(hdr) {
				t.Errorf("header %q: expected JSON padded with trailing spaces", hdr)
			}
			// Tensors are laid out sorted by name.
			if a, e, s, z := strings.Index(hdr, `"alpha"`), strings.Index(hdr, `"empty"`), strings.Index(hdr, `"scalar"`), strings.Index(hdr, `"zeta"`); !(a < e && e < s && s < z) {
				t.Errorf("header %q: expected tensors sorted by name", hdr)
			}

			got, meta, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if meta["format"] != "pt" || meta["note"] != "rise" {
				t.Errorf("metadata %v: expected format pt and note rise", meta)
			}
			if len(got) != len(in) {
				t.Fatalf("read %d tensors, wrote %d", len(got), len(in))
			}
			for _, w := range in {
				g, ok := got[w.Name]
				if !ok {
					t.Fatalf("tensor %s missing", w.Name)
				}
				if fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) || g.Name != w.Name {
					t.Errorf("%s: shape %v, want %v", w.Name, g.Shape, w.Shape)
				}
				if len(g.Data) != len(w.Data) {
					t.Fatalf("%s: %d values, want %d", w.Name, len(g.Data), len(w.Data))
				}
				for i := range w.Data {
					d := math.Abs(float64(g.Data[i]) - float64(w.Data[i]))
					if d > tc.rel*math.Abs(float64(w.Data[i]))+tc.abs {
						t.Errorf("%s[%d] = %g, want %g within %s precision", w.Name, i, g.Data[i], w.Data[i], tc.dtype)
					}
				}
			}
		})
	}
}

// TestSafetensorsHandBuilt reads a file assembled byte by byte, independent
// of the writer: header JSON in an unsorted order with the metadata last, and
// known F32, F16 (including a subnormal) and BF16 bit patterns.
func TestSafetensorsHandBuilt(t *testing.T) {
	var data []byte
	for _, v := range []float32{1.5, -2, 0.1} {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	// F16: 1.0, -2.0, 65504 (largest), 2^-24 (smallest subnormal), 2^-14 * 0.5 (subnormal)
	for _, b := range []uint16{0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0200} {
		data = binary.LittleEndian.AppendUint16(data, b)
	}
	// BF16: 1.5, -123.5
	for _, b := range []uint16{0x3FC0, 0xC2F7} {
		data = binary.LittleEndian.AppendUint16(data, b)
	}
	hdr := `{"w32":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},` +
		`"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[22,26]},` +
		`"h":{"shape":[5],"dtype":"F16","data_offsets":[12,22]},` +
		`"__metadata__":{"format":"pt","source":"hand"}}  `
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	file = append(file, hdr...)
	file = append(file, data...)
	path := filepath.Join(t.TempDir(), "hand.safetensors")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	got, meta, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["source"] != "hand" {
		t.Errorf("metadata %v: expected source hand", meta)
	}
	want := map[string][]float32{
		"w32": {1.5, -2, 0.1},
		"h":   {1, -2, 65504, float32(math.Ldexp(1, -24)), float32(math.Ldexp(1, -15))},
		"b":   {1.5, -123.5},
	}
	for name, w := range want {
		g := got[name].Data
		if len(g) != len(w) {
			t.Fatalf("%s: %v, want %v", name, g, w)
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s[%d] = %g, want %g", name, i, g[i], w[i])
			}
		}
	}
	if fmt.Sprint(got["b"].Shape) != "[1 2]" {
		t.Errorf("b has shape %v, want [1 2]", got["b"].Shape)
	}
}

func TestSafetensorsRounding(t *testing.T) {
	// bfloat16 keeps 7 mantissa bits; ties go to the even neighbour.
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3F80},
		{1 + 1.0/256, 0x3F80},        // tie between 1 and 1+2^-7: to even (1)
		{1 + 3.0/256, 0x3F82},        // tie between 1+2^-7 and 1+2^-6: to even
		{1 + 1.0/256 + 1e-6, 0x3F81}, // just above the tie: up
		{-1.5, 0xBFC0},
		{float32(math.Inf(1)), 0x7F80},
	}
	for _, c := range cases {
		if got := float32ToBF16(c.in); got != c.want {
			t.Errorf("bfloat16(%v) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if got := float32ToBF16(float32(math.NaN())); got&0x7F80 != 0x7F80 || got&0x7F == 0 {
		t.Errorf("bfloat16(NaN) = %#04x, want a NaN", got)
	}
	// float16: 1 + 2^-11 is a tie between 1 and 1+2^-10.
	data, err := Encode([]Tensor{{Name: "x", Shape: []int{2}, Data: []float32{1 + 1.0/2048, 1 + 3.0/2048}}}, F16, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(data)
	body := data[8+n:]
	if a, b := binary.LittleEndian.Uint16(body), binary.LittleEndian.Uint16(body[2:]); a != 0x3C00 || b != 0x3C02 {
		t.Errorf("float16 ties: got %#04x %#04x, want 0x3c00 0x3c02", a, b)
	}

	// Values that do not fit are refused rather than saved as infinities.
	for _, dt := range []string{F16, BF16} {
		v := float32(1e6)
		if dt == BF16 {
			v = math.MaxFloat32
		}
		_, err := Encode([]Tensor{{Name: "big", Shape: []int{1}, Data: []float32{v}}}, dt, nil)
		if err == nil || !strings.Contains(err.Error(), "big") || !strings.Contains(err.Error(), "overflows") {
			t.Errorf("%s: encoding %g: got %v, want an overflow error naming the tensor", dt, v, err)
		}
	}
}

func TestSafetensorsWriteErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tensors []Tensor
		dtype   string
		want    string
	}{
		{"size", []Tensor{{Name: "a", Shape: []int{2, 2}, Data: []float32{1}}}, "F32", "shape [2 2] (4 elements) but 1 values"},
		{"dup", []Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{2}}}, "F32", "twice"},
		{"meta", []Tensor{{Name: "__metadata__", Shape: []int{1}, Data: []float32{1}}}, "F32", "__metadata__"},
		{"dtype", []Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}}, "I64", "unsupported dtype"},
	} {
		path := filepath.Join(t.TempDir(), "w.safetensors")
		err := Write(path, tc.tensors, tc.dtype, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: got %v, want an error naming %s and saying %q", tc.name, err, path, tc.want)
		}
		if _, serr := os.Stat(path); serr == nil {
			t.Errorf("%s: a file was left behind after a failed write", tc.name)
		}
	}
}

// stBytes builds a safetensors file from a header and a data buffer.
func stBytes(hdr string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, data...)
}

func TestSafetensorsBadInputs(t *testing.T) {
	good, err := Encode(stTestTensors(), F32, nil)
	if err != nil {
		t.Fatal(err)
	}
	eight := make([]byte, 8)
	absurd := binary.LittleEndian.AppendUint64(nil, 1<<40)
	absurd = append(absurd, "{}"...)
	past := binary.LittleEndian.AppendUint64(nil, 1000)
	past = append(past, `{"a":1}`...)

	cases := []struct {
		name string
		file []byte
		want []string // substrings of the error besides the path
	}{
		{"empty", nil, []string{"at least 8"}},
		{"short", []byte{1, 2, 3}, []string{"at least 8"}},
		{"zero header", eight, []string{"header length 0"}},
		{"absurd header length", absurd, []string{"absurd header length"}},
		{"header past EOF", past, []string{"runs past the end of the file"}},
		{"malformed JSON", stBytes(`{"a": {"dtype": "F32",`, nil), []string{"malformed header JSON"}},
		{"not an object", stBytes(`["a"]   `, nil), []string{"expected a JSON object"}},
		{"trailing JSON", stBytes(`{} {}`, nil), []string{"malformed header JSON"}},
		{"invalid UTF-8", stBytes("{\"\xff\":1}", nil), []string{"UTF-8"}},
		{"entry not an object", stBytes(`{"a":3}`, nil), []string{`"a"`}},
		{"missing offsets", stBytes(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), []string{`"a"`, "no data_offsets"}},
		{"missing dtype", stBytes(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{`"a"`, "no dtype"}},
		{"three offsets", stBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, make([]byte, 4)), []string{`"a"`, "expected 2"}},
		{"negative offset", stBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, make([]byte, 4)), []string{`"a"`, "begin <= end"}},
		{"reversed offsets", stBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, make([]byte, 4)), []string{`"a"`, "begin <= end"}},
		{"offsets out of buffer", stBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), []string{`"a"`, "past the end of the data buffer"}},
		{"overlapping offsets", stBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), []string{`"b"`, "overlap", `"a"`}},
		{"hole between tensors", stBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), []string{`"b"`, "hole"}},
		{"hole at start", stBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), []string{`"a"`, "unused"}},
		{"bytes after last tensor", stBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 8)), []string{"no bytes after the last tensor"}},
		{"shape size mismatch", stBytes(`{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}`, make([]byte, 16)), []string{`"a"`, "shape [2 3]", "16 bytes"}},
		{"huge shape", stBytes(`{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{`"a"`, "needs more than"}},
		{"negative shape", stBytes(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{`"a"`, "non-negative"}},
		{"duplicate names", stBytes(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), []string{`"a"`, "twice"}},
		{"unknown dtype", stBytes(`{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), []string{`"a"`, "unknown dtype"}},
		{"wrong dtype I64", stBytes(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)), []string{`"a"`, "I64", "expected F32, F16, BF16"}},
		{"metadata not strings", stBytes(`{"__metadata__":{"n":1}}`, nil), []string{"__metadata__", `"n"`}},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("bad%d.safetensors", i))
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := Read(path)
			if err == nil {
				t.Fatalf("no error for %s", tc.name)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file %s", msg, path)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}

	// A file cut anywhere is refused, never misread.
	for cut := 0; cut < len(good); cut += max(1, len(good)/60) {
		path := filepath.Join(dir, fmt.Sprintf("cut%d.safetensors", cut))
		if err := os.WriteFile(path, good[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Read(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("file cut at %d of %d bytes: got %v, want an error naming the file", cut, len(good), err)
		}
	}

	missing := filepath.Join(dir, "nope.safetensors")
	if _, _, err := Read(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: got %v, want an error naming it", err)
	}
}

// FuzzRead feeds arbitrary bytes to the reader: it must return
// an error or consistent tensors, never panic or allocate past the input.
func FuzzRead(f *testing.F) {
	good, err := Encode(stTestTensors(), BF16, map[string]string{"k": "v"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(stBytes(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add(stBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseSafetensors("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		ts, _, err := st.readAll()
		if err != nil {
			return
		}
		total := 0
		for name, tn := range ts {
			n := 1
			for _, d := range tn.Shape {
				n *= d
			}
			if n != len(tn.Data) {
				t.Fatalf("tensor %s: shape %v but %d values", name, tn.Shape, len(tn.Data))
			}
			total += len(tn.Data)
		}
		if total > len(data) {
			t.Fatalf("read %d values from %d bytes", total, len(data))
		}
		// What was read must survive a write and a second read.
		var list []Tensor
		for _, tn := range ts {
			if tn.Name == "" {
				return // the writer refuses empty names
			}
			list = append(list, tn)
		}
		again, err := Encode(list, F32, nil)
		if err != nil {
			t.Fatalf("re-encoding what was read: %v", err)
		}
		st2, err := parseSafetensors("again", bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-reading what was written: %v", err)
		}
		if _, _, err := st2.readAll(); err != nil {
			t.Fatalf("re-reading what was written: %v", err)
		}
	})
}

// TestReadRaw reads tensors' bytes as stored: a BF16 file's bytes are
// the bfloat16 bit patterns Read widens, and a buffer of the wrong size
// or a missing name is refused.
func TestReadRaw(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	w := Tensor{Name: "w", Shape: []int{2, 3}, Data: []float32{1, -2.5, 0.1, 3e-3, 7, -0}}
	if err := Write(path, []Tensor{w}, BF16, nil); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if d, ok := st.DType("w"); !ok || d != BF16 {
		t.Fatalf("DType(w) = %q, %v", d, ok)
	}
	raw := make([]byte, 12)
	if err := st.ReadRaw("w", raw); err != nil {
		t.Fatal(err)
	}
	wide, err := st.Read("w")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range wide.Data {
		if got := math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16); got != v {
			t.Errorf("value %d: raw bytes give %g, Read %g", i, got, v)
		}
	}
	if err := st.ReadRaw("w", make([]byte, 10)); err == nil || !strings.Contains(err.Error(), "expected a buffer of its 12 bytes, found 10") {
		t.Errorf("short buffer: %v", err)
	}
	if err := st.ReadRaw("v", raw); err == nil || !strings.Contains(err.Error(), `no tensor "v"`) {
		t.Errorf("missing tensor: %v", err)
	}
	if _, ok := st.DType("v"); ok {
		t.Errorf("DType of a missing tensor")
	}
	part := make([]float32, 3)
	if err := st.ReadFloats("w", part, 2); err != nil {
		t.Fatal(err)
	}
	for i, v := range part {
		if v != wide.Data[2+i] {
			t.Errorf("ReadFloats element %d: %g, Read %g", 2+i, v, wide.Data[2+i])
		}
	}
	if err := st.ReadFloats("w", part, 4); err == nil || !strings.Contains(err.Error(), "elements [4, 7) asked for, expected a range within its 6") {
		t.Errorf("range past the end: %v", err)
	}
}

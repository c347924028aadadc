package steer

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// ggufGoldenHex is the file for
//
//	ControlVector{ModelHint: "llama", Layers: {1: {1, -2}, 3: {0.5, 0}}}
//
// derived by hand from the GGUF spec (docs/gguf.md, ggml-org/ggml), section
// by section, with the byte offset of each section on the left.
const ggufGoldenHex = `
000: 47475546                 magic "GGUF"
004: 03000000                 version 3
008: 0200000000000000         tensor_count 2
016: 0300000000000000         metadata_kv_count 3

024: 1400000000000000         key length 20
032: 67656e6572616c2e617263686974656374757265   "general.architecture"
052: 08000000                 value type 8 = string
056: 0d00000000000000         value length 13
064: 636f6e74726f6c766563746f72                 "controlvector"

077: 1800000000000000         key length 24
085: 636f6e74726f6c766563746f722e6d6f64656c5f68696e74   "controlvector.model_hint"
109: 08000000                 value type 8 = string
113: 0500000000000000         value length 5
121: 6c6c616d61               "llama"

126: 1900000000000000         key length 25
134: 636f6e74726f6c766563746f722e6c617965725f636f756e74 "controlvector.layer_count"
159: 04000000                 value type 4 = uint32
163: 02000000                 2 directions

167: 0b00000000000000         name length 11
175: 646972656374696f6e2e31   "direction.1"
186: 01000000                 n_dimensions 1
190: 0200000000000000         dimension 0 = 2
198: 00000000                 type 0 = F32
202: 0000000000000000         offset 0

210: 0b00000000000000         name length 11
218: 646972656374696f6e2e33   "direction.3"
229: 01000000                 n_dimensions 1
233: 0200000000000000         dimension 0 = 2
241: 00000000                 type 0 = F32
245: 2000000000000000         offset 32 (8 bytes padded to 32)

253: 000000                   padding to 256, a multiple of 32

256: 0000803f 000000c0        direction.1 = 1.0, -2.0
264: 000000000000000000000000000000000000000000000000   padding to 288
288: 0000003f 00000000        direction.3 = 0.5, 0.0
296: 000000000000000000000000000000000000000000000000   padding to 320
`

// ggufGolden decodes ggufGoldenHex, checking each line's offset label.
func ggufGolden(t testing.TB) []byte {
	t.Helper()
	var b []byte
	for _, line := range strings.Split(ggufGoldenHex, "\n") {
		label, rest, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		off, err := strconv.Atoi(label)
		if err != nil || off != len(b) {
			t.Fatalf("golden line %q: offset label %q, but %d bytes precede it", line, label, len(b))
		}
		for _, f := range strings.Fields(rest) {
			p, err := hex.DecodeString(f)
			if err != nil {
				break // the comment
			}
			b = append(b, p...)
		}
	}
	return b
}

var ggufGoldenCV = ControlVector{ModelHint: "llama", Layers: map[int][]float32{1: {1, -2}, 3: {0.5, 0}}}

func TestGGUFGolden(t *testing.T) {
	want := ggufGolden(t)
	if len(want) != 320 {
		t.Fatalf("golden file is %d bytes, want 320", len(want))
	}
	var buf bytes.Buffer
	if err := WriteGGUF(&buf, ggufGoldenCV); err != nil {
		t.Fatal(err)
	}
	if got := buf.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("WriteGGUF differs from the golden file\ngot:\n%s\nwant:\n%s", hex.Dump(got), hex.Dump(want))
	}
	got, err := ReadGGUFControlVector(bytes.NewReader(want), int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ggufGoldenCV) {
		t.Fatalf("read %+v, want %+v", got, ggufGoldenCV)
	}
}

// specFile is a GGUF file as specParse sees it.
type specFile struct {
	version   uint32
	kvs       []specKV
	tensors   []specTensor
	dataStart int
}

type specKV struct {
	key string
	typ uint32
	val any // string or uint32, the only types a control vector uses
}

type specTensor struct {
	name   string
	dims   []uint64
	typ    uint32
	offset uint64
}

// specParse is a parser written straight from docs/gguf.md, independent of
// ReadGGUFControlVector, that checks the padding rules as it goes.
func specParse(t *testing.T, b []byte) specFile {
	t.Helper()
	pos := 0
	take := func(n int) []byte {
		t.Helper()
		if n < 0 || pos+n > len(b) {
			t.Fatalf("spec parser: need %d bytes at offset %d, file has %d", n, pos, len(b))
		}
		p := b[pos : pos+n]
		pos += n
		return p
	}
	u32 := func() uint32 { return binary.LittleEndian.Uint32(take(4)) }
	u64 := func() uint64 { return binary.LittleEndian.Uint64(take(8)) }
	str := func() string { n := u64(); return string(take(int(n))) }

	var f specFile
	if m := string(take(4)); m != "GGUF" {
		t.Fatalf("magic %q, want GGUF", m)
	}
	f.version = u32()
	nTensors, nKV := u64(), u64()
	for range nKV {
		kv := specKV{key: str(), typ: u32()}
		switch kv.typ {
		case 8:
			kv.val = str()
		case 4:
			kv.val = u32()
		default:
			t.Fatalf("key %q has value type %d; a control vector uses only 4 and 8", kv.key, kv.typ)
		}
		f.kvs = append(f.kvs, kv)
	}
	for range nTensors {
		ti := specTensor{name: str()}
		nd := u32()
		for range nd {
			ti.dims = append(ti.dims, u64())
		}
		ti.typ, ti.offset = u32(), u64()
		f.tensors = append(f.tensors, ti)
	}
	f.dataStart = (pos + 31) / 32 * 32
	for i, c := range take(f.dataStart - pos) {
		if c != 0 {
			t.Fatalf("padding byte %d before the data is %#x, want 0", pos-f.dataStart+i, c)
		}
	}
	// Each tensor's data starts at a multiple of 32 from the data start and
	// is padded with zeros to the next one; the file ends after the last pad.
	end := f.dataStart
	for _, ti := range f.tensors {
		if ti.offset%32 != 0 {
			t.Fatalf("tensor %s offset %d is not a multiple of 32", ti.name, ti.offset)
		}
		if start := f.dataStart + int(ti.offset); start != end {
			t.Fatalf("tensor %s starts at %d, want %d right after the previous one", ti.name, start, end)
		}
		n := 4 * int(ti.dims[0])
		end += (n + 31) / 32 * 32
		for i, c := range b[f.dataStart+int(ti.offset)+n : end] {
			if c != 0 {
				t.Fatalf("tensor %s padding byte %d is %#x, want 0", ti.name, i, c)
			}
		}
	}
	if end != len(b) {
		t.Fatalf("file is %d bytes, want %d (data start %d plus padded tensors)", len(b), end, f.dataStart)
	}
	return f
}

func (f specFile) floats(b []byte, i int) []float32 {
	ti := f.tensors[i]
	v := make([]float32, ti.dims[0])
	for j := range v {
		v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[f.dataStart+int(ti.offset)+4*j:]))
	}
	return v
}

func TestGGUFLayoutMatchesSpec(t *testing.T) {
	for _, width := range []int{1, 7, 8, 9, 100} {
		cv := ControlVector{ModelHint: "qwen2", Layers: map[int][]float32{}}
		for _, l := range []int{27, 1, 14, 2} {
			dir := make([]float32, width)
			for i := range dir {
				dir[i] = float32(l) + float32(i)/1000
			}
			cv.Layers[l] = dir
		}
		var buf bytes.Buffer
		if err := WriteGGUF(&buf, cv); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		f := specParse(t, b)
		if f.version != 3 {
			t.Errorf("width %d: version %d, want 3", width, f.version)
		}
		wantKV := []specKV{
			{"general.architecture", 8, "controlvector"},
			{"controlvector.model_hint", 8, "qwen2"},
			{"controlvector.layer_count", 4, uint32(4)},
		}
		if !reflect.DeepEqual(f.kvs, wantKV) {
			t.Errorf("width %d: metadata %+v, want %+v", width, f.kvs, wantKV)
		}
		padded := uint64((4*width + 31) / 32 * 32)
		for i, l := range []int{1, 2, 14, 27} { // ascending, rise layer L as direction.L
			want := specTensor{"direction." + strconv.Itoa(l), []uint64{uint64(width)}, 0, uint64(i) * padded}
			if !reflect.DeepEqual(f.tensors[i], want) {
				t.Errorf("width %d: tensor %d is %+v, want %+v", width, i, f.tensors[i], want)
			}
			if got := f.floats(b, i); !reflect.DeepEqual(got, cv.Layers[l]) {
				t.Errorf("width %d: direction.%d holds %v, want %v", width, l, got, cv.Layers[l])
			}
		}
	}
}

// TestGGUFLayerMapping pins the layer convention: rise layer L, the output
// of 0-based block L, is tensor direction.L, which llama.cpp adds after block
// L (common/common.cpp stores direction.N at row N-1, src/llama-adapter.cpp
// loads row il-1 into the tensor for block il, src/llama-graph.cpp build_cvec
// adds it to block il's output).
func TestGGUFLayerMapping(t *testing.T) {
	for _, l := range []int{1, 2, 13, 79, math.MaxInt32} {
		var buf bytes.Buffer
		if err := WriteGGUF(&buf, ControlVector{Layers: map[int][]float32{l: {1}}}); err != nil {
			t.Fatal(err)
		}
		f := specParse(t, buf.Bytes())
		if got, want := f.tensors[0].name, "direction."+strconv.Itoa(l); got != want {
			t.Errorf("rise layer %d written as %s, want %s", l, got, want)
		}
		cv, err := ReadGGUFControlVector(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cv.Layers[l]; !ok || len(cv.Layers) != 1 {
			t.Errorf("rise layer %d read back as layers %v", l, cv.Layers)
		}
	}
}

func TestGGUFRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	special := []float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.MaxFloat32, math.MaxFloat32, 1e-30}
	cv := ControlVector{ModelHint: "llama ✓", Layers: map[int][]float32{}}
	for _, l := range []int{1, 3, 4, 10, 31} {
		dir := make([]float32, 37)
		for i := range dir {
			dir[i] = float32(rng.NormFloat64())
		}
		copy(dir, special)
		cv.Layers[l] = dir
	}
	var buf bytes.Buffer
	if err := WriteGGUF(&buf, cv); err != nil {
		t.Fatal(err)
	}
	got, err := ReadGGUFControlVector(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if got.ModelHint != cv.ModelHint || len(got.Layers) != len(cv.Layers) {
		t.Fatalf("read %q with %d layers, want %q with %d", got.ModelHint, len(got.Layers), cv.ModelHint, len(cv.Layers))
	}
	for l, want := range cv.Layers {
		for i := range want {
			if math.Float32bits(got.Layers[l][i]) != math.Float32bits(want[i]) {
				t.Fatalf("layer %d value %d: %v, want %v bit for bit", l, i, got.Layers[l][i], want[i])
			}
		}
	}
}

func TestWriteGGUFErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cv   ControlVector
		want string
	}{
		{"nil layers", ControlVector{}, "no layers"},
		{"empty layers", ControlVector{Layers: map[int][]float32{}}, "no layers"},
		{"layer 0", ControlVector{Layers: map[int][]float32{0: {1}, 1: {1}}}, "rise layer 0"},
		{"negative layer", ControlVector{Layers: map[int][]float32{-1: {1}}}, "rise layer -1 is negative"},
		{"layer beyond int32", ControlVector{Layers: map[int][]float32{math.MaxInt32 + 1: {1}}}, "rise layer 2147483648"},
		{"empty direction", ControlVector{Layers: map[int][]float32{2: {}}}, "rise layer 2 has an empty direction"},
		{"mismatched lengths", ControlVector{Layers: map[int][]float32{2: {1, 2}, 5: {1, 2, 3}}}, "rise layer 5 has 3 values but rise layer 2 has 2"},
		{"NaN", ControlVector{Layers: map[int][]float32{4: {1, float32(math.NaN())}}}, "rise layer 4 value 1 is NaN"},
		{"+Inf", ControlVector{Layers: map[int][]float32{4: {float32(math.Inf(1))}}}, "rise layer 4 value 0 is +Inf"},
		{"-Inf", ControlVector{Layers: map[int][]float32{4: {0, 0, float32(math.Inf(-1))}}}, "rise layer 4 value 2 is -Inf"},
		{"bad UTF-8 hint", ControlVector{ModelHint: "\xff", Layers: map[int][]float32{1: {1}}}, "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteGGUF(&buf, tc.cv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

// ggufBuilder assembles GGUF bytes by hand for reader tests.
type ggufBuilder struct{ b []byte }

func (g *ggufBuilder) u32(v uint32) *ggufBuilder {
	g.b = binary.LittleEndian.AppendUint32(g.b, v)
	return g
}

func (g *ggufBuilder) u64(v uint64) *ggufBuilder {
	g.b = binary.LittleEndian.AppendUint64(g.b, v)
	return g
}

func (g *ggufBuilder) str(s string) *ggufBuilder { return g.u64(uint64(len(s))).raw([]byte(s)...) }

func (g *ggufBuilder) raw(p ...byte) *ggufBuilder {
	g.b = append(g.b, p...)
	return g
}

func (g *ggufBuilder) kvString(k, v string) *ggufBuilder { return g.str(k).u32(8).str(v) }

func (g *ggufBuilder) pad(align int) *ggufBuilder {
	for len(g.b)%align != 0 {
		g.b = append(g.b, 0)
	}
	return g
}

func (g *ggufBuilder) f32(v ...float32) *ggufBuilder {
	for _, x := range v {
		g.u32(math.Float32bits(x))
	}
	return g
}

// ggufTensor is a tensor for ggufFile.
type ggufTensor struct {
	name string
	dims []uint64
	typ  uint32
	data []float32
}

// ggufFile builds a file with the given metadata writer and tensors laid out
// with contiguous offsets at alignment 32.
func ggufFile(version uint32, nKV uint64, kvs func(*ggufBuilder), tensors ...ggufTensor) []byte {
	g := &ggufBuilder{}
	g.raw('G', 'G', 'U', 'F').u32(version).u64(uint64(len(tensors))).u64(nKV)
	kvs(g)
	off := uint64(0)
	for _, ti := range tensors {
		g.str(ti.name).u32(uint32(len(ti.dims)))
		for _, d := range ti.dims {
			g.u64(d)
		}
		g.u32(ti.typ).u64(off)
		off += uint64((4*len(ti.data) + 31) / 32 * 32)
	}
	g.pad(32)
	for _, ti := range tensors {
		g.f32(ti.data...).pad(32)
	}
	return g.b
}

func cvArchKV(g *ggufBuilder) { g.kvString("general.architecture", "controlvector") }

func dir(name string, v ...float32) ggufTensor {
	return ggufTensor{name, []uint64{uint64(len(v))}, 0, v}
}

func TestReadGGUFErrors(t *testing.T) {
	golden := ggufGolden(t)
	patch := func(off int, p ...byte) []byte {
		b := bytes.Clone(golden)
		copy(b[off:], p)
		return b
	}
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"bad magic", patch(0, 'G', 'G', 'M', 'L'), `bad magic at byte offset 0: expected "GGUF", found "GGML"`},
		{"version 1", patch(4, 1), "unsupported version at byte offset 4: expected 3 (or 2), found 1"},
		{"big-endian", patch(4, 0, 0, 0, 3), "found 50331648 (a big-endian file?)"},
		{"wrong architecture", ggufFile(3, 1, func(g *ggufBuilder) { g.kvString("general.architecture", "llama") }, dir("direction.1", 1)),
			`general.architecture is "llama": expected "controlvector"`},
		{"missing architecture", ggufFile(3, 1, func(g *ggufBuilder) { g.kvString("controlvector.model_hint", "llama") }, dir("direction.1", 1)),
			`no general.architecture key: expected "controlvector"`},
		{"architecture not a string", ggufFile(3, 1, func(g *ggufBuilder) { g.str("general.architecture").u32(4).u32(7) }, dir("direction.1", 1)),
			`metadata "general.architecture" at byte offset 24: expected type string (8), found type 4`},
		{"duplicate key", ggufFile(3, 2, func(g *ggufBuilder) { cvArchKV(g); cvArchKV(g) }, dir("direction.1", 1)),
			`metadata key "general.architecture" at byte offset 77 appears twice`},
		{"unknown value type", ggufFile(3, 2, func(g *ggufBuilder) { cvArchKV(g); g.str("x").u32(13) }, dir("direction.1", 1)),
			`metadata "x" at byte offset 86 has value type 13`},
		{"alignment zero", ggufFile(3, 2, func(g *ggufBuilder) { cvArchKV(g); g.str("general.alignment").u32(4).u32(0) }, dir("direction.1", 1)),
			"expected a non-zero power of two, found 0"},
		{"alignment not a power of two", ggufFile(3, 2, func(g *ggufBuilder) { cvArchKV(g); g.str("general.alignment").u32(4).u32(48) }, dir("direction.1", 1)),
			"expected a non-zero power of two, found 48"},
		{"no tensors", ggufFile(3, 1, cvArchKV), "no tensors"},
		{"F16 tensor", ggufFile(3, 1, cvArchKV, ggufTensor{"direction.1", []uint64{2}, 1, []float32{1}}),
			`tensor "direction.1" at byte offset 77 has type F16 (ggml type 1): expected F32 (ggml type 0)`},
		{"Q4_K tensor", ggufFile(3, 1, cvArchKV, ggufTensor{"direction.1", []uint64{2}, 12, []float32{1}}),
			`has type ggml type 12: expected F32`},
		{"2-D tensor", ggufFile(3, 1, cvArchKV, ggufTensor{"direction.1", []uint64{2, 2}, 0, []float32{1, 2, 3, 4}}),
			`tensor "direction.1" at byte offset 77 has shape [2 2]: expected one dimension, found 2 > 1 in dimension 1`},
		{"row vector", ggufFile(3, 1, cvArchKV, ggufTensor{"direction.1", []uint64{1, 2}, 0, []float32{1, 2}}),
			"has shape [1 2]: expected one dimension"},
		{"5 dimensions", ggufFile(3, 1, cvArchKV, ggufTensor{"direction.1", []uint64{1, 1, 1, 1, 1}, 0, []float32{1}}),
			`tensor "direction.1" at byte offset 77 has 5 dimensions: expected 1`},
		{"0 dimensions", ggufFile(3, 1, cvArchKV, ggufTensor{"direction.1", nil, 0, []float32{1}}),
			"has 0 dimensions: expected 1"},
		{"empty tensor", ggufFile(3, 1, cvArchKV, dir("direction.1")), `tensor "direction.1" at byte offset 77 is empty`},
		{"direction.0", ggufFile(3, 1, cvArchKV, dir("direction.0", 1)), "layer 0 is invalid"},
		{"other tensor", ggufFile(3, 1, cvArchKV, dir("blk.0.attn_q.weight", 1)), `expected a name direction.N`},
		{"unparsable layer", ggufFile(3, 1, cvArchKV, dir("direction.-1", 1)), `found "direction.-1"`},
		{"layer beyond int32", ggufFile(3, 1, cvArchKV, dir("direction.2147483648", 1)), "out of range"},
		{"duplicate tensor", ggufFile(3, 1, cvArchKV, dir("direction.1", 1), dir("direction.1", 2)), `tensor "direction.1" at byte offset 120 appears twice`},
		{"same layer twice", ggufFile(3, 1, cvArchKV, dir("direction.1", 1), dir("direction.01", 2)), "second direction for layer 1"},
		{"mismatched lengths", ggufFile(3, 1, cvArchKV, dir("direction.1", 1, 2), dir("direction.2", 1, 2, 3)),
			`tensor "direction.2" at byte offset 120 has 3 values but tensor "direction.1" has 2`},
		{"NaN", ggufFile(3, 1, cvArchKV, dir("direction.4", 1, float32(math.NaN()))), `tensor "direction.4" value 1 (byte offset 132) is NaN`},
		{"Inf", ggufFile(3, 1, cvArchKV, dir("direction.4", float32(math.Inf(-1)))), `value 0 (byte offset 128) is -Inf`},
		{"misplaced offset", patch(245, 0x40), `tensor "direction.3" at byte offset 210 has data offset 64: expected 32`},
		{"unpadded offset", patch(245, 0x08), "has data offset 8: expected 32"},
		{"missing final padding", golden[:300], "the data section, each tensor padded to 32 bytes, ends at byte offset 320, but the file has 300 bytes"},
		{"huge string", patch(24, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), "truncated file: metadata key 0 at byte offset 32 is 9223372036854775807 bytes long"},
		{"huge tensor count", patch(8, 0xff, 0xff, 0xff, 0xff), "truncated file: 4294967295 tensor infos"},
		{"huge array", ggufFile(3, 2, func(g *ggufBuilder) { cvArchKV(g); g.str("a").u32(9).u32(10).u64(1 << 62) }, dir("direction.1", 1)),
			`truncated file: array "a"`},
		{"deep arrays", ggufFile(3, 2, func(g *ggufBuilder) {
			cvArchKV(g)
			g.str("a")
			g.u32(9)
			for range 20 {
				g.u32(9).u64(1)
			}
		}, dir("direction.1", 1)), "nests arrays more than 16 deep"},
		{"huge dimension", patch(190, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), `truncated file: tensor "direction.1" has 18446744073709551615 F32 values at byte offset 256`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadGGUFControlVector(bytes.NewReader(tc.file), int64(len(tc.file)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestReadGGUFTruncated(t *testing.T) {
	golden := ggufGolden(t)
	for n := range len(golden) {
		_, err := ReadGGUFControlVector(bytes.NewReader(golden[:n]), int64(n))
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("file cut to %d of %d bytes: error %v, want a truncation error", n, len(golden), err)
		}
	}
	// A size larger than the reader holds surfaces the reader's error.
	if _, err := ReadGGUFControlVector(bytes.NewReader(golden[:100]), int64(len(golden))); err == nil {
		t.Fatal("reading past the reader's end succeeded")
	}
}

// TestReadGGUFForeign reads files as other writers may lay them out: version
// 2, a larger general.alignment, metadata rise does not use (every value
// type, arrays of strings and of arrays), layer_count as int32, no model
// hint, tensors out of layer order, and a [n, 1] shape, which ggml_n_dims
// counts as one dimension.
func TestReadGGUFForeign(t *testing.T) {
	g := &ggufBuilder{}
	g.raw('G', 'G', 'U', 'F').u32(2).u64(2).u64(15)
	g.str("general.alignment").u32(4).u32(64)
	g.str("controlvector.layer_count").u32(5).u32(2)
	g.str("general.u8").u32(0).raw(1)
	g.str("general.i8").u32(1).raw(0xff)
	g.str("general.u16").u32(2).raw(1, 2)
	g.str("general.i16").u32(3).raw(1, 2)
	g.str("general.f32").u32(6).f32(1.5)
	g.str("general.bool").u32(7).raw(1)
	g.str("general.u64").u32(10).u64(1)
	g.str("general.i64").u32(11).u64(1)
	g.str("general.f64").u32(12).u64(math.Float64bits(2.5))
	g.str("general.scalars").u32(9).u32(12).u64(2).u64(1).u64(2)
	g.str("general.tags").u32(9).u32(8).u64(2).str("a").str("bc")
	g.str("general.nested").u32(9).u32(9).u64(2).u32(0).u64(3).raw(1, 2, 3).u32(7).u64(1).raw(1)
	g.str("general.architecture").u32(8).str("controlvector")
	g.str("direction.7").u32(2).u64(3).u64(1).u32(0).u64(0)
	g.str("direction.2").u32(1).u64(3).u32(0).u64(64)
	g.pad(64)
	g.f32(7, 7.5, -7).pad(64)
	g.f32(2, 2.5, -2).pad(64)
	cv, err := ReadGGUFControlVector(bytes.NewReader(g.b), int64(len(g.b)))
	if err != nil {
		t.Fatal(err)
	}
	want := ControlVector{Layers: map[int][]float32{7: {7, 7.5, -7}, 2: {2, 2.5, -2}}}
	if !reflect.DeepEqual(cv, want) {
		t.Fatalf("read %+v, want %+v", cv, want)
	}
}

func TestWriteGGUFFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "happy.gguf")
	if err := WriteGGUFFile(path, ggufGoldenCV); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ggufGolden(t)) {
		t.Fatal("file differs from the golden bytes")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("stat: %v, mode %v, want 0644", err, fi.Mode())
	}

	// Overwriting replaces the file; a failed write leaves it alone.
	other := ControlVector{ModelHint: "qwen2", Layers: map[int][]float32{5: {1, 2, 3}}}
	if err := WriteGGUFFile(path, other); err != nil {
		t.Fatal(err)
	}
	if err := WriteGGUFFile(path, ControlVector{Layers: map[int][]float32{0: {1}}}); err == nil {
		t.Fatal("writing rise layer 0 succeeded")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	cv, err := ReadGGUFControlVector(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cv, other) {
		t.Fatalf("read %+v, want %+v", cv, other)
	}

	if err := WriteGGUFFile(filepath.Join(dir, "missing", "x.gguf"), other); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "happy.gguf" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only happy.gguf (no temporary files)", names)
	}
}

// TestGGUFPythonCrossCheck reads a rise file with the gguf Python package
// (gguf-py from llama.cpp) when it is installed, and skips otherwise.
func TestGGUFPythonCrossCheck(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	if err := exec.Command(py, "-c", "import gguf").Run(); err != nil {
		t.Skip("python3 has no gguf package")
	}
	path := filepath.Join(t.TempDir(), "cv.gguf")
	if err := WriteGGUFFile(path, ggufGoldenCV); err != nil {
		t.Fatal(err)
	}
	const script = `
import json, sys, gguf
r = gguf.GGUFReader(sys.argv[1])
kv = {}
for name, f in r.fields.items():
    if name.startswith("GGUF."):
        continue
    v = f.parts[f.data[0]]
    kv[name] = bytes(v).decode() if f.types[0] == gguf.GGUFValueType.STRING else int(v[0])
ts = [{"name": t.name, "type": int(t.tensor_type), "shape": [int(x) for x in t.shape],
       "data": [float(x) for x in t.data.reshape(-1)]} for t in r.tensors]
print(json.dumps({"kv": kv, "tensors": ts}))
`
	out, err := exec.Command(py, "-c", script, path).Output()
	if err != nil {
		t.Fatalf("gguf-py: %v", err)
	}
	var got struct {
		KV      map[string]any
		Tensors []struct {
			Name  string
			Type  int
			Shape []int
			Data  []float32
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	wantKV := map[string]any{"general.architecture": "controlvector", "controlvector.model_hint": "llama", "controlvector.layer_count": 2.0}
	if !reflect.DeepEqual(got.KV, wantKV) {
		t.Errorf("gguf-py metadata %v, want %v", got.KV, wantKV)
	}
	if len(got.Tensors) != 2 || got.Tensors[0].Name != "direction.1" || got.Tensors[1].Name != "direction.3" ||
		!reflect.DeepEqual(got.Tensors[0].Data, ggufGoldenCV.Layers[1]) || !reflect.DeepEqual(got.Tensors[1].Data, ggufGoldenCV.Layers[3]) ||
		got.Tensors[0].Type != 0 || !reflect.DeepEqual(got.Tensors[0].Shape, []int{2}) {
		t.Errorf("gguf-py tensors %+v", got.Tensors)
	}
}

// FuzzReadGGUFControlVector checks that the reader never panics and that
// whatever it accepts, WriteGGUF writes and the reader reads back unchanged.
func FuzzReadGGUFControlVector(f *testing.F) {
	f.Add(ggufGolden(f))
	f.Add(ggufFile(3, 1, cvArchKV, dir("direction.2", 1, 2, 3)))
	f.Add([]byte("GGUF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cv, err := ReadGGUFControlVector(bytes.NewReader(b), int64(len(b)))
		if err != nil || !utf8.ValidString(cv.ModelHint) {
			return
		}
		var buf bytes.Buffer
		if err := WriteGGUF(&buf, cv); err != nil {
			t.Fatalf("reader accepted %+v but WriteGGUF refuses it: %v", cv, err)
		}
		again, err := ReadGGUFControlVector(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil || !reflect.DeepEqual(again, cv) {
			t.Fatalf("round trip of %+v gave %+v, %v", cv, again, err)
		}
	})
}

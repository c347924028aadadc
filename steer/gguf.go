package steer

// GGUF control vectors, the steering-vector files llama.cpp loads with
// --control-vector and --control-vector-scaled.
//
// The container is GGUF version 3 as specified in docs/gguf.md of
// ggml-org/ggml (mirrored in ggml-org/llama.cpp). All integers and floats are
// little-endian. A file is
//
//	header      magic "GGUF", version uint32, tensor_count uint64, metadata_kv_count uint64
//	metadata    metadata_kv_count × (key string, value_type uint32, value)
//	tensor info tensor_count × (name string, n_dimensions uint32,
//	            dimensions [n_dimensions]uint64, type uint32, offset uint64)
//	padding     zero bytes up to a multiple of general.alignment (default 32)
//	tensor data each tensor's bytes, padded with zeros to a multiple of the alignment
//
// where a string is a uint64 byte length followed by that many UTF-8 bytes,
// with no terminator, and a tensor's offset counts from the start of the
// tensor data.
//
// A control vector is a GGUF file with general.architecture =
// "controlvector", the optional keys controlvector.model_hint (string) and
// controlvector.layer_count (uint32), and one 1-D F32 tensor per steered
// layer named "direction.N". The layer mapping was checked against
// ggml-org/llama.cpp:
//
//   - common/common.cpp, common_control_vector_load_one, parses N from the
//     tensor name, rejects N = 0 ("invalid (zero) direction tensor layer
//     index"), requires type F32 and one dimension, and stores direction.N at
//     row N-1 of a flat buffer ("layer 1 at [0]").
//   - src/llama-adapter.cpp, llama_adapter_cvec::apply, copies row il-1 of that
//     buffer into tensors[il] for il = 1 … n_layer-1; init never allocates
//     tensors[0] ("there's never a tensor for layer 0").
//   - src/llama-graph.cpp, build_cvec(cur, il), adds tensors[il] to the
//     residual stream right after the FFN residual add of the 0-based block
//     il, the tensor the model graphs name "l_out".
//
// So direction.N is added to the output of 0-based block N, which is exactly
// rise's layer N ("layer L = the output of block L, counting blocks from 0"),
// and the vgel/repeng exporter (repeng/extract.py, export_gguf) agrees: its
// layer ids index the model's 0-based decoder blocks, it reads hidden_states
// [layer+1], the output of block layer, and writes direction.<layer>. rise
// layer 0 has no slot. llama.cpp also leaves every block without a
// direction.N at zero, ignores direction.N with N >= n_layer (there is no
// tensor to receive it), and fails the load when the direction width differs
// from the model's n_embd.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ControlVector is one steering direction per layer, in the form a GGUF
// control-vector file carries it.
type ControlVector struct {
	// ModelHint names the model family the vector was made for, such as
	// "llama" or "qwen2"; it is written as controlvector.model_hint. llama.cpp
	// does not check it.
	ModelHint string
	// Layers maps a rise layer L, the output of 0-based block L, to the
	// vector added there, already scaled by the steering strength. Every
	// direction has the same length, the model's residual width. L is
	// written as the tensor direction.L, and must be at least 1 (see
	// WriteGGUF).
	Layers map[int][]float32
}

// GGUF constants from docs/gguf.md (ggml-org/ggml) and ggml.h.
const (
	ggufMagic            = "GGUF"
	ggufVersion          = 3  // the version rise writes
	ggufDefaultAlignment = 32 // GGUF_DEFAULT_ALIGNMENT, used when general.alignment is absent
	ggufMaxDims          = 4  // GGML_MAX_DIMS
	ggufMaxNestedArrays  = 16 // how deeply rise follows arrays of arrays when skipping a value

	// gguf_metadata_value_type
	ggufTypeUint8   = 0
	ggufTypeInt8    = 1
	ggufTypeUint16  = 2
	ggufTypeInt16   = 3
	ggufTypeUint32  = 4
	ggufTypeInt32   = 5
	ggufTypeFloat32 = 6
	ggufTypeBool    = 7
	ggufTypeString  = 8
	ggufTypeArray   = 9
	ggufTypeUint64  = 10
	ggufTypeInt64   = 11
	ggufTypeFloat64 = 12

	ggmlTypeF32 = 0 // ggml_type GGML_TYPE_F32

	cvArch          = "controlvector"
	cvKeyArch       = "general.architecture"
	cvKeyAlignment  = "general.alignment"
	cvKeyModelHint  = cvArch + ".model_hint"
	cvKeyLayerCount = cvArch + ".layer_count"
	cvTensorPrefix  = "direction."
)

// ggufFixedSize is the encoded size of each fixed-width metadata value type.
var ggufFixedSize = map[uint32]int64{
	ggufTypeUint8: 1, ggufTypeInt8: 1, ggufTypeBool: 1,
	ggufTypeUint16: 2, ggufTypeInt16: 2,
	ggufTypeUint32: 4, ggufTypeInt32: 4, ggufTypeFloat32: 4,
	ggufTypeUint64: 8, ggufTypeInt64: 8, ggufTypeFloat64: 8,
}

// ggmlTypeNames names the common ggml tensor types, for error messages.
var ggmlTypeNames = map[uint32]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0",
	24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 30: "BF16",
}

func ggmlTypeName(t uint32) string {
	if n, ok := ggmlTypeNames[t]; ok {
		return fmt.Sprintf("%s (ggml type %d)", n, t)
	}
	return fmt.Sprintf("ggml type %d", t)
}

// ggufPad rounds n up to a multiple of align, a power of two.
func ggufPad(n, align int64) int64 { return (n + align - 1) &^ (align - 1) }

// sortedLayers checks cv against what a llama.cpp control vector can express
// and returns its layers in ascending order.
func (cv ControlVector) sortedLayers() ([]int, error) {
	if len(cv.Layers) == 0 {
		return nil, errors.New("gguf: control vector has no layers: expected at least one direction")
	}
	if !utf8.ValidString(cv.ModelHint) {
		return nil, fmt.Errorf("gguf: model hint %q is not valid UTF-8, as GGUF strings must be", cv.ModelHint)
	}
	layers := make([]int, 0, len(cv.Layers))
	for l := range cv.Layers {
		layers = append(layers, l)
	}
	slices.Sort(layers)
	width, first := -1, 0
	for _, l := range layers {
		switch {
		case l == 0:
			return nil, errors.New("gguf: rise layer 0 (the output of block 0) cannot be expressed as a llama.cpp control vector: " +
				"it would be tensor direction.0, which llama.cpp rejects (\"invalid (zero) direction tensor layer index\"), " +
				"and llama.cpp keeps no control-vector slot for block 0; steer at layer 1 or later for export, " +
				"or keep layer 0 for rise's own backends")
		case l < 0:
			return nil, fmt.Errorf("gguf: rise layer %d is negative: expected the output of a 0-based block, 1 or more", l)
		case l > math.MaxInt32:
			return nil, fmt.Errorf("gguf: rise layer %d is beyond what llama.cpp parses from a tensor name (at most %d)", l, math.MaxInt32)
		}
		dir := cv.Layers[l]
		if len(dir) == 0 {
			return nil, fmt.Errorf("gguf: rise layer %d has an empty direction: expected the model's residual width", l)
		}
		if width < 0 {
			width, first = len(dir), l
		} else if len(dir) != width {
			return nil, fmt.Errorf("gguf: rise layer %d has %d values but rise layer %d has %d: every direction must have the model's residual width",
				l, len(dir), first, width)
		}
		for i, v := range dir {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("gguf: rise layer %d value %d is %v: expected a finite number", l, i, v)
			}
		}
	}
	return layers, nil
}

// appendGGUFString appends a GGUF string: a uint64 length and the bytes.
func appendGGUFString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// encodeGGUF returns the whole file for cv.
func encodeGGUF(cv ControlVector) ([]byte, error) {
	layers, err := cv.sortedLayers()
	if err != nil {
		return nil, err
	}
	width := int64(len(cv.Layers[layers[0]]))
	const align = ggufDefaultAlignment
	tensorBytes := ggufPad(4*width, align)

	le := binary.LittleEndian
	b := make([]byte, 0, 512+64*len(layers)+int(tensorBytes)*len(layers))

	// Header.
	b = append(b, ggufMagic...)
	b = le.AppendUint32(b, ggufVersion)
	b = le.AppendUint64(b, uint64(len(layers))) // tensor_count
	b = le.AppendUint64(b, 3)                   // metadata_kv_count

	// Metadata, in the order repeng's writer uses.
	b = appendGGUFString(b, cvKeyArch)
	b = le.AppendUint32(b, ggufTypeString)
	b = appendGGUFString(b, cvArch)
	b = appendGGUFString(b, cvKeyModelHint)
	b = le.AppendUint32(b, ggufTypeString)
	b = appendGGUFString(b, cv.ModelHint)
	// layer_count is the number of direction tensors, as repeng writes it.
	b = appendGGUFString(b, cvKeyLayerCount)
	b = le.AppendUint32(b, ggufTypeUint32)
	b = le.AppendUint32(b, uint32(len(layers)))

	// Tensor infos: offsets are consecutive multiples of the padded tensor
	// size, which is what gguf_init_from_file demands.
	for i, l := range layers {
		b = appendGGUFString(b, cvTensorPrefix+strconv.Itoa(l))
		b = le.AppendUint32(b, 1) // n_dimensions
		b = le.AppendUint64(b, uint64(width))
		b = le.AppendUint32(b, ggmlTypeF32)
		b = le.AppendUint64(b, uint64(int64(i)*tensorBytes))
	}

	// Padding, then each tensor padded to the alignment, the last one too:
	// llama.cpp reads the whole padded data section.
	b = append(b, make([]byte, ggufPad(int64(len(b)), align)-int64(len(b)))...)
	for _, l := range layers {
		start := len(b)
		for _, v := range cv.Layers[l] {
			b = le.AppendUint32(b, math.Float32bits(v))
		}
		b = append(b, make([]byte, tensorBytes-int64(len(b)-start))...)
	}
	return b, nil
}

// WriteGGUF writes cv to w as a GGUF version 3 control vector that llama.cpp
// loads with --control-vector: general.architecture = "controlvector",
// controlvector.model_hint, controlvector.layer_count (uint32, the number of
// directions), and one 1-D F32 tensor direction.L per rise layer L, in
// ascending order, aligned to the default 32 bytes.
//
// It writes nothing and returns an error when cv has no layers, when the
// directions differ in length or one is empty, when a value is NaN or
// infinite, or when a layer cannot be expressed: rise layer 0 would be
// direction.0, which llama.cpp rejects because it never adds a control vector
// to the output of block 0, and negative layers or layers beyond int32 have no
// name llama.cpp parses. llama.cpp silently ignores layers at or beyond the
// model's block count and refuses directions whose length differs from the
// model's width; neither is known here.
func WriteGGUF(w io.Writer, cv ControlVector) error {
	b, err := encodeGGUF(cv)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// WriteGGUFFile writes cv to path as WriteGGUF does, atomically: the file is
// written and synced under a temporary name in the same directory and then
// renamed over path, so readers see the old file or the whole new one. On
// error nothing is left behind and an existing file at path is unchanged.
func WriteGGUFFile(path string, cv ControlVector) (err error) {
	b, err := encodeGGUF(cv)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err != nil {
		return fmt.Errorf("gguf: writing %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// ggufDecoder reads a GGUF file front to back, bounds-checked against its size.
type ggufDecoder struct {
	r    io.ReaderAt
	size int64
	off  int64
}

// read returns the next n bytes, describing them as what in errors.
func (d *ggufDecoder) read(n int64, what string) ([]byte, error) {
	if n < 0 || n > d.size-d.off {
		return nil, fmt.Errorf("gguf: truncated file: %s at byte offset %d needs %d bytes, but the file has %d bytes", what, d.off, n, d.size)
	}
	b := make([]byte, n)
	if _, err := d.r.ReadAt(b, d.off); err != nil && !(errors.Is(err, io.EOF) && d.off+n == d.size) {
		return nil, fmt.Errorf("gguf: reading %s at byte offset %d: %w", what, d.off, err)
	}
	d.off += n
	return b, nil
}

func (d *ggufDecoder) u32(what string) (uint32, error) {
	b, err := d.read(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *ggufDecoder) u64(what string) (uint64, error) {
	b, err := d.read(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (d *ggufDecoder) str(what string) (string, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(d.size-d.off) {
		return "", fmt.Errorf("gguf: truncated file: %s at byte offset %d is %d bytes long, but only %d bytes remain", what, d.off, n, d.size-d.off)
	}
	b, err := d.read(int64(n), what)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// skip passes over one metadata value of type t.
func (d *ggufDecoder) skip(t uint32, key string, depth int) error {
	if n, ok := ggufFixedSize[t]; ok {
		_, err := d.read(n, fmt.Sprintf("value of %q", key))
		return err
	}
	switch t {
	case ggufTypeString:
		_, err := d.str(fmt.Sprintf("value of %q", key))
		return err
	case ggufTypeArray:
		if depth >= ggufMaxNestedArrays {
			return fmt.Errorf("gguf: value of %q at byte offset %d nests arrays more than %d deep", key, d.off, ggufMaxNestedArrays)
		}
		et, err := d.u32(fmt.Sprintf("array element type of %q", key))
		if err != nil {
			return err
		}
		n, err := d.u64(fmt.Sprintf("array length of %q", key))
		if err != nil {
			return err
		}
		if size, ok := ggufFixedSize[et]; ok {
			if n > uint64(d.size-d.off)/uint64(size) {
				return fmt.Errorf("gguf: truncated file: array %q at byte offset %d has %d elements of %d bytes, but only %d bytes remain", key, d.off, n, size, d.size-d.off)
			}
			_, err := d.read(int64(n)*size, fmt.Sprintf("array %q", key))
			return err
		}
		for i := uint64(0); i < n; i++ {
			if err := d.skip(et, key, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("gguf: metadata %q at byte offset %d has value type %d: expected one of 0 to 12", key, d.off-4, t)
}

// ggufTensorInfo is one parsed tensor info entry.
type ggufTensorInfo struct {
	name   string
	at     int64 // byte offset of the entry in the file
	dims   []uint64
	typ    uint32
	offset uint64
}

// ReadGGUFControlVector reads a GGUF control vector of size bytes from r, as
// written by WriteGGUF or by other llama.cpp-style writers such as repeng's
// export_gguf, and returns it in rise's layer numbering: tensor direction.N
// becomes rise layer N.
//
// It accepts GGUF versions 2 and 3 (the same little-endian layout), honours
// general.alignment, skips metadata it does not use, and applies the checks
// llama.cpp's loader does, so that a file it accepts also loads there:
// general.architecture must be "controlvector"; there must be at least one
// tensor, every tensor must be named direction.N with N >= 1, be F32 and
// one-dimensional (trailing dimensions of 1 allowed, as ggml_n_dims counts),
// and all must have one length; tensor offsets must follow one another in
// file order, each padded to the alignment, and the padded data must be
// present. It also refuses duplicate keys or tensor names, two tensors for
// one layer, and NaN or infinite values. Errors name what was expected and
// what was found, with the tensor name or byte offset. controlvector.model_hint
// is optional and controlvector.layer_count is not checked, as in llama.cpp.
func ReadGGUFControlVector(r io.ReaderAt, size int64) (ControlVector, error) {
	d := &ggufDecoder{r: r, size: size}
	magic, err := d.read(4, "magic")
	if err != nil {
		return ControlVector{}, err
	}
	if string(magic) != ggufMagic {
		return ControlVector{}, fmt.Errorf("gguf: bad magic at byte offset 0: expected %q, found %q", ggufMagic, magic)
	}
	version, err := d.u32("version")
	if err != nil {
		return ControlVector{}, err
	}
	if version != 2 && version != 3 {
		hint := ""
		if version&0xffff == 0 && version != 0 {
			hint = " (a big-endian file?)"
		}
		return ControlVector{}, fmt.Errorf("gguf: unsupported version at byte offset 4: expected 3 (or 2), found %d%s", version, hint)
	}
	nTensors, err := d.u64("tensor count")
	if err != nil {
		return ControlVector{}, err
	}
	nKV, err := d.u64("metadata key/value count")
	if err != nil {
		return ControlVector{}, err
	}

	var cv ControlVector
	align := int64(ggufDefaultAlignment)
	arch, haveArch := "", false
	seen := map[string]bool{}
	for i := uint64(0); i < nKV; i++ {
		at := d.off
		key, err := d.str(fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return ControlVector{}, err
		}
		if seen[key] {
			return ControlVector{}, fmt.Errorf("gguf: metadata key %q at byte offset %d appears twice", key, at)
		}
		seen[key] = true
		t, err := d.u32(fmt.Sprintf("value type of %q", key))
		if err != nil {
			return ControlVector{}, err
		}
		wantType := func(want uint32, name string) error {
			if t != want {
				return fmt.Errorf("gguf: metadata %q at byte offset %d: expected type %s (%d), found type %d", key, at, name, want, t)
			}
			return nil
		}
		switch key {
		case cvKeyArch:
			if err := wantType(ggufTypeString, "string"); err != nil {
				return ControlVector{}, err
			}
			if arch, err = d.str(fmt.Sprintf("value of %q", key)); err != nil {
				return ControlVector{}, err
			}
			haveArch = true
		case cvKeyModelHint:
			if err := wantType(ggufTypeString, "string"); err != nil {
				return ControlVector{}, err
			}
			if cv.ModelHint, err = d.str(fmt.Sprintf("value of %q", key)); err != nil {
				return ControlVector{}, err
			}
		case cvKeyAlignment:
			if err := wantType(ggufTypeUint32, "uint32"); err != nil {
				return ControlVector{}, err
			}
			a, err := d.u32(fmt.Sprintf("value of %q", key))
			if err != nil {
				return ControlVector{}, err
			}
			if a == 0 || a&(a-1) != 0 {
				return ControlVector{}, fmt.Errorf("gguf: metadata %q at byte offset %d: expected a non-zero power of two, found %d", key, at, a)
			}
			align = int64(a)
		default:
			if err := d.skip(t, key, 0); err != nil {
				return ControlVector{}, err
			}
		}
	}
	switch {
	case !haveArch:
		return ControlVector{}, fmt.Errorf("gguf: no %s key: expected %q", cvKeyArch, cvArch)
	case arch != cvArch:
		return ControlVector{}, fmt.Errorf("gguf: %s is %q: expected %q; this is not a control vector", cvKeyArch, arch, cvArch)
	}

	if nTensors == 0 {
		return ControlVector{}, errors.New("gguf: no tensors: expected at least one direction.N tensor")
	}
	// Each tensor info takes at least 24 bytes; refuse impossible counts
	// before allocating for them.
	if nTensors > uint64(d.size-d.off)/24 {
		return ControlVector{}, fmt.Errorf("gguf: truncated file: %d tensor infos cannot fit in the %d bytes after byte offset %d", nTensors, d.size-d.off, d.off)
	}
	infos := make([]ggufTensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		ti := ggufTensorInfo{at: d.off}
		if ti.name, err = d.str(fmt.Sprintf("name of tensor %d", i)); err != nil {
			return ControlVector{}, err
		}
		nDims, err := d.u32(fmt.Sprintf("dimension count of tensor %q", ti.name))
		if err != nil {
			return ControlVector{}, err
		}
		if nDims == 0 || nDims > ggufMaxDims {
			return ControlVector{}, fmt.Errorf("gguf: tensor %q at byte offset %d has %d dimensions: expected 1 (GGUF allows 1 to %d)", ti.name, ti.at, nDims, ggufMaxDims)
		}
		for j := uint32(0); j < nDims; j++ {
			n, err := d.u64(fmt.Sprintf("dimension %d of tensor %q", j, ti.name))
			if err != nil {
				return ControlVector{}, err
			}
			ti.dims = append(ti.dims, n)
		}
		if ti.typ, err = d.u32(fmt.Sprintf("type of tensor %q", ti.name)); err != nil {
			return ControlVector{}, err
		}
		if ti.offset, err = d.u64(fmt.Sprintf("data offset of tensor %q", ti.name)); err != nil {
			return ControlVector{}, err
		}
		infos = append(infos, ti)
	}
	dataStart := ggufPad(d.off, align)

	cv.Layers = make(map[int][]float32, len(infos))
	names := map[string]bool{}
	width, firstName := uint64(0), ""
	next := uint64(0) // where the next tensor must start, as gguf_init_from_file requires
	for _, ti := range infos {
		if names[ti.name] {
			return ControlVector{}, fmt.Errorf("gguf: tensor %q at byte offset %d appears twice", ti.name, ti.at)
		}
		names[ti.name] = true
		layer, err := parseDirectionName(ti.name)
		if err != nil {
			return ControlVector{}, fmt.Errorf("gguf: tensor %q at byte offset %d: %w", ti.name, ti.at, err)
		}
		if _, dup := cv.Layers[layer]; dup {
			return ControlVector{}, fmt.Errorf("gguf: tensor %q at byte offset %d is a second direction for layer %d", ti.name, ti.at, layer)
		}
		if ti.typ != ggmlTypeF32 {
			return ControlVector{}, fmt.Errorf("gguf: tensor %q at byte offset %d has type %s: expected F32 (ggml type %d)", ti.name, ti.at, ggmlTypeName(ti.typ), ggmlTypeF32)
		}
		for j, n := range ti.dims[1:] {
			if n != 1 {
				return ControlVector{}, fmt.Errorf("gguf: tensor %q at byte offset %d has shape %v: expected one dimension, found %d > 1 in dimension %d",
					ti.name, ti.at, ti.dims, n, j+1)
			}
		}
		n := ti.dims[0]
		switch {
		case n == 0:
			return ControlVector{}, fmt.Errorf("gguf: tensor %q at byte offset %d is empty: expected the model's residual width", ti.name, ti.at)
		case width == 0:
			width, firstName = n, ti.name
		case n != width:
			return ControlVector{}, fmt.Errorf("gguf: tensor %q at byte offset %d has %d values but tensor %q has %d: every direction must have one length",
				ti.name, ti.at, n, firstName, width)
		}
		if ti.offset != next {
			return ControlVector{}, fmt.Errorf("gguf: tensor %q at byte offset %d has data offset %d: expected %d (the previous tensors' sizes, each padded to %d bytes)",
				ti.name, ti.at, ti.offset, next, align)
		}
		avail := uint64(d.size - dataStart)
		if dataStart > d.size || n > avail/4 || ti.offset > avail-4*n {
			return ControlVector{}, fmt.Errorf("gguf: truncated file: tensor %q has %d F32 values at byte offset %d, but the file has %d bytes",
				ti.name, n, dataStart+int64(ti.offset), d.size)
		}
		padded := uint64(ggufPad(int64(4*n), align))
		next = ti.offset + padded
		d.off = dataStart + int64(ti.offset)
		raw, err := d.read(int64(4*n), fmt.Sprintf("data of tensor %q", ti.name))
		if err != nil {
			return ControlVector{}, err
		}
		dir := make([]float32, n)
		for i := range dir {
			v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return ControlVector{}, fmt.Errorf("gguf: tensor %q value %d (byte offset %d) is %v: expected a finite number", ti.name, i, d.off-int64(len(raw))+int64(4*i), v)
			}
			dir[i] = v
		}
		cv.Layers[layer] = dir
	}
	if end := dataStart + int64(next); end > size {
		return ControlVector{}, fmt.Errorf("gguf: truncated file: the data section, each tensor padded to %d bytes, ends at byte offset %d, but the file has %d bytes (llama.cpp reads the whole padded section)",
			align, end, size)
	}
	return cv, nil
}

// parseDirectionName returns N for a tensor named direction.N, N >= 1.
func parseDirectionName(name string) (int, error) {
	digits, ok := strings.CutPrefix(name, cvTensorPrefix)
	if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("expected a name direction.N with N a decimal layer number, found %q", name)
	}
	n, err := strconv.ParseInt(digits, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("layer number %s is out of range: expected at most %d", digits, math.MaxInt32)
	}
	if n == 0 {
		return 0, errors.New("layer 0 is invalid: llama.cpp has no control vector for the output of block 0 and rejects direction.0")
	}
	return int(n), nil
}

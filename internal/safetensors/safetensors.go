// Package safetensors reads and writes the safetensors format (Hugging
// Face's: a little-endian u64 header length, a JSON header of tensors and
// their byte ranges, then the data), holding tensors as float32 (or, with
// ReadRaw, as the bytes stored).
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/x448/float16"

	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/memory"
)

// The safetensors element types rise reads and writes. Files may hold
// others (integers, booleans, 8-bit floats); their layout is checked but
// reading them into float32 is refused.
const (
	// F32 is IEEE single precision, rise's default.
	F32 = "F32"
	// F16 is IEEE half precision (5-bit exponent, subnormals included).
	F16 = "F16"
	// BF16 is bfloat16: the upper 16 bits of a float32.
	BF16 = "BF16"
	// F64 is IEEE double precision; it is read (narrowed to float32)
	// but never written.
	F64 = "F64"
)

// maxSafetensorsHeader bounds the JSON header of a safetensors file. The
// reference implementation refuses headers over 100 MB; anything larger is a
// corrupt or hostile file, and reading it would cost memory for nothing.
const maxSafetensorsHeader = 100_000_000

// safetensorsDTypeSizes gives the element size of every dtype the
// safetensors format defines, so that the layout of a file can be checked
// whatever it holds.
var safetensorsDTypeSizes = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// Tensor is one named array of a safetensors file, held as float32 in
// row-major (C) order whatever its dtype on disk.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// stEntry is one tensor's record in a safetensors header.
type stEntry struct {
	name       string
	dtype      string
	shape      []int
	begin, end int64 // byte offsets relative to the start of the data buffer
}

// File is an open safetensors file whose header has been parsed and whose
// layout has been checked against the file's size; tensors are read on
// demand.
type File struct {
	path    string
	r       io.ReaderAt
	c       io.Closer // closes r, when the File opened it
	dataOff int64     // file offset of the data buffer
	entries map[string]*stEntry
	order   []string // tensor names in the header's order
	meta    map[string]string
	scratch []byte // ReadFloats's buffer
}

// Open opens path and validates its header: length, JSON,
// dtypes, shapes, sizes and offsets (the data buffer must be covered by the
// tensors exactly, without holes or overlaps, as the format requires).
func Open(path string) (*File, error) {
	f, _, err := files.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("read safetensors %s: %w", path, err)
	}
	st, err := parseSafetensors(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	st.c = f
	return st, nil
}

// Close releases the file.
func (st *File) Close() error {
	if st.c == nil {
		return nil
	}
	err := st.c.Close()
	st.c = nil
	return err
}

// Names lists the file's tensors in the header's order.
func (st *File) Names() []string { return st.order }

// Shape is the shape of the named tensor; ok is false when the file has no
// such tensor.
func (st *File) Shape(name string) (shape []int, ok bool) {
	e := st.entries[name]
	if e == nil {
		return nil, false
	}
	return e.shape, true
}

// parseSafetensors reads and validates the header of a safetensors file of
// any origin through r.
func parseSafetensors(path string, r io.ReaderAt) (*File, error) {
	size, err := readerSize(r)
	if err != nil {
		return nil, fmt.Errorf("read safetensors %s: %w", path, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("read safetensors %s: %s", path, fmt.Sprintf(format, args...))
	}
	if size < 8 {
		return nil, fail("the file has %d bytes, expected at least 8 (the header length) (truncated or not a safetensors file)", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fail("reading the header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxSafetensorsHeader {
		return nil, fail("absurd header length %d bytes, expected at most %d (corrupt or not a safetensors file)", n, maxSafetensorsHeader)
	}
	if int64(n) > size-8 {
		return nil, fail("header length %d bytes runs past the end of the file (%d bytes after the length field): the file is truncated or not a safetensors file", n, size-8)
	}
	if n < 2 {
		return nil, fail("header length %d bytes, expected at least 2 for a JSON object", n)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fail("reading the %d-byte header: %v", n, err)
	}
	st := &File{path: path, r: r, dataOff: 8 + int64(n), entries: map[string]*stEntry{}}
	if err := st.parseHeader(hdr); err != nil {
		return nil, fail("%v", err)
	}
	if err := st.checkLayout(size - st.dataOff); err != nil {
		return nil, fail("%v", err)
	}
	return st, nil
}

// readerSize finds the size of an *os.File, *bytes.Reader or anything with
// a Size method.
func readerSize(r io.ReaderAt) (int64, error) {
	switch v := r.(type) {
	case interface{ Stat() (os.FileInfo, error) }:
		fi, err := v.Stat()
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	case interface{ Size() int64 }:
		return v.Size(), nil
	}
	return 0, errors.New("cannot tell the size of the input")
}

// parseHeader decodes the JSON header, refusing duplicate names and
// malformed entries.
func (st *File) parseHeader(hdr []byte) error {
	if !utf8.Valid(hdr) {
		return errors.New("malformed header: expected UTF-8 JSON, found invalid UTF-8 bytes")
	}
	// The format allows the header to be padded with trailing spaces.
	trimmed := bytes.TrimRight(hdr, " ")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("malformed header: expected a JSON object starting with '{', found %q", clipBytes(trimmed, 40))
	}
	if !json.Valid(trimmed) {
		var v any
		err := json.Unmarshal(trimmed, &v)
		return fmt.Errorf("malformed header JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("malformed header JSON: %v", err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("malformed header JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return fmt.Errorf("malformed header JSON: expected a tensor name, found %v", tok)
		}
		if seen[name] {
			return fmt.Errorf("malformed header: tensor %q appears twice", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("malformed header JSON at %q: %v", name, err)
		}
		if name == "__metadata__" {
			if err := st.parseMetadata(raw); err != nil {
				return err
			}
			continue
		}
		e, err := parseEntry(name, raw)
		if err != nil {
			return err
		}
		st.entries[name] = e
		st.order = append(st.order, name)
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("malformed header JSON: %v", err)
	}
	return nil
}

// parseMetadata reads the __metadata__ object, a map of strings to strings.
func (st *File) parseMetadata(raw json.RawMessage) error {
	if string(raw) == "null" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("malformed header: __metadata__ must be an object of strings: %v", err)
	}
	st.meta = make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("malformed header: __metadata__ value %q is %s, expected a string", k, jsonKind(v))
		}
		st.meta[k] = s
	}
	return nil
}

// parseEntry decodes and checks one tensor record.
func parseEntry(name string, raw json.RawMessage) (*stEntry, error) {
	var rec struct {
		DType       *string  `json:"dtype"`
		Shape       *[]int64 `json:"shape"`
		DataOffsets *[]int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("malformed header: tensor %q: expected {\"dtype\", \"shape\", \"data_offsets\"}: %v", name, err)
	}
	switch {
	case rec.DType == nil:
		return nil, fmt.Errorf("malformed header: tensor %q has no dtype", name)
	case rec.Shape == nil:
		return nil, fmt.Errorf("malformed header: tensor %q has no shape", name)
	case rec.DataOffsets == nil:
		return nil, fmt.Errorf("malformed header: tensor %q has no data_offsets", name)
	}
	esize, ok := safetensorsDTypeSizes[*rec.DType]
	if !ok {
		return nil, fmt.Errorf("tensor %q has unknown dtype %q: expected one of the safetensors dtypes (F32, F16, BF16, F64, I64, ...)", name, *rec.DType)
	}
	offs := *rec.DataOffsets
	if len(offs) != 2 {
		return nil, fmt.Errorf("malformed header: tensor %q has %d data_offsets, expected 2 ([begin, end])", name, len(offs))
	}
	if offs[0] < 0 || offs[1] < offs[0] {
		return nil, fmt.Errorf("tensor %q has data_offsets [%d, %d]: expected 0 <= begin <= end", name, offs[0], offs[1])
	}
	e := &stEntry{name: name, dtype: *rec.DType, begin: offs[0], end: offs[1]}
	// Count elements without overflow: the product may never pass the
	// number of elements the tensor's bytes can hold.
	span := offs[1] - offs[0]
	maxElems := span / esize
	elems := int64(1)
	for _, d := range *rec.Shape {
		if d < 0 {
			return nil, fmt.Errorf("tensor %q has shape %v: expected non-negative dimensions", name, *rec.Shape)
		}
		if d > math.MaxInt32 {
			return nil, fmt.Errorf("tensor %q has absurd shape %v", name, *rec.Shape)
		}
		e.shape = append(e.shape, int(d))
	}
	if !slices.Contains(e.shape, 0) {
		for _, d := range *rec.Shape {
			if elems > maxElems/d {
				return nil, fmt.Errorf("tensor %q has shape %v of %s, which needs more than the %d bytes its data_offsets [%d, %d] span", name, *rec.Shape, e.dtype, span, offs[0], offs[1])
			}
			elems *= d
		}
	} else {
		elems = 0
	}
	if elems*esize != span {
		return nil, fmt.Errorf("tensor %q has shape %v of %s (%d elements, %d bytes) but its data_offsets [%d, %d] span %d bytes", name, *rec.Shape, e.dtype, elems, elems*esize, offs[0], offs[1], span)
	}
	return e, nil
}

// checkLayout verifies that the tensors tile the data buffer of bufLen bytes
// exactly: sorted by offset, each begins where the previous one ends, the
// first at 0 and the last at the end of the buffer.
func (st *File) checkLayout(bufLen int64) error {
	es := make([]*stEntry, 0, len(st.entries))
	for _, name := range st.order {
		es = append(es, st.entries[name])
	}
	slices.SortStableFunc(es, func(a, b *stEntry) int {
		if a.begin != b.begin {
			return cmpInt64(a.begin, b.begin)
		}
		return cmpInt64(a.end, b.end)
	})
	pos := int64(0)
	var prev *stEntry
	for _, e := range es {
		if e.end > bufLen {
			return fmt.Errorf("tensor %q data_offsets [%d, %d] run past the end of the data buffer (%d bytes): the file is truncated", e.name, e.begin, e.end, bufLen)
		}
		switch {
		case e.begin < pos:
			return fmt.Errorf("tensor %q data_offsets [%d, %d] overlap tensor %q [%d, %d]", e.name, e.begin, e.end, prev.name, prev.begin, prev.end)
		case e.begin > pos && prev == nil:
			return fmt.Errorf("tensor %q data_offsets [%d, %d] leave bytes [0, %d) of the data buffer unused: expected the tensors to cover it without holes", e.name, e.begin, e.end, e.begin)
		case e.begin > pos:
			return fmt.Errorf("tensor %q data_offsets [%d, %d] leave a hole [%d, %d) after tensor %q: expected the tensors to cover the data buffer without holes", e.name, e.begin, e.end, pos, e.begin, prev.name)
		}
		pos = e.end
		prev = e
	}
	if pos != bufLen {
		return fmt.Errorf("the tensors cover %d bytes of the data buffer but the file holds %d: expected no bytes after the last tensor", pos, bufLen)
	}
	return nil
}

// read converts the named tensor to float32, reading the file in chunks so
// that no more than the tensor itself is held in memory.
func (st *File) Read(name string) (Tensor, error) {
	e := st.entries[name]
	if e == nil {
		return Tensor{}, fmt.Errorf("read safetensors %s: no tensor %q", st.path, name)
	}
	esize := safetensorsDTypeSizes[e.dtype]
	switch e.dtype {
	case F32, F16, BF16, F64:
	default:
		return Tensor{}, fmt.Errorf("read safetensors %s: tensor %q has dtype %s, expected F32, F16, BF16 or F64", st.path, name, e.dtype)
	}
	n := (e.end - e.begin) / esize
	out := Tensor{Name: name, Shape: slices.Clone(e.shape), Data: make([]float32, n)}
	const chunk = 1 << 20
	buf := make([]byte, min(e.end-e.begin, chunk))
	done := int64(0)
	for off := e.begin; off < e.end; {
		m := min(e.end-off, int64(len(buf)))
		if _, err := st.r.ReadAt(buf[:m], st.dataOff+off); err != nil {
			return Tensor{}, fmt.Errorf("read safetensors %s: tensor %q: %v", st.path, name, err)
		}
		decodeFloats(out.Data[done:done+m/esize], buf[:m], e.dtype)
		done += m / esize
		off += m
	}
	return out, nil
}

// DType is the stored dtype of the named tensor; ok is false when the file
// has no such tensor.
func (st *File) DType(name string) (dtype string, ok bool) {
	e := st.entries[name]
	if e == nil {
		return "", false
	}
	return e.dtype, true
}

// ReadRaw reads the named tensor's bytes as stored (little-endian elements
// of its dtype, row-major) into dst, which must be exactly their size: a
// caller keeps 16-bit weights as they are without a float32 copy. The
// layout was checked when the file was opened.
func (st *File) ReadRaw(name string, dst []byte) error {
	e := st.entries[name]
	if e == nil {
		return fmt.Errorf("read safetensors %s: no tensor %q", st.path, name)
	}
	if int64(len(dst)) != e.end-e.begin {
		return fmt.Errorf("read safetensors %s: tensor %q: expected a buffer of its %d bytes, found %d", st.path, name, e.end-e.begin, len(dst))
	}
	if _, err := st.r.ReadAt(dst, st.dataOff+e.begin); err != nil {
		return fmt.Errorf("read safetensors %s: tensor %q: %v", st.path, name, err)
	}
	return nil
}

// ReadFloats converts elements [first, first+len(dst)) of the named
// tensor (row-major; F32, F16, BF16 or F64) to float32 into dst, so that a
// caller can convert a large tensor piece by piece. It reuses one buffer
// of the File's from call to call (nothing is left for the garbage
// collector): calls on one File must not run at the same time.
func (st *File) ReadFloats(name string, dst []float32, first int64) error {
	e := st.entries[name]
	if e == nil {
		return fmt.Errorf("read safetensors %s: no tensor %q", st.path, name)
	}
	switch e.dtype {
	case F32, F16, BF16, F64:
	default:
		return fmt.Errorf("read safetensors %s: tensor %q has dtype %s, expected F32, F16, BF16 or F64", st.path, name, e.dtype)
	}
	esize := safetensorsDTypeSizes[e.dtype]
	if n := (e.end - e.begin) / esize; first < 0 || first+int64(len(dst)) > n {
		return fmt.Errorf("read safetensors %s: tensor %q: elements [%d, %d) asked for, expected a range within its %d", st.path, name, first, first+int64(len(dst)), n)
	}
	need := int64(len(dst)) * esize
	if int64(cap(st.scratch)) < need {
		st.scratch = make([]byte, need)
	}
	buf := st.scratch[:need]
	if _, err := st.r.ReadAt(buf, st.dataOff+e.begin+first*esize); err != nil {
		return fmt.Errorf("read safetensors %s: tensor %q: %v", st.path, name, err)
	}
	decodeFloats(dst, buf, e.dtype)
	return nil
}

// decodeFloats converts little-endian elements of dtype in b into dst.
func decodeFloats(dst []float32, b []byte, dtype string) {
	switch dtype {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = float16.Frombits(binary.LittleEndian.Uint16(b[2*i:])).Float32()
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	}
}

// Read reads every tensor of a safetensors file into float32,
// with the file's __metadata__. Tensors stored as F32, F16, BF16 or F64 are
// read; any other dtype is an error naming the tensor. The header is checked
// against the file's size before anything is allocated.
func Read(path string) (map[string]Tensor, map[string]string, error) {
	st, err := Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	return st.readAll()
}

// readAll reads every tensor of the file, once their float32 copies are
// known to fit in memory.
func (st *File) readAll() (map[string]Tensor, map[string]string, error) {
	var floats uint64
	for _, e := range st.entries {
		floats = memory.Sum(floats, uint64((e.end-e.begin)/safetensorsDTypeSizes[e.dtype]))
	}
	avail, source := memory.Available()
	if err := memory.Check(memory.Product(4, floats), avail, source, fmt.Sprintf("read safetensors %s: its %d tensors as float32", st.path, len(st.entries))); err != nil {
		return nil, nil, err
	}
	out := make(map[string]Tensor, len(st.entries))
	for _, name := range st.order {
		t, err := st.Read(name)
		if err != nil {
			return nil, nil, err
		}
		out[name] = t
	}
	return out, st.meta, nil
}

// ParseDType reads a dtype name: the safetensors names F32, F16
// and BF16, or the torch names float32, float16 and bfloat16 (with or
// without a "torch." prefix). An empty name is F32.
func ParseDType(s string) (string, error) {
	switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "torch.") {
	case "", "f32", "float32", "float":
		return F32, nil
	case "f16", "float16", "half":
		return F16, nil
	case "bf16", "bfloat16":
		return BF16, nil
	}
	return "", fmt.Errorf("unsupported dtype %q: expected float32 (F32), float16 (F16) or bfloat16 (BF16)", s)
}

// TorchName gives the torch-style name of a safetensors dtype, as
// SAELens writes it in cfg.json.
func TorchName(dtype string) string {
	switch dtype {
	case F16:
		return "float16"
	case BF16:
		return "bfloat16"
	}
	return "float32"
}

// Encode lays tensors out as a safetensors file in memory:
// tensors sorted by name and converted to dtype (F32, F16 or BF16, rounding
// to nearest even), the header padded with spaces to a multiple of 8 bytes,
// and __metadata__ holding {"format": "pt"} and the entries of meta.
func Encode(tensors []Tensor, dtype string, meta map[string]string) ([]byte, error) {
	dt, err := ParseDType(dtype)
	if err != nil {
		return nil, err
	}
	esize := safetensorsDTypeSizes[dt]
	ts := slices.Clone(tensors)
	slices.SortFunc(ts, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	for i, t := range ts {
		if t.Name == "" || t.Name == "__metadata__" {
			return nil, fmt.Errorf("tensor %d has name %q: expected a non-empty name other than __metadata__", i, t.Name)
		}
		if i > 0 && ts[i-1].Name == t.Name {
			return nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %q has shape %v: expected non-negative dimensions", t.Name, t.Shape)
			}
			n *= d
		}
		if n != len(t.Data) {
			return nil, fmt.Errorf("tensor %q has shape %v (%d elements) but %d values", t.Name, t.Shape, n, len(t.Data))
		}
	}

	md := map[string]string{"format": "pt"}
	for k, v := range meta {
		md[k] = v
	}
	var h bytes.Buffer
	h.WriteString(`{"__metadata__":`)
	mj, err := json.Marshal(md) // encoding/json sorts map keys
	if err != nil {
		return nil, err
	}
	h.Write(mj)
	off := int64(0)
	for _, t := range ts {
		name, _ := json.Marshal(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sj, _ := json.Marshal(shape)
		end := off + int64(len(t.Data))*esize
		fmt.Fprintf(&h, `,%s:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, name, dt, sj, off, end)
		off = end
	}
	h.WriteByte('}')
	for (8+h.Len())%8 != 0 {
		h.WriteByte(' ')
	}

	out := make([]byte, 8, 8+int64(h.Len())+off)
	binary.LittleEndian.PutUint64(out, uint64(h.Len()))
	out = append(out, h.Bytes()...)
	for _, t := range ts {
		if out, err = appendFloats(out, t, dt); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendFloats appends t's values in dtype to b, refusing values that do
// not fit in the narrower type.
func appendFloats(b []byte, t Tensor, dtype string) ([]byte, error) {
	switch dtype {
	case F32:
		for _, v := range t.Data {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	case F16:
		for i, v := range t.Data {
			h := float16.Fromfloat32(v)
			if h.IsInf(0) && !math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("tensor %q value %d (%g) overflows float16 (largest 65504): save as float32 or bfloat16", t.Name, i, v)
			}
			b = binary.LittleEndian.AppendUint16(b, h.Bits())
		}
	case BF16:
		for i, v := range t.Data {
			h := float32ToBF16(v)
			if h&0x7fff == 0x7f80 && !math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("tensor %q value %d (%g) overflows bfloat16: save as float32", t.Name, i, v)
			}
			b = binary.LittleEndian.AppendUint16(b, h)
		}
	}
	return b, nil
}

// float32ToBF16 rounds v to bfloat16, to nearest with ties to even; NaNs
// stay (quiet) NaNs.
func float32ToBF16(v float32) uint16 {
	u := math.Float32bits(v)
	if u&0x7fffffff > 0x7f800000 { // NaN: keep the sign, force a quiet NaN
		return uint16(u>>16) | 0x0040
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func clipBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// jsonKind names the JSON type of a decoded value, for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// Write writes tensors to path as a safetensors file (see Encode for the
// layout), atomically: readers see the old file or the whole new one.
func Write(path string, tensors []Tensor, dtype string, meta map[string]string) error {
	data, err := Encode(tensors, dtype, meta)
	if err != nil {
		return fmt.Errorf("write safetensors %s: %w", path, err)
	}
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("write safetensors %s: %w", path, err)
	}
	return nil
}

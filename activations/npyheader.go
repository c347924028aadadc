package activations

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"codeberg.org/sbinet/npyio/npy"
)

// npyMagic opens every .npy file.
var npyMagic = [6]byte{0x93, 'N', 'U', 'M', 'P', 'Y'}

// maxHeaderLen bounds the header dictionary of a .npy file. numpy itself
// refuses headers over 10,000 bytes by default (numpy.lib.format,
// max_header_size); a longer one is a corrupt or hostile file, and reading it
// would cost memory for nothing.
const maxHeaderLen = 10000

// npyArray describes the array in one .npy file (or .npz member).
type npyArray struct {
	DType   DType
	Order   binary.ByteOrder
	Rows    int
	Cols    int
	Offset  int64 // byte offset of the first element
	Version string
}

// rowBytes returns the size of one stored row.
func (a *npyArray) rowBytes() int64 { return int64(a.Cols) * int64(a.DType.Size()) }

// dataBytes returns the size of the whole stored array.
func (a *npyArray) dataBytes() int64 { return int64(a.Rows) * a.rowBytes() }

// npyHeader is a parsed .npy header of any shape and dtype.
type npyHeader struct {
	descr   string // e.g. "<f4"
	fortran bool
	shape   []int
	offset  int64 // bytes before the data
	version string
}

// parseNpyHeader reads a .npy header from r. The fixed preamble is checked
// here first, so that the header dictionary handed to npyio is known to be
// of sane length and layout; npyio then parses the dictionary.
func parseNpyHeader(r io.Reader) (*npyHeader, error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return nil, fmt.Errorf("not a .npy file: %s", shortRead(err, 8))
	}
	if !bytes.Equal(pre[:6], npyMagic[:]) {
		return nil, fmt.Errorf("not a .npy file: expected the magic bytes \\x93NUMPY, found %q", pre[:6])
	}
	major, minor := pre[6], pre[7]
	var hlen, lenSize int
	switch major {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return nil, fmt.Errorf("truncated .npy header: %s", shortRead(err, 2))
		}
		hlen, lenSize = int(binary.LittleEndian.Uint16(pre[8:10])), 2
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("truncated .npy header: %s", shortRead(err, 4))
		}
		v := binary.LittleEndian.Uint32(b[:])
		if v > maxHeaderLen {
			return nil, fmt.Errorf("absurd .npy header: length %d bytes, expected at most %d", v, maxHeaderLen)
		}
		hlen, lenSize = int(v), 4
	default:
		return nil, fmt.Errorf("unsupported .npy format version %d.%d: expected 1.0, 2.0 or 3.0", major, minor)
	}
	if hlen > maxHeaderLen {
		return nil, fmt.Errorf("absurd .npy header: length %d bytes, expected at most %d", hlen, maxHeaderLen)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("truncated .npy header: %s", shortRead(err, hlen))
	}
	if err := checkHeaderDict(hdr); err != nil {
		return nil, err
	}
	hdr = canonicalHeader(hdr)
	// npyio parses the dictionary. It reads the same preamble again, so hand
	// it the whole header. npyio's v2/v3 layouts share the 4-byte length.
	full := make([]byte, 0, 12+len(hdr))
	full = append(full, npyMagic[:]...)
	full = append(full, 2, 0) // the canonical header may be longer than a 1.0 length field says
	full = binary.LittleEndian.AppendUint32(full, uint32(len(hdr)))
	full = append(full, hdr...)
	nr, err := parseWithNpyio(full)
	if err != nil {
		return nil, err
	}
	d := nr.Header.Descr
	h := &npyHeader{descr: strings.Trim(d.Type, `'"`), fortran: d.Fortran, shape: d.Shape,
		offset: int64(8 + lenSize + hlen), version: fmt.Sprintf("%d.%d", major, minor)}
	const maxBytes = 1 << 50 // 1 PiB: far past any real array, short of int64 overflow
	n := int64(8)
	for _, v := range h.shape {
		if v < 0 {
			return nil, fmt.Errorf("absurd .npy header: shape %v", shapeString(h.shape))
		}
		if v > 0 && n > maxBytes/int64(v) {
			return nil, fmt.Errorf("absurd .npy header: shape %v is over a petabyte", shapeString(h.shape))
		}
		n *= int64(max(v, 1))
	}
	return h, nil
}

// floatType returns the element type and byte order of a float descr:
// size 2, 4 or 8, or 0 when it is not a float type.
func (h *npyHeader) floatType() (size int, order binary.ByteOrder) {
	order = binary.LittleEndian
	if strings.HasPrefix(h.descr, ">") {
		order = binary.BigEndian
	}
	switch strings.TrimLeft(h.descr, "<>|=") {
	case "f2":
		return 2, order
	case "f4":
		return 4, order
	case "f8":
		return 8, order
	}
	return 0, order
}

// readNpyHeader reads a .npy header and checks that it describes a shard of
// a dump: a C-order, two-dimensional float32 or float16 array.
func readNpyHeader(r io.Reader) (*npyArray, error) {
	h, err := parseNpyHeader(r)
	if err != nil {
		return nil, err
	}
	a := &npyArray{Offset: h.offset, Version: h.version}
	size, order := h.floatType()
	switch size {
	case 4:
		a.DType, a.Order = Float32, order
	case 2:
		a.DType, a.Order = Float16, order
	default:
		return nil, fmt.Errorf("unsupported dtype %s (%s): expected float32 (<f4) or float16 (<f2); convert with x.astype(numpy.float32)", h.descr, dtypeName(h.descr))
	}
	if h.fortran {
		return nil, fmt.Errorf("array is in Fortran (column-major) order: expected C order; save numpy.ascontiguousarray(x)")
	}
	if len(h.shape) != 2 {
		return nil, fmt.Errorf("array has shape %v: expected two dimensions [rows, d_model]", shapeString(h.shape))
	}
	a.Rows, a.Cols = h.shape[0], h.shape[1]
	if a.Cols <= 0 {
		return nil, fmt.Errorf("absurd .npy header: shape %v", shapeString(h.shape))
	}
	return a, nil
}

// NpyShape reads the header of a .npy stream and returns the array's shape,
// so that a reader can check what the array will take before reading it.
// The header's sanity checks (length, layout, a shape under a petabyte)
// are those of ReadNpyArray.
func NpyShape(r io.Reader) ([]int, error) {
	h, err := parseNpyHeader(r)
	if err != nil {
		return nil, err
	}
	return h.shape, nil
}

// ReadNpyArray reads a whole float16, float32 or float64 array of one or two
// dimensions (either byte order; Fortran order is returned in C order) from
// a .npy stream of size bytes, such as one tensor of an .npz archive. The
// header is checked against size before anything is allocated, so a corrupt
// header cannot ask for more memory than the file holds.
func ReadNpyArray(r io.Reader, size int64) (data []float32, shape []int, err error) {
	br := bufio.NewReaderSize(r, 1<<16)
	h, err := parseNpyHeader(br)
	if err != nil {
		return nil, nil, err
	}
	esize, order := h.floatType()
	if esize == 0 {
		return nil, nil, fmt.Errorf("unsupported dtype %s (%s): expected float32, float16 or float64", h.descr, dtypeName(h.descr))
	}
	if len(h.shape) < 1 || len(h.shape) > 2 {
		return nil, nil, fmt.Errorf("array has shape %s: expected one or two dimensions", shapeString(h.shape))
	}
	n := int64(1)
	for _, v := range h.shape {
		n *= int64(v)
	}
	if want := h.offset + n*int64(esize); want != size {
		return nil, nil, fmt.Errorf("array of shape %s and dtype %s needs %d bytes, the file holds %d (truncated or corrupt)", shapeString(h.shape), h.descr, want, size)
	}
	out := make([]float32, n)
	buf := make([]byte, (1<<16)/esize*esize)
	for done := int64(0); done < n; {
		m := min(int64(len(buf)/esize), n-done)
		if _, err := io.ReadFull(br, buf[:m*int64(esize)]); err != nil {
			return nil, nil, fmt.Errorf("reading element %d of %d: %s", done, n, shortRead(err, int(m)*esize))
		}
		dst := out[done : done+m]
		switch esize {
		case 2:
			decodeRow(dst, buf, Float16, order)
		case 4:
			decodeRow(dst, buf, Float32, order)
		case 8:
			for i := range dst {
				dst[i] = float32(math.Float64frombits(order.Uint64(buf[8*i:])))
			}
		}
		done += m
	}
	if h.fortran && len(h.shape) == 2 {
		rows, cols := h.shape[0], h.shape[1]
		c := make([]float32, len(out))
		for j := range cols {
			for i := range rows {
				c[i*cols+j] = out[j*rows+i]
			}
		}
		out = c
	}
	return out, h.shape, nil
}

// checkHeaderDict rejects header dictionaries that npyio would misread.
func checkHeaderDict(hdr []byte) error {
	s := string(hdr)
	if !strings.HasSuffix(s, "\n") {
		return fmt.Errorf("corrupt .npy header: expected it to end with a newline")
	}
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "{") || !strings.HasSuffix(t, "}") {
		return fmt.Errorf("corrupt .npy header: expected a Python dict literal, found %q", clip(t, 60))
	}
	for _, key := range []string{"'descr'", "'fortran_order'", "'shape'"} {
		if !strings.Contains(t, key) {
			return fmt.Errorf("corrupt .npy header: key %s is missing in %q", key, clip(t, 80))
		}
	}
	// npyio expects numpy's own key order and ", " separators.
	d, f, sh := strings.Index(t, "'descr'"), strings.Index(t, "'fortran_order'"), strings.Index(t, "'shape'")
	if !(d < f && f < sh) {
		return fmt.Errorf("unsupported .npy header: expected the keys in numpy's order (descr, fortran_order, shape), found %q", clip(t, 80))
	}
	return nil
}

// canonicalHeader rewrites a header dictionary with numpy's own spacing,
// "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", which is
// the only layout npyio's dictionary parser reads correctly. Other writers
// leave out spaces or the trailing comma.
func canonicalHeader(hdr []byte) []byte {
	var b []byte
	quote := byte(0)
	for _, c := range bytes.TrimSpace(hdr) {
		switch {
		case quote != 0:
			b = append(b, c)
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
			b = append(b, c)
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case c == ',' || c == ':':
			b = append(b, c, ' ')
		case c == '}':
			b = bytes.TrimRight(b, " ")
			if !bytes.HasSuffix(b, []byte(",")) {
				b = append(b, ',')
			}
			b = append(b, ' ', '}')
		default:
			b = append(b, c)
		}
	}
	return append(b, '\n')
}

// parseWithNpyio hands a checked header to npyio. npyio indexes its input
// without bounds checks in a few places; a panic there is turned into an
// error rather than taking the program down.
func parseWithNpyio(full []byte) (r *npy.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("corrupt .npy header: %v", p)
		}
	}()
	r, err = npy.NewReader(bytes.NewReader(full))
	if err != nil {
		return nil, fmt.Errorf("corrupt .npy header: %v", err)
	}
	return r, nil
}

// writeNpyHeader writes a version 1.0 header for a C-order [rows, cols] array
// of type dt, padded to exactly npyHeaderSize bytes so that it can be
// rewritten in place once the final row count is known.
func writeNpyHeader(w io.Writer, dt DType, rows, cols int) error {
	descr := "<f4"
	if dt == Float16 {
		descr = "<f2"
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }", descr, rows, cols)
	hlen := npyHeaderSize - 10
	if len(dict)+1 > hlen {
		return fmt.Errorf("npy header for shape (%d, %d) does not fit in %d bytes", rows, cols, npyHeaderSize)
	}
	buf := make([]byte, 0, npyHeaderSize)
	buf = append(buf, npyMagic[:]...)
	buf = append(buf, 1, 0)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(hlen))
	buf = append(buf, dict...)
	for len(buf) < npyHeaderSize-1 {
		buf = append(buf, ' ')
	}
	buf = append(buf, '\n')
	_, err := w.Write(buf)
	return err
}

// npyHeaderSize is the size of headers rise writes: a multiple of 64, as the
// format asks, with room for any two-dimensional shape.
const npyHeaderSize = 128

func dtypeName(descr string) string {
	t := strings.TrimLeft(descr, "<>|=")
	names := map[string]string{"f8": "float64", "f4": "float32", "f2": "float16", "i8": "int64", "i4": "int32",
		"i2": "int16", "i1": "int8", "u1": "uint8", "b1": "bool", "O": "object"}
	if n, ok := names[t]; ok {
		return n
	}
	return "unknown type"
}

func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, s := range shape {
		parts[i] = fmt.Sprint(s)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func shortRead(err error, want int) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("file ends before %d more bytes", want)
	}
	return err.Error()
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

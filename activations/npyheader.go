package activations

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

// readNpyHeader reads a .npy header from r and checks that it describes a
// C-order, two-dimensional float32 or float16 array. The fixed preamble is
// checked here first, so that the header dictionary handed to npyio is known
// to be of sane length and shape; npyio then parses the dictionary.
func readNpyHeader(r io.Reader) (*npyArray, error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return nil, fmt.Errorf("not a .npy file: %s", shortRead(err, 8))
	}
	if !bytes.Equal(pre[:6], npyMagic[:]) {
		return nil, fmt.Errorf("not a .npy file: expected the magic bytes \\x93NUMPY, found %q", pre[:6])
	}
	major, minor := pre[6], pre[7]
	var hlen int
	var lenBytes []byte
	switch major {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return nil, fmt.Errorf("truncated .npy header: %s", shortRead(err, 2))
		}
		hlen = int(binary.LittleEndian.Uint16(pre[8:10]))
		lenBytes = pre[8:10]
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("truncated .npy header: %s", shortRead(err, 4))
		}
		v := binary.LittleEndian.Uint32(b[:])
		if v > maxHeaderLen {
			return nil, fmt.Errorf("absurd .npy header: length %d bytes, expected at most %d", v, maxHeaderLen)
		}
		hlen = int(v)
		lenBytes = b[:]
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
	d.Type = strings.Trim(d.Type, `'"`)
	a := &npyArray{Offset: int64(8 + len(lenBytes) + hlen), Version: fmt.Sprintf("%d.%d", major, minor)}
	switch d.Type {
	case "<f4", "|f4", "=f4":
		a.DType, a.Order = Float32, binary.LittleEndian
	case ">f4":
		a.DType, a.Order = Float32, binary.BigEndian
	case "<f2", "|f2", "=f2":
		a.DType, a.Order = Float16, binary.LittleEndian
	case ">f2":
		a.DType, a.Order = Float16, binary.BigEndian
	default:
		return nil, fmt.Errorf("unsupported dtype %s (%s): expected float32 (<f4) or float16 (<f2); convert with x.astype(numpy.float32)", d.Type, dtypeName(d.Type))
	}
	if d.Fortran {
		return nil, fmt.Errorf("array is in Fortran (column-major) order: expected C order; save numpy.ascontiguousarray(x)")
	}
	if len(d.Shape) != 2 {
		return nil, fmt.Errorf("array has shape %v: expected two dimensions [rows, d_model]", shapeString(d.Shape))
	}
	a.Rows, a.Cols = d.Shape[0], d.Shape[1]
	if a.Rows < 0 || a.Cols <= 0 {
		return nil, fmt.Errorf("absurd .npy header: shape %v", shapeString(d.Shape))
	}
	const maxBytes = 1 << 50 // 1 PiB: far past any real dump, short of int64 overflow
	if int64(a.Cols) > maxBytes/4 || int64(a.Rows) > maxBytes/(int64(a.Cols)*4) {
		return nil, fmt.Errorf("absurd .npy header: shape %v is over a petabyte", shapeString(d.Shape))
	}
	return a, nil
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

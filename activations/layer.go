package activations

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"sort"
)

// Layer is one layer's rows in a dump: the concatenation of its shards.
type Layer struct {
	Number int    // the block whose output the rows record
	Name   string // the layer's key in the manifest, or its .npz member name
	Rows   int    // total rows over all shards
	DModel int    // width of a row

	shards []*shard
}

// shard is one stored array of a layer.
type shard struct {
	name  string // for errors: the file, or "archive.npz:member.npy"
	arr   *npyArray
	start int // index of its first row within the layer
	ra    io.ReaderAt
}

// Shards returns the display names of the layer's shard files in order.
func (l *Layer) Shards() []string {
	out := make([]string, len(l.shards))
	for i, s := range l.shards {
		out[i] = s.name
	}
	return out
}

// DTypes returns the distinct element types of the layer's shards.
func (l *Layer) DTypes() []DType {
	seen := map[DType]bool{}
	var out []DType
	for _, s := range l.shards {
		if !seen[s.arr.DType] {
			seen[s.arr.DType] = true
			out = append(out, s.arr.DType)
		}
	}
	return out
}

// Bytes returns the stored size of the layer's rows.
func (l *Layer) Bytes() int64 {
	var n int64
	for _, s := range l.shards {
		n += s.arr.dataBytes()
	}
	return n
}

// ReadRows reads n = len(dst)/DModel rows starting at row start into dst as
// float32. A row with a NaN or infinite value is an error that names the
// shard file and the row.
func (l *Layer) ReadRows(start int, dst []float32) error {
	return l.readRows(start, dst, nil)
}

// readRows is ReadRows with a caller-held scratch buffer for raw bytes.
func (l *Layer) readRows(start int, dst []float32, scratch *[]byte) error {
	d := l.DModel
	if len(dst)%d != 0 {
		panic(fmt.Sprintf("activations: ReadRows: len(dst) %d is not a multiple of d_model %d", len(dst), d))
	}
	n := len(dst) / d
	if start < 0 || start+n > l.Rows {
		return fmt.Errorf("layer %s: rows [%d, %d) are outside the layer's %d rows", l.Name, start, start+n, l.Rows)
	}
	var buf []byte
	if scratch == nil {
		scratch = &buf
	}
	// Find the shard holding row start.
	i := sort.Search(len(l.shards), func(i int) bool { return l.shards[i].start+l.shards[i].arr.Rows > start })
	for n > 0 {
		s := l.shards[i]
		local := start - s.start
		take := min(n, s.arr.Rows-local)
		if take <= 0 {
			i++
			continue
		}
		rb := s.arr.rowBytes()
		need := int(int64(take) * rb)
		if cap(*scratch) < need {
			*scratch = make([]byte, need)
		}
		raw := (*scratch)[:need]
		off := s.arr.Offset + int64(local)*rb
		if _, err := s.ra.ReadAt(raw, off); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return fmt.Errorf("%s: truncated: rows from %d on are missing (the file ended while reading them)", s.name, local)
			}
			return fmt.Errorf("%s: reading rows %d to %d: %w", s.name, local, local+take-1, err)
		}
		out := dst[:take*d]
		decodeRows(out, raw, d, s.arr)
		if r, c, ok := firstNonFinite(out, d); !ok {
			return fmt.Errorf("%s: row %d (layer row %d), column %d: value %v is not finite", s.name, local+r, start+r, c, out[r*d+c])
		}
		dst = dst[take*d:]
		start += take
		n -= take
		i++
	}
	return nil
}

func decodeRows(dst []float32, raw []byte, d int, a *npyArray) {
	decodeRow(dst, raw, a.DType, a.Order)
}

// firstNonFinite finds the first NaN or ±Inf in rows of width d.
func firstNonFinite(x []float32, d int) (row, col int, ok bool) {
	for i, v := range x {
		// v-v is 0 for finite v and NaN for NaN and ±Inf.
		if f := v - v; f != f {
			return i / d, i % d, false
		}
	}
	return 0, 0, true
}

// ReadNpy reads a whole two-dimensional float32 or float16 .npy file, such as
// a matrix of directions, with the same checks as a dump's shards. It is for
// arrays that fit in memory; dumps are read with Open and Batches.
func ReadNpy(path string) (x []float32, rows, cols int, err error) {
	d := &Dump{}
	defer d.Close()
	s, err := d.openShardFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, 0, fileErr(path, err)
	}
	if err != nil {
		return nil, 0, 0, err
	}
	l := &Layer{Name: path, DModel: s.arr.Cols}
	if err := l.add(s); err != nil {
		return nil, 0, 0, err
	}
	x = make([]float32, l.Rows*l.DModel)
	if err := l.ReadRows(0, x); err != nil {
		return nil, 0, 0, err
	}
	return x, l.Rows, l.DModel, nil
}

package activations

import (
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/memory"
	"github.com/rise-interp/rise/internal/ziplayout"
)

// openNpz opens an .npz archive, one layer per member array: stored
// members are read in place, compressed ones through a temporary file.
func (d *Dump) openNpz(path string) error {
	f, st, err := files.OpenRegular(path)
	if err != nil {
		return fileErr(path, err)
	}
	d.closers = append(d.closers, f)
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return fmt.Errorf("%s: not a readable .npz archive: %v", path, err)
	}
	// npyio's npz.Reader lists members and opens them as streams; random
	// access to stored members needs their offsets, so zip is read here
	// directly and each member's header is parsed as for a .npy file.
	var members []*zip.File
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue
		}
		members = append(members, zf)
	}
	if len(members) == 0 {
		return fmt.Errorf("%s: the archive holds no arrays", path)
	}
	if err := checkNpzLayout(members, st.Size()); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	numbers := npzLayerNumbers(members)
	for i, zf := range members {
		name := path + ":" + zf.Name
		s, err := d.openNpzMember(name, f, zf)
		if err != nil {
			return err
		}
		l := &Layer{Number: numbers[i], Name: strings.TrimSuffix(zf.Name, ".npy"), DModel: s.arr.Cols}
		if err := l.add(s); err != nil {
			return err
		}
		d.Layers = append(d.Layers, l)
	}
	sort.Slice(d.Layers, func(i, j int) bool { return d.Layers[i].Number < d.Layers[j].Number })
	d.Kind, d.DModel = KindNpz, d.Layers[0].DModel
	d.besideFiles(path)
	d.Manifest = d.madeUpManifest()
	return nil
}

// maxNpzExpansion bounds what the compressed members of an .npz archive may
// declare, against the archive's size. Compressed members are decompressed
// into temporary files, so this bounds the disk an archive can take.
// Activations are dense floats, which deflate shrinks by a few percent
// (float16) to about half (float32 rounded from bfloat16); an archive that
// claims more is corrupt, or a zip bomb.
const maxNpzExpansion = 64

// checkNpzLayout checks an archive's members before any is read: their
// layout (ziplayout.Check: inside the file, no shared bytes, sizes within
// what deflate can give) and the total the compressed ones expand to.
func checkNpzLayout(members []*zip.File, size int64) error {
	if _, err := ziplayout.Check(members, size); err != nil {
		return err
	}
	var inflated uint64
	for _, m := range members {
		if m.Method != zip.Store {
			inflated = memory.Sum(inflated, m.UncompressedSize64)
		}
	}
	if limit := memory.Sum(memory.Product(uint64(size), maxNpzExpansion), 1<<20); inflated > limit {
		return fmt.Errorf("the compressed members declare %d bytes in all, more than %d times the archive's %d bytes (plus 1 MiB): expected activations, which compress far less (corrupt archive or zip bomb); save arrays this regular uncompressed (numpy.savez)",
			inflated, maxNpzExpansion, size)
	}
	return nil
}

// npzLayerNumbers numbers an archive's members by the last integer in each
// name ("layer14", "blocks.14.hook_resid_post"); when that does not give
// distinct numbers, members are numbered by their order in the archive.
func npzLayerNumbers(members []*zip.File) []int {
	out := make([]int, len(members))
	seen := map[int]bool{}
	for i, zf := range members {
		n := layerNumberFromName(zf.Name, -1)
		if n < 0 || seen[n] {
			for j := range out {
				out[j] = j
			}
			return out
		}
		seen[n] = true
		out[i] = n
	}
	return out
}

var lastInt = regexp.MustCompile(`(\d+)\D*$`)

func layerNumberFromName(name string, def int) int {
	m := lastInt.FindStringSubmatch(strings.TrimSuffix(name, ".npy"))
	if m == nil {
		return def
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return def
	}
	return n
}

func (d *Dump) openNpzMember(name string, f *os.File, zf *zip.File) (*shard, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	arr, err := readNpyHeader(bufio.NewReaderSize(rc, 4096))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if err := checkSize(name, arr, int64(zf.UncompressedSize64)); err != nil {
		return nil, err
	}
	s := &shard{name: name, arr: arr}
	switch zf.Method {
	case zip.Store:
		off, err := zf.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		s.ra = io.NewSectionReader(f, off, int64(zf.UncompressedSize64))
	default:
		// A compressed member cannot be read at an offset without
		// decompressing everything before it. It is decompressed once, on
		// first read, into a temporary file that Close removes, so that
		// shuffled reading stays linear in the archive's size and memory
		// stays bounded.
		x := &extracted{zf: zf, name: name, ctx: d.ctx}
		s.ra = x
		d.closers = append(d.closers, x)
	}
	return s, nil
}

// extracted decompresses an .npz member into a temporary file on first read.
type extracted struct {
	zf   *zip.File
	name string
	ctx  context.Context // cancelling it stops the decompression
	once sync.Once
	f    *os.File
	err  error
}

func (x *extracted) ReadAt(p []byte, off int64) (int, error) {
	x.once.Do(x.extract)
	if x.err != nil {
		return 0, x.err
	}
	return x.f.ReadAt(p, off)
}

func (x *extracted) extract() {
	// Errors leave out the member's name: readRows adds it.
	rc, err := x.zf.Open()
	if err != nil {
		x.err = err
		return
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "rise-npz-*.npy")
	if err != nil {
		x.err = fmt.Errorf("decompressing to a temporary file: %v", err)
		return
	}
	os.Remove(f.Name()) // the open file stays readable; nothing is left behind
	if err := inflate(x.ctx, f, rc, x.zf.UncompressedSize64); err != nil {
		f.Close()
		x.err = fmt.Errorf("decompressing: %w", err)
		return
	}
	x.f = f
}

// inflate copies a member's stream to w in chunks, checking ctx between
// them, and stops at an error once the stream passes its declared size:
// what an archive expands to is bounded when it is opened, and that bound
// holds only if every member keeps to its declaration.
func inflate(ctx context.Context, w io.Writer, r io.Reader, declared uint64) error {
	buf := make([]byte, 1<<20)
	var n uint64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := r.Read(buf)
		n += uint64(m)
		if n > declared {
			return fmt.Errorf("the stream holds more than the %d bytes the archive declares for it (corrupt archive)", declared)
		}
		if _, werr := w.Write(buf[:m]); werr != nil {
			return werr
		}
		if err == io.EOF {
			if n < declared {
				return fmt.Errorf("the stream ends after %d of the %d bytes the archive declares for it (truncated archive)", n, declared)
			}
			return nil
		}
		if errors.Is(err, zip.ErrFormat) || errors.Is(err, zip.ErrChecksum) {
			return fmt.Errorf("the stream disagrees with the size or checksum the archive declares for it (%v): corrupt archive", err)
		}
		if err != nil {
			return err
		}
	}
}

func (x *extracted) Close() error {
	if x.f != nil {
		return x.f.Close()
	}
	return nil
}

package activations

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/inputerr"
)

// Kind names the layout a dump was read from.
type Kind string

// The layouts Open reads.
const (
	KindDir Kind = "rise-activations/1"
	KindNpy Kind = "npy"
	KindNpz Kind = "npz"
)

// Dump is an opened activation dump. Opening reads every header and checks
// the layout (row counts, widths, types, file sizes); row values are read
// only on demand, so opening a dump of any size is quick.
type Dump struct {
	Path       string    // what was opened
	Kind       Kind      // the layout
	Manifest   *Manifest // the manifest; made up from the file for .npy and .npz
	Layers     []*Layer  // sorted by layer number
	Rows       int       // rows per layer
	DModel     int       // width of every row
	StepsPath  string    // steps.jsonl, or "" when the dump has none
	TracesPath string    // traces.jsonl, or "" when the dump has none

	ctx     context.Context // stops the decompression of .npz members
	closers []io.Closer
}

// Open opens a dump: a rise-activations/1 directory, a .npy file, or an .npz
// archive with one array per layer. It is OpenContext without a way to stop
// it.
func Open(path string) (*Dump, error) { return OpenContext(context.Background(), path) }

// OpenContext opens a dump as Open does. Cancelling ctx stops the opening
// (counting the lines of a long steps.jsonl, say) and any later
// decompression of a compressed .npz member, which happens on its first read.
//
// Only regular files are read: a named pipe, a device or a socket in place
// of a shard, manifest.json, steps.jsonl or the dump itself is an error
// naming it. In a dump directory every file must lie inside the directory
// once symbolic links are followed.
//
// Errors are the caller's (inputerr): the dump the caller named is missing
// or broken, unless ctx ended.
func OpenContext(ctx context.Context, path string) (_ *Dump, err error) {
	defer func() {
		if ctx.Err() == nil {
			err = inputerr.Wrap(err)
		}
	}()
	st, err := os.Stat(path)
	if err != nil {
		return nil, fileErr(path, err)
	}
	d := &Dump{Path: path, ctx: ctx}
	switch {
	case st.IsDir():
		err = d.openDir(path)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s: expected a dump directory (with manifest.json), a .npy file or an .npz archive, found %s", path, files.Kind(st.Mode()))
	case strings.HasSuffix(strings.ToLower(path), ".npz"):
		err = d.openNpz(path)
	case strings.HasSuffix(strings.ToLower(path), ".npy"):
		err = d.openNpy(path)
	default:
		return nil, fmt.Errorf("%s: expected a dump directory (with manifest.json), a .npy file or an .npz archive", path)
	}
	if err == nil {
		err = d.check()
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Layer returns the layer with the given number, or nil.
func (d *Dump) Layer(n int) *Layer {
	for _, l := range d.Layers {
		if l.Number == n {
			return l
		}
	}
	return nil
}

// ChooseLayer picks the layer to work on: the layer numbered want when want
// is not negative, else the layer numbered hook when hook is not negative
// and the dump has it (an SAE's hook layer), else the dump's only layer.
// why says which rule chose it ("" for want). When no rule picks a layer
// the error is a *LayerChoiceError.
func (d *Dump) ChooseLayer(want, hook int) (l *Layer, why string, err error) {
	if want >= 0 {
		if l := d.Layer(want); l != nil {
			return l, "", nil
		}
		return nil, "", &LayerChoiceError{Path: d.Path, Layers: d.LayerNumbers(), Want: want, Hook: hook}
	}
	if hook >= 0 {
		if l := d.Layer(hook); l != nil {
			return l, "the SAE's hook layer", nil
		}
	}
	if len(d.Layers) == 1 {
		return d.Layers[0], "the dump's only layer", nil
	}
	return nil, "", &LayerChoiceError{Path: d.Path, Layers: d.LayerNumbers(), Want: want, Hook: hook}
}

// LayerChoiceError says that ChooseLayer found no layer to work on.
type LayerChoiceError struct {
	Path   string
	Layers []int // the dump's layer numbers
	Want   int   // the layer asked for, -1 for none
	Hook   int   // the SAE's hook layer, -1 for none
}

func (e *LayerChoiceError) Error() string {
	switch {
	case e.Want >= 0:
		return fmt.Sprintf("the dump %s has layers %v, not %d", e.Path, e.Layers, e.Want)
	case e.Hook >= 0:
		return fmt.Sprintf("the dump %s has layers %v and the SAE's hook layer (%d) is not one of them: choose one", e.Path, e.Layers, e.Hook)
	}
	return fmt.Sprintf("the dump %s has layers %v: choose one", e.Path, e.Layers)
}

// LayerNumbers returns the dump's layer numbers in order.
func (d *Dump) LayerNumbers() []int {
	out := make([]int, len(d.Layers))
	for i, l := range d.Layers {
		out[i] = l.Number
	}
	return out
}

// Close releases the dump's files and removes any temporary file made while
// reading a compressed .npz archive.
func (d *Dump) Close() error {
	var first error
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	d.closers = nil
	return first
}

func (d *Dump) openDir(dir string) error {
	m, err := readManifest(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: not a dump: manifest.json is missing (expected a rise-activations/1 directory)", dir)
	}
	if err != nil {
		return err
	}
	d.Kind, d.Manifest, d.DModel = KindDir, m, m.DModel
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fileErr(dir, err)
	}
	nums, _ := m.LayerNumbers()
	for _, n := range nums {
		key := strconv.Itoa(n)
		shards := m.Layers[key]
		if shards == nil { // the key was written as, say, "07"
			for k, v := range m.Layers {
				if kn, _ := strconv.Atoi(k); kn == n {
					key, shards = k, v
				}
			}
		}
		l := &Layer{Number: n, Name: key, DModel: m.DModel}
		for _, name := range shards {
			p := filepath.Join(dir, name)
			err := insideDump(root, dir, p)
			var s *shard
			if err == nil {
				s, err = d.openShardFile(p)
			}
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: layer %s: shard %s is missing", filepath.Join(dir, "manifest.json"), key, name)
			}
			if err != nil {
				return err
			}
			if err := l.add(s); err != nil {
				return err
			}
		}
		d.Layers = append(d.Layers, l)
	}
	if d.StepsPath, err = sidecarPath(dir, "steps", m.Steps); err != nil {
		return err
	}
	if d.TracesPath, err = sidecarPath(dir, "traces", m.Traces); err != nil {
		return err
	}
	for _, p := range []string{d.StepsPath, d.TracesPath} {
		if p == "" {
			continue
		}
		if err := insideDump(root, dir, p); err != nil {
			return err
		}
		if _, err := regularFile(p); err != nil {
			return err
		}
	}
	return nil
}

// sidecarPath finds the steps or traces file (field "steps" or "traces")
// of the dump in dir: the file the manifest names, an error when it is
// missing, or else field.jsonl when it is there, or else "".
func sidecarPath(dir, field, named string) (string, error) {
	if named != "" {
		p := filepath.Join(dir, named)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: field %q: %s is missing", filepath.Join(dir, "manifest.json"), field, named)
		}
		return p, nil
	}
	if p := filepath.Join(dir, field+".jsonl"); exists(p) {
		return p, nil
	}
	return "", nil
}

// insideDump checks that path, once symbolic links are followed, lies
// inside the dump directory dir, whose own links resolve to root: the rule
// that refuses shard names with ".." applies to links as well.
func insideDump(root, dir, path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return fileErr(path, err)
	}
	if rel, err := filepath.Rel(root, real); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("%s: a link to %s, outside the dump directory %s: expected every file of the dump inside it", path, real, dir)
	}
	return nil
}

// regularFile checks that path is a regular file, without opening it.
func regularFile(path string) (fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fileErr(path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: expected a regular file, found %s", path, files.Kind(st.Mode()))
	}
	return st, nil
}

func (d *Dump) openNpy(path string) error {
	s, err := d.openShardFile(path)
	if err != nil {
		return err
	}
	n := layerNumberFromName(filepath.Base(path), 0)
	l := &Layer{Number: n, Name: filepath.Base(path), DModel: s.arr.Cols}
	if err := l.add(s); err != nil {
		return err
	}
	d.Kind, d.DModel, d.Layers = KindNpy, s.arr.Cols, []*Layer{l}
	d.besideFiles(path)
	d.Manifest = d.madeUpManifest()
	return nil
}

// besideFiles picks up steps.jsonl and traces.jsonl next to a .npy or .npz.
func (d *Dump) besideFiles(path string) {
	dir := filepath.Dir(path)
	if p := filepath.Join(dir, "steps.jsonl"); exists(p) {
		d.StepsPath = p
	}
	if p := filepath.Join(dir, "traces.jsonl"); exists(p) {
		d.TracesPath = p
	}
}

func (d *Dump) madeUpManifest() *Manifest {
	m := &Manifest{Format: Format, DModel: d.DModel, Layers: map[string][]string{}}
	for _, l := range d.Layers {
		m.Layers[strconv.Itoa(l.Number)] = l.Shards()
	}
	if d.StepsPath != "" {
		m.Steps = filepath.Base(d.StepsPath)
	}
	if d.TracesPath != "" {
		m.Traces = filepath.Base(d.TracesPath)
	}
	return m
}

// openShardFile opens a .npy file, reads its header and checks its size.
func (d *Dump) openShardFile(path string) (*shard, error) {
	f, st, err := files.OpenRegular(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fileErr(path, err)
	}
	d.closers = append(d.closers, f)
	arr, err := readNpyHeader(bufio.NewReaderSize(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if err := checkSize(path, arr, st.Size()); err != nil {
		return nil, err
	}
	return &shard{name: path, arr: arr, ra: f}, nil
}

// checkSize compares the data size that the header implies with the size
// of the file. A short file is truncated; a longer one is corrupt (it holds
// more than the header says, so the header may be wrong).
func checkSize(name string, a *npyArray, size int64) error {
	want := a.Offset + a.dataBytes()
	switch {
	case size < want:
		have := max(0, size-a.Offset)
		rows := have / a.rowBytes()
		return fmt.Errorf("%s: truncated: the header says %d rows of %d %s values (%d bytes of data), the file holds %d bytes (%d whole rows); rows from %d on are missing",
			name, a.Rows, a.Cols, a.DType, a.dataBytes(), have, rows, rows)
	case size > want:
		return fmt.Errorf("%s: corrupt: the header says %d rows of %d %s values (%d bytes of data), but %d more bytes follow them",
			name, a.Rows, a.Cols, a.DType, a.dataBytes(), size-want)
	}
	return nil
}

// add appends a shard to the layer after checking its width.
func (l *Layer) add(s *shard) error {
	if s.arr.Cols != l.DModel {
		return fmt.Errorf("%s: d_model mismatch: expected %d columns, found shape (%d, %d)", s.name, l.DModel, s.arr.Rows, s.arr.Cols)
	}
	s.start = l.Rows
	l.Rows += s.arr.Rows
	l.shards = append(l.shards, s)
	return nil
}

// check compares row counts across layers and with steps.jsonl.
func (d *Dump) check() error {
	if len(d.Layers) == 0 {
		return fmt.Errorf("%s: the dump holds no layers", d.Path)
	}
	first := d.Layers[0]
	for _, l := range d.Layers[1:] {
		if l.DModel != first.DModel {
			return fmt.Errorf("%s: d_model mismatch: layer %s has %d columns, layer %s has %d", d.Path, first.Name, first.DModel, l.Name, l.DModel)
		}
		if l.Rows != first.Rows {
			return fmt.Errorf("%s: row count mismatch: layer %s has %d rows, layer %s has %d; every layer must hold one row per step",
				d.Path, first.Name, first.Rows, l.Name, l.Rows)
		}
	}
	d.Rows, d.DModel = first.Rows, first.DModel
	if d.StepsPath != "" {
		n, err := countLines(d.ctx, d.StepsPath)
		if err != nil {
			return err
		}
		if n != d.Rows {
			return fmt.Errorf("%s: row count mismatch: %d steps, but layer %s has %d rows (%s); expected one line per row",
				d.StepsPath, n, first.Name, first.Rows, strings.Join(first.Shards(), ", "))
		}
	}
	return nil
}

// countLines counts the non-blank lines of a JSON-lines file. A blank line
// followed by more text is an error, since it would shift every later step
// by one row; blank lines at the end are ignored, and so is a line longer
// than LinesReader reads. Cancelling ctx stops it.
func countLines(ctx context.Context, path string) (int, error) {
	f, _, err := files.OpenRegular(path)
	if err != nil {
		return 0, fileErr(path, err)
	}
	defer f.Close()
	buf := make([]byte, 1<<16)
	line, lines, firstBlank := 1, 0, 0
	text := false  // the current line has a non-space byte
	lineBytes := 0 // bytes of the current line so far
	endLine := func() error {
		switch {
		case !text && firstBlank == 0:
			firstBlank = line
		case text && firstBlank != 0:
			return fmt.Errorf("%s:%d: empty line: expected one JSON object per line", path, firstBlank)
		case text:
			lines++
		}
		line++
		text = false
		lineBytes = 0
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("%s: counting lines: %w", path, err)
		}
		n, rerr := f.Read(buf)
		for _, c := range buf[:n] {
			switch c {
			case '\n':
				if err := endLine(); err != nil {
					return 0, err
				}
				continue
			case ' ', '\t', '\r':
			default:
				text = true
			}
			if lineBytes++; lineBytes > maxLineBytes {
				return 0, fmt.Errorf("%s:%d: line longer than %d MiB: expected one JSON object per line", path, line, maxLineBytes>>20)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, fileErr(path, rerr)
		}
	}
	if text {
		if err := endLine(); err != nil {
			return 0, err
		}
	}
	return lines, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// fileErr formats an error from the os package as "path: reason" without
// repeating the path.
func fileErr(path string, err error) error {
	if errors.Is(err, files.ErrNotRegular) {
		return err // it names the path already
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", path, pe.Err)
	}
	return fmt.Errorf("%s: %v", path, err)
}

package activations

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/rise-interp/rise/internal/atomicfile"
)

// WriterOptions configure a new dump.
type WriterOptions struct {
	Model     string // model name recorded in the manifest
	DModel    int    // width of every row
	Layers    []int  // layers the dump holds; each gets the same number of rows
	DType     DType  // element type on disk (Float32 by default)
	ShardRows int    // rows per shard file; 0 keeps shards near 256 MiB
	Position  string // token position of the rows; PositionStepDelimiter by default
	Delimiter string // step delimiter; "\n\n" by default
	Overwrite bool   // replace an existing dump at the destination

	// Extra fields to record in manifest.json.
	Extra map[string]json.RawMessage
}

// Writer writes a rise-activations/1 dump. Everything is written into a
// temporary directory beside the destination, which Close renames into place
// once every file is complete and synced, so a reader never sees half a dump
// and an interrupted write leaves any earlier dump untouched.
type Writer struct {
	dir, tmp string
	opt      WriterOptions
	manifest Manifest
	layers   map[int]*layerWriter
	steps    *jsonlWriter
	traces   *jsonlWriter
	nsteps   int
	buf      []byte
	err      error // first error; the writer is unusable after it
	closed   bool
}

type layerWriter struct {
	layer int
	rows  int // rows written to this layer so far
	shard *shardWriter
	names []string
}

type shardWriter struct {
	f    *os.File
	w    *bufio.Writer
	rows int
}

type jsonlWriter struct {
	f *os.File
	w *bufio.Writer
}

// Create starts a dump at dir. It fails at once when dir exists and
// opt.Overwrite is false, so that no work is spent on a dump that cannot land.
func Create(dir string, opt WriterOptions) (*Writer, error) {
	if opt.DModel <= 0 {
		return nil, fmt.Errorf("create dump %s: d_model must be positive, got %d", dir, opt.DModel)
	}
	if len(opt.Layers) == 0 {
		return nil, fmt.Errorf("create dump %s: at least one layer is needed", dir)
	}
	seen := map[int]bool{}
	for _, l := range opt.Layers {
		if l < 0 || seen[l] {
			return nil, fmt.Errorf("create dump %s: layers must be distinct non-negative numbers, got %v", dir, opt.Layers)
		}
		seen[l] = true
	}
	if !opt.Overwrite {
		if _, err := os.Stat(dir); err == nil {
			return nil, fmt.Errorf("create dump %s: the destination exists (overwrite it with --force)", dir)
		}
	}
	if opt.Position == "" {
		opt.Position = PositionStepDelimiter
	}
	if opt.Delimiter == "" {
		opt.Delimiter = "\n\n"
	}
	if opt.ShardRows <= 0 {
		opt.ShardRows = max(1, (256<<20)/(opt.DModel*opt.DType.Size()))
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("create dump %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("create dump %s: %w", dir, err)
	}
	// MkdirTemp makes the directory private; a finished dump is as readable
	// as any directory the user makes.
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("create dump %s: %w", dir, err)
	}
	w := &Writer{dir: dir, tmp: tmp, opt: opt, layers: map[int]*layerWriter{}}
	w.manifest = Manifest{
		Format: Format, Model: opt.Model, DModel: opt.DModel, Position: opt.Position,
		Delimiter: opt.Delimiter, Layers: map[string][]string{}, Steps: "steps.jsonl", Extra: opt.Extra,
	}
	for _, l := range opt.Layers {
		w.layers[l] = &layerWriter{layer: l}
	}
	if w.steps, err = w.newJSONL("steps.jsonl"); err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

// Dir returns the destination directory.
func (w *Writer) Dir() string { return w.dir }

func (w *Writer) newJSONL(name string) (*jsonlWriter, error) {
	f, err := os.Create(filepath.Join(w.tmp, name))
	if err != nil {
		return nil, fmt.Errorf("create dump %s: %w", w.dir, err)
	}
	return &jsonlWriter{f: f, w: bufio.NewWriterSize(f, 1<<16)}, nil
}

// WriteRows appends rows to a layer. x holds whole rows of d_model values.
// A NaN or infinite value is refused with an error naming the row.
func (w *Writer) WriteRows(layer int, x []float32) error {
	if w.err != nil {
		return w.err
	}
	lw := w.layers[layer]
	if lw == nil {
		return w.fail(fmt.Errorf("write dump %s: layer %d is not one of the dump's layers %v", w.dir, layer, w.opt.Layers))
	}
	d := w.opt.DModel
	if len(x)%d != 0 {
		return w.fail(fmt.Errorf("write dump %s: layer %d: %d values are not whole rows of d_model %d", w.dir, layer, len(x), d))
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return w.fail(fmt.Errorf("write dump %s: layer %d row %d column %d: value %v is not finite", w.dir, layer, lw.rows+i/d, i%d, v))
		}
	}
	rowBytes := d * w.opt.DType.Size()
	if cap(w.buf) < rowBytes {
		w.buf = make([]byte, rowBytes)
	}
	raw := w.buf[:rowBytes]
	for off := 0; off < len(x); off += d {
		if lw.shard == nil || lw.shard.rows == w.opt.ShardRows {
			if err := w.rollShard(lw); err != nil {
				return w.fail(err)
			}
		}
		encodeRow(raw, x[off:off+d], w.opt.DType)
		if _, err := lw.shard.w.Write(raw); err != nil {
			return w.fail(fmt.Errorf("write dump %s: %w", w.dir, err))
		}
		lw.shard.rows++
		lw.rows++
	}
	return nil
}

// rollShard finishes the layer's current shard and opens the next one.
func (w *Writer) rollShard(lw *layerWriter) error {
	if err := w.finishShard(lw); err != nil {
		return err
	}
	name := fmt.Sprintf("layer%d-%05d.npy", lw.layer, len(lw.names))
	f, err := os.Create(filepath.Join(w.tmp, name))
	if err != nil {
		return fmt.Errorf("write dump %s: %w", w.dir, err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := writeNpyHeader(bw, w.opt.DType, 0, w.opt.DModel); err != nil {
		f.Close()
		return err
	}
	lw.shard = &shardWriter{f: f, w: bw}
	lw.names = append(lw.names, name)
	return nil
}

// finishShard flushes the open shard, writes its final row count into the
// header and syncs it.
func (w *Writer) finishShard(lw *layerWriter) error {
	s := lw.shard
	if s == nil {
		return nil
	}
	lw.shard = nil
	err := s.w.Flush()
	if err == nil {
		if _, err = s.f.Seek(0, 0); err == nil {
			err = writeNpyHeader(s.f, w.opt.DType, s.rows, w.opt.DModel)
		}
	}
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write dump %s: %w", w.dir, err)
	}
	return nil
}

// WriteSteps appends lines to steps.jsonl, one per row.
func (w *Writer) WriteSteps(steps ...Step) error {
	if w.err != nil {
		return w.err
	}
	for i := range steps {
		if err := w.steps.write(steps[i]); err != nil {
			return w.fail(fmt.Errorf("write dump %s: steps.jsonl line %d: %w", w.dir, w.nsteps+1, err))
		}
		w.nsteps++
	}
	return nil
}

// WriteTraces appends lines to traces.jsonl, which is created on first use.
func (w *Writer) WriteTraces(traces ...Trace) error {
	if w.err != nil {
		return w.err
	}
	if w.traces == nil {
		t, err := w.newJSONL("traces.jsonl")
		if err != nil {
			return w.fail(err)
		}
		w.traces = t
		w.manifest.Traces = "traces.jsonl"
	}
	for i := range traces {
		if err := w.traces.write(traces[i]); err != nil {
			return w.fail(fmt.Errorf("write dump %s: traces.jsonl: %w", w.dir, err))
		}
	}
	return nil
}

func (j *jsonlWriter) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = j.w.Write(b)
	return err
}

func (j *jsonlWriter) close() error {
	err := j.w.Flush()
	if err == nil {
		err = j.f.Sync()
	}
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close checks that every layer holds one row per step, writes the manifest
// and moves the finished dump into place. After an error nothing is moved and
// the temporary directory is removed.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if w.err != nil {
		w.Abort()
		return w.err
	}
	w.closed = true
	layers := make([]int, 0, len(w.layers))
	for l := range w.layers {
		layers = append(layers, l)
	}
	sort.Ints(layers)
	for _, l := range layers {
		lw := w.layers[l]
		if lw.rows != w.nsteps {
			return w.abortWith(fmt.Errorf("write dump %s: layer %d has %d rows but steps.jsonl has %d lines: expected one step per row", w.dir, l, lw.rows, w.nsteps))
		}
		if lw.names == nil { // an empty dump still gets one (empty) shard per layer
			if err := w.rollShard(lw); err != nil {
				return w.abortWith(err)
			}
		}
		if err := w.finishShard(lw); err != nil {
			return w.abortWith(err)
		}
		w.manifest.Layers[strconv.Itoa(l)] = lw.names
	}
	if err := w.steps.close(); err != nil {
		return w.abortWith(fmt.Errorf("write dump %s: %w", w.dir, err))
	}
	if w.traces != nil {
		if err := w.traces.close(); err != nil {
			return w.abortWith(fmt.Errorf("write dump %s: %w", w.dir, err))
		}
	}
	m, err := json.MarshalIndent(w.manifest, "", "  ")
	if err != nil {
		return w.abortWith(err)
	}
	if err := atomicfile.WriteSync(filepath.Join(w.tmp, "manifest.json"), append(m, '\n')); err != nil {
		return w.abortWith(fmt.Errorf("write dump %s: %w", w.dir, err))
	}
	if err := replaceDir(w.tmp, w.dir, w.opt.Overwrite); err != nil {
		return w.abortWith(fmt.Errorf("write dump %s: %w", w.dir, err))
	}
	return nil
}

// Abort discards everything written so far.
func (w *Writer) Abort() {
	w.closed = true
	for _, lw := range w.layers {
		if lw.shard != nil {
			lw.shard.f.Close()
		}
	}
	for _, j := range []*jsonlWriter{w.steps, w.traces} {
		if j != nil {
			j.f.Close()
		}
	}
	os.RemoveAll(w.tmp)
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) abortWith(err error) error {
	w.fail(err)
	w.Abort()
	return w.err
}

// replaceDir renames the finished directory tmp to dir. An existing dir is
// moved aside first and removed only once the new one is in place.
func replaceDir(tmp, dir string, overwrite bool) error {
	old := ""
	if _, err := os.Stat(dir); err == nil {
		if !overwrite {
			return errors.New("the destination appeared while writing (overwrite it with --force)")
		}
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return err
	}
	atomicfile.SyncDir(filepath.Dir(dir))
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// WriteFile adds a file of the caller's own to the dump, such as the planted
// directions of a synthetic dump. It lands with the rest of the dump on Close.
// name must be a plain file name that the dump format does not use itself.
func (w *Writer) WriteFile(name string, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if !localName(name) || filepath.Base(name) != name {
		return w.fail(fmt.Errorf("write dump %s: extra file %q must be a plain file name", w.dir, name))
	}
	if name == "manifest.json" || name == "steps.jsonl" || name == "traces.jsonl" || layerShardName.MatchString(name) {
		return w.fail(fmt.Errorf("write dump %s: extra file %q would replace a file of the dump itself", w.dir, name))
	}
	if err := atomicfile.WriteSync(filepath.Join(w.tmp, name), data); err != nil {
		return w.fail(fmt.Errorf("write dump %s: %w", w.dir, err))
	}
	return nil
}

var layerShardName = regexp.MustCompile(`^layer\d+-\d+\.npy$`)

// EncodeNpy returns a whole .npy file holding x as a C-order float32 array of
// shape [rows, cols].
func EncodeNpy(x []float32, rows, cols int) []byte {
	if rows*cols != len(x) {
		panic(fmt.Sprintf("activations: EncodeNpy: %d values do not make shape (%d, %d)", len(x), rows, cols))
	}
	var b bytes.Buffer
	b.Grow(npyHeaderSize + 4*len(x))
	writeNpyHeader(&b, Float32, rows, cols)
	raw := make([]byte, 4*len(x))
	encodeRow(raw, x, Float32)
	b.Write(raw)
	return b.Bytes()
}

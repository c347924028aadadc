package sae

import (
	"bufio"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"

	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/internal/files"
)

// checkpointVersion changes whenever the checkpoint layout does: 2 writes
// a gob header followed by the float arrays as raw little-endian float32s.
const checkpointVersion = 2

// checkpoint is everything a training run needs to continue exactly where
// it stopped: the weights, the optimiser's moments, the step, and the state
// that decides dead latents and the BatchTopK threshold. It is the header
// of the file; the arrays follow it.
type checkpoint struct {
	Version   int
	Config    TrainConfig
	Rows, DIn int
	Step      int
	// SAE is the SAE without its arrays.
	SAE        SAE
	AdamT      int
	SinceFired []int64
	ThrEMA     float64
	ThrSeen    bool
	Samples    int64
	Resampled  int
	// Arrays holds the lengths of the float32 arrays that follow the
	// header, in the order of checkpointArrays.
	Arrays []int
}

// checkpointArrays lists a run's float32 arrays in the order a checkpoint
// holds them: W_enc, W_dec, b_enc, b_dec, threshold, the log-thresholds,
// then the optimiser's first and second moments of every tensor.
func (t *trainer) checkpointArrays(s *SAE) []*[]float32 {
	out := []*[]float32{&s.WEnc, &s.WDec, &s.BEnc, &s.BDec, &s.Threshold, &t.logThr}
	for k := range t.opt.m {
		out = append(out, &t.opt.m[k])
	}
	for k := range t.opt.v {
		out = append(out, &t.opt.v[k])
	}
	return out
}

// saveCheckpoint writes the run's state atomically, streamed to the file
// (the arrays are never copied whole).
func (t *trainer) saveCheckpoint() error {
	arrays := t.checkpointArrays(t.s)
	c := checkpoint{
		Version: checkpointVersion, Config: t.cfg, Rows: t.layer.Rows, DIn: t.layer.DModel,
		Step: t.step, SAE: *t.s, AdamT: t.opt.t,
		SinceFired: t.sinceFired, ThrEMA: t.thrEMA, ThrSeen: t.thrSeen, Samples: t.samples, Resampled: t.resampled,
	}
	c.SAE.WEnc, c.SAE.WDec, c.SAE.BEnc, c.SAE.BDec, c.SAE.Threshold = nil, nil, nil, nil, nil
	for _, a := range arrays {
		c.Arrays = append(c.Arrays, len(*a))
	}
	if err := os.MkdirAll(filepath.Dir(t.cfg.Checkpoint), 0o755); err != nil {
		return fmt.Errorf("checkpoint %s: %w", t.cfg.Checkpoint, err)
	}
	err := atomicfile.WriteFunc(t.cfg.Checkpoint, func(w io.Writer) error {
		if err := gob.NewEncoder(w).Encode(&c); err != nil {
			return err
		}
		var buf [16384]byte
		for _, a := range arrays {
			for v := *a; len(v) > 0; {
				n := min(len(buf)/4, len(v))
				for i, x := range v[:n] {
					binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
				}
				if _, err := w.Write(buf[:4*n]); err != nil {
					return err
				}
				v = v[n:]
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", t.cfg.Checkpoint, err)
	}
	return nil
}

// readFloats reads n little-endian float32s.
func readFloats(r io.Reader, n int) ([]float32, error) {
	if n == 0 {
		return nil, nil
	}
	out := make([]float32, n)
	var buf [16384]byte
	for v := out; len(v) > 0; {
		k := min(len(buf)/4, len(v))
		if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
			return nil, err
		}
		for i := range v[:k] {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
		v = v[k:]
	}
	return out, nil
}

// loadCheckpoint restores a run; it returns false when there is no
// checkpoint file. A checkpoint of another configuration or other data
// is an error: resuming it would not give the run that was asked for.
func (t *trainer) loadCheckpoint() (bool, error) {
	path := t.cfg.Checkpoint
	f, st, err := files.OpenRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checkpoint: %w", err) // the error names the file
	}
	defer f.Close()
	// The arrays, read in place: about the file's size.
	if err := checkMemory(uint64(st.Size()), fmt.Sprintf("checkpoint %s: reading its %d bytes", path, st.Size())); err != nil {
		return false, err
	}
	br := bufio.NewReader(f) // an io.ByteReader: gob reads no further than its header
	var c checkpoint
	if err := gob.NewDecoder(br).Decode(&c); err != nil {
		return false, fmt.Errorf("checkpoint %s: unreadable (%v; rise writes checkpoint version %d); delete it to start afresh", path, err, checkpointVersion)
	}
	if c.Version != checkpointVersion {
		return false, fmt.Errorf("checkpoint %s: version %d, expected %d; delete it to start afresh", path, c.Version, checkpointVersion)
	}
	var total int64
	for _, n := range c.Arrays {
		if n < 0 || int64(n) > st.Size()/4 {
			return false, fmt.Errorf("checkpoint %s: an array of %d values in a file of %d bytes; delete it to start afresh", path, n, st.Size())
		}
		total += int64(n)
	}
	if 4*total > st.Size() {
		return false, fmt.Errorf("checkpoint %s: its arrays claim %d bytes, the file has %d; delete it to start afresh", path, 4*total, st.Size())
	}
	arrays := make([][]float32, len(c.Arrays))
	for i, n := range c.Arrays {
		if arrays[i], err = readFloats(br, n); err != nil {
			return false, fmt.Errorf("checkpoint %s: array %d of %d: %v; delete it to start afresh", path, i+1, len(c.Arrays), err)
		}
	}
	if c.Rows != t.layer.Rows || c.DIn != t.layer.DModel {
		return false, fmt.Errorf("checkpoint %s: made on data of %d rows × %d, this data has %d × %d", path, c.Rows, c.DIn, t.layer.Rows, t.layer.DModel)
	}
	want, got := t.cfg, c.Config
	want.Resume, got.Resume = false, false
	want.Checkpoint, got.Checkpoint = "", ""
	if !reflect.DeepEqual(want, got) {
		return false, fmt.Errorf("checkpoint %s: made with other training settings (%s); resume with the same flags or delete it", path, configDiff(got, want))
	}
	s := c.SAE
	if len(arrays) < 6 {
		return false, fmt.Errorf("checkpoint %s: %d arrays, expected the SAE's and the optimiser's", path, len(arrays))
	}
	s.WEnc, s.WDec, s.BEnc, s.BDec, s.Threshold = arrays[0], arrays[1], arrays[2], arrays[3], arrays[4]
	if err := s.Check(); err != nil {
		return false, fmt.Errorf("checkpoint %s: %v", path, err)
	}
	t.s, t.step, t.logThr = &s, c.Step, arrays[5]
	t.sinceFired, t.thrEMA, t.thrSeen, t.samples = c.SinceFired, c.ThrEMA, c.ThrSeen, c.Samples
	t.resumedFrom, t.resampled = c.Step, c.Resampled
	t.init()
	moments := arrays[6:]
	if len(moments) != 2*len(t.opt.params) {
		return false, fmt.Errorf("checkpoint %s: optimiser state for %d tensors, expected %d", path, len(moments)/2, len(t.opt.params))
	}
	t.opt.m, t.opt.v, t.opt.t = moments[:len(moments)/2], moments[len(moments)/2:], c.AdamT
	for k := range t.opt.params {
		if len(t.opt.m[k]) != len(t.opt.params[k]) || len(t.opt.v[k]) != len(t.opt.params[k]) {
			return false, fmt.Errorf("checkpoint %s: optimiser state of tensor %d has the wrong size", path, k)
		}
	}
	return true, nil
}

// configDiff names the first differing field of two configurations.
func configDiff(a, b TrainConfig) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		fa, fb := va.Field(i), vb.Field(i)
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			x, y := fa.Interface(), fb.Interface()
			if fa.Kind() == reflect.Pointer && !fa.IsNil() && !fb.IsNil() {
				x, y = fa.Elem().Interface(), fb.Elem().Interface()
			}
			return fmt.Sprintf("%s was %v, now %v", va.Type().Field(i).Name, x, y)
		}
	}
	return "no difference found"
}

package sae

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"

	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/memory"
)

// checkpointVersion changes whenever the checkpoint layout does.
const checkpointVersion = 1

// checkpoint is everything a training run needs to continue exactly where
// it stopped: the weights, the optimiser's moments, the step, and the state
// that decides dead latents and the BatchTopK threshold.
type checkpoint struct {
	Version    int
	Config     TrainConfig
	Rows, DIn  int
	Step       int
	SAE        SAE
	LogThr     []float32
	AdamM      [][]float32
	AdamV      [][]float32
	AdamT      int
	SinceFired []int64
	ThrEMA     float64
	ThrSeen    bool
	Samples    int64
}

// saveCheckpoint writes the run's state atomically.
func (t *trainer) saveCheckpoint() error {
	c := checkpoint{
		Version: checkpointVersion, Config: t.cfg, Rows: t.layer.Rows, DIn: t.layer.DModel,
		Step: t.step, SAE: *t.s, LogThr: t.logThr, AdamM: t.opt.m, AdamV: t.opt.v, AdamT: t.opt.t,
		SinceFired: t.sinceFired, ThrEMA: t.thrEMA, ThrSeen: t.thrSeen, Samples: t.samples,
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(&c); err != nil {
		return fmt.Errorf("checkpoint %s: %w", t.cfg.Checkpoint, err)
	}
	if err := os.MkdirAll(filepath.Dir(t.cfg.Checkpoint), 0o755); err != nil {
		return fmt.Errorf("checkpoint %s: %w", t.cfg.Checkpoint, err)
	}
	if err := atomicfile.Write(t.cfg.Checkpoint, b.Bytes()); err != nil {
		return fmt.Errorf("checkpoint %s: %w", t.cfg.Checkpoint, err)
	}
	return nil
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
	// The file and what gob decodes from it are in memory at once.
	if err := checkMemory(memory.Product(2, uint64(st.Size())), fmt.Sprintf("checkpoint %s: reading its %d bytes", path, st.Size())); err != nil {
		return false, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return false, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	var c checkpoint
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&c); err != nil {
		return false, fmt.Errorf("checkpoint %s: unreadable (%v); delete it to start afresh", path, err)
	}
	if c.Version != checkpointVersion {
		return false, fmt.Errorf("checkpoint %s: version %d, expected %d", path, c.Version, checkpointVersion)
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
	if err := s.Check(); err != nil {
		return false, fmt.Errorf("checkpoint %s: %v", path, err)
	}
	t.s, t.step, t.logThr = &s, c.Step, c.LogThr
	t.sinceFired, t.thrEMA, t.thrSeen, t.samples = c.SinceFired, c.ThrEMA, c.ThrSeen, c.Samples
	t.resumedFrom = c.Step
	t.init()
	t.opt.m, t.opt.v, t.opt.t = c.AdamM, c.AdamV, c.AdamT
	if len(t.opt.m) != len(t.opt.params) {
		return false, fmt.Errorf("checkpoint %s: optimiser state for %d tensors, expected %d", path, len(t.opt.m), len(t.opt.params))
	}
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

package web

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/sae"
)

// The workspace keeps each SAE trained from the browser in its own
// directory, Dir/saes/NAME, so that a restart finds it again:
//
//	job.json                 the training request, written before it runs
//	training.ckpt            the run's checkpoint (sae.TrainConfig.Checkpoint)
//	cfg.json, sae_weights.safetensors   the SAE, once trained
//	derived.json, atlas.json, feature statistics   its analysis
//
// The analyses of SAEs given on the command line are kept apart, in
// Dir/cache/NAME, so that nothing under Dir/saes is anything but an SAE the
// workspace made (and may delete).
const (
	jobFile     = "job.json"
	jobFormat   = "rise-train-job/1"
	ckptFile    = "training.ckpt"
	derivedFile = "derived.json"
	// derivedFormat changes whenever the analysis computes something else
	// from the same SAE and data, so that files an older rise derived are
	// computed again: 2 names features for a behaviour only on the
	// attribution rule's evidence, and knows named behaviours.
	derivedFormat = "rise-derived/2"
	weightsFile   = "sae_weights.safetensors"
)

// jobRecord is job.json: what a training job was asked, enough to run it
// again from its checkpoint after a restart.
type jobRecord struct {
	Format      string       `json:"format"`
	Request     TrainRequest `json:"request"`
	DatasetPath string       `json:"dataset_path"`
	Layer       int          `json:"layer"`
}

// maxJobRecord bounds the job.json read back on start.
const maxJobRecord = 1 << 20

func (w *Workspace) saesDir() string { return filepath.Join(w.Dir, "saes") }

// cacheDir is where the files derived from an SAE are kept: beside the SAE
// when the workspace made it, else under Dir/cache.
func (w *Workspace) cacheDir(m *SAE) string {
	if m.owned {
		return m.Path
	}
	return filepath.Join(w.Dir, "cache", m.Name)
}

func writeJobRecord(dir string, rec jobRecord) error {
	rec.Format = jobFormat
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, jobFile), append(b, '\n'))
}

func readJobRecord(dir string) (jobRecord, error) {
	var rec jobRecord
	p := filepath.Join(dir, jobFile)
	b, err := files.ReadRegular(p, maxJobRecord, "a training job record")
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: expected a training job record, found invalid JSON: %v", p, err)
	}
	if rec.Format != jobFormat {
		return rec, fmt.Errorf("%s: format %q, expected %q", p, rec.Format, jobFormat)
	}
	return rec, nil
}

// Restore reads back what earlier runs of the server left in Dir/saes:
// each trained SAE is added and analysed (its derived files are reused when
// they still match its weights), and each training that did not finish is
// listed as interrupted, to resume with ResumeTrain. Names already in the
// workspace (the demo's) are left alone. An entry that cannot be read back
// is reported in the error, one line each, and the others are restored.
func (s *Server) Restore() error {
	ents, err := os.ReadDir(s.ws.saesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sort.Slice(ents, func(a, b int) bool { return ents[a].Name() < ents[b].Name() })
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || checkName("SAE", name) != nil || s.ws.SAE(name) != nil {
			continue
		}
		if err := s.restoreOne(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Server) restoreOne(name string) error {
	dir := filepath.Join(s.ws.saesDir(), name)
	if _, err := os.Stat(filepath.Join(dir, weightsFile)); err == nil {
		m, err := s.ws.addTrained(dir)
		if err == nil {
			s.StartAnalysis(m)
			return nil
		}
		if _, jerr := os.Stat(filepath.Join(dir, jobFile)); jerr != nil {
			return fmt.Errorf("workspace SAE %s: %v (delete %s to drop it)", name, err, dir)
		}
		// Half-saved weights with the job still recorded: train it again.
	}
	rec, err := readJobRecord(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("workspace SAE %s: expected trained weights or a %s in %s, found neither (delete the directory to drop it)", name, jobFile, dir)
	}
	if err != nil {
		return fmt.Errorf("workspace SAE %s: %v", name, err)
	}
	ds := s.ws.datasetByPath(rec.DatasetPath, rec.Request.Dataset)
	if ds == nil {
		return fmt.Errorf("workspace SAE %s: its interrupted training needs the dataset %s (%s), which is not served: give it with --data to resume", name, rec.Request.Dataset, rec.DatasetPath)
	}
	layer := ds.Dump.Layer(rec.Layer)
	if layer == nil {
		return fmt.Errorf("workspace SAE %s: its interrupted training needs layer %d of dataset %s, which has %v", name, rec.Layer, ds.Name, ds.Dump.LayerNumbers())
	}
	req := rec.Request
	req.Dataset, req.Name = ds.Name, name
	m := &SAE{Name: name, Path: dir, Dataset: ds, Layer: layer, owned: true, train: &req}
	m.state, m.err = SAEInterrupted, interruptedMsg(m)
	s.ws.mu.Lock()
	defer s.ws.mu.Unlock()
	if s.ws.saeTakenLocked(name) {
		return nil
	}
	s.ws.saes = append(s.ws.saes, m)
	return nil
}

// interruptedMsg says where an interrupted training stands.
func interruptedMsg(m *SAE) string {
	if _, err := os.Stat(filepath.Join(m.Path, ckptFile)); err == nil {
		return "its training was interrupted; resume continues from its checkpoint (POST /api/saes/" + m.Name + "/resume)"
	}
	return "its training was interrupted before its first checkpoint; resume starts it again (POST /api/saes/" + m.Name + "/resume)"
}

// datasetByPath returns the dataset opened from path, else the one named
// name, else nil.
func (w *Workspace) datasetByPath(path, name string) *Dataset {
	want, _ := filepath.Abs(path)
	for _, ds := range w.Datasets() {
		if p, _ := filepath.Abs(ds.Path); p == want {
			return ds
		}
	}
	return w.Dataset(name)
}

// weightsHash is the SHA-256 of an SAE's parameters as loaded: its
// architecture, shapes and every weight. Files derived from an SAE carry it,
// so that new weights under an old name are never shown another SAE's
// atlas or statistics.
func weightsHash(s *sae.SAE) string {
	h := sha256.New()
	var b [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	h.Write([]byte(s.Arch))
	put(uint64(s.DIn))
	put(uint64(s.DSae))
	put(uint64(s.K))
	if s.ApplyBDecToInput {
		put(1)
	} else {
		put(0)
	}
	put(uint64(math.Float32bits(s.InputScale)))
	for _, xs := range [][]float32{s.WEnc, s.WDec, s.BEnc, s.BDec, s.Threshold} {
		put(uint64(len(xs)))
		buf := make([]byte, 4*len(xs))
		for i, x := range xs {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// derivedHeader is derived.json: the weights and data the other files in
// its directory were computed from.
type derivedHeader struct {
	Format  string `json:"format"`
	SAE     string `json:"sae_sha256"`
	Dataset string `json:"dataset"`
	Layer   int    `json:"layer"`
	Rows    int    `json:"rows"`
	// Named names the behaviours named on the dataset (namedHash): files
	// derived under other labels are not reused.
	Named string `json:"named,omitempty"`
	// Attribution is "next" when columns were attributed by the next
	// step's labels (Dataset.NextStep).
	Attribution string `json:"attribution,omitempty"`
}

func derivedFor(m *SAE, s *sae.SAE) derivedHeader {
	p, _ := filepath.Abs(m.Dataset.Path)
	h := derivedHeader{Format: derivedFormat, SAE: weightsHash(s), Dataset: p, Layer: m.Layer.Number, Rows: m.Layer.Rows, Named: m.Dataset.namedHash()}
	if m.Dataset.NextStep {
		h.Attribution = "next"
	}
	return h
}

// derivedMatches reports whether the files in dir were derived from want.
func derivedMatches(dir string, want derivedHeader) bool {
	b, err := files.ReadRegular(filepath.Join(dir, derivedFile), maxJobRecord, "a derived-files header")
	if err != nil {
		return false
	}
	var got derivedHeader
	return json.Unmarshal(b, &got) == nil && got == want
}

func writeDerived(dir string, h derivedHeader) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, derivedFile), append(b, '\n'))
}

// addTrained adds the SAE the workspace trained into dir.
func (w *Workspace) addTrained(dir string) (*SAE, error) {
	return w.addSAE(dir, true)
}

// remove takes m out of the workspace's list.
func (w *Workspace) remove(m *SAE) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, x := range w.saes {
		if x == m {
			w.saes = append(w.saes[:i:i], w.saes[i+1:]...)
			return
		}
	}
}

// resumeSAE answers POST /api/saes/{sae}/resume: 202 and the training job
// that continues an interrupted training, 409 when it is not interrupted.
func (s *Server) resumeSAE(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, err := s.saeOf(r)
	if err != nil {
		return nil, err
	}
	j, err := s.ResumeTrain(m)
	if err != nil {
		return nil, err
	}
	return accepted{j.View()}, nil
}

// deleteWait bounds the wait for an SAE's job to stop before its files are
// removed.
const deleteWait = 30 * time.Second

// deleteSAE answers DELETE /api/saes/{sae}: an SAE the workspace trained is
// removed, its job cancelled first and its files (weights, checkpoint,
// derived files) with it; an SAE given on the command line is refused with
// 409, its files untouched.
func (s *Server) deleteSAE(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, err := s.saeOf(r)
	if err != nil {
		return nil, err
	}
	if !m.owned {
		return nil, errorf(http.StatusConflict, "delete SAE %s: it was given on the command line (--sae %s), and the workbench deletes only the SAEs it trained", m.Name, m.Path)
	}
	// A training job that ends as it is cancelled starts the atlas job:
	// stop jobs until none of the SAE's runs.
	for {
		_, job, _, _, _ := m.snapshot()
		j := s.jobs.Get(job)
		if j == nil || hasEnded(j.State()) {
			break
		}
		j.Cancel()
		select {
		case <-j.Done():
		case <-time.After(deleteWait):
			return nil, errorf(http.StatusConflict, "delete SAE %s: its job %s did not stop within %v; try again", m.Name, j.ID, deleteWait)
		}
	}
	s.ws.remove(m)
	if err := os.RemoveAll(m.Path); err != nil {
		return nil, fmt.Errorf("delete SAE %s: removing %s: %w", m.Name, m.Path, err)
	}
	s.sweeps.invalidate(m.Dataset.Name)
	return map[string]any{"deleted": m.Name}, nil
}

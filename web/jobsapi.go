package web

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/web/report"
)

// TrainRequest is the body of POST /api/jobs for a training job. Zero
// values take the defaults of rise train.
type TrainRequest struct {
	Kind     string  `json:"kind"`
	Dataset  string  `json:"dataset"`
	Layer    *int    `json:"layer"`
	Name     string  `json:"name"`
	Arch     string  `json:"arch"`
	Width    int     `json:"width"`
	K        int     `json:"k"`
	Sparsity float64 `json:"sparsity"`
	Preset   string  `json:"preset"`
	Steps    int     `json:"steps"`
	Batch    int     `json:"batch"`
	LR       float64 `json:"lr"`
	Seed     uint64  `json:"seed"`
	Resample int     `json:"resample_every"` // steps between resamplings of dead latents (0: none)
	// Precision of the dense products: "" or "f32", or "bf16" (CPUs with
	// AVX512_BF16; sae.TrainConfig.Precision).
	Precision string `json:"precision,omitempty"`
	SAE       string `json:"sae"` // atlas jobs
}

// listJobs answers GET /api/jobs?kind=K,...&offset=&limit=: a page of the
// jobs, newest first, of the kinds given (all when none), without their
// results (GET /api/jobs/{id} has them).
func (s *Server) listJobs(_ http.ResponseWriter, r *http.Request) (any, error) {
	offset, limit, err := paging(r, 50, 500)
	if err != nil {
		return nil, err
	}
	kinds := map[string]bool{}
	if k := r.URL.Query().Get("kind"); k != "" {
		for _, kind := range strings.Split(k, ",") {
			if _, ok := DefaultJobLimits[kind]; !ok {
				return nil, errorf(http.StatusBadRequest, "parameter kind: expected train, atlas, sweep or steer (comma-separated), found %q", kind)
			}
			kinds[kind] = true
		}
	}
	out := []JobView{}
	total := 0
	for _, j := range s.jobs.List() {
		if len(kinds) > 0 && !kinds[j.Kind] {
			continue
		}
		if total >= offset && len(out) < limit {
			v := j.View()
			v.Result = nil
			out = append(out, v)
		}
		total++
	}
	return map[string]any{"total": total, "offset": offset, "limit": limit, "jobs": out}, nil
}

func (s *Server) job(r *http.Request) (*Job, error) {
	return lookup(s.jobs.Get, r.PathValue("id"), "job", "/api/jobs")
}

func (s *Server) getJob(_ http.ResponseWriter, r *http.Request) (any, error) {
	j, err := s.job(r)
	if err != nil {
		return nil, err
	}
	return j.View(), nil
}

// cancelJob cancels a job: a queued one ends at once (200), a running one
// is asked to stop (202) and ends cancelled when its work returns. A job
// that has ended is left as it is (409).
func (s *Server) cancelJob(_ http.ResponseWriter, r *http.Request) (any, error) {
	j, err := s.job(r)
	if err != nil {
		return nil, err
	}
	if v := j.View(); hasEnded(v.State) {
		return nil, errorf(http.StatusConflict, "job %s: expected a queued or running job to cancel, found it %s at %s", j.ID, v.State, v.Finished.Format(time.RFC3339))
	}
	j.Cancel()
	if hasEnded(j.State()) {
		return j.View(), nil
	}
	return accepted{j.View()}, nil
}

// maxJobBody bounds the body of POST /api/jobs.
const maxJobBody = 1 << 20

func (s *Server) startJob(w http.ResponseWriter, r *http.Request) (any, error) {
	var req TrainRequest
	release, err := s.readJSON(w, r, maxJobBody, &req, "job request", `{"kind": "train", "dataset": ...}`)
	defer release()
	if err != nil {
		return nil, err
	}
	var j *Job
	switch req.Kind {
	case "train":
		j, err = s.StartTrain(req)
	case "atlas":
		m := s.ws.SAE(req.SAE)
		if m == nil {
			err = errorf(http.StatusNotFound, "atlas job: no SAE %q (GET /api/saes lists them)", req.SAE)
			break
		}
		state, _, _, sa, _ := m.snapshot()
		if sa == nil || state == SAETraining {
			err = errorf(http.StatusConflict, "atlas job: SAE %s is still %s", m.Name, state)
			break
		}
		j = s.StartAnalysis(m)
	default:
		err = errorf(http.StatusBadRequest, "job kind: expected \"train\" or \"atlas\", found %q", req.Kind)
	}
	if err != nil {
		return nil, err
	}
	return accepted{j.View()}, nil
}

// trainEventEvery is the shortest time between two train events of a job.
const trainEventEvery = 100 * time.Millisecond

// trainCheckpointEvery is how often a training job checkpoints: every
// twentieth of its steps, between 50 and 500 (rise train's default), so
// that a killed server loses little of a run.
func trainCheckpointEvery(steps int) int { return min(500, max(50, steps/20)) }

// trainPlan checks a training request and returns what it trains on and
// how.
func (s *Server) trainPlan(req TrainRequest) (*Dataset, *activations.Layer, sae.TrainConfig, error) {
	var cfg sae.TrainConfig
	ds := s.ws.Dataset(req.Dataset)
	if ds == nil {
		return nil, nil, cfg, errorf(http.StatusNotFound, "train: no dataset %q (GET /api/datasets lists them)", req.Dataset)
	}
	want := -1
	if req.Layer != nil {
		if *req.Layer < 0 {
			return nil, nil, cfg, errorf(http.StatusBadRequest, "train: layer: expected a layer number of dataset %s (%v), found %d", ds.Name, ds.Dump.LayerNumbers(), *req.Layer)
		}
		want = *req.Layer
	}
	layer, _, err := ds.Dump.ChooseLayer(want, -1)
	if err != nil {
		return nil, nil, cfg, errorf(http.StatusBadRequest, "train: layer: dataset %s: %v", ds.Name, err)
	}
	cfg, err = sae.Settings{Preset: req.Preset, Arch: req.Arch, Width: req.Width, K: req.K, Sparsity: req.Sparsity,
		Steps: req.Steps, Batch: req.Batch, LR: req.LR, Resample: req.Resample}.Config()
	if err != nil {
		return nil, nil, cfg, errorf(http.StatusBadRequest, "train: %v", err)
	}
	cfg.Seed, cfg.Precision = req.Seed, req.Precision
	if err := cfg.Defaults(layer.DModel, layer.Rows).Validate(layer.DModel, layer.Rows); err != nil {
		return nil, nil, cfg, errorf(http.StatusBadRequest, "train: %v", err)
	}
	cfg.CheckpointEvery = trainCheckpointEvery(cfg.Defaults(layer.DModel, layer.Rows).Steps)
	return ds, layer, cfg, nil
}

// StartTrain checks a training request and starts its job: train, save the
// SAE as a SAELens directory in the workspace, then analyse it. The request
// is written to the SAE's directory first and the run checkpoints there,
// so that a training cut short (cancelled, or the server stopped or
// killed) can be resumed.
func (s *Server) StartTrain(req TrainRequest) (*Job, error) {
	ds, layer, cfg, err := s.trainPlan(req)
	if err != nil {
		return nil, err
	}
	name := req.Name
	if name == "" {
		name = s.ws.uniqueName(fmt.Sprintf("%s-l%d-%s", ds.Name, layer.Number, cfg.Defaults(layer.DModel, layer.Rows).Arch), func(n string) bool {
			_, err := os.Lstat(filepath.Join(s.ws.saesDir(), n))
			return s.ws.SAE(n) != nil || err == nil
		})
	}
	m, err := s.ws.reserveSAE(name, ds, layer, "")
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "train: %v", err)
	}
	req.Name = name
	n := layer.Number
	req.Layer = &n
	if err := writeJobRecord(m.Path, jobRecord{Request: req, DatasetPath: ds.Path, Layer: n}); err != nil {
		s.ws.remove(m)
		os.RemoveAll(m.Path)
		return nil, fmt.Errorf("train: recording the job in %s: %w", m.Path, err)
	}
	m.mu.Lock()
	m.train = &req
	m.mu.Unlock()
	return s.runTrain(m, cfg, false), nil
}

// ResumeTrain continues the interrupted training of an SAE from its
// checkpoint (from the start when it wrote none). Training is deterministic
// for its seed, so the SAE is the one an unbroken run gives.
func (s *Server) ResumeTrain(m *SAE) (*Job, error) {
	m.mu.Lock()
	if m.state != SAEInterrupted || m.train == nil {
		state := m.state
		m.mu.Unlock()
		return nil, errorf(http.StatusConflict, "resume: SAE %s: expected an interrupted training, found it %s", m.Name, state)
	}
	req := *m.train
	m.state, m.err = SAETraining, ""
	m.mu.Unlock()
	_, _, cfg, err := s.trainPlan(req)
	if err != nil {
		m.set(SAEInterrupted, "", interruptedMsg(m))
		return nil, err
	}
	_, statErr := os.Stat(filepath.Join(m.Path, ckptFile))
	return s.runTrain(m, cfg, statErr == nil), nil
}

// runTrain starts the job that trains m with cfg, from its checkpoint when
// resume is set.
func (s *Server) runTrain(m *SAE, cfg sae.TrainConfig, resume bool) *Job {
	ds, layer, dir, name := m.Dataset, m.Layer, m.Path, m.Name
	m.mu.Lock()
	req := *m.train
	m.mu.Unlock()
	cfg.Checkpoint, cfg.Resume = filepath.Join(dir, ckptFile), resume
	attached := make(chan struct{}) // the SAE names the job before the job runs
	j := s.jobs.Start("train", req, func(ctx context.Context, j *Job) (any, error) {
		<-attached
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		var last time.Time
		var curve report.TrainingCurve
		sa, res, err := sae.Train(ctx, layer, cfg, func(ev sae.TrainEvent) {
			curve.Add(ev)
			j.mu.Lock()
			j.progress = Progress{Stage: "train", Done: int64(ev.Step), Total: int64(ev.Steps)}
			j.mu.Unlock()
			if now := time.Now(); now.Sub(last) >= trainEventEvery || ev.Step == ev.Steps {
				last = now
				j.emit("train", map[string]any{"step": ev.Step, "steps": ev.Steps, "loss": ev.Loss.Total, "mse": ev.Loss.MSE,
					"l0": ev.Loss.L0, "dead": ev.DeadFraction, "samples_per_s": ev.SamplesPerSec, "elapsed_s": ev.Elapsed.Seconds()})
			}
		})
		if err != nil {
			if ctx.Err() != nil {
				m.set(SAEInterrupted, j.ID, interruptedMsg(m))
			} else {
				m.set(SAEFailed, j.ID, err.Error())
			}
			return nil, err
		}
		sa.Metadata = sae.Metadata{ModelName: ds.Dump.Manifest.Model, HookName: fmt.Sprintf("blocks.%d.hook_resid_post", layer.Number),
			HookLayer: layer.Number, Dataset: ds.Path, Position: ds.Dump.Manifest.Position}
		if err := sae.Save(dir, sa, sae.SaveOptions{Extra: map[string]any{"rise_training": res.Record(), report.CurveKey: curve}}); err != nil {
			m.set(SAEFailed, j.ID, err.Error())
			return nil, err
		}
		os.Remove(cfg.Checkpoint)
		os.Remove(filepath.Join(dir, jobFile))
		m.mu.Lock()
		m.sae = sa
		m.mu.Unlock()
		a := s.StartAnalysis(m)
		return map[string]any{"sae": name, "path": dir, "atlas_job": a.ID, "training": res.Record()}, nil
	})
	m.set(SAETraining, j.ID, "")
	close(attached)
	go failUnlessDone(m, j, SAETraining, SAEInterrupted, "its training job was cancelled before it started; resume it with POST /api/saes/"+name+"/resume")
	return j
}

// StartAnalysis starts the job that computes an SAE's atlas, attribution
// and feature statistics; the SAE is ready when it ends.
func (s *Server) StartAnalysis(m *SAE) *Job {
	_, _, _, sa, _ := m.snapshot()
	cache := s.ws.cacheDir(m)
	attached := make(chan struct{})
	j := s.jobs.Start("atlas", map[string]any{"kind": "atlas", "sae": m.Name}, func(ctx context.Context, j *Job) (any, error) {
		<-attached
		if err := os.MkdirAll(cache, 0o755); err != nil {
			m.set(SAEFailed, j.ID, err.Error())
			return nil, err
		}
		an, err := analyse(ctx, m, sa, s.cfg.Seed, cache, j.Progress)
		if err != nil {
			if ctx.Err() != nil {
				m.set(SAEFailed, j.ID, "its atlas job was cancelled; start another with POST /api/jobs {\"kind\": \"atlas\"}")
			} else {
				m.set(SAEFailed, j.ID, err.Error())
			}
			return nil, err
		}
		m.mu.Lock()
		m.an, m.state, m.err = an, SAEReady, ""
		m.mu.Unlock()
		s.sweeps.invalidate(m.Dataset.Name)
		return map[string]any{"sae": m.Name, "features": len(an.atlas.Features), "silhouette": an.atlas.Silhouette}, nil
	})
	m.set(SAEAnalysing, j.ID, "")
	close(attached)
	go failUnlessDone(m, j, SAEAnalysing, SAEFailed, "its atlas job was cancelled before it started; start another with POST /api/jobs {\"kind\": \"atlas\"}")
	return j
}

// failUnlessDone waits for the job and moves the SAE to state to with msg
// if the job ended other than done while the SAE still waits for it in the
// state: the job's work, which marks its own failures, never ran (it was
// cancelled while queued).
func failUnlessDone(m *SAE, j *Job, state, to, msg string) {
	<-j.Done()
	if j.State() == StateDone {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.job == j.ID && m.state == state {
		m.state, m.err = to, msg
	}
}

package web

import (
	"bytes"
	"context"
	"net/http"
	"sort"
	"sync"

	"github.com/rise-interp/rise/sae/atlas"
)

// sweepCache holds each dataset's layer sweep, computed by a job over its
// ready SAEs and dropped when another SAE of the dataset becomes ready.
type sweepCache struct {
	mu   sync.Mutex
	byDS map[string]*sweepEntry
}

type sweepEntry struct {
	job    *Job
	result *sweepResult
}

type sweepResult struct {
	Format string              `json:"format"`
	Layers []*atlas.Separation `json:"layers"`
	Best   map[string]int      `json:"best"`
}

func newSweepCache() *sweepCache { return &sweepCache{byDS: map[string]*sweepEntry{}} }

func (c *sweepCache) invalidate(ds string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byDS[ds]; e != nil && e.job != nil {
		e.job.Cancel()
	}
	delete(c.byDS, ds)
}

// sweepOf returns the dataset's sweep, or starts the job that computes it
// and returns a 409 naming it.
func (s *Server) sweepOf(ds *Dataset) (*sweepResult, error) {
	c := s.sweeps
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byDS[ds.Name]; e != nil {
		if e.result != nil {
			return e.result, nil
		}
		if !hasEnded(e.job.State()) {
			return nil, &apiError{status: http.StatusConflict, job: e.job.ID, msg: "the sweep of " + ds.Name + " is being computed; wait for job " + e.job.ID}
		}
		if e.job.State() == StateFailed {
			v := e.job.View()
			delete(c.byDS, ds.Name)
			return nil, errorf(http.StatusInternalServerError, "the sweep of %s failed: %s", ds.Name, v.Error)
		}
	}
	type pick struct {
		m  *SAE
		an *analysis
	}
	byLayer := map[int]pick{}
	for _, m := range s.ws.SAEs() {
		state, _, _, sa, an := m.snapshot()
		if m.Dataset != ds || state != SAEReady || sa == nil {
			continue
		}
		if _, ok := byLayer[m.Layer.Number]; !ok {
			byLayer[m.Layer.Number] = pick{m, an}
		}
	}
	if len(byLayer) == 0 {
		return nil, errorf(http.StatusConflict, "dataset %s has no ready SAE yet: the sweep needs one SAE per layer", ds.Name)
	}
	layers := make([]int, 0, len(byLayer))
	for l := range byLayer {
		layers = append(layers, l)
	}
	sort.Ints(layers)
	e := &sweepEntry{}
	seed := s.cfg.Seed
	e.job = s.jobs.Start("sweep", map[string]any{"kind": "sweep", "dataset": ds.Name}, func(ctx context.Context, j *Job) (any, error) {
		res := &sweepResult{Format: "rise-sweep/1", Best: map[string]int{}}
		for i, l := range layers {
			j.Progress("sweep", int64(i), int64(len(layers)))
			p := byLayer[l]
			_, _, _, sa, _ := p.m.snapshot()
			sp, err := atlas.Separate(ctx, sa, p.m.Layer, ds.Steps, atlas.SeparationOptions{Seed: seed, Attribution: atlas.AttributionOptions{NextStep: ds.NextStep}})
			if err != nil {
				return nil, err
			}
			sp.SAE = p.m.Name
			res.Layers = append(res.Layers, sp)
		}
		j.Progress("sweep", int64(len(layers)), int64(len(layers)))
		res.Best = atlas.BestLayers(res.Layers)
		c.mu.Lock()
		if c.byDS[ds.Name] == e {
			e.result = res
		}
		c.mu.Unlock()
		return map[string]any{"layers": len(res.Layers)}, nil
	})
	c.byDS[ds.Name] = e
	return nil, &apiError{status: http.StatusConflict, job: e.job.ID, msg: "the sweep of " + ds.Name + " is being computed; wait for job " + e.job.ID}
}

// sweepResult answers the separation sweep of the dataset in the path, or
// a 409 naming the job that computes it.
func (s *Server) sweepResult(r *http.Request) (*Dataset, *sweepResult, error) {
	ds, err := s.dataset(r)
	if err != nil {
		return nil, nil, err
	}
	res, err := s.sweepOf(ds)
	return ds, res, err
}

func (s *Server) sweep(_ http.ResponseWriter, r *http.Request) (any, error) {
	_, res, err := s.sweepResult(r)
	return res, err
}

func (s *Server) sweepChart(f atlas.Format) apiFunc {
	return func(_ http.ResponseWriter, r *http.Request) (any, error) {
		ds, res, err := s.sweepResult(r)
		if err != nil {
			return nil, err
		}
		if len(res.Layers) < 2 {
			return nil, errorf(http.StatusConflict, "dataset %s has ready SAEs on %d layer: a curve needs two layers or more", ds.Name, len(res.Layers))
		}
		layers, curves, err := atlas.SweepCurves(res.Layers)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := atlas.RenderCurves(&b, f, "separation by layer (cosine silhouette)", "layer", "silhouette", layers, curves); err != nil {
			return nil, err
		}
		return chart(f, b.Bytes(), ds.Name+"-sweep"), nil
	}
}

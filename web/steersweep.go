package web

import (
	"cmp"
	"context"
	"net/http"

	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/steer/model"
)

// SweepRequest is the body of POST /api/steer/sweep: the steering page's
// vectors swept over strengths on many problems, as rise steer does, with
// random-direction controls beside them.
type SweepRequest struct {
	Vectors   []SteerVector `json:"vectors"`
	Operator  string        `json:"operator"`
	Positions string        `json:"positions"`
	Strengths []float64     `json:"strengths"` // default -8, -4, 0, 4, 8
	// Prompts to sweep over; without them, Problems (default 50) of the
	// model demo's held-out problems.
	Prompts     []steer.Prompt `json:"prompts"`
	Problems    int            `json:"problems"`
	MaxTokens   int            `json:"max_tokens"`  // default 200
	Temperature *float64       `json:"temperature"` // default 1: sampled, as greedy decoding hides most reflection
	TopP        float64        `json:"top_p"`
	Seed        uint64         `json:"seed"`     // default 1
	Controls    *int           `json:"controls"` // random directions beside the vectors; default 3
}

// Bounds of a browser sweep: it runs as one job on the server's model.
const (
	maxSweepPrompts   = 500
	maxSweepStrengths = 21
	maxSweepControls  = 10
)

// steerSweep starts a sweep job and answers 202 with it; the job's result
// holds the runs (means with bootstrap intervals, paired p-values against
// strength 0, every behaviour, accuracy) without the generations' texts,
// the controls' runs and their band.
func (s *Server) steerSweep(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.cfg.Backend == nil {
		return nil, errorf(http.StatusServiceUnavailable,
			"no model attached: a steering sweep needs a model (rise serve --model PATH)")
	}
	var req SweepRequest
	release, err := s.readJSON(w, r, maxSteerBody, &req, "sweep", `{"vectors": [...], "strengths": [-8, 0, 8]}`)
	defer release()
	if err != nil {
		return nil, err
	}
	if len(req.Strengths) == 0 {
		req.Strengths = []float64{-8, -4, 0, 4, 8}
	}
	req.MaxTokens = cmp.Or(req.MaxTokens, 200)
	if req.Problems == 0 {
		req.Problems = heldOutProblems
	}
	temp, controls := 1.0, 3
	if req.Temperature != nil {
		temp = *req.Temperature
	}
	if req.Controls != nil {
		controls = *req.Controls
	}
	switch {
	case len(req.Strengths) > maxSweepStrengths:
		err = errorf(http.StatusBadRequest, "sweep: strengths: expected at most %d, found %d", maxSweepStrengths, len(req.Strengths))
	case req.MaxTokens < 1 || req.MaxTokens > 4096:
		err = errorf(http.StatusBadRequest, "sweep: max_tokens: expected 1 to 4096, found %d", req.MaxTokens)
	case controls < 0 || controls > maxSweepControls:
		err = errorf(http.StatusBadRequest, "sweep: controls: expected 0 to %d, found %d", maxSweepControls, controls)
	case req.Problems < 1 || req.Problems > maxSweepPrompts || len(req.Prompts) > maxSweepPrompts:
		err = errorf(http.StatusBadRequest, "sweep: expected 1 to %d prompts or problems", maxSweepPrompts)
	}
	if err != nil {
		return nil, err
	}
	prompts := req.Prompts
	if len(prompts) == 0 {
		if prompts, _ = s.heldOutPrompts(req.Problems); len(prompts) == 0 {
			return nil, errorf(http.StatusBadRequest, "sweep: prompts: expected prompts to sweep over (held-out problems are offered only on the model demo)")
		}
	}
	// The vectors at strength 1: the sweep multiplies them by each strength.
	vs, err := s.steerVectors(&SteerRequest{Vectors: req.Vectors, Operator: req.Operator, Strength: 1, Positions: req.Positions})
	if err != nil {
		return nil, err
	}
	// The controls are drawn with the generations' seed, as rise steer
	// draws them, so that the same request gives the command's numbers.
	o := model.GenerateOptions{MaxTokens: req.MaxTokens, Temperature: temp, TopP: req.TopP, Seed: cmp.Or(req.Seed, 1)}
	sets := append([]steer.Control{{Name: "vectors", Vectors: vs}}, steer.RandomControls(vs, controls, o.Seed)...)
	matcher, err := s.ws.matcher()
	if err != nil {
		return nil, err
	}
	b := s.cfg.Backend
	params := map[string]any{"strengths": req.Strengths, "prompts": len(prompts), "controls": controls, "vectors": len(vs),
		"seed": o.Seed, "temperature": temp, "max_tokens": req.MaxTokens}
	j := s.jobs.Start("steer-sweep", params, func(ctx context.Context, j *Job) (any, error) {
		runs, ctrl, err := steer.SweepControlled(ctx, b, sets, req.Strengths, prompts, o, steer.SweepOptions{Matcher: matcher}, func(done, total int) {
			j.Progress("sweep", int64(done), int64(total))
		})
		if err != nil {
			return nil, err
		}
		for i := range runs {
			runs[i].Outcomes = nil
		}
		for c := range ctrl {
			for i := range ctrl[c].Runs {
				ctrl[c].Runs[i].Outcomes = nil
			}
		}
		return map[string]any{"runs": runs, "controls": ctrl, "control_band": steer.ControlBand(ctrl, len(req.Strengths)),
			"prompts": len(prompts), "strengths": req.Strengths}, nil
	})
	return accepted{j.View()}, nil
}

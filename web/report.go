package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/rise-interp/rise/web/report"
)

// reportResponse is the answer of POST /api/datasets/{dataset}/report: the
// report as rise report writes it, HTML and Markdown.
type reportResponse struct {
	Name     string `json:"name"` // a file name for it, without extension
	Figures  int    `json:"figures"`
	HTML     string `json:"html"`
	Markdown string `json:"markdown"`
}

// report makes the report of a dataset as rise report does: the dump, its
// ready SAEs with their atlases, the sweep over their layers, and every
// steering sweep the workbench has finished. The sweep over layers is
// computed first when it is not yet (409 naming the job, as GET .../sweep).
func (s *Server) report(_ http.ResponseWriter, r *http.Request) (any, error) {
	ds, err := s.dataset(r)
	if err != nil {
		return nil, err
	}
	in := report.Inputs{Data: ds.Path, Version: s.cfg.Version, Command: fmt.Sprintf("POST /api/datasets/%s/report", ds.Name)}
	ready := 0
	for _, m := range s.ws.SAEs() {
		state, _, _, sa, an := m.snapshot()
		if m.Dataset != ds || state != SAEReady || sa == nil {
			continue
		}
		ready++
		in.SAEs = append(in.SAEs, m.Path)
		if an != nil && an.atlas != nil {
			in.NamedAtlases = append(in.NamedAtlases, report.NamedAtlas{Name: "atlas of " + m.Name, SAE: m.Path, Atlas: an.atlas})
		}
	}
	if ready > 0 {
		sw, err := s.sweepOf(ds)
		if err != nil {
			return nil, err
		}
		in.SweepValue = &report.Sweep{Format: report.SweepFormat, Data: ds.Path, Seed: s.cfg.Seed, Layers: sw.Layers, Best: sw.Best}
	}
	jobs := s.jobs.List()
	slices.SortFunc(jobs, func(a, b *Job) int { return a.Created.Compare(b.Created) })
	for _, j := range jobs {
		if j.Kind != "steer-sweep" || j.State() != StateDone {
			continue
		}
		st, err := steeringOf(j)
		if err != nil {
			return nil, err
		}
		params, _ := json.Marshal(j.Params)
		in.SteerValues = append(in.SteerValues, report.NamedSteering{Name: "steering sweep " + j.ID, Steering: st,
			Command: "POST /api/steer/sweep (job " + j.ID + ", " + string(params) + ")"})
	}
	rep, err := report.Build(r.Context(), in)
	if err != nil {
		return nil, err
	}
	var h, md bytes.Buffer
	if err := rep.WriteHTML(&h); err != nil {
		return nil, err
	}
	if err := rep.WriteMarkdown(&md); err != nil {
		return nil, err
	}
	return reportResponse{Name: "report-" + ds.Name, Figures: rep.Figures(), HTML: h.String(), Markdown: md.String()}, nil
}

// steeringOf reads a finished steer-sweep job's result and parameters as
// the results.json of rise steer holds them.
func steeringOf(j *Job) (*report.Steering, error) {
	v := j.View()
	b, err := json.Marshal(v.Result)
	if err != nil {
		return nil, err
	}
	st := &report.Steering{Format: report.SteerFormat, Model: "the workbench's model"}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("steering sweep %s: its result: %w", j.ID, err)
	}
	p, err := json.Marshal(v.Params)
	if err != nil {
		return nil, err
	}
	var params struct {
		Seed        uint64  `json:"seed"`
		Temperature float64 `json:"temperature"`
		MaxTokens   int     `json:"max_tokens"`
	}
	if err := json.Unmarshal(p, &params); err != nil {
		return nil, fmt.Errorf("steering sweep %s: its parameters: %w", j.ID, err)
	}
	st.Seed, st.Temperature, st.MaxTokens = params.Seed, params.Temperature, params.MaxTokens
	return st, nil
}

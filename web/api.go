package web

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/web/dashboard"
)

func (s *Server) status(_ http.ResponseWriter, r *http.Request) (any, error) {
	return map[string]any{
		"version": s.cfg.Version, "demo": s.cfg.Demo, "model": s.modelInfo(),
		"datasets": len(s.ws.Datasets()), "saes": len(s.ws.SAEs()), "jobs_running": s.jobs.Running(), "jobs_queued": s.jobs.Queued(),
	}, nil
}

type layerView struct {
	Number int `json:"number"`
	Rows   int `json:"rows"`
	DModel int `json:"d_model"`
}

type datasetView struct {
	Name    string         `json:"name"`
	Rows    int            `json:"rows"`
	DModel  int            `json:"d_model"`
	Model   string         `json:"model"`
	Layers  []layerView    `json:"layers"`
	Labels  map[string]int `json:"labels"`
	Lengths map[string]int `json:"lengths"`
	Traces  int            `json:"traces"`
}

func (s *Server) datasets(_ http.ResponseWriter, r *http.Request) (any, error) {
	out := []datasetView{}
	for _, ds := range s.ws.Datasets() {
		v := datasetView{Name: ds.Name, Rows: ds.Dump.Rows, DModel: ds.Dump.DModel, Model: ds.Dump.Manifest.Model,
			Labels: ds.labels, Lengths: ds.lengths, Traces: len(ds.traceOrder)}
		for _, l := range ds.Dump.Layers {
			v.Layers = append(v.Layers, layerView{l.Number, l.Rows, l.DModel})
		}
		out = append(out, v)
	}
	return out, nil
}

// dataset returns the dataset named in the path.
func (s *Server) dataset(r *http.Request) (*Dataset, error) {
	return lookup(s.ws.Dataset, pathValue(r, "dataset"), "dataset", "/api/datasets")
}

// lookup returns get(name), or a 404 naming the kind of thing asked for
// and the endpoint that lists them.
func lookup[T any](get func(string) *T, name, kind, list string) (*T, error) {
	if v := get(name); v != nil {
		return v, nil
	}
	return nil, errorf(http.StatusNotFound, "no %s %q (GET %s lists them)", kind, name, list)
}

// intParam reads a non-negative integer query parameter.
func intParam(r *http.Request, key string, def, max int) (int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, "parameter %s: expected a non-negative integer, found %q", key, v)
	}
	if max > 0 && n > max {
		return 0, errorf(http.StatusBadRequest, "parameter %s: expected at most %d, found %d", key, max, n)
	}
	return n, nil
}

// paging reads the offset and limit of a paged list (limit defaults to def
// and may not exceed max).
func paging(r *http.Request, def, max int) (offset, limit int, err error) {
	if offset, err = intParam(r, "offset", 0, 0); err != nil {
		return 0, 0, err
	}
	if limit, err = intParam(r, "limit", def, max); err != nil {
		return 0, 0, err
	}
	return offset, limit, nil
}

// page reads the dataset of the path and the offset and limit of a paged
// list, as paging does.
func (s *Server) page(r *http.Request, def, max int) (*Dataset, int, int, error) {
	ds, err := s.dataset(r)
	if err != nil {
		return nil, 0, 0, err
	}
	offset, limit, err := paging(r, def, max)
	if err != nil {
		return nil, 0, 0, err
	}
	return ds, offset, limit, nil
}

type stepView struct {
	Row    int      `json:"row"`
	Trace  string   `json:"trace"`
	Step   int      `json:"step"`
	Text   string   `json:"text"`
	Labels []string `json:"labels"`
	Length string   `json:"length,omitempty"`
}

func (ds *Dataset) stepView(row int) stepView {
	st := &ds.Steps[row]
	labels := st.Labels
	if labels == nil {
		labels = []string{}
	}
	return stepView{Row: row, Trace: st.Trace, Step: st.Step, Text: st.Text, Labels: labels, Length: ds.stepLength[row]}
}

func (s *Server) steps(_ http.ResponseWriter, r *http.Request) (any, error) {
	ds, offset, limit, err := s.page(r, 50, 500)
	if err != nil {
		return nil, err
	}
	q := strings.ToLower(r.URL.Query().Get("q"))
	label := r.URL.Query().Get("label")
	trace := r.URL.Query().Get("trace")
	var rows []int
	if trace != "" {
		rows = ds.traceRows[trace]
	}
	match := func(i int) bool {
		st := &ds.Steps[i]
		if trace != "" && st.Trace != trace {
			return false
		}
		if label == "unlabelled" && len(st.Labels) > 0 || label != "" && label != "unlabelled" && !st.HasLabel(label) {
			return false
		}
		return q == "" || strings.Contains(ds.lower[i], q)
	}
	out := []stepView{}
	total := 0
	visit := func(i int) {
		if !match(i) {
			return
		}
		if total >= offset && len(out) < limit {
			out = append(out, ds.stepView(i))
		}
		total++
	}
	if trace != "" {
		for _, i := range rows {
			visit(i)
		}
	} else {
		for i := range ds.Steps {
			visit(i)
		}
	}
	return map[string]any{"total": total, "offset": offset, "limit": limit, "steps": out}, nil
}

func (s *Server) traces(_ http.ResponseWriter, r *http.Request) (any, error) {
	ds, offset, limit, err := s.page(r, 100, 1000)
	if err != nil {
		return nil, err
	}
	type traceView struct {
		Trace    string         `json:"trace"`
		Steps    int            `json:"steps"`
		FirstRow int            `json:"first_row"`
		Length   string         `json:"length,omitempty"`
		Labels   map[string]int `json:"labels"`
	}
	out := []traceView{}
	for i := offset; i < len(ds.traceOrder) && len(out) < limit; i++ {
		id := ds.traceOrder[i]
		rows := ds.traceRows[id]
		v := traceView{Trace: id, Steps: len(rows), FirstRow: rows[0], Length: ds.stepLength[rows[0]], Labels: map[string]int{}}
		for _, row := range rows {
			for _, l := range ds.Steps[row].Labels {
				v.Labels[l]++
			}
		}
		out = append(out, v)
	}
	return map[string]any{"total": len(ds.traceOrder), "offset": offset, "limit": limit, "traces": out}, nil
}

func (s *Server) trace(_ http.ResponseWriter, r *http.Request) (any, error) {
	ds, err := s.dataset(r)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("trace")
	rows, ok := ds.traceRows[id]
	if !ok {
		return nil, errorf(http.StatusNotFound, "dataset %s has no trace %q", ds.Name, id)
	}
	steps := make([]stepView, len(rows))
	for i, row := range rows {
		steps[i] = ds.stepView(row)
	}
	tr := ds.Traces[id]
	return map[string]any{"trace": id, "prompt": tr.Prompt, "length": ds.stepLength[rows[0]], "steps": steps}, nil
}

type saeView struct {
	Name     string `json:"name"`
	Arch     string `json:"arch"`
	DIn      int    `json:"d_in"`
	DSae     int    `json:"d_sae"`
	K        int    `json:"k,omitempty"`
	Layer    int    `json:"layer"`
	Dataset  string `json:"dataset"`
	State    string `json:"state"`
	Job      string `json:"job"`
	Error    string `json:"error,omitempty"`
	HasAtlas bool   `json:"has_atlas"`
	// Deletable is set for an SAE the workbench trained (DELETE removes
	// it); Resumable for an interrupted training (POST .../resume).
	Deletable bool `json:"deletable"`
	Resumable bool `json:"resumable"`
}

func (m *SAE) view() saeView {
	state, job, errMsg, sa, an := m.snapshot()
	v := saeView{Name: m.Name, Layer: m.Layer.Number, Dataset: m.Dataset.Name, State: state, Job: job, Error: errMsg, HasAtlas: an != nil,
		Deletable: m.owned, Resumable: state == SAEInterrupted}
	if sa != nil {
		v.Arch, v.DIn, v.DSae = string(sa.InferenceArch()), sa.DIn, sa.DSae
		if sa.Arch == sae.TopK || sa.Arch == sae.BatchTopK {
			v.K = sa.K
		}
	}
	return v
}

func (s *Server) saes(_ http.ResponseWriter, r *http.Request) (any, error) {
	out := []saeView{}
	for _, m := range s.ws.SAEs() {
		out = append(out, m.view())
	}
	return out, nil
}

// saeOf returns the SAE named in the path.
func (s *Server) saeOf(r *http.Request) (*SAE, error) {
	return lookup(s.ws.SAE, pathValue(r, "sae"), "SAE", "/api/saes")
}

// ready returns the SAE named in the path with its analysis, or a 409 that
// names the job making it.
func (s *Server) ready(r *http.Request) (*SAE, *sae.SAE, *analysis, error) {
	m, err := s.saeOf(r)
	if err != nil {
		return nil, nil, nil, err
	}
	state, job, errMsg, sa, an := m.snapshot()
	switch {
	case state == SAEFailed:
		return nil, nil, nil, errorf(http.StatusConflict, "SAE %s failed: %s", m.Name, errMsg)
	case state == SAEInterrupted:
		return nil, nil, nil, errorf(http.StatusConflict, "SAE %s is not trained: %s", m.Name, errMsg)
	case an == nil:
		return nil, nil, nil, &apiError{status: http.StatusConflict, job: job,
			msg: fmt.Sprintf("SAE %s is not ready (%s); wait for job %s", m.Name, state, job)}
	}
	return m, sa, an, nil
}

func (s *Server) atlas(_ http.ResponseWriter, r *http.Request) (any, error) {
	_, _, an, err := s.ready(r)
	if err != nil {
		return nil, err
	}
	return an.atlas, nil
}

// featureOf returns what ready does and the feature {id} of the path.
func (s *Server) featureOf(r *http.Request) (*SAE, *sae.SAE, *analysis, int, error) {
	m, sa, an, err := s.ready(r)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	v := r.PathValue("id")
	id, err := strconv.Atoi(v)
	if err != nil || id < 0 || id >= sa.DSae {
		return nil, nil, nil, 0, errorf(http.StatusNotFound, "feature %q: expected an id from 0 to %d", v, sa.DSae-1)
	}
	return m, sa, an, id, nil
}

type topStep struct {
	stepView
	Value  float32  `json:"value"`
	Before []string `json:"before"`
	After  []string `json:"after"`
	// NextLabels are the labels of the step after it: a step's state is
	// read at the delimiter that ends it, so a feature of a behaviour often
	// peaks on the step before one.
	NextLabels []string `json:"next_labels"`
}

type behaviourStat struct {
	Name       string  `json:"name"`
	Steps      int     `json:"steps"`
	Mean       float32 `json:"mean"`
	Max        float32 `json:"max"`
	Rate       float32 `json:"rate"`
	Enrichment float64 `json:"enrichment"`
	// Firings counts the behaviour's steps the feature fires on, and
	// Evidence says whether firings and enrichment meet the attribution
	// rule (atlas.DefaultMinFirings, DefaultMinEnrichment).
	Firings  int64 `json:"firings"`
	Evidence bool  `json:"evidence"`
}

type nearView struct {
	ID        int     `json:"id"`
	Cos       float64 `json:"cos"`
	Behaviour string  `json:"behaviour"`
}

// contextSteps is how many steps of the same trace a top step shows on
// either side.
const contextSteps = 1

func (s *Server) feature(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, sa, an, id, err := s.featureOf(r)
	if err != nil {
		return nil, err
	}
	top, err := intParam(r, "top", 20, 1000)
	if err != nil {
		return nil, err
	}
	nn, err := intParam(r, "nearest", 10, 200)
	if err != nil {
		return nil, err
	}
	f := an.atlas.Features[id]
	sum := an.stats.Feature(id)
	ds := m.Dataset
	out := map[string]any{
		"id": id, "x": f.X, "y": f.Y, "cluster": f.Cluster, "behaviour": f.Behaviour, "specificity": f.Specificity,
		"fires": sum.Fires, "frequency": sum.Frequency, "mean_active": sum.MeanActive, "max": sum.Max,
		"histogram": sum.Histogram, "explanation": f.Explanation, "detection": f.Detection,
		"next": f.Next, "next_detection": f.NextDetection, "token": f.Token,
	}
	if out["histogram"] == nil {
		out["histogram"] = []sae.FeatureHistBin{}
	}
	steps := []topStep{}
	for _, t := range sum.Top {
		if len(steps) >= top {
			break
		}
		row := int(t.Row)
		if row < 0 || row >= len(ds.Steps) {
			continue
		}
		ts := topStep{stepView: ds.stepView(row), Value: t.Value, Before: []string{}, After: []string{}, NextLabels: []string{}}
		rows := ds.traceRows[ds.Steps[row].Trace]
		p := sort.SearchInts(rows, row)
		for q := max(0, p-contextSteps); q < p; q++ {
			ts.Before = append(ts.Before, ds.Steps[rows[q]].Text)
		}
		for q := p + 1; q < len(rows) && q <= p+contextSteps; q++ {
			ts.After = append(ts.After, ds.Steps[rows[q]].Text)
		}
		if p+1 < len(rows) {
			ts.NextLabels = append(ts.NextLabels, ds.Steps[rows[p+1]].Labels...)
		}
		steps = append(steps, ts)
	}
	out["top_steps"] = steps

	a := an.attr
	rule := atlas.SpecificOptions{MinFirings: atlas.DefaultMinFirings, MinEnrichment: atlas.DefaultMinEnrichment}
	// Enrichment is the attribution's own (rate on the behaviour's steps over
	// the rate on all steps), the figure the rule judges.
	bs := []behaviourStat{}
	for b, name := range a.Behaviours {
		bs = append(bs, behaviourStat{Name: name, Steps: a.Counts[b], Mean: a.Mean[b][id], Max: a.Max[b][id], Rate: a.Rate[b][id],
			Enrichment: a.Enrichment(b, id), Firings: a.Firings(b, id), Evidence: a.Evidence(b, id, rule)})
	}
	out["behaviours"] = bs

	near := []nearView{}
	if nn > 0 { // ?nearest=0 asks for none
		for _, n := range atlas.NearestUnit(an.unit, sa.DSae, sa.DIn, id, nn) {
			near = append(near, nearView{ID: n.ID, Cos: n.Cos, Behaviour: an.atlas.Features[n.ID].Behaviour})
		}
	}
	out["nearest"] = near
	// ?lens=0 leaves the logit lens out (the atlas's tooltip wants only the top step)
	if r.URL.Query().Get("lens") != "0" {
		if lens := s.logitLens(sa.WDec[id*sa.DIn : (id+1)*sa.DIn]); lens != nil {
			out["logit_lens"] = lens
		}
	}
	_, noModel := s.nativeFor(m, sa.DIn)
	out["token_view"] = noModel == nil
	return out, nil
}

// logitLensTokens is how many promoted and suppressed tokens a feature page
// shows.
const logitLensTokens = 10

// logitLens puts a decoder direction through the attached model's final
// norm and head (model.LogitLens) and returns the tokens it promotes and
// suppresses most (dashboard.TopTokens); nil without a model in this
// process.
func (s *Server) logitLens(dir []float32) *dashboard.Lens {
	nat, ok := s.cfg.Backend.(*steer.Native)
	if !ok || nat.Model.Dim != len(dir) {
		return nil
	}
	logits, err := nat.Model.LogitLens(dir)
	if err != nil {
		return nil
	}
	return dashboard.TopTokens(logits, nat.Tokenizer, logitLensTokens)
}

func (s *Server) behaviours(_ http.ResponseWriter, r *http.Request) (any, error) {
	_, _, an, err := s.ready(r)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(an.atlas.Behaviours))
	for n := range an.atlas.Behaviours {
		names = append(names, n)
	}
	sort.Strings(names)
	type bView struct {
		Name    string `json:"name"`
		Steps   int    `json:"steps"`
		Columns []int  `json:"columns"`
		Error   string `json:"error"`
	}
	list := []bView{}
	var withVec []string
	for _, n := range names {
		b := an.atlas.Behaviours[n]
		list = append(list, bView{n, b.Steps, b.Columns, b.Error})
		if b.Vector != nil {
			withVec = append(withVec, n)
		}
	}
	matrix := make([][]float64, len(withVec))
	for i, a := range withVec {
		matrix[i] = make([]float64, len(withVec))
		for j, b := range withVec {
			matrix[i][j] = vec.Cosine(an.atlas.Behaviours[a].Vector, an.atlas.Behaviours[b].Vector)
		}
	}
	venhoff := map[string]float64{}
	for _, n := range withVec {
		if v, ok := an.venhoff[n]; ok {
			venhoff[n] = vec.Cosine(an.atlas.Behaviours[n].Vector, v)
		}
	}
	if withVec == nil {
		withVec = []string{}
	}
	return map[string]any{"behaviours": list,
		"cosine": map[string]any{"names": withVec, "matrix": matrix}, "venhoff_cosine": venhoff}, nil
}

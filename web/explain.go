package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// explanationsFile is where an SAE's analysis keeps its explanations.
const explanationsFile = "explanations.json"

// explainAnalysis explains every feature of the analysed SAE (reading the
// explanations back from cacheDir when they were computed before), writes
// them into the atlas with its clusters' explanations and the candidate
// behaviours, and saves both, so that the feature page and the candidates
// need no work per request.
func explainAnalysis(ctx context.Context, m *SAE, s *sae.SAE, an *analysis, seed uint64, cacheDir string, reuse bool, progress func(stage string, done, total int64)) error {
	steps := m.Dataset.Steps
	path := filepath.Join(cacheDir, explanationsFile)
	var ex *atlas.Explanations
	if cacheDir != "" && reuse { // cached explanations follow the weights, as the atlas does
		if e, err := atlas.LoadExplanations(path, steps); err == nil && len(e.Features) == s.DSae && e.Options.HoldOutSeed == seed {
			ex = e
		}
	}
	fresh := ex == nil
	if fresh {
		e, err := atlas.Explain(ctx, s, m.Layer, steps, atlas.ExplainOptions{HoldOutSeed: seed,
			Progress: func(stage string, done, total int) { progress("explanations: "+stage, int64(done), int64(total)) }})
		if err != nil {
			return err
		}
		ex = e
		if cacheDir != "" {
			if err := ex.Save(path); err != nil {
				return err
			}
		}
	}
	an.ex = ex
	if !fresh && len(an.atlas.Clusters) > 0 && an.atlas.Clusters[0].Explained != nil {
		return nil // the atlas read back was explained with these
	}
	progress("candidate behaviours", 0, 1)
	if err := ex.Annotate(an.atlas, an.unit, steps, atlas.GroupOptions{}); err != nil {
		return err
	}
	progress("candidate behaviours", 1, 1)
	if cacheDir != "" {
		return an.atlas.Save(filepath.Join(cacheDir, "atlas.json"))
	}
	return nil
}

// search answers GET /api/saes/{sae}/search?q=PHRASE&limit=N: the features
// whose explanation holds the phrase, best first.
func (s *Server) search(_ http.ResponseWriter, r *http.Request) (any, error) {
	_, _, an, err := s.ready(r)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit", 50, 1000)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query().Get("q")
	hits, err := an.atlas.Search(q, limit)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "parameter q: expected a phrase of at least one word, found %q", q)
	}
	return map[string]any{"q": q, "hits": hits}, nil
}

// candidates answers GET /api/saes/{sae}/candidates: the candidate
// behaviours nobody named, best first, with the labels that were known.
func (s *Server) candidates(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, _, an, err := s.ready(r)
	if err != nil {
		return nil, err
	}
	cands := an.atlas.Candidates
	if cands == nil {
		cands = []atlas.GroupExplanation{}
	}
	return map[string]any{"candidates": cands, "known": an.attr.Behaviours, "dataset": m.Dataset.Name}, nil
}

// group answers GET /api/saes/{sae}/group?features=1,2,3: the explanation,
// coherence, enrichment and vector of a selection of features.
func (s *Server) group(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, sa, an, ids, err := s.selectionOf(r)
	if err != nil {
		return nil, err
	}
	if an.ex == nil {
		return nil, errorf(http.StatusConflict, "SAE %s has no explanations", m.Name)
	}
	g, err := an.ex.ExplainGroup(ids, an.unit, sa.DIn, m.Dataset.Steps)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	return g, nil
}

// featureList parses "1,2,3" into feature ids below dSae.
func featureList(v string, dSae int) ([]int, error) {
	var ids []int
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		id, err := strconv.Atoi(f)
		if err != nil || id < 0 || id >= dSae {
			return nil, errorf(http.StatusBadRequest, "parameter features: expected comma-separated ids from 0 to %d, found %q", dSae-1, f)
		}
		ids = append(ids, id)
	}
	if len(ids) > 4096 {
		return nil, errorf(http.StatusBadRequest, "parameter features: expected at most 4096 ids, found %d", len(ids))
	}
	return ids, nil
}

// featuresDirection is the renormalised mean of the unit decoder columns
// of features ids: a candidate behaviour's vector (RISE, §4.2).
func featuresDirection(s *sae.SAE, ids []int) ([]float32, error) {
	if len(ids) == 0 {
		return nil, errors.New("features: expected at least one feature id, found none")
	}
	v, err := atlas.MeanDirection(s, ids)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	return v, nil
}

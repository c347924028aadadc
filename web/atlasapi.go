package web

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/minheap"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// A selection on the atlas is a set of feature ids of one SAE, given as
// ?features=1,2,3. These handlers only read: the selection's mean
// direction as .npy, and the steps on which the selection fires most.

// selectionOf returns what ready does and the selection of the features
// parameter: distinct ids, in ascending order, at least one.
func (s *Server) selectionOf(r *http.Request) (*SAE, *sae.SAE, *analysis, []int, error) {
	m, sa, an, err := s.ready(r)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	v := r.URL.Query().Get("features")
	if v == "" {
		return nil, nil, nil, nil, errorf(http.StatusBadRequest, "parameter features: expected comma-separated feature ids from 0 to %d, found none", sa.DSae-1)
	}
	ids, err := featureList(v, sa.DSae)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	slices.Sort(ids)
	return m, sa, an, slices.Compact(ids), nil
}

// selectionVector sends the renormalised mean of the selection's unit
// decoder columns (the vector /steer builds from the same ids) as a
// [1, d_in] float32 .npy.
func (s *Server) selectionVector(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, sa, _, ids, err := s.selectionOf(r)
	if err != nil {
		return nil, err
	}
	dir, err := featuresDirection(sa, ids)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "SAE %s: %v", m.Name, err)
	}
	return download("application/octet-stream", fmt.Sprintf("%s-selection-%d.npy", m.Name, len(ids)), activations.EncodeNpy(dir, 1, sa.DIn)), nil
}

// selectionStep is a step on which a selection fires, with the sum of the
// selection's latents there and how many of them fire.
type selectionStep struct {
	stepView
	Value  float64 `json:"value"`
	Firing int     `json:"firing"`
}

// selectionBatch is how many rows one encoding pass of the selection's
// steps holds.
const selectionBatch = 256

// selectionSteps encodes every row of the SAE's layer and answers the top
// rows by the sum of the selected latents (ties: the lower row first).
// An SAE whose activation acts on each latent alone (ReLU, JumpReLU)
// encodes the selected latents only: rows × d_in × |selection|
// multiply-adds. A TopK SAE needs every latent of a row to know which k
// fire: rows × d_in × d_sae, what one epoch of encoding costs. The pass
// stops when the client leaves.
func (s *Server) selectionSteps(w http.ResponseWriter, r *http.Request) (any, error) {
	m, sa, _, ids, err := s.selectionOf(r)
	if err != nil {
		return nil, err
	}
	top, err := intParam(r, "top", 20, 200)
	if err != nil {
		return nil, err
	}
	ds, layer := m.Dataset, m.Layer
	if layer.DModel != sa.DIn {
		return nil, errorf(http.StatusConflict, "SAE %s reads %d values a row, layer %s of dataset %s has %d", m.Name, sa.DIn, layer.Name, ds.Name, layer.DModel)
	}
	// The best rows so far, the worst of them on top.
	best := minheap.Make(func(a, b rowScore) bool { return b.better(a) })
	enc, at := sa, ids // the SAE that encodes, and where the selected latents are in its rows
	if a := sa.InferenceArch(); a == sae.Standard || a == sae.JumpReLU {
		enc = restrictLatents(sa, ids)
		at = make([]int, len(ids))
		for c := range at {
			at[c] = c
		}
	}
	d, n := enc.DIn, enc.DSae
	xc := make([]float32, selectionBatch*d)
	f := make([]float32, selectionBatch*n)
	it := layer.Batches(activations.BatchOptions{Size: selectionBatch})
	for it.Next(r.Context()) {
		rows := it.Rows()
		fb := f[:len(rows)*n]
		enc.PreActivations(it.X(), xc[:len(rows)*d], fb)
		enc.Activate(fb)
		for k, row := range rows {
			lat := fb[k*n : (k+1)*n]
			var sum float64
			firing := 0
			for _, c := range at {
				if v := lat[c]; v > 0 {
					sum += float64(v)
					firing++
				}
			}
			if firing == 0 {
				continue
			}
			c := rowScore{row: row, value: sum, firing: firing}
			if best.Len() < top {
				best.Push(c)
			} else if top > 0 && c.better(best.Top()) {
				best.ReplaceTop(c)
			}
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("SAE %s: reading layer %s: %w", m.Name, layer.Name, err)
	}
	if err := r.Context().Err(); err != nil {
		return nil, err // the client left: nobody reads this
	}
	found := slices.Clone(best.Items())
	slices.SortFunc(found, func(a, b rowScore) int {
		if a.better(b) {
			return -1
		}
		return 1
	})
	out := []selectionStep{}
	for _, c := range found {
		if c.row < 0 || c.row >= len(ds.Steps) {
			continue
		}
		out = append(out, selectionStep{stepView: ds.stepView(c.row), Value: c.value, Firing: c.firing})
	}
	return map[string]any{"features": ids, "rows": layer.Rows, "steps": out}, nil
}

// restrictLatents is the encoder of s over the latents ids alone, in
// that order: for an activation that acts on each latent alone (ReLU,
// JumpReLU) it gives those latents the values s gives them. It has no
// decoder.
func restrictLatents(s *sae.SAE, ids []int) *sae.SAE {
	m := len(ids)
	r := &sae.SAE{Arch: s.InferenceArch(), DIn: s.DIn, DSae: m, WEnc: make([]float32, s.DIn*m), BEnc: make([]float32, m),
		BDec: s.BDec, ApplyBDecToInput: s.ApplyBDecToInput, InputScale: s.InputScale}
	for i := range s.DIn {
		src, dst := s.WEnc[i*s.DSae:(i+1)*s.DSae], r.WEnc[i*m:(i+1)*m]
		for c, id := range ids {
			dst[c] = src[id]
		}
	}
	for c, id := range ids {
		r.BEnc[c] = s.BEnc[id]
	}
	if s.Threshold != nil {
		r.Threshold = make([]float32, m)
		for c, id := range ids {
			r.Threshold[c] = s.Threshold[id]
		}
	}
	return r
}

// rowScore is a row and the selection's sum on it.
type rowScore struct {
	row    int
	value  float64
	firing int
}

// better orders rows by value, then by row (the lower first).
func (a rowScore) better(b rowScore) bool {
	if a.value != b.value {
		return a.value > b.value
	}
	return a.row < b.row
}

// clusterView is a clustering of the decoder columns for one k.
type clusterView struct {
	K      int   `json:"k"`
	Labels []int `json:"labels"` // by feature id
	Sizes  []int `json:"sizes"`  // by cluster
	// Silhouette is the cosine silhouette of the clustering (on a sample
	// of columns, as the atlas's own).
	Silhouette *float64 `json:"silhouette"`
	Chosen     bool     `json:"chosen"` // the atlas's own k
}

// maxClustersK is the largest k the clusters endpoint runs.
const maxClustersK = 100

// clusters answers the clustering of the SAE's unit decoder columns into k
// groups: the atlas's own for its k, otherwise spherical k-means with the
// atlas's seed and restarts (atlas.KMeans), computed once and kept.
func (s *Server) clusters(w http.ResponseWriter, r *http.Request) (any, error) {
	m, sa, an, err := s.ready(r)
	if err != nil {
		return nil, err
	}
	n, d := sa.DSae, sa.DIn
	hi := min(maxClustersK, n-1)
	k, err := intParam(r, "k", len(an.atlas.Clusters), hi)
	if err != nil {
		return nil, err
	}
	if k < 2 {
		return nil, errorf(http.StatusBadRequest, "parameter k: expected 2 to %d clusters, found %d", hi, k)
	}
	if v, ok := an.kclusters.Load(k); ok {
		return v, nil
	}
	var labels []int
	chosen := k == len(an.atlas.Clusters)
	if chosen {
		labels = make([]int, n)
		for i, f := range an.atlas.Features {
			labels[i] = f.Cluster
		}
	} else {
		cl, err := atlas.KMeans(an.unit, n, d, k, atlas.KMeansOptions{Restarts: 3, Seed: an.atlas.Seed, Context: r.Context()})
		if err != nil {
			if err := r.Context().Err(); err != nil {
				return nil, err // the client left: nobody reads this
			}
			return nil, fmt.Errorf("SAE %s: clusters for k = %d: %w", m.Name, k, err)
		}
		labels = cl.Labels
	}
	v := &clusterView{K: k, Labels: labels, Sizes: make([]int, k), Chosen: chosen}
	for _, l := range labels {
		if l >= 0 && l < k {
			v.Sizes[l]++
		}
	}
	if sc, _, err := atlas.SilhouetteSample(an.unit, n, d, labels, clusterSilhouettePoints, an.atlas.Seed); err == nil {
		v.Silhouette = &sc
	}
	an.kclusters.Store(k, v)
	return v, nil
}

// clusterSilhouettePoints is how many columns the silhouette of a
// clustering samples (the atlas samples as many).
const clusterSilhouettePoints = 8192

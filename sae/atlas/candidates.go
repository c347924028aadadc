package atlas

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/vec"
)

// GroupExplanation describes a group of features (an atlas cluster, a
// candidate behaviour or a user's selection): the phrases over-represented
// in the steps where its features fire, how alike its decoder columns are,
// and how much its firing steps carry each known label and response length.
type GroupExplanation struct {
	Cluster  int      `json:"cluster"` // the atlas cluster it lies in, -1 for a selection
	Features []int    `json:"features"`
	Size     int      `json:"size"`
	Phrases  []Phrase `json:"phrases"`
	// Coherence is the mean cosine between the unit decoder columns of two
	// different members (1 for a group of one).
	Coherence float64 `json:"coherence"`
	// Enrichment is, per known label and per response length ("length:
	// short", "length: long"), the share of the group's example steps that
	// carry it over its share of all selection steps.
	Enrichment map[string]float64 `json:"enrichment"`
	// MeanF1 is the members' mean detection F1.
	MeanF1 float64 `json:"mean_f1"`
	// Score ranks candidates: Coherence × MeanF1.
	Score  float64   `json:"score"`
	Vector []float32 `json:"vector,omitempty"` // renormalised mean of the unit decoder columns
}

// GroupOptions tune ExplainGroup and Candidates.
type GroupOptions struct {
	// Ignore lists labels that are no behaviour (a catch-all such as
	// "other"); default ["other"].
	Ignore []string
	// MaxEnrichment is the enrichment below which a label does not name a
	// group (for a label too common to reach it, half way from 1 to the
	// most it can reach, as for attribution); default DefaultMinEnrichment.
	MaxEnrichment float64
	// Link is the decoder cosine at which two features of a cluster join
	// one candidate group (single linkage); default 0.2.
	Link float64
	// MinSize is the fewest features a candidate holds; default 3.
	MinSize int
}

func (o GroupOptions) withDefaults() GroupOptions {
	if o.Ignore == nil {
		o.Ignore = []string{"other"}
	}
	if o.MaxEnrichment <= 0 {
		o.MaxEnrichment = DefaultMinEnrichment
	}
	if o.Link <= 0 {
		o.Link = 0.2
	}
	if o.MinSize <= 0 {
		o.MinSize = 3
	}
	return o
}

// ExplainGroup explains the features ids together: the phrases of the
// union of their example steps, each step weighted by the members it is an
// example of. unit holds the unit decoder columns, [d_sae, d_in]; steps
// are the layer's steps.
func (ex *Explanations) ExplainGroup(ids []int, unit []float32, d int, steps []activations.Step) (*GroupExplanation, error) {
	g := &GroupExplanation{Cluster: -1, Features: append([]int(nil), ids...), Size: len(ids), Enrichment: map[string]float64{}, Phrases: []Phrase{}}
	weight := map[int32]float64{}
	var f1 float64
	for _, id := range ids {
		if id < 0 || id >= len(ex.Features) {
			return nil, fmt.Errorf("explain group: feature %d is outside [0, %d)", id, len(ex.Features))
		}
		fe := ex.Features[id]
		for _, r := range fe.Examples {
			weight[r]++
		}
		if fe.Detection != nil {
			f1 += fe.Detection.F1
		}
	}
	if len(ids) > 0 {
		g.MeanF1 = f1 / float64(len(ids))
	}
	rows := make([]int32, 0, len(weight))
	for r := range weight {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a] < rows[b] })
	ws := make([]float64, len(rows))
	for k, r := range rows {
		ws[k] = weight[r]
	}
	if len(rows) > 0 {
		g.Phrases = ex.Corpus.phrases(newLogOddsScratch(ex.Corpus), rows, ws, ex.Options.Phrases)
	}
	g.Enrichment = ex.enrichment(rows, ws, steps)
	g.Coherence = coherence(ids, unit, d)
	g.Score = g.Coherence * g.MeanF1
	sum := make([]float64, d)
	for _, id := range ids {
		for k, x := range unit[id*d : (id+1)*d] {
			sum[k] += float64(x)
		}
	}
	if v, ok := vec.Scale64(sum, 1); ok {
		g.Vector = v
	}
	return g, nil
}

// enrichment is, per label and response length, the weighted share of rows
// carrying it over its share of the selection steps.
func (ex *Explanations) enrichment(rows []int32, ws []float64, steps []activations.Step) map[string]float64 {
	base := map[string]float64{}
	var nBase float64
	keys := func(st *activations.Step) []string {
		k := append([]string(nil), st.Labels...)
		if raw, ok := st.Extra[LengthField]; ok {
			var l string
			if json.Unmarshal(raw, &l) == nil && l != "" {
				k = append(k, "length: "+l)
			}
		}
		return k
	}
	for i := range steps {
		if ex.HeldOut[i] {
			continue
		}
		nBase++
		for _, k := range keys(&steps[i]) {
			base[k]++
		}
	}
	got := map[string]float64{}
	var n float64
	for k, r := range rows {
		n += ws[k]
		for _, key := range keys(&steps[r]) {
			got[key] += ws[k]
		}
	}
	out := map[string]float64{}
	for key, b := range base {
		if n > 0 {
			out[key] = (got[key] / n) / (b / nBase)
		}
	}
	return out
}

// coherence is the mean cosine between the unit columns of two different
// features of ids.
func coherence(ids []int, unit []float32, d int) float64 {
	if len(ids) < 2 {
		return 1
	}
	var s float64
	for a := range ids {
		for b := a + 1; b < len(ids); b++ {
			s += float64(dot32(unit[ids[a]*d:(ids[a]+1)*d], unit[ids[b]*d:(ids[b]+1)*d]))
		}
	}
	return s / float64(len(ids)*(len(ids)-1)/2)
}

// Candidates returns the candidate behaviours nobody named: within each
// atlas cluster (labels, by feature), the groups of features linked by a
// decoder cosine of at least opts.Link (single linkage) with at least
// MinSize members that fire, whose example steps carry none of the known
// labels or response lengths above the enrichment they would need to be
// named by it. They are ranked by Coherence × MeanF1, best first.
func (ex *Explanations) Candidates(labels []int, unit []float32, d int, steps []activations.Step, opts GroupOptions) ([]GroupExplanation, error) {
	opts = opts.withDefaults()
	if len(labels) != len(ex.Features) {
		return nil, fmt.Errorf("candidates: expected a cluster for each of %d features, found %d", len(ex.Features), len(labels))
	}
	members := map[int][]int{}
	for j, c := range labels {
		if ex.Features[j].Fires > 0 && len(ex.Features[j].Phrases) > 0 {
			members[c] = append(members[c], j)
		}
	}
	clusters := make([]int, 0, len(members))
	for c := range members {
		clusters = append(clusters, c)
	}
	sort.Ints(clusters)
	share := ex.labelShares(steps)
	var out []GroupExplanation
	for _, c := range clusters {
		for _, ids := range linked(members[c], unit, d, opts.Link) {
			if len(ids) < opts.MinSize {
				continue
			}
			g, err := ex.ExplainGroup(ids, unit, d, steps)
			if err != nil {
				return nil, err
			}
			g.Cluster = c
			if g.MeanF1 <= 0 || named(g.Enrichment, share, opts) {
				continue
			}
			out = append(out, *g)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Score > out[b].Score })
	return out, nil
}

// labelShares is each label's (and length's) share of the selection steps.
func (ex *Explanations) labelShares(steps []activations.Step) map[string]float64 {
	all := make([]int32, 0, len(steps))
	for i := range steps {
		if !ex.HeldOut[i] {
			all = append(all, int32(i))
		}
	}
	share := map[string]float64{}
	for _, r := range all {
		st := &steps[r]
		for _, l := range st.Labels {
			share[l]++
		}
		if raw, ok := st.Extra[LengthField]; ok {
			var l string
			if json.Unmarshal(raw, &l) == nil && l != "" {
				share["length: "+l]++
			}
		}
	}
	for k := range share {
		share[k] /= float64(max(len(all), 1))
	}
	return share
}

// named reports whether some known label or length is enriched enough
// among a group's steps to name it.
func named(enr, share map[string]float64, opts GroupOptions) bool {
	for key, e := range enr {
		ignored := false
		for _, ig := range opts.Ignore {
			ignored = ignored || key == ig
		}
		if ignored || share[key] <= 0 {
			continue
		}
		need := math.Min(opts.MaxEnrichment, (1+1/share[key])/2)
		if e >= need {
			return true
		}
	}
	return false
}

// linked splits ids into the connected components of the graph joining two
// features whose unit decoder columns have a cosine of at least link.
func linked(ids []int, unit []float32, d int, link float64) [][]int {
	parent := make([]int, len(ids))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for a := range ids {
		ua := unit[ids[a]*d : (ids[a]+1)*d]
		for b := a + 1; b < len(ids); b++ {
			if float64(dot32(ua, unit[ids[b]*d:(ids[b]+1)*d])) >= link {
				parent[find(a)] = find(b)
			}
		}
	}
	comp := map[int][]int{}
	var roots []int
	for i, id := range ids {
		r := find(i)
		if _, ok := comp[r]; !ok {
			roots = append(roots, r)
		}
		comp[r] = append(comp[r], id)
	}
	out := make([][]int, len(roots))
	for i, r := range roots {
		out[i] = comp[r]
	}
	return out
}

func dot32(a, b []float32) float32 {
	var s float32
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

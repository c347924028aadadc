package atlas

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"

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

// CatchAll is the label of the steps that show none of the behaviours
// (DESIGN.md's keyword rules: "everything else = other"): a label, but no
// behaviour of its own.
const CatchAll = "other"

// GroupOptions tune ExplainGroup and Candidates.
type GroupOptions struct {
	// Ignore lists labels that are no behaviour (a catch-all such as
	// "other"); default ["other"].
	Ignore []string
	// MaxEnrichment is the enrichment below which a label does not name a
	// group (for a label too common to reach it, half way from 1 to the
	// most it can reach, as for attribution); default DefaultMinEnrichment.
	MaxEnrichment float64
	// Link is the cosine between two features' phrase profiles (z-scores
	// of their over-represented phrases) at which they join one candidate
	// group (single linkage); default 0.3.
	Link float64
	// MinSize is the fewest features a candidate holds; default 3.
	MinSize int
}

func (o GroupOptions) withDefaults() GroupOptions {
	if o.Ignore == nil {
		o.Ignore = []string{CatchAll}
	}
	if o.MaxEnrichment <= 0 {
		o.MaxEnrichment = DefaultMinEnrichment
	}
	if o.Link <= 0 {
		o.Link = 0.3
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
		g.Phrases, _ = ex.Corpus.phrases(newLogOddsScratch(ex.Corpus), rows, ws, ex.Options.Phrases)
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

// stepKeys holds, per step, its labels and its response length
// ("length: short"), and the share of the selection steps carrying each
// key; computed once per Explanations (the steps are always the same).
type stepKeys struct {
	once  sync.Once
	keys  [][]string
	share map[string]float64
}

// labelKeys returns each step's keys and each key's share of the selection
// steps.
func (ex *Explanations) labelKeys(steps []activations.Step) ([][]string, map[string]float64) {
	sk := &ex.stepKeys
	sk.once.Do(func() {
		sk.keys = make([][]string, len(steps))
		sk.share = map[string]float64{}
		n := 0
		for i := range steps {
			st := &steps[i]
			k := append([]string(nil), st.Labels...)
			if raw, ok := st.Extra[LengthField]; ok {
				var l string
				if json.Unmarshal(raw, &l) == nil && l != "" {
					k = append(k, "length: "+l)
				}
			}
			sk.keys[i] = k
			if !ex.HeldOut[i] {
				n++
				for _, key := range k {
					sk.share[key]++
				}
			}
		}
		for key := range sk.share {
			sk.share[key] /= float64(max(n, 1))
		}
	})
	return sk.keys, sk.share
}

// enrichment is, per label and response length, the weighted share of rows
// carrying it over its share of the selection steps.
func (ex *Explanations) enrichment(rows []int32, ws []float64, steps []activations.Step) map[string]float64 {
	keys, share := ex.labelKeys(steps)
	got := map[string]float64{}
	var n float64
	for k, r := range rows {
		n += ws[k]
		for _, key := range keys[r] {
			got[key] += ws[k]
		}
	}
	out := map[string]float64{}
	for key, b := range share {
		if n > 0 && b > 0 {
			out[key] = (got[key] / n) / b
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

// Candidates returns the candidate behaviours nobody named: groups of at
// least MinSize features that fire on alike steps (their phrase profiles
// have a cosine of at least opts.Link, single linkage), whose decoder
// columns lean together (positive Coherence) and whose example
// steps carry none of the known labels or response lengths above the
// enrichment they would need to be named by it, ranked by Coherence ×
// MeanF1, best first. An atlas cluster (labels, by feature, from k-means
// over the decoder columns with k at most 20) is too coarse to be one
// behaviour on an SAE of thousands of columns, so the groups are formed by
// what the features fire on, and the decoder has its say through
// Coherence; each group's Cluster is the atlas cluster most of its
// members lie in.
func (ex *Explanations) Candidates(labels []int, unit []float32, d int, steps []activations.Step, opts GroupOptions) ([]GroupExplanation, error) {
	opts = opts.withDefaults()
	if len(labels) != len(ex.Features) {
		return nil, fmt.Errorf("candidates: expected a cluster for each of %d features, found %d", len(ex.Features), len(labels))
	}
	_, share := ex.labelKeys(steps)
	var out []GroupExplanation
	for _, ids := range ex.profileGroups(opts.Link) {
		if len(ids) < opts.MinSize {
			continue
		}
		g, err := ex.ExplainGroup(ids, unit, d, steps)
		if err != nil {
			return nil, err
		}
		g.Cluster = majority(ids, labels)
		if g.MeanF1 <= 0 || g.Coherence <= 0 || named(g.Enrichment, share, opts) {
			continue
		}
		out = append(out, *g)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Score > out[b].Score })
	return out, nil
}

// profileGroups links two explained features when the cosine of their
// phrase profiles is at least link, and returns the connected components
// of more than one feature, each in increasing order. Only features that
// share a phrase are compared.
func (ex *Explanations) profileGroups(link float64) [][]int {
	n := len(ex.Features)
	norm := make([]float64, n)
	holders := map[string][]int{}
	for j, fe := range ex.Features {
		for _, p := range fe.Profile {
			norm[j] += p.Z * p.Z
			holders[p.Text] = append(holders[p.Text], j)
		}
		norm[j] = math.Sqrt(norm[j])
	}
	zOf := func(j int, text string) float64 {
		for _, p := range ex.Features[j].Profile {
			if p.Text == text {
				return p.Z
			}
		}
		return 0
	}
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	dot := map[int]float64{}
	for j, fe := range ex.Features {
		clear(dot)
		for _, p := range fe.Profile {
			for _, k := range holders[p.Text] {
				if k > j {
					dot[k] += p.Z * zOf(k, p.Text)
				}
			}
		}
		for k, v := range dot {
			if v >= link*norm[j]*norm[k] {
				parent[find(j)] = find(k)
			}
		}
	}
	comp := map[int][]int{}
	for j := range n {
		if len(ex.Features[j].Profile) > 0 {
			r := find(j)
			comp[r] = append(comp[r], j)
		}
	}
	var out [][]int
	for _, ids := range comp {
		if len(ids) > 1 {
			out = append(out, ids)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
	return out
}

// majority is the atlas cluster most of ids lie in (the smallest on a tie).
func majority(ids, labels []int) int {
	count := map[int]int{}
	best := -1
	for _, id := range ids {
		c := labels[id]
		count[c]++
		if best < 0 || count[c] > count[best] || count[c] == count[best] && c < best {
			best = c
		}
	}
	return best
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

func dot32(a, b []float32) float32 {
	var s float32
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

package atlas

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/minheap"
	"github.com/rise-interp/rise/sae"
)

// ExplainOptions tune Explain. The zero value is usable.
type ExplainOptions struct {
	BatchSize int // rows encoded at a time; 0 means DefaultAttributionBatch
	// Top is the number of top-activating example steps per feature;
	// default 20.
	Top int
	// Reservoir is the number of firing steps sampled uniformly per
	// feature, from which Bands bands of equal width over (0, max] each
	// give up to PerBand more examples; defaults 64, 4 and 5.
	Reservoir, Bands, PerBand int
	// HoldOut and HoldOutSeed split the traces as AttributionOptions do:
	// examples and background come from the selection traces, the
	// detection score from the held-out ones. HoldOut 0 means 0.5; a
	// negative value scores on the selection steps themselves.
	HoldOut     float64
	HoldOutSeed uint64
	Phrases     PhraseOptions
	// Progress, when not nil, is told which stage runs and how far it is.
	Progress func(stage string, done, total int)
}

// Detection is how well an explanation's phrases alone tell, on held-out
// steps, whether the feature fires: the detection score of Paulo et al.
// (2024, "Automatically Interpreting Millions of Features in Large Language
// Models", §3.3) with the phrases standing in for the LLM judge. A step is
// predicted to fire when its text contains any phrase; AUC ranks the steps
// by the sum of the z-scores of the phrases they contain.
//
// Precision, Recall and F1 are over all the held-out steps, where a
// feature that fires on few of them has a low precision however well its
// phrases pick them out. Delphi, the reference implementation of that
// paper, scores on as many firing examples as non-firing ones (50 and 50
// by default); BalancedPrecision and BalancedF1 are the expected scores on
// such a set: precision TPR / (TPR + FPR), with the recall unchanged.
type Detection struct {
	Precision         float64 `json:"precision"`
	Recall            float64 `json:"recall"`
	F1                float64 `json:"f1"`
	BalancedPrecision float64 `json:"balanced_precision"`
	BalancedF1        float64 `json:"balanced_f1"`
	AUC               float64 `json:"auc"`
	Positives         int     `json:"positives"` // held-out steps on which the feature fires
	Steps             int     `json:"steps"`     // held-out steps
}

// FeatureExplanation is one feature's explanation and its score.
type FeatureExplanation struct {
	ID        int        `json:"id"`
	Phrases   []Phrase   `json:"phrases"`
	Detection *Detection `json:"detection,omitempty"`
	Fires     int64      `json:"fires"` // steps (all of them) on which it fires
	// Profile holds every phrase over-represented in the examples (up to
	// PhraseOptions.Profile), overlapping ones included: features whose
	// profiles are alike fire on alike steps (Candidates).
	Profile []Phrase `json:"profile,omitempty"`
	// Examples are the selection rows the phrases were drawn from: the
	// top-activating ones, then the banded ones.
	Examples []int32 `json:"examples,omitempty"`
	// Next are the phrases over-represented in the steps that follow the
	// examples in their traces, and NextDetection how well they alone, in
	// the step after a held-out step, tell whether the feature fires on
	// it. A step's state is read at the delimiter that ends it, so a
	// feature often fires on the step before a behaviour shows: its own
	// phrases then say little and the next step's say what it anticipates.
	Next          []Phrase   `json:"next,omitempty"`
	NextDetection *Detection `json:"next_detection,omitempty"`
}

// Explanations are the explanations of every feature of an SAE over a
// layer's steps.
type Explanations struct {
	Features []FeatureExplanation `json:"features"`
	// HeldOut marks the rows whose traces were held out for scoring.
	HeldOut []bool `json:"-"`
	// NextRow is the row of the step after each row in its trace, -1
	// after a trace's last step.
	NextRow []int32        `json:"-"`
	Corpus  *Corpus        `json:"-"`
	Options ExplainOptions `json:"-"`

	stepKeys stepKeys // labels and lengths of the steps, for enrichment
}

// rowVal is a row and a latent value.
type rowVal struct {
	row int32
	v   float32
}

// lowerValue orders a feature's top rows so far, the smallest value on top.
func lowerValue(a, b rowVal) bool { return a.v < b.v }

// Explain encodes every row of layer with s in one streaming pass, keeps
// per feature its top-activating and a uniform reservoir of its firing
// selection rows, explains each feature by the phrases over-represented in
// those steps (Corpus.phrases: Monroe et al. 2008) and scores each
// explanation on the held-out steps (Detection). steps hold one step per
// row, in row order.
func Explain(ctx context.Context, s *sae.SAE, layer *activations.Layer, steps []activations.Step, opts ExplainOptions) (*Explanations, error) {
	if err := checkEncodeInput("explain", s, layer, steps); err != nil {
		return nil, err
	}
	if !(opts.HoldOut < 1) {
		return nil, fmt.Errorf("explain: hold-out share must be below 1, got %v", opts.HoldOut)
	}
	opts.BatchSize = cmp.Or(opts.BatchSize, DefaultAttributionBatch)
	opts.Top = cmp.Or(opts.Top, 20)
	opts.Reservoir = cmp.Or(opts.Reservoir, 64)
	opts.Bands = cmp.Or(opts.Bands, 4)
	opts.PerBand = cmp.Or(opts.PerBand, 5)
	opts.HoldOut = cmp.Or(opts.HoldOut, 0.5)
	prog := func(stage string, done, total int) {
		if opts.Progress != nil {
			opts.Progress(stage, done, total)
		}
	}
	prog("phrases", 0, 1)
	held, corpus := split(steps, opts)
	prog("phrases", 1, 1)

	m := s.DSae
	tops := make([]minheap.Heap[rowVal], m)
	for j := range tops {
		tops[j] = minheap.Make(lowerValue)
	}
	res := make([][]rowVal, m)
	seen := make([]int64, m)  // selection firings, for the reservoir
	fires := make([]int64, m) // all firings
	heldFires := make([][]int32, m)
	rng := rand.New(rand.NewPCG(opts.HoldOutSeed, 0xe1a1))

	encoded := func(done, total int64) { prog("encode", int(done), int(total)) }
	_, err := s.EncodeLayer(ctx, layer, layer.Rows, opts.BatchSize, encoded, func(_, f []float32, rows []int) {
		for i, row := range rows {
			r := int32(row)
			for j, v := range f[i*m : (i+1)*m] {
				if v <= 0 {
					continue
				}
				fires[j]++
				if held[row] || opts.HoldOut < 0 {
					heldFires[j] = append(heldFires[j], r)
					if opts.HoldOut > 0 {
						continue
					}
				}
				if h := &tops[j]; h.Len() < opts.Top {
					h.Push(rowVal{r, v})
				} else if v > h.Top().v {
					h.ReplaceTop(rowVal{r, v})
				}
				seen[j]++
				if len(res[j]) < opts.Reservoir {
					res[j] = append(res[j], rowVal{r, v})
				} else if k := rng.Int64N(seen[j]); k < int64(opts.Reservoir) {
					res[j][k] = rowVal{r, v}
				}
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}

	ex := &Explanations{Features: make([]FeatureExplanation, m), HeldOut: held, NextRow: nextRows(steps), Corpus: corpus, Options: opts}
	sc := newLogOddsScratch(corpus)
	for j := range m {
		if j%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("explain: %w", err)
			}
			prog("explanations", j, m)
		}
		rows := examples(tops[j].Items(), res[j], opts.Bands, opts.PerBand)
		fe := FeatureExplanation{ID: j, Fires: fires[j], Examples: rows, Phrases: []Phrase{}}
		if len(rows) > 0 {
			fe.Phrases, fe.Profile = corpus.phrases(sc, rows, nil, opts.Phrases)
			var next []int32
			for _, r := range rows {
				if n := ex.NextRow[r]; n >= 0 {
					next = append(next, n)
				}
			}
			if len(next) > 0 {
				fe.Next, _ = corpus.phrases(sc, next, nil, opts.Phrases)
			}
		}
		ex.Features[j] = fe
		tops[j].Reset()
		res[j] = nil
	}
	prog("explanations", m, m)
	prog("detection", 0, 1)
	if err := ex.detect(ctx, heldFires, opts.HoldOut < 0); err != nil {
		return nil, err
	}
	prog("detection", 1, 1)
	return ex, nil
}

// examples returns a feature's top rows, by decreasing value, then up to
// perBand rows of each of bands bands of equal width over (0, max] drawn
// from its reservoir, leaving out rows already taken.
func examples(top []rowVal, res []rowVal, bands, perBand int) []int32 {
	t := append([]rowVal(nil), top...)
	sort.Slice(t, func(a, b int) bool { return t[a].v > t[b].v || t[a].v == t[b].v && t[a].row < t[b].row })
	rows := make([]int32, 0, len(t)+bands*perBand)
	taken := map[int32]bool{}
	for _, rv := range t {
		rows = append(rows, rv.row)
		taken[rv.row] = true
	}
	if len(t) == 0 {
		return rows
	}
	hi := t[0].v
	r := append([]rowVal(nil), res...)
	sort.Slice(r, func(a, b int) bool { return r[a].row < r[b].row })
	count := make([]int, bands)
	for _, rv := range r {
		b := min(int(float64(rv.v)/float64(hi)*float64(bands)), bands-1)
		if taken[rv.row] || count[b] >= perBand {
			continue
		}
		count[b]++
		taken[rv.row] = true
		rows = append(rows, rv.row)
	}
	return rows
}

// detect scores every explanation on the held-out rows (or, inSample, on
// the selection rows): heldFires lists per feature the rows it fires on.
// Each feature's own phrases are looked for in the step itself, its next
// phrases in the step after it.
func (ex *Explanations) detect(ctx context.Context, heldFires [][]int32, inSample bool) error {
	c := ex.Corpus
	var eval []int32 // the rows scored
	for i, h := range ex.HeldOut {
		if h || inSample {
			eval = append(eval, int32(i))
		}
	}
	if len(eval) == 0 {
		return nil
	}
	pos := make(map[int32]int32, len(eval)) // row → index in eval
	for k, r := range eval {
		pos[r] = int32(k)
	}
	need := map[int32]bool{}
	for _, fe := range ex.Features {
		for _, p := range fe.Phrases {
			need[c.ID(p.Text)] = true
		}
		for _, p := range fe.Next {
			need[c.ID(p.Text)] = true
		}
	}
	// postings lists, per phrase, the indices in eval of the steps that
	// contain it; nextPostings of the steps whose next step does.
	postings, nextPostings := map[int32][]int32{}, map[int32][]int32{}
	index := func(into map[int32][]int32, k int, ids []int32) {
		var last int32 = -1
		ids = append([]int32(nil), ids...)
		sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
		for _, id := range ids {
			if id != last && need[id] {
				into[id] = append(into[id], int32(k))
			}
			last = id
		}
	}
	for k, r := range eval {
		index(postings, k, c.Steps[r])
		if ex.NextRow != nil {
			if n := ex.NextRow[r]; n >= 0 {
				index(nextPostings, k, c.Steps[n])
			}
		}
	}
	score := make([]float64, len(eval))
	fired := make([]bool, len(eval))
	var touched []int32
	score1 := func(phrases []Phrase, post map[int32][]int32, positives int) *Detection {
		for _, p := range phrases {
			for _, k := range post[c.ID(p.Text)] {
				if score[k] == 0 {
					touched = append(touched, k)
				}
				score[k] += p.Z
			}
		}
		d := detection(score, fired, touched, positives, len(eval))
		for _, k := range touched {
			score[k] = 0
		}
		touched = touched[:0]
		return d
	}
	for j := range ex.Features {
		if j%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("explain: %w", err)
			}
		}
		fe := &ex.Features[j]
		for _, r := range heldFires[j] {
			fired[pos[r]] = true
		}
		fe.Detection = score1(fe.Phrases, postings, len(heldFires[j]))
		if len(fe.Next) > 0 {
			fe.NextDetection = score1(fe.Next, nextPostings, len(heldFires[j]))
		}
		for _, r := range heldFires[j] {
			fired[pos[r]] = false
		}
	}
	return nil
}

// nextRows returns, per row, the row of the next step of its trace (the
// row after it, when it holds the same trace's next step), or -1.
func nextRows(steps []activations.Step) []int32 {
	next := make([]int32, len(steps))
	for i := range steps {
		next[i] = -1
		if i+1 < len(steps) && steps[i+1].Trace == steps[i].Trace && steps[i+1].Step == steps[i].Step+1 {
			next[i] = int32(i + 1)
		}
	}
	return next
}

// harmonicMean is 2pr / (p + r), the F1 of precision p and recall r (0 when
// both are 0).
func harmonicMean(p, r float64) float64 {
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

// detection computes precision, recall and F1 of "some phrase matches" and
// the AUC of the match score (Mann–Whitney, ties counted half) from the
// scored steps touched; every other step scores 0.
func detection(score []float64, fired []bool, touched []int32, positives, steps int) *Detection {
	d := &Detection{Positives: positives, Steps: steps}
	tp := 0
	type sv struct {
		s   float64
		pos bool
	}
	v := make([]sv, len(touched))
	for i, k := range touched {
		v[i] = sv{score[k], fired[k]}
		if fired[k] {
			tp++
		}
	}
	if len(touched) > 0 {
		d.Precision = float64(tp) / float64(len(touched))
	}
	if positives > 0 {
		d.Recall = float64(tp) / float64(positives)
	}
	d.F1 = harmonicMean(d.Precision, d.Recall)
	negatives := steps - positives
	if positives == 0 || negatives == 0 {
		d.AUC = 0.5
		return d
	}
	if fpr := float64(len(touched)-tp) / float64(negatives); d.Recall+fpr > 0 {
		d.BalancedPrecision = d.Recall / (d.Recall + fpr)
	}
	d.BalancedF1 = harmonicMean(d.BalancedPrecision, d.Recall)
	sort.Slice(v, func(a, b int) bool { return v[a].s < v[b].s })
	// The unmatched steps tie at score 0, below every matched one.
	negBelow := float64(negatives - (len(touched) - tp))
	posZero := float64(positives - tp)
	u := 0.5 * posZero * negBelow
	for i := 0; i < len(v); {
		k := i
		var p, q float64
		for ; k < len(v) && v[k].s == v[i].s; k++ {
			if v[k].pos {
				p++
			} else {
				q++
			}
		}
		u += p*negBelow + 0.5*p*q
		negBelow += q
		i = k
	}
	d.AUC = u / (float64(positives) * float64(negatives))
	return d
}

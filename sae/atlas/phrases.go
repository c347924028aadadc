package atlas

import (
	"math"
	"sort"
	"strings"
	"unicode"
)

// MaxNGram is the longest phrase, in words, that explanations consider.
const MaxNGram = 4

// Corpus holds the word n-grams (1 to MaxNGram words, lower-cased) of every
// step text, interned: Steps[i] lists the phrase ids of step i, one per
// occurrence. Background counts, for each phrase, the steps it was built
// from that hold it (once however often), and Total those steps.
type Corpus struct {
	Phrases    []string
	Steps      [][]int32
	Trace      []int32 // each step's trace, numbered from 0; nil when unknown
	Background []int64 // steps holding each phrase
	Total      int64   // steps counted in Background
	index      map[string]int32
	numeric    []bool // whether each phrase has a digit
}

// Words splits a text into lower-cased words: runs of letters, digits and
// apostrophes.
func Words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'')
	})
}

// NewCorpus interns the n-grams of texts; background, when not nil, says
// which texts count towards Background (all of them when nil); traces,
// when not nil, holds each text's trace id.
func NewCorpus(texts []string, traces []string, background func(i int) bool) *Corpus {
	c := &Corpus{Steps: make([][]int32, len(texts)), index: map[string]int32{}}
	if traces != nil {
		c.Trace = make([]int32, len(texts))
		ids := map[string]int32{}
		for i, t := range traces {
			id, ok := ids[t]
			if !ok {
				id = int32(len(ids))
				ids[t] = id
			}
			c.Trace[i] = id
		}
	}
	for i, t := range texts {
		c.Steps[i] = c.intern(Words(t))
	}
	c.Background = make([]int64, len(c.Phrases))
	seen := make([]int, len(c.Phrases))
	for i, ids := range c.Steps {
		if background != nil && !background(i) {
			continue
		}
		for _, id := range ids {
			if seen[id] != i+1 {
				seen[id] = i + 1
				c.Background[id]++
			}
		}
		c.Total++
	}
	return c
}

func (c *Corpus) intern(words []string) []int32 {
	var ids []int32
	for i := range words {
		for n := 1; n <= MaxNGram && i+n <= len(words); n++ {
			p := strings.Join(words[i:i+n], " ")
			id, ok := c.index[p]
			if !ok {
				id = int32(len(c.Phrases))
				c.Phrases = append(c.Phrases, p)
				c.numeric = append(c.numeric, strings.ContainsAny(p, "0123456789"))
				c.index[p] = id
			}
			ids = append(ids, id)
		}
	}
	return ids
}

// ID returns the id of a phrase (lower-cased, words separated by one
// space), or -1 when no step contains it.
func (c *Corpus) ID(phrase string) int32 {
	if id, ok := c.index[strings.Join(Words(phrase), " ")]; ok {
		return id
	}
	return -1
}

// Phrase is one phrase of an explanation and its weight: the z-score of its
// weighted log-odds in the example steps against the background.
type Phrase struct {
	Text string  `json:"text"`
	Z    float64 `json:"z"`
}

// logOddsScratch counts phrases over a set of example steps without
// clearing a table of the whole vocabulary each time.
type logOddsScratch struct {
	count   []float64
	docs    []int32  // example traces (or steps) holding the phrase
	mark    []uint64 // the stamp of the last trace that counted a phrase in docs
	stamp   uint64
	inRow   []uint64 // the last example row that counted a phrase
	row     uint64
	touched []int32
	order   []int32
}

func newLogOddsScratch(c *Corpus) *logOddsScratch {
	n := len(c.Phrases)
	return &logOddsScratch{count: make([]float64, n), docs: make([]int32, n), mark: make([]uint64, n), inRow: make([]uint64, n)}
}

// PhraseOptions tune the phrases of an explanation.
type PhraseOptions struct {
	// Keep is the most phrases kept; default 6.
	Keep int
	// MinZ is the least z-score a phrase needs; default 3.
	MinZ float64
	// MinTraces is the fewest traces whose example steps must hold a
	// phrase (steps, when the corpus has no traces); default 3. A number
	// that runs through one trace's steps says nothing about a feature.
	MinTraces int
	// Prior is α₀, the pseudo-count of the informative prior in steps,
	// spread over the phrases in proportion to the share of background
	// steps that hold them; default 10.
	Prior float64
	// Profile is the most phrases kept in a profile (every phrase above
	// MinZ, overlapping or not), which compares what features fire on;
	// default 24.
	Profile int
	// Numbers keeps phrases with a digit in them. By default they are left
	// out: in reasoning traces the operands of each step ("59 x", "393")
	// crowd out the words that name what a feature fires on.
	Numbers bool
}

func (o PhraseOptions) withDefaults() PhraseOptions {
	if o.Keep <= 0 {
		o.Keep = 6
	}
	if o.MinZ == 0 {
		o.MinZ = 3
	}
	if o.MinTraces <= 0 {
		o.MinTraces = 3
	}
	if o.Prior <= 0 {
		o.Prior = 10
	}
	if o.Profile <= 0 {
		o.Profile = 24
	}
	return o
}

// phrases returns the phrases most over-represented in the example steps
// (rows, each counted weight times) against the rest of the background, by
// the log-odds ratio with an informative prior of Monroe, Colaresi and
// Quinn (2008, "Fightin' Words", §3.5.1), over steps: a phrase counts once
// in each step that holds it, so that long steps (a reflection holds about
// 28 n-grams, the average step 11) do not dilute what they say:
//
//	δ_w = log((y_w^a+α_w)/(n^a+α₀−y_w^a−α_w)) − log((y_w^b+α_w)/(n^b+α₀−y_w^b−α_w))
//	σ²(δ_w) ≈ 1/(y_w^a+α_w) + 1/(y_w^b+α_w),   z_w = δ_w/σ(δ_w)
//
// with y_w^a the example steps holding w out of n^a examples, y_w^b and n^b
// the same for the background less the examples, and α_w = α₀·(share of
// background steps holding w). Counted over n-grams instead, a phrase
// every example holds ("wait let me check" in 30 of 31 reflection steps)
// scored z 3.2 to 3.9 on the tiny model's demo and was cut. A phrase that
// merely extends or shortens a phrase already kept (contains it, or is
// contained in it) is skipped, so "wait", "wait let" and "wait let me" do
// not crowd the list; of phrases with the same z-score (they occur
// together) the longest is kept. profile holds the best opts.Profile
// phrases, overlapping or not.
func (c *Corpus) phrases(sc *logOddsScratch, rows []int32, weights []float64, opts PhraseOptions) (kept, profile []Phrase) {
	opts = opts.withDefaults()
	var na float64
	// Visit the rows trace by trace, so that docs counts each phrase once
	// per trace.
	sc.order = sc.order[:0]
	for k := range rows {
		sc.order = append(sc.order, int32(k))
	}
	if c.Trace != nil {
		sort.SliceStable(sc.order, func(a, b int) bool { return c.Trace[rows[sc.order[a]]] < c.Trace[rows[sc.order[b]]] })
	}
	last := int32(-1)
	for _, k := range sc.order {
		r := rows[k]
		w := 1.0
		if weights != nil {
			w = weights[k]
		}
		if c.Trace == nil || c.Trace[r] != last {
			sc.stamp++
			if c.Trace != nil {
				last = c.Trace[r]
			}
		}
		sc.row++
		for _, id := range c.Steps[r] {
			if sc.inRow[id] == sc.row {
				continue // once per step
			}
			sc.inRow[id] = sc.row
			if sc.count[id] == 0 {
				sc.touched = append(sc.touched, id)
			}
			sc.count[id] += w
			if sc.mark[id] != sc.stamp {
				sc.mark[id] = sc.stamp
				sc.docs[id]++
			}
		}
		na += w
	}
	nb := float64(c.Total) - na
	var cands []Phrase
	for _, id := range sc.touched {
		ya, docs := sc.count[id], sc.docs[id]
		sc.count[id], sc.docs[id] = 0, 0
		if docs < int32(opts.MinTraces) || c.Total == 0 || !opts.Numbers && c.numeric[id] {
			continue
		}
		alpha := opts.Prior * float64(c.Background[id]) / float64(c.Total)
		if alpha <= 0 {
			alpha = opts.Prior / float64(c.Total) // a phrase only the examples hold
		}
		yb := math.Max(float64(c.Background[id])-ya, 0)
		if nb <= 0 {
			continue
		}
		ra, rb := na+opts.Prior-ya-alpha, nb+opts.Prior-yb-alpha
		if ra <= 0 || rb <= 0 {
			continue // every step holds it: it says nothing
		}
		d := math.Log((ya+alpha)/ra) - math.Log((yb+alpha)/rb)
		z := d / math.Sqrt(1/(ya+alpha)+1/(yb+alpha))
		if z >= opts.MinZ {
			cands = append(cands, Phrase{Text: c.Phrases[id], Z: z})
		}
	}
	sc.touched = sc.touched[:0]
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].Z != cands[j].Z {
			return cands[i].Z > cands[j].Z
		}
		if li, lj := strings.Count(cands[i].Text, " "), strings.Count(cands[j].Text, " "); li != lj {
			return li > lj
		}
		return cands[i].Text < cands[j].Text
	})
	out := []Phrase{}
	profile = cands[:min(len(cands), opts.Profile):min(len(cands), opts.Profile)]
	for _, p := range cands {
		if len(out) == opts.Keep {
			break
		}
		overlaps := false
		for _, q := range out {
			if containsPhrase(p.Text, q.Text) || containsPhrase(q.Text, p.Text) {
				overlaps = true
				break
			}
		}
		if !overlaps {
			out = append(out, p)
		}
	}
	return out, profile
}

// containsPhrase reports whether phrase a contains phrase b as whole words.
func containsPhrase(a, b string) bool {
	return strings.Contains(" "+a+" ", " "+b+" ")
}

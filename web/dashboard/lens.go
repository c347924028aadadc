package dashboard

import (
	"sort"

	"github.com/rise-interp/rise/steer/model"
)

// ModelLens returns a logit lens over model m (its final norm and head,
// model.LogitLens) that keeps the n tokens a direction promotes most and
// the n it suppresses most, named by tok.
func ModelLens(m *model.Model, tok model.Tokenizer, n int) func(dir []float32) (*Lens, error) {
	return func(dir []float32) (*Lens, error) {
		logits, err := m.LogitLens(dir)
		if err != nil {
			return nil, err
		}
		v := min(tok.VocabSize(), len(logits)) // rows past the tokenizer's vocabulary are padding
		ids := make([]int, v)
		for i := range ids {
			ids[i] = i
		}
		sort.SliceStable(ids, func(a, b int) bool { return logits[ids[a]] > logits[ids[b]] })
		l := &Lens{Promoted: []LensToken{}, Suppressed: []LensToken{}}
		for k := 0; k < min(n, v); k++ {
			p, s := ids[k], ids[v-1-k]
			l.Promoted = append(l.Promoted, LensToken{Token: tok.Decode([]int{p}, true), ID: p, Logit: logits[p]})
			l.Suppressed = append(l.Suppressed, LensToken{Token: tok.Decode([]int{s}, true), ID: s, Logit: logits[s]})
		}
		return l, nil
	}
}

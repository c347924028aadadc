package dashboard

import (
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
		return TopTokens(logits, tok, n), nil
	}
}

// TopTokens returns the n tokens of a lens's logits that rank highest
// (promoted, largest first) and the n that rank lowest (suppressed,
// smallest first), named by tok; logits past tok's vocabulary are padding
// and left out. They are the ends of the ids sorted by logit with ties in
// id order, found in one pass that keeps the n best so far
// (BenchmarkTopTokens: 152k logits, n 10, 2.3 ms against a stable sort's
// 53 ms).
func TopTokens(logits []float32, tok model.Tokenizer, n int) *Lens {
	v := min(tok.VocabSize(), len(logits))
	n = max(0, min(n, v))
	// a ranks ahead of b when its logit is larger, or equal with a smaller
	// id; the suppressed are the promoted of the reverse order.
	ahead := func(a, b int) bool { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b) }
	behind := func(a, b int) bool { return ahead(b, a) }
	top, bottom := make([]int, 0, n+1), make([]int, 0, n+1)
	for id := range v {
		top = keepBest(top, n, id, ahead)
		bottom = keepBest(bottom, n, id, behind)
	}
	l := &Lens{Promoted: []LensToken{}, Suppressed: []LensToken{}}
	for _, id := range top {
		l.Promoted = append(l.Promoted, LensToken{Token: tok.Decode([]int{id}, true), ID: id, Logit: logits[id]})
	}
	for _, id := range bottom {
		l.Suppressed = append(l.Suppressed, LensToken{Token: tok.Decode([]int{id}, true), ID: id, Logit: logits[id]})
	}
	return l
}

// keepBest inserts id into list, the at most n best so far by before,
// best first, when it belongs there.
func keepBest(list []int, n, id int, before func(a, b int) bool) []int {
	if len(list) == n && (n == 0 || !before(id, list[n-1])) {
		return list
	}
	i := len(list)
	for i > 0 && before(id, list[i-1]) {
		i--
	}
	list = append(list, 0)
	copy(list[i+1:], list[i:])
	list[i] = id
	return list[:min(len(list), n)]
}

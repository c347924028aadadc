package atlas

import (
	"fmt"
	"sort"
	"strings"
)

// SearchHit is a feature whose explanation holds a searched phrase.
type SearchHit struct {
	ID        int        `json:"id"`
	Phrase    string     `json:"phrase"` // the explanation's phrase that holds the query
	Z         float64    `json:"z"`      // that phrase's weight
	Detection *Detection `json:"detection,omitempty"`
	// Score ranks the hits: Z × the detection F1 (0 without a detection).
	Score     float64 `json:"score"`
	Behaviour string  `json:"behaviour,omitempty"`
	Cluster   int     `json:"cluster"`
}

// Search finds the features of an explained atlas whose explanation holds
// the phrase q (as whole words, case ignored), best first: by the phrase's
// weight times the feature's detection F1, then by the weight. limit ≤ 0
// means every hit.
func (a *Atlas) Search(q string, limit int) ([]SearchHit, error) {
	words := Words(q)
	if len(words) == 0 {
		return nil, fmt.Errorf("search: expected a phrase of at least one word, found %q", q)
	}
	phrase := strings.Join(words, " ")
	hits := []SearchHit{}
	for _, f := range a.Features {
		best := -1
		for i, p := range f.Explanation {
			if containsPhrase(p.Text, phrase) && (best < 0 || p.Z > f.Explanation[best].Z) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		p := f.Explanation[best]
		h := SearchHit{ID: f.ID, Phrase: p.Text, Z: p.Z, Detection: f.Detection, Behaviour: f.Behaviour, Cluster: f.Cluster}
		if f.Detection != nil {
			h.Score = p.Z * f.Detection.F1
		}
		hits = append(hits, h)
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		if hits[i].Z != hits[j].Z {
			return hits[i].Z > hits[j].Z
		}
		return hits[i].ID < hits[j].ID
	})
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit]
	}
	return hits, nil
}

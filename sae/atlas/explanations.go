package atlas

import (
	"encoding/json"
	"fmt"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/atomicfile"
)

// Annotate writes the explanations into the atlas: every feature's phrases
// and detection score, every cluster's group explanation (without its
// vector), and the candidate behaviours nobody named. unit holds the unit
// decoder columns, [d_sae, d_in]; steps are the layer's steps.
func (ex *Explanations) Annotate(a *Atlas, unit []float32, steps []activations.Step, opts GroupOptions) error {
	if len(a.Features) != len(ex.Features) {
		return fmt.Errorf("annotate: the atlas has %d features, the explanations %d", len(a.Features), len(ex.Features))
	}
	if len(unit) != a.DSae*a.DIn {
		return fmt.Errorf("annotate: expected %d × %d unit decoder values, found %d", a.DSae, a.DIn, len(unit))
	}
	labels := make([]int, len(a.Features))
	members := make([][]int, len(a.Clusters))
	for j := range a.Features {
		fe := ex.Features[j]
		a.Features[j].Explanation, a.Features[j].Detection = fe.Phrases, fe.Detection
		a.Features[j].Next, a.Features[j].NextDetection = fe.Next, fe.NextDetection
		c := a.Features[j].Cluster
		labels[j] = c
		if c >= 0 && c < len(members) {
			members[c] = append(members[c], j)
		}
	}
	for c := range a.Clusters {
		g, err := ex.ExplainGroup(members[c], unit, a.DIn, steps)
		if err != nil {
			return err
		}
		g.Cluster, g.Vector = c, nil
		a.Clusters[c].Explained = g
	}
	cands, err := ex.Candidates(labels, unit, a.DIn, steps, opts)
	if err != nil {
		return err
	}
	a.Candidates = cands
	return nil
}

// ExplanationsFormat tags the file SaveExplanations writes.
const ExplanationsFormat = "rise-explanations/1"

type explanationsFile struct {
	Format      string               `json:"format"`
	Rows        int                  `json:"rows"`
	HoldOut     float64              `json:"hold_out"`
	HoldOutSeed uint64               `json:"hold_out_seed"`
	Phrases     PhraseOptions        `json:"phrase_options"`
	Features    []FeatureExplanation `json:"features"`
}

// Save writes the explanations, with their example rows, as JSON,
// atomically; LoadExplanations reads them back.
func (ex *Explanations) Save(path string) error {
	b, err := json.Marshal(explanationsFile{Format: ExplanationsFormat, Rows: len(ex.HeldOut),
		HoldOut: ex.Options.HoldOut, HoldOutSeed: ex.Options.HoldOutSeed, Phrases: ex.Options.Phrases, Features: ex.Features})
	if err != nil {
		return fmt.Errorf("explanations %s: %w", path, err)
	}
	return atomicfile.Write(path, append(b, '\n'))
}

// LoadExplanations reads explanations that Save wrote for the same steps
// (one per row), rebuilding their phrase corpus and split from the steps.
func LoadExplanations(path string, steps []activations.Step) (*Explanations, error) {
	var f explanationsFile
	if err := readJSON(path, "explanations JSON", &f); err != nil {
		return nil, err
	}
	switch {
	case f.Format != ExplanationsFormat:
		return nil, fmt.Errorf("%s: expected format %q, found %q", path, ExplanationsFormat, f.Format)
	case f.Rows != len(steps):
		return nil, fmt.Errorf("%s: explains %d rows, the steps number %d", path, f.Rows, len(steps))
	}
	for _, fe := range f.Features {
		for _, r := range fe.Examples {
			if r < 0 || int(r) >= len(steps) {
				return nil, fmt.Errorf("%s: feature %d: example row %d is outside [0, %d)", path, fe.ID, r, len(steps))
			}
		}
	}
	opts := ExplainOptions{HoldOut: f.HoldOut, HoldOutSeed: f.HoldOutSeed, Phrases: f.Phrases}
	ex := &Explanations{Features: f.Features, Options: opts, NextRow: nextRows(steps)}
	ex.HeldOut, ex.Corpus = split(steps, opts)
	return ex, nil
}

// split marks the held-out rows of steps and builds their phrase corpus,
// its background counted over the other rows.
func split(steps []activations.Step, opts ExplainOptions) ([]bool, *Corpus) {
	held := make([]bool, len(steps))
	texts := make([]string, len(steps))
	traces := make([]string, len(steps))
	for i := range steps {
		held[i] = opts.HoldOut > 0 && heldOut(steps[i].Trace, opts.HoldOut, opts.HoldOutSeed)
		texts[i], traces[i] = steps[i].Text, steps[i].Trace
	}
	return held, NewCorpus(texts, traces, func(i int) bool { return !held[i] })
}

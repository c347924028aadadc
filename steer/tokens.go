package steer

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/steer/model"
)

// TokenStates is one trace read token by token: the pieces of text of its
// response's tokens, the step each token belongs to, and the residual
// stream after one layer at every token. A step's state (the row a dump
// records for it) is the state of token State[step].
type TokenStates struct {
	Pieces []string  // the text each response token adds
	Step   []int     // the step of each token; -1 past the last step
	State  []int     // per step, the index of the token whose state is the step's
	Rows   []float32 // len(Pieces) rows of Dim values
	Dim    int
}

// ReadTokens runs a trace through m as CaptureRecords does (same
// encoding, steps and state positions) and keeps the residual stream after
// block layer at every response token up to the last step's state: the
// token-level view of a feature (what Neuronpedia's activation texts
// show, for a dump of step states).
func ReadTokens(ctx context.Context, m *model.Model, tok model.Tokenizer, tr activations.Trace, layer int, o CaptureOptions) (*TokenStates, error) {
	o.Layers = []int{layer}
	if _, err := o.normalise(m.Layers); err != nil {
		return nil, err
	}
	ids, promptLen, segs, pos := stepStates(tok, tr, o)
	if len(segs) == 0 {
		return nil, inputerr.Errorf("trace %s: its response has no steps", tr.Trace)
	}
	last := pos[len(pos)-1]
	if last >= m.MaxSeq {
		return nil, inputerr.Errorf("trace %s: %d tokens, expected at most the model's context of %d", tr.Trace, last+1, m.MaxSeq)
	}
	n := last + 1 - promptLen
	ts := &TokenStates{Pieces: make([]string, n), Step: make([]int, n), State: make([]int, len(pos)), Rows: make([]float32, n*m.Dim), Dim: m.Dim}
	rids := ids[promptLen : last+1]
	prev := 0
	step := 0
	for i := range n {
		text := tok.Decode(rids[:i+1], false)
		if len(text) >= prev {
			ts.Pieces[i] = text[prev:]
			prev = len(text)
		}
		for step < len(pos) && pos[step] < promptLen+i {
			step++
		}
		ts.Step[i] = step
		if step == len(pos) {
			ts.Step[i] = -1
		}
	}
	for s, p := range pos {
		ts.State[s] = p - promptLen
	}
	hook := func(l int, h []float32, rs []model.Row) {
		if l != layer {
			return
		}
		for r, row := range rs {
			if i := row.Pos - promptLen; i >= 0 && i < n {
				copy(ts.Rows[i*m.Dim:(i+1)*m.Dim], h[r*m.Dim:(r+1)*m.Dim])
			}
		}
	}
	seq := m.NewSequence()
	seq.PromptLen = promptLen
	for at := 0; at <= last; at += o.Chunk {
		end := min(last+1, at+o.Chunk)
		if _, err := m.Forward(ctx, []*model.Sequence{seq}, [][]int{ids[at:end]}, false, hook); err != nil {
			return nil, fmt.Errorf("trace %s: %w", tr.Trace, err)
		}
	}
	return ts, nil
}

// TokenEffect measures what adding strength·dir to the residual stream
// after block layer at each step's state does to the next token: the
// change in log-probability of every vocabulary token there, steered minus
// plain, averaged over the step states of traces (the "TokenChange" effect
// of a feature's direction). It returns the mean change per token id and
// the number of step states it averaged over.
func TokenEffect(ctx context.Context, m *model.Model, tok model.Tokenizer, traces []activations.Trace, layer int, dir []float32, strength float64, o CaptureOptions) ([]float64, int, error) {
	if len(dir) != m.Dim {
		return nil, 0, inputerr.Errorf("token effect: direction of %d values, expected the model's d_model %d", len(dir), m.Dim)
	}
	o.Layers = []int{layer}
	if _, err := o.normalise(m.Layers); err != nil {
		return nil, 0, err
	}
	delta := make([]float64, m.Vocab)
	count := 0
	for _, tr := range traces {
		ids, _, segs, pos := stepStates(tok, tr, o)
		keep := len(segs)
		for keep > 0 && pos[keep-1] >= m.MaxSeq {
			keep--
		}
		if keep == 0 {
			continue
		}
		at := map[int]bool{}
		for _, p := range pos[:keep] {
			at[p] = true
		}
		// The final residual stream at each step state, plain and steered:
		// the head reads it there (model.LogitLens), so no other
		// position's logits are computed.
		last := pos[keep-1]
		run := func(steered bool) (map[int][]float32, error) {
			final := map[int][]float32{}
			hook := func(l int, h []float32, rs []model.Row) {
				for r, row := range rs {
					if !at[row.Pos] {
						continue
					}
					x := h[r*m.Dim : (r+1)*m.Dim]
					if steered && l == layer {
						for k, d := range dir {
							x[k] += float32(strength) * d
						}
					}
					if l == m.Layers-1 {
						final[row.Pos] = slices.Clone(x)
					}
				}
			}
			seq := m.NewSequence()
			for from := 0; from <= last; from += o.Chunk {
				end := min(last+1, from+o.Chunk)
				if _, err := m.Forward(ctx, []*model.Sequence{seq}, [][]int{ids[from:end]}, false, hook); err != nil {
					return nil, fmt.Errorf("token effect: trace %s: %w", tr.Trace, err)
				}
			}
			return final, nil
		}
		plain, err := run(false)
		if err != nil {
			return nil, 0, err
		}
		steered, err := run(true)
		if err != nil {
			return nil, 0, err
		}
		for _, p := range pos[:keep] {
			la, err := m.LogitLens(plain[p])
			if err != nil {
				return nil, 0, err
			}
			lb, err := m.LogitLens(steered[p])
			if err != nil {
				return nil, 0, err
			}
			a, b := logSoftmax(la), logSoftmax(lb)
			for v := range delta {
				delta[v] += b[v] - a[v]
			}
			count++
		}
	}
	if count == 0 {
		return nil, 0, inputerr.Errorf("token effect: the traces have no steps within the model's context")
	}
	for v := range delta {
		delta[v] /= float64(count)
	}
	return delta, count, nil
}

// logSoftmax returns log softmax(logits) in float64.
func logSoftmax(logits []float32) []float64 {
	mx, lz := logPartition(logits)
	lse := mx + lz
	out := make([]float64, len(logits))
	for i, x := range logits {
		out[i] = float64(x) - lse
	}
	return out
}

// logPartition returns the largest logit mx and lz = log Σ exp(x - mx), so
// that mx + lz is the log of softmax's denominator, in float64.
func logPartition(logits []float32) (mx, lz float64) {
	mx = math.Inf(-1)
	for _, x := range logits {
		mx = math.Max(mx, float64(x))
	}
	var z float64
	for _, x := range logits {
		z += math.Exp(float64(x) - mx)
	}
	return mx, math.Log(z)
}

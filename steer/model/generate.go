package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/rise-interp/rise/internal/inputerr"
)

// GenerateOptions configure Generate.
type GenerateOptions struct {
	MaxTokens   int     // tokens to generate per prompt; default 256
	Temperature float64 // 0 is greedy decoding
	TopP        float64 // nucleus sampling mass; 0 or 1 turns it off
	Seed        uint64  // sequence i samples from its own stream (Seed, i)
	// Hooks, when not nil, makes the hook that sees (and may change) the
	// residual stream after every block while the prompts run: steering.
	Hooks HookFactory
	// NoStop keeps generating past an end-of-sequence token.
	NoStop bool
	// Special lets special tokens written in a prompt (a chat template's)
	// be recognised as such.
	Special bool
	// Progress, when not nil, is told the tokens generated so far and the
	// most there can be.
	Progress func(done, total int)
}

// Generation is one prompt's result.
type Generation struct {
	Prompt       string `json:"prompt"`
	PromptTokens []int  `json:"prompt_tokens"`
	Tokens       []int  `json:"tokens"`
	Text         string `json:"text"`
	Stop         string `json:"stop"` // "eos", "length" or "context"
}

// Generate continues every prompt, decoding the sequences together in one
// batch. An empty prompt starts from BOS alone; other prompts get BOS first
// when the tokenizer has one. Sequence i draws its samples from its own
// stream, so its text does not depend on the other prompts of the batch.
func Generate(ctx context.Context, m *Model, tok Tokenizer, prompts []string, o GenerateOptions) ([]Generation, error) {
	if o.MaxTokens == 0 {
		o.MaxTokens = 256
	}
	if o.MaxTokens < 0 {
		return nil, inputerr.Errorf("generate: max tokens must be positive, found %d", o.MaxTokens)
	}
	if o.Temperature < 0 || math.IsNaN(o.Temperature) || o.TopP < 0 || o.TopP > 1 {
		return nil, inputerr.Errorf("generate: expected temperature ≥ 0 and top-p in [0, 1], found %g and %g", o.Temperature, o.TopP)
	}
	if tok.VocabSize() > m.Vocab {
		return nil, inputerr.Errorf("generate: the tokenizer has %d tokens but the model %s only %d: they do not belong together", tok.VocabSize(), m.Name, m.Vocab)
	}
	n := len(prompts)
	seqs := make([]*Sequence, n)
	first := make([][]int, n)
	out := make([]Generation, n)
	for i, p := range prompts {
		ids := WithBOS(tok, tok.Encode(p, false, o.Special))
		if len(ids) == 0 {
			return nil, inputerr.Errorf("generate: prompt %d is empty and the tokenizer has no BOS token to start from", i)
		}
		if len(ids) >= m.MaxSeq {
			return nil, inputerr.Errorf("generate: prompt %d has %d tokens, the model at most %d", i, len(ids), m.MaxSeq)
		}
		s := m.NewSequence()
		s.PromptLen = len(ids)
		seqs[i], first[i] = s, ids
		out[i] = Generation{Prompt: p, PromptTokens: ids}
	}
	var hook Hook
	if o.Hooks != nil {
		hook = o.Hooks.Hook(tok, m.Dim)
	}
	eos := map[int]bool{}
	if !o.NoStop {
		for _, id := range tok.EOS() {
			eos[id] = true
		}
	}
	rngs := make([]*rand.Rand, n)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(o.Seed, uint64(i)))
	}

	// Prefill every prompt in one pass, then decode the live sequences
	// together, one token each per pass.
	live := make([]int, n)
	for i := range live {
		live[i] = i
	}
	batch := seqs
	toks := first
	done := 0
	for step := 0; len(live) > 0; step++ {
		logits, err := m.Forward(ctx, batch, toks, false, hook)
		if err != nil {
			var nf *NonFiniteError
			if errors.As(err, &nf) {
				nf.Seq, nf.Of = live[nf.Seq], "prompt"
				if ex, ok := o.Hooks.(HookExplainer); ok {
					nf.Cause = ex.Explain(nf.Layer)
				}
				return nil, fmt.Errorf("generate: %w", err)
			}
			return nil, err
		}
		var next []int
		nextToks := [][]int{}
		var nextSeqs []*Sequence
		for j, i := range live {
			row := logits[j*m.Vocab : (j+1)*m.Vocab]
			t := sample(row, o.Temperature, o.TopP, rngs[i])
			g := &out[i]
			g.Tokens = append(g.Tokens, t)
			done++
			switch {
			case eos[t]:
				g.Stop = "eos"
			case len(g.Tokens) >= o.MaxTokens:
				g.Stop = "length"
			case seqs[i].Len()+1 >= m.MaxSeq:
				g.Stop = "context"
			default:
				next = append(next, i)
				nextToks = append(nextToks, []int{t})
				nextSeqs = append(nextSeqs, seqs[i])
			}
		}
		if o.Progress != nil {
			o.Progress(done, n*o.MaxTokens)
		}
		live, batch, toks = next, nextSeqs, nextToks
	}
	for i := range out {
		g := &out[i]
		ids := g.Tokens
		if g.Stop == "eos" {
			ids = ids[:len(ids)-1]
		}
		g.Text = tok.Decode(ids, false)
	}
	return out, nil
}

// WithBOS puts the tokenizer's BOS in front of ids, unless there is none or
// ids already start with it (a chat template that writes it as text).
func WithBOS(tok Tokenizer, ids []int) []int {
	bos := tok.BOS()
	if bos < 0 || len(ids) > 0 && ids[0] == bos {
		return ids
	}
	return append([]int{bos}, ids...)
}

// Argmax returns the index of the largest logit, the lowest on a tie: the
// token greedy decoding picks.
func Argmax(logits []float32) int {
	best := 0
	for i, x := range logits {
		if x > logits[best] {
			best = i
		}
	}
	return best
}

// sample picks the next token: the largest logit (the lowest id on a tie)
// at temperature 0, otherwise a draw from softmax(logits/T), restricted to
// the smallest set of tokens whose probability reaches topP.
func sample(logits []float32, temperature, topP float64, rng *rand.Rand) int {
	if temperature == 0 {
		return Argmax(logits)
	}
	mx := math.Inf(-1)
	for _, x := range logits {
		mx = math.Max(mx, float64(x))
	}
	p := make([]float64, len(logits))
	var sum float64
	for i, x := range logits {
		p[i] = math.Exp((float64(x) - mx) / temperature)
		sum += p[i]
	}
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	if topP > 0 && topP < 1 {
		sort.Slice(idx, func(a, b int) bool {
			if p[idx[a]] != p[idx[b]] {
				return p[idx[a]] > p[idx[b]]
			}
			return idx[a] < idx[b]
		})
		var c float64
		for k, i := range idx {
			c += p[i] / sum
			if c >= topP {
				idx = idx[:k+1]
				break
			}
		}
		sum = 0
		for _, i := range idx {
			sum += p[i]
		}
	}
	u := rng.Float64() * sum
	for _, i := range idx {
		u -= p[i]
		if u < 0 {
			return i
		}
	}
	return idx[len(idx)-1]
}

package web

import (
	"math"
	"net/http"
	"sort"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/steer"
)

// tokenValue is one token of an example and the feature's activation
// there. Step is -1, 0 or 1 for the step before the example, the example
// and the step after; State marks the token whose state is its step's.
type tokenValue struct {
	Text  string  `json:"t"`
	Value float32 `json:"v"`
	Step  int     `json:"step"`
	State bool    `json:"state,omitempty"`
}

// tokenExample is a top step read token by token.
type tokenExample struct {
	Row    int          `json:"row"`
	Trace  string       `json:"trace"`
	Step   int          `json:"step"`
	Tokens []tokenValue `json:"tokens"`
	// StateValue is the activation the token-level run gives at the
	// step's state token; DumpValue is the activation in the dump. They
	// agree when the attached model is the one that made the dump.
	StateValue float32 `json:"state_value"`
	DumpValue  float32 `json:"dump_value"`
}

// nativeFor returns the in-process model when it is attached and its
// residual stream has the SAE's width, else a 409 that says why.
func (s *Server) nativeFor(m *SAE, dIn int) (*steer.Native, error) {
	nat, ok := s.cfg.Backend.(*steer.Native)
	switch {
	case s.cfg.Backend == nil:
		return nil, errorf(http.StatusConflict, "no model attached: the token-level view runs the model (rise serve --model PATH)")
	case !ok:
		return nil, errorf(http.StatusConflict, "the token-level view needs a model in this process (--model), not a remote backend")
	case nat.Model.Dim != dIn:
		return nil, errorf(http.StatusConflict, "SAE %s reads %d values, the attached model's residual stream has %d", m.Name, dIn, nat.Model.Dim)
	case m.Layer.Number >= nat.Model.Layers:
		return nil, errorf(http.StatusConflict, "SAE %s reads layer %d, the attached model has %d blocks", m.Name, m.Layer.Number, nat.Model.Layers)
	}
	return nat, nil
}

// featureTokens answers GET /api/saes/{sae}/features/{id}/tokens?top=N:
// the feature's top steps with the steps around them, token by token, with
// the feature's activation at every token (the attached model runs each
// example's trace; the SAE encodes every token's residual stream).
func (s *Server) featureTokens(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, sa, an, id, err := s.featureOf(r)
	if err != nil {
		return nil, err
	}
	top, err := intParam(r, "top", 10, 20)
	if err != nil {
		return nil, err
	}
	nat, err := s.nativeFor(m, sa.DIn)
	if err != nil {
		return nil, err
	}
	ds := m.Dataset
	layer := m.Layer.Number
	out := []tokenExample{}
	read := map[string]*steer.TokenStates{}
	f := make([]float32, sa.DSae)
	for _, t := range an.stats.Feature(id).Top {
		if len(out) >= top {
			break
		}
		row := int(t.Row)
		if row < 0 || row >= len(ds.Steps) {
			continue
		}
		st := ds.Steps[row]
		tr, ok := ds.Traces[st.Trace]
		if !ok || tr.Response == "" {
			continue
		}
		ts, ok := read[st.Trace] // a trace with several top steps runs once
		if !ok {
			if ts, err = steer.ReadTokens(r.Context(), nat.Model, nat.Tokenizer, tr, layer, steer.CaptureOptions{}); err != nil {
				return nil, err
			}
			read[st.Trace] = ts
		}
		if st.Step >= len(ts.State) {
			continue
		}
		ex := tokenExample{Row: row, Trace: st.Trace, Step: st.Step, Tokens: []tokenValue{}, DumpValue: t.Value}
		for i, step := range ts.Step {
			rel := step - st.Step
			if step < 0 || rel < -contextSteps || rel > contextSteps {
				continue
			}
			sa.Encode(ts.Rows[i*ts.Dim:(i+1)*ts.Dim], f)
			tv := tokenValue{Text: ts.Pieces[i], Value: f[id], Step: rel, State: ts.State[step] == i}
			if rel == 0 && tv.State {
				ex.StateValue = f[id]
			}
			ex.Tokens = append(ex.Tokens, tv)
		}
		out = append(out, ex)
	}
	return map[string]any{"layer": layer, "examples": out}, nil
}

// effectTraces is how many of the dataset's traces the steering effect
// is measured on, and effectTokens how many tokens it lists each way.
const effectTraces, effectTokens = 8, 10

// effectToken is a token whose log-probability the feature moves.
type effectToken struct {
	Token string  `json:"token"`
	ID    int     `json:"id"`
	Delta float64 `json:"delta"`
}

// featureEffect answers GET /api/saes/{sae}/features/{id}/effect: the
// tokens whose log-probability rises and falls most at the step states
// of a fixed set of the dataset's traces when the feature's decoder column
// is added there at the feature's largest activation (steer.TokenEffect).
func (s *Server) featureEffect(_ http.ResponseWriter, r *http.Request) (any, error) {
	m, sa, an, id, err := s.featureOf(r)
	if err != nil {
		return nil, err
	}
	nat, err := s.nativeFor(m, sa.DIn)
	if err != nil {
		return nil, err
	}
	col := sa.WDec[id*sa.DIn : (id+1)*sa.DIn]
	dir, err := vec.Unit(col)
	if err != nil {
		return nil, errorf(http.StatusConflict, "feature %d has a zero decoder column", id)
	}
	var norm float64
	for _, x := range col {
		norm += float64(x) * float64(x)
	}
	maxAct := float64(an.stats.Feature(id).Max)
	strength := maxAct * math.Sqrt(norm)
	if strength <= 0 {
		return nil, errorf(http.StatusConflict, "feature %d never fires in %s: no activation to steer with", id, m.Dataset.Name)
	}
	traces := effectTraceSet(m.Dataset)
	delta, states, err := steer.TokenEffect(r.Context(), nat.Model, nat.Tokenizer, traces, m.Layer.Number, dir, strength, steer.CaptureOptions{})
	if err != nil {
		return nil, err
	}
	n := min(nat.Tokenizer.VocabSize(), len(delta))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	sort.SliceStable(ids, func(a, b int) bool { return delta[ids[a]] > delta[ids[b]] })
	pick := func(order func(int) int) []effectToken {
		out := []effectToken{}
		for i := range min(effectTokens, n) {
			v := ids[order(i)]
			out = append(out, effectToken{Token: nat.Tokenizer.Decode([]int{v}, true), ID: v, Delta: delta[v]})
		}
		return out
	}
	return map[string]any{
		"rising":   pick(func(i int) int { return i }),
		"falling":  pick(func(i int) int { return n - 1 - i }),
		"strength": strength, "states": states, "traces": len(traces), "layer": m.Layer.Number,
	}, nil
}

// effectTraceSet is a fixed set of the dataset's traces, spread over it.
func effectTraceSet(ds *Dataset) []activations.Trace {
	out := []activations.Trace{}
	k := len(ds.traceOrder)
	n := min(effectTraces, k)
	for i := range n {
		if tr, ok := ds.Traces[ds.traceOrder[i*k/n]]; ok && tr.Response != "" {
			out = append(out, tr)
		}
	}
	return out
}

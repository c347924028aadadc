package steer

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/steer/model"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
)

// Confidence vectors (RISE, arXiv 2512.23988, Eq. 7): a score vector S over
// an SAE's decoder columns such that adding S·W_dec to the residual stream
// after block L at the start of a step makes the rest of the model surer of
// the next token, i.e. minimises the mean entropy of
// softmax(f_{L→out}(h + S·W_dec)) over step-boundary states h. The columns
// with the largest scores are "confidence" directions; RISE found that
// injecting them cuts reflection steps.
//
// f_{L→out} is the model above block L at the boundary token, reading the
// keys and values of the tokens before it as they were (they do not depend
// on the change at this token), so the objective is exact for one changed
// position. gorgonia differentiates it: the upper blocks are a graph over a
// batch of boundary states, the earlier tokens' keys and values enter as
// constants, and each state attends to its own prefix through a mask.

// ConfidenceOptions configure LearnConfidence.
type ConfidenceOptions struct {
	Layer     int     // the block whose output gets the vector
	Iters     int     // Adam steps; default 1000 (RISE)
	Batch     int     // boundary states per step; default 32
	LR        float64 // Adam learning rate; default 0.01 (RISE), cosine decay to 0
	MaxStates int     // boundary states collected from the traces; default 512
	Seed      uint64
	// Progress, when not nil, is told each step's number and the batch's
	// mean entropy.
	Progress func(step, steps int, entropy float64)
}

// ColumnScore is a decoder column and its learned score.
type ColumnScore struct {
	ID    int     `json:"id"`
	Score float64 `json:"score"`
}

// ConfidenceResult is what LearnConfidence found.
type ConfidenceResult struct {
	Layer  int           `json:"layer"`
	Scores []float32     `json:"-"`
	Top    []ColumnScore `json:"top_columns"` // largest scores first
	// Vector is S·W_dec at unit length, and Norm its length before.
	Vector []float32 `json:"vector"`
	Norm   float64   `json:"norm"`
	// Curve is the batch entropy every few steps.
	Curve  []float64 `json:"entropy_curve"`
	States int       `json:"states"`
}

// boundaryState is a step-boundary state with the keys and values of the
// tokens before it in every block above the layer.
type boundaryState struct {
	h    []float32   // residual after the layer
	pos  int         // position of the boundary token
	k, v [][]float32 // per upper block, [pos, kvDim]
}

// collectStates runs traces and keeps up to max step-boundary states.
func collectStates(ctx context.Context, m *model.Model, tok model.Tokenizer, traces []activations.Trace, layer, max int, seed uint64) ([]boundaryState, error) {
	var out []boundaryState
	kvd := m.KVDim()
	err := CaptureRecords(ctx, m, tok, traces, CaptureOptions{Layers: []int{layer}}, func(rec TraceRecord) error {
		for i, st := range rec.Steps {
			p := st.TokenEnd - 1
			bs := boundaryState{h: append([]float32(nil), rec.Rows[0][i*m.Dim:(i+1)*m.Dim]...), pos: p}
			for l := layer + 1; l < m.Layers; l++ {
				k, v := rec.seq.KV(l)
				bs.k = append(bs.k, append([]float32(nil), k[:p*kvd]...))
				bs.v = append(bs.v, append([]float32(nil), v[:p*kvd]...))
			}
			out = append(out, bs)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, inputerr.Errorf("confidence: the traces hold no step boundaries")
	}
	rand.New(rand.NewPCG(seed, 0xc0f1)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

// confGraph is the differentiable upper model over a batch of states.
type confGraph struct {
	g        *G.ExprGraph
	vm       G.VM
	s        *G.Node // scores, the parameter
	h, mask  *G.Node
	cq, sq   *G.Node
	ck, sk   *G.Node
	kpre     []*G.Node // per upper block and kv head, [Np, hd]
	vpre     []*G.Node
	entropy  *G.Node
	grad     *G.Node
	bound    map[*G.Node]*tensor.Dense
	B, Np, P int
}

func (cg *confGraph) data(n *G.Node) []float32 { return cg.bound[n].Data().([]float32) }

// buildConfGraph builds the graph for batches of B states with prefixes of
// at most P tokens.
func buildConfGraph(m *model.Model, s *sae.SAE, layer, B, P int) (cg *confGraph, err error) {
	defer func() {
		if r := recover(); r != nil {
			cg, err = nil, fmt.Errorf("confidence: building the graph: %v", r)
		}
	}()
	c := m.Config
	D, hd, qd, kvd, H := c.Dim, c.HeadDim, c.QDim(), c.KVDim(), c.Heads
	group := c.Heads / c.KVHeads
	Np := B * P
	g := G.NewGraph()
	cg = &confGraph{g: g, bound: map[*G.Node]*tensor.Dense{}, B: B, Np: Np, P: P}
	must := func(n *G.Node, err error) *G.Node { return G.Must(n, err) }
	// softmaxRows is exp(x) / Σ_row exp(x); masked entries are −1e9 and
	// vanish.
	softmaxRows := func(x *G.Node) *G.Node {
		e := must(G.Exp(x))
		return must(G.BroadcastHadamardDiv(e, must(G.Sum(e, 1)), nil, []byte{1}))
	}
	input := func(name string, data []float32, shape ...int) *G.Node {
		var n *G.Node
		if len(shape) == 1 {
			n = G.NewVector(g, G.Float32, G.WithShape(shape...), G.WithName(name))
		} else {
			n = G.NewMatrix(g, G.Float32, G.WithShape(shape...), G.WithName(name))
		}
		size := 1
		for _, d := range shape {
			size *= d
		}
		if data == nil {
			data = make([]float32, size)
		}
		t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
		if err := G.Let(n, t); err != nil {
			panic(err)
		}
		cg.bound[n] = t
		return n
	}
	transposed := func(w model.Matrix, rows, cols int) []float32 { // [rows, cols] -> [cols, rows], widened to float32
		out := make([]float32, rows*cols)
		row := make([]float32, cols)
		for i := range rows {
			w.RowTo(row, i)
			for j, v := range row {
				out[j*rows+i] = v
			}
		}
		return out
	}
	mul := func(a, b *G.Node) *G.Node { return must(G.Mul(a, b)) }
	add := func(a, b *G.Node) *G.Node { return must(G.Add(a, b)) }
	had := func(a, b *G.Node) *G.Node { return must(G.HadamardProd(a, b)) }
	addRow := func(a, v *G.Node) *G.Node { return must(G.BroadcastAdd(a, v, nil, []byte{0})) }
	mulRow := func(a, v *G.Node) *G.Node { return must(G.BroadcastHadamardProd(a, v, nil, []byte{0})) }
	mulCol := func(a, v *G.Node) *G.Node { return must(G.BroadcastHadamardProd(a, v, nil, []byte{1})) }
	eps := G.NewScalar(g, G.Float32, G.WithName("eps"), G.WithValue(float32(c.NormEps)))
	norm := func(x *G.Node, w []float32, name string) *G.Node {
		ms := must(G.Mean(must(G.Square(x)), 1))
		// 1/sqrt written as Inverse(Sqrt(·)): gorgonia 0.9's InverseSqrt
		// has a wrong derivative.
		inv := must(G.Inverse(must(G.Sqrt(must(G.Add(ms, eps))))))
		return mulRow(mulCol(x, inv), input(name, append([]float32(nil), w...), D))
	}
	// rot is the linear part of RoPE: rope(x) = x ⊙ cos + (x·rot) ⊙ sin.
	rot := func(n int, name string) *G.Node {
		p := make([]float32, n*n)
		half := hd / 2
		for h0 := 0; h0 < n; h0 += hd {
			for i := range half {
				if c.RopeInterleaved {
					a, b := h0+2*i, h0+2*i+1
					p[b*n+a] = -1 // out[a] = -x[b]
					p[a*n+b] = 1  // out[b] = x[a]
				} else {
					a, b := h0+i, h0+i+half
					p[b*n+a] = -1
					p[a*n+b] = 1
				}
			}
		}
		return input(name, p, n, n)
	}
	cg.s = input("S", nil, s.DSae)
	wdec := input("W_dec", append([]float32(nil), s.WDec...), s.DSae, D)
	cg.h = input("h", nil, B, D)
	cg.mask = input("mask", nil, B, Np+B)
	cg.cq, cg.sq = input("cos_q", nil, B, qd), input("sin_q", nil, B, qd)
	cg.ck, cg.sk = input("cos_k", nil, B, kvd), input("sin_k", nil, B, kvd)
	rq, rk := rot(qd, "rot_q"), rot(kvd, "rot_k")
	scale := G.NewScalar(g, G.Float32, G.WithName("scale"), G.WithValue(float32(1/math.Sqrt(float64(hd)))))

	x := addRow(cg.h, mul(cg.s, wdec))
	for l := layer + 1; l < c.Layers; l++ {
		b := &m.Blocks[l]
		xn := norm(x, b.AttnNorm, fmt.Sprint("attn_norm", l))
		q := mul(xn, input(fmt.Sprint("wq", l), transposed(b.WQ, qd, D), D, qd))
		k := mul(xn, input(fmt.Sprint("wk", l), transposed(b.WK, kvd, D), D, kvd))
		v := mul(xn, input(fmt.Sprint("wv", l), transposed(b.WV, kvd, D), D, kvd))
		if c.QKVBias {
			q = addRow(q, input(fmt.Sprint("bq", l), append([]float32(nil), b.BQ...), qd))
			k = addRow(k, input(fmt.Sprint("bk", l), append([]float32(nil), b.BK...), kvd))
			v = addRow(v, input(fmt.Sprint("bv", l), append([]float32(nil), b.BV...), kvd))
		}
		q = add(had(q, cg.cq), had(mul(q, rq), cg.sq))
		k = add(had(k, cg.ck), had(mul(k, rk), cg.sk))
		var kp, vp []*G.Node
		for kh := range c.KVHeads {
			kp = append(kp, input(fmt.Sprint("kpre", l, "_", kh), nil, Np, hd))
			vp = append(vp, input(fmt.Sprint("vpre", l, "_", kh), nil, Np, hd))
		}
		cg.kpre = append(cg.kpre, kp...)
		cg.vpre = append(cg.vpre, vp...)
		var heads []*G.Node
		for h := range H {
			kh := h / group
			qh := must(G.Slice(q, nil, G.S(h*hd, (h+1)*hd)))
			kself := must(G.Slice(k, nil, G.S(kh*hd, (kh+1)*hd)))
			vself := must(G.Slice(v, nil, G.S(kh*hd, (kh+1)*hd)))
			kfull := must(G.Concat(0, kp[kh], kself))
			vfull := must(G.Concat(0, vp[kh], vself))
			scores := add(mul(mul(qh, must(G.Transpose(kfull))), scale), cg.mask)
			heads = append(heads, mul(softmaxRows(scores), vfull))
		}
		att := must(G.Concat(1, heads...))
		x = add(x, mul(att, input(fmt.Sprint("wo", l), transposed(b.WO, D, qd), qd, D)))
		xn = norm(x, b.MLPNorm, fmt.Sprint("mlp_norm", l))
		gt := mul(xn, input(fmt.Sprint("wgate", l), transposed(b.WGate, c.Hidden, D), D, c.Hidden))
		up := mul(xn, input(fmt.Sprint("wup", l), transposed(b.WUp, c.Hidden, D), D, c.Hidden))
		act := had(had(gt, must(G.Sigmoid(gt))), up)
		x = add(x, mul(act, input(fmt.Sprint("wdown", l), transposed(b.WDown, D, c.Hidden), c.Hidden, D)))
	}
	xn := norm(x, m.Norm, "final_norm")
	logits := mul(xn, input("w_out", transposed(m.Out, c.Vocab, D), D, c.Vocab))
	// log softmax written out of ops whose derivatives TestConfidenceGraph
	// checks against finite differences; the logits of the models this
	// runs on are small enough for exp without the max subtracted.
	lse := must(G.Log(must(G.Sum(must(G.Exp(logits)), 1))))
	logp := must(G.BroadcastSub(logits, lse, nil, []byte{1}))
	p := must(G.Exp(logp))
	// Mean entropy over the batch: −(1/B) Σ p log p.
	cg.entropy = must(G.Neg(must(G.Mean(must(G.Sum(had(p, logp), 1))))))
	grads, err := G.Grad(cg.entropy, cg.s)
	if err != nil {
		return nil, fmt.Errorf("confidence: differentiating the entropy: %w", err)
	}
	cg.grad = grads[0]
	cg.vm = G.NewTapeMachine(g, G.TraceExec(), G.WithWatchlist(cg.entropy, cg.grad))
	return cg, nil
}

// bind copies a batch of states into the graph's inputs.
func (cg *confGraph) bind(m *model.Model, batch []boundaryState) {
	c := m.Config
	D, hd, qd, kvd := c.Dim, c.HeadDim, c.QDim(), c.KVDim()
	half := hd / 2
	B, P, Np := cg.B, cg.P, cg.Np
	h, mask := cg.data(cg.h), cg.data(cg.mask)
	cq, sq, ck, sk := cg.data(cg.cq), cg.data(cg.sq), cg.data(cg.ck), cg.data(cg.sk)
	for i := range mask {
		mask[i] = -1e9
	}
	upper := len(cg.kpre) / c.KVHeads
	for bi := range B {
		st := batch[bi%len(batch)]
		copy(h[bi*D:(bi+1)*D], st.h)
		row := mask[bi*(Np+B) : (bi+1)*(Np+B)]
		for t := range st.pos {
			row[bi*P+t] = 0
		}
		row[Np+bi] = 0
		cs, sn := m.Rope(st.pos)
		fill := func(cc, ss []float32, n int) {
			for j := range n {
				i := j % hd
				if c.RopeInterleaved {
					i /= 2
				} else if i >= half {
					i -= half
				}
				cc[bi*n+j], ss[bi*n+j] = cs[i], sn[i]
			}
		}
		fill(cq, sq, qd)
		fill(ck, sk, kvd)
		for u := range upper {
			for kh := range c.KVHeads {
				kd, vd := cg.data(cg.kpre[u*c.KVHeads+kh]), cg.data(cg.vpre[u*c.KVHeads+kh])
				for t := range P {
					dk, dv := kd[(bi*P+t)*hd:(bi*P+t+1)*hd], vd[(bi*P+t)*hd:(bi*P+t+1)*hd]
					if t < st.pos {
						copy(dk, st.k[u][t*kvd+kh*hd:t*kvd+(kh+1)*hd])
						copy(dv, st.v[u][t*kvd+kh*hd:t*kvd+(kh+1)*hd])
					} else {
						clear(dk)
						clear(dv)
					}
				}
			}
		}
	}
}

// step evaluates the entropy and its gradient for the bound batch.
func (cg *confGraph) step() (float64, []float32, error) {
	if err := cg.vm.RunAll(); err != nil {
		return 0, nil, err
	}
	defer cg.vm.Reset()
	e := float64(cg.entropy.Value().Data().(float32))
	gv := cg.grad.Value().Data().([]float32)
	return e, append([]float32(nil), gv...), nil
}

// LearnConfidence learns RISE's confidence scores over the decoder columns
// of s, on step-boundary states of traces run through m.
func LearnConfidence(ctx context.Context, m *model.Model, tok model.Tokenizer, s *sae.SAE, traces []activations.Trace, o ConfidenceOptions) (*ConfidenceResult, error) {
	if s.DIn != m.Dim {
		return nil, inputerr.Errorf("confidence: the SAE takes %d values, the model's residual stream has %d", s.DIn, m.Dim)
	}
	if m.QKNorm {
		// The differentiable upper model below has no per-head q/k norm.
		return nil, inputerr.Errorf("confidence: %s normalises queries and keys per head (Qwen3), which confidence learning does not model yet: expected a Llama or Qwen2 model", m.Name)
	}
	if o.Layer < 0 || o.Layer >= m.Layers-1 {
		return nil, inputerr.Errorf("confidence: layer %d: expected a block from 0 to %d (there must be a block above it)", o.Layer, m.Layers-2)
	}
	o.Iters = cmp.Or(o.Iters, 1000)
	o.Batch = cmp.Or(o.Batch, 32)
	o.LR = cmp.Or(o.LR, 0.01)
	o.MaxStates = cmp.Or(o.MaxStates, 512)
	if o.Iters < 1 || o.Batch < 1 || !(o.LR > 0) || o.MaxStates < 1 {
		return nil, inputerr.Errorf("confidence: expected positive iterations, batch, learning rate and states, found %d, %d, %g, %d", o.Iters, o.Batch, o.LR, o.MaxStates)
	}
	states, err := collectStates(ctx, m, tok, traces, o.Layer, o.MaxStates, o.Seed)
	if err != nil {
		return nil, err
	}
	P := 1
	for _, st := range states {
		P = max(P, st.pos)
	}
	B := min(o.Batch, len(states))
	cg, err := buildConfGraph(m, s, o.Layer, B, P)
	if err != nil {
		return nil, err
	}
	// Adam (β 0.9, 0.999) with a cosine decay of the learning rate.
	S := cg.data(cg.s)
	m1 := make([]float64, len(S))
	m2 := make([]float64, len(S))
	res := &ConfidenceResult{Layer: o.Layer, States: len(states)}
	rng := rand.New(rand.NewPCG(o.Seed, 0xada))
	order := rng.Perm(len(states))
	at := 0
	batch := make([]boundaryState, B)
	for it := range o.Iters {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for i := range batch {
			if at == len(order) {
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				at = 0
			}
			batch[i] = states[order[at]]
			at++
		}
		cg.bind(m, batch)
		e, grad, err := cg.step()
		if err != nil {
			return nil, fmt.Errorf("confidence: step %d: %w", it, err)
		}
		lr := o.LR * 0.5 * (1 + math.Cos(math.Pi*float64(it)/float64(o.Iters)))
		t := float64(it + 1)
		for j, gj := range grad {
			g := float64(gj)
			m1[j] = 0.9*m1[j] + 0.1*g
			m2[j] = 0.999*m2[j] + 0.001*g*g
			mh, vh := m1[j]/(1-math.Pow(0.9, t)), m2[j]/(1-math.Pow(0.999, t))
			S[j] -= float32(lr * mh / (math.Sqrt(vh) + 1e-8))
		}
		if it%max(1, o.Iters/50) == 0 || it == o.Iters-1 {
			res.Curve = append(res.Curve, e)
		}
		if o.Progress != nil {
			o.Progress(it+1, o.Iters, e)
		}
	}
	res.Scores = append([]float32(nil), S...)
	ids := make([]int, len(S))
	for i := range ids {
		ids[i] = i
	}
	sort.Slice(ids, func(a, b int) bool { return S[ids[a]] > S[ids[b]] })
	for _, id := range ids[:min(20, len(ids))] {
		res.Top = append(res.Top, ColumnScore{ID: id, Score: float64(S[id])})
	}
	v := make([]float64, s.DIn)
	for j, sc := range S {
		if sc == 0 {
			continue
		}
		row := s.WDec[j*s.DIn : (j+1)*s.DIn]
		for i, w := range row {
			v[i] += float64(sc) * float64(w)
		}
	}
	var sq float64
	for _, x := range v {
		sq += x * x
	}
	res.Norm = math.Sqrt(sq)
	res.Vector = make([]float32, len(v))
	if res.Norm > 0 {
		for i, x := range v {
			res.Vector[i] = float32(x / res.Norm)
		}
	}
	return res, nil
}

// BoundaryEntropy runs traces through m with the vectors applied and
// returns the mean entropy of the next-token distribution at the step
// boundaries (the tokens that complete each step's delimiter).
func BoundaryEntropy(ctx context.Context, m *model.Model, tok model.Tokenizer, traces []activations.Trace, vs []Vector) (float64, int, error) {
	var sum float64
	var n int
	bd := newBoundaries(tok)
	hook := Vectors(vs).hook(bd, m.Dim)
	for _, tr := range traces {
		ids := model.WithBOS(tok, tok.Encode(tr.Prompt+tr.Response, false, false))
		if len(ids) > m.MaxSeq {
			ids = ids[:m.MaxSeq]
		}
		s := m.NewSequence()
		s.PromptLen = len(model.WithBOS(tok, tok.Encode(tr.Prompt, false, false)))
		logits, err := m.Forward(ctx, []*model.Sequence{s}, [][]int{ids}, true, hook)
		if err != nil {
			return 0, 0, err
		}
		for p := s.PromptLen; p < len(ids); p++ {
			prev := -1
			if p > 0 {
				prev = ids[p-1]
			}
			if !bd.at(model.Row{Pos: p, Token: ids[p], Prev: prev}) {
				continue
			}
			sum += entropy(logits[p*m.Vocab : (p+1)*m.Vocab])
			n++
		}
	}
	if n == 0 {
		return 0, 0, inputerr.Errorf("entropy: the traces hold no step boundaries")
	}
	return sum / float64(n), n, nil
}

// entropy of softmax(logits), in nats.
func entropy(logits []float32) float64 {
	mx, lz := logPartition(logits)
	var h float64
	for _, x := range logits {
		lp := float64(x) - mx - lz
		h -= math.Exp(lp) * lp
	}
	return h
}

// upperEntropy runs the blocks above layer on one boundary state with v
// added, reading the cached keys and values of the tokens before it, and
// returns the entropy of the next-token distribution: the objective of
// LearnConfidence for one state, computed by the runtime's own forward pass.
func upperEntropy(m *model.Model, st boundaryState, layer int, v []float32) (float64, error) {
	h := make([]float32, m.Dim)
	for i := range h {
		h[i] = st.h[i] + v[i]
	}
	logits, err := m.ForwardFrom(context.Background(), m.Resume(layer, st.pos, st.k, st.v), layer, h)
	if err != nil {
		return 0, err
	}
	return entropy(logits), nil
}

package model

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"

	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/parallel"
)

// Sequence is one sequence being run: its tokens and its key/value cache.
type Sequence struct {
	Tokens    []int // every token so far, prompt then generated
	PromptLen int   // how many of Tokens are the prompt
	k, v      [][]float32
	pos       int // tokens already in the cache
}

// NewSequence returns an empty sequence for m.
func (m *Model) NewSequence() *Sequence {
	return &Sequence{k: make([][]float32, m.Layers), v: make([][]float32, m.Layers)}
}

// Len is the number of tokens in the cache.
func (s *Sequence) Len() int { return s.pos }

// Row describes one row of a forward pass for hooks: which sequence, which
// position, and the token there.
type Row struct {
	Seq   int // index into the batch
	Pos   int // position in its sequence
	Token int
	Prev  int // the token before, -1 at position 0
	// InPrompt is true for the rows of its sequence's prompt (positions
	// below PromptLen, the sequence's prompt length).
	InPrompt  bool
	PromptLen int
}

// Hook sees, and may change, the residual stream after block layer: h
// holds one row of Dim values per entry of rows. Hooks run on the caller's
// goroutine.
type Hook func(layer int, h []float32, rows []Row)

// A HookFactory makes the hook of one generation, for the tokenizer its
// prompts are read with and a residual stream of dim values (steering
// vectors that act at step delimiters need to know the tokens).
type HookFactory interface {
	Hook(tok Tokenizer, dim int) Hook
}

// scratch holds a forward pass's buffers.
type scratch struct {
	x, xb, q, k, v, att, g, u []float32
}

// grow returns b with length n, reusing its memory when it can.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// Forward runs new tokens through the model: toks[i] are appended to
// seqs[i] (prefill or one decoding step, for any mix of sequences). It
// returns logits [rows, Vocab] for the last new token of each sequence, or,
// with all set, for every new token in order. hook, when not nil, is called
// after every block.
func (m *Model) Forward(ctx context.Context, seqs []*Sequence, toks [][]int, all bool, hook Hook) ([]float32, error) {
	if len(seqs) != len(toks) {
		return nil, fmt.Errorf("forward: %d sequences and %d token lists", len(seqs), len(toks))
	}
	c := m.Config
	D := c.Dim
	var rows []Row
	for i, s := range seqs {
		if s.pos+len(toks[i]) > c.MaxSeq {
			return nil, inputerr.Errorf("forward: sequence %d would hold %d tokens, more than the model's %d", i, s.pos+len(toks[i]), c.MaxSeq)
		}
		for j, t := range toks[i] {
			if t < 0 || t >= c.Vocab {
				return nil, inputerr.Errorf("forward: token %d of sequence %d is %d, outside the vocabulary of %d", j, i, t, c.Vocab)
			}
			prev := -1
			if n := len(s.Tokens); j > 0 {
				prev = toks[i][j-1]
			} else if n > 0 {
				prev = s.Tokens[n-1]
			}
			rows = append(rows, Row{Seq: i, Pos: s.pos + j, Token: t, Prev: prev, InPrompt: s.pos+j < s.PromptLen, PromptLen: s.PromptLen})
		}
	}
	N := len(rows)
	if N == 0 {
		return nil, nil
	}
	var sc scratch
	sc.x = grow(sc.x, N*D)
	for r, row := range rows {
		m.Embed.RowTo(sc.x[r*D:(r+1)*D], row.Token)
	}
	if err := m.blocks(ctx, &sc, seqs, rows, 0, hook); err != nil {
		return nil, err
	}
	for i, s := range seqs {
		s.pos += len(toks[i])
		s.Tokens = append(s.Tokens, toks[i]...)
	}

	// Logits for the rows asked for.
	var pick []int
	if all {
		for r := range rows {
			pick = append(pick, r)
		}
	} else {
		last := map[int]int{}
		for r, row := range rows {
			last[row.Seq] = r
		}
		for i := range seqs {
			if r, ok := last[i]; ok {
				pick = append(pick, r)
			}
		}
	}
	xn := make([]float32, len(pick)*D)
	for i, r := range pick {
		copy(xn[i*D:(i+1)*D], sc.x[r*D:(r+1)*D])
	}
	return m.logits(xn, len(pick)), nil
}

// logits applies the final norm and the output projection to n rows of
// residual stream, returning [n, Vocab].
func (m *Model) logits(x []float32, n int) []float32 {
	c := m.Config
	xn := make([]float32, n*c.Dim)
	for i := range n {
		rmsNorm(xn[i*c.Dim:(i+1)*c.Dim], x[i*c.Dim:(i+1)*c.Dim], m.Norm, 1, c.Dim, float32(c.NormEps))
	}
	out := make([]float32, n*c.Vocab)
	linear(out, xn, n, c.Dim, &m.Out, c.Vocab, nil)
	return out
}

// blocks runs the residual stream sc.x of rows through blocks from, from+1,
// ..., appending each block's keys and values to the rows' sequences and
// calling hook after each block.
func (m *Model) blocks(ctx context.Context, sc *scratch, seqs []*Sequence, rows []Row, from int, hook Hook) error {
	c := m.Config
	D, q, kv := c.Dim, c.QDim(), c.KVDim()
	N := len(rows)
	sc.xb = grow(sc.xb, N*D)
	sc.q = grow(sc.q, N*q)
	sc.k = grow(sc.k, N*kv)
	sc.v = grow(sc.v, N*kv)
	sc.att = grow(sc.att, N*q)
	sc.g = grow(sc.g, N*c.Hidden)
	sc.u = grow(sc.u, N*c.Hidden)
	for l := from; l < len(m.Blocks); l++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := &m.Blocks[l]
		rmsNorm(sc.xb, sc.x, b.AttnNorm, N, D, float32(c.NormEps))
		linear(sc.q, sc.xb, N, D, &b.WQ, q, b.BQ)
		linear(sc.k, sc.xb, N, D, &b.WK, kv, b.BK)
		linear(sc.v, sc.xb, N, D, &b.WV, kv, b.BV)
		if c.QKNorm {
			// Qwen3: every query and key head is RMS-normalised on its
			// own, before RoPE.
			rmsNorm(sc.q, sc.q, b.QNorm, N*c.Heads, c.HeadDim, float32(c.NormEps))
			rmsNorm(sc.k, sc.k, b.KNorm, N*c.KVHeads, c.HeadDim, float32(c.NormEps))
		}
		for r, row := range rows {
			m.rope(sc.q[r*q:(r+1)*q], row.Pos)
			m.rope(sc.k[r*kv:(r+1)*kv], row.Pos)
		}
		// Append this block's keys and values to each sequence's cache.
		for r, row := range rows {
			s := seqs[row.Seq]
			s.k[l] = append(s.k[l], sc.k[r*kv:(r+1)*kv]...)
			s.v[l] = append(s.v[l], sc.v[r*kv:(r+1)*kv]...)
		}
		m.attention(sc.att, sc.q, seqs, rows, l)
		linearAdd(sc.x, sc.att, N, q, &b.WO, D)
		rmsNorm(sc.xb, sc.x, b.MLPNorm, N, D, float32(c.NormEps))
		linear(sc.g, sc.xb, N, D, &b.WGate, c.Hidden, nil)
		linear(sc.u, sc.xb, N, D, &b.WUp, c.Hidden, nil)
		for i, g := range sc.g {
			sc.g[i] = g / (1 + float32(math.Exp(float64(-g)))) * sc.u[i]
		}
		linearAdd(sc.x, sc.g, N, c.Hidden, &b.WDown, D)
		if hook != nil {
			hook(l, sc.x, rows)
		}
		if r := nonFinite(sc.x, D); r >= 0 {
			return &NonFiniteError{Layer: l, Seq: rows[r].Seq, Of: "sequence", Pos: rows[r].Pos, Hooked: hook != nil}
		}
	}
	return nil
}

// nonFinite returns the first row of x (rows of d values) that holds a NaN
// or ±Inf or whose sum of squares overflows float32, or -1. The sum is the
// one the next RMSNorm computes (in float32, as transformers does): past
// that, the norm divides by infinity and every later value is garbage.
func nonFinite(x []float32, d int) int {
	for r := 0; r < len(x); r += d {
		var ss float32
		for _, v := range x[r : r+d] {
			ss += v * v
		}
		if !(ss <= math.MaxFloat32) {
			return r / d
		}
	}
	return -1
}

// NonFiniteError reports a residual stream that left float32's range
// after a block (NaN, ±Inf, or values whose squares overflow, so that the
// next RMSNorm cannot be computed): a hook pushed it there, or the weights
// make it overflow. Forward stops with it rather than decode garbage.
type NonFiniteError struct {
	Layer  int    // the block after which it was found
	Seq    int    // the sequence: its index in the batch, or the prompt's in Generate
	Of     string // what Seq counts: "sequence" (Forward) or "prompt" (Generate)
	Pos    int    // the position in that sequence
	Hooked bool   // a hook ran after the block
	// Cause says what the hooks did after Layer, when the HookFactory of
	// a generation can tell (a HookExplainer); empty otherwise.
	Cause string
}

func (e *NonFiniteError) Error() string {
	s := fmt.Sprintf("the residual stream after block %d left float32's range (NaN, ±Inf or too large for its RMS norm) at position %d of %s %d", e.Layer, e.Pos, e.Of, e.Seq)
	switch {
	case e.Cause != "":
		return s + ", after " + e.Cause
	case e.Hooked:
		return s + ", after the hook changed it"
	}
	return s + " with no hook: the weights overflow float32"
}

// A HookExplainer is a HookFactory that can say what its hooks do after a
// block (which steering vectors, how strong), for the errors of a
// generation whose residual stream stops being finite.
type HookExplainer interface {
	HookFactory
	Explain(layer int) string
}

// ForwardFrom continues a sequence by one row whose residual stream after
// block layer is h, instead of a token's embedding: it runs the blocks
// above layer at position s.Len(), attending to the keys and values the
// sequence holds for them, appends the row's own, and returns the logits
// of the next token [Vocab]. Confidence learning uses it to evaluate the
// upper model on a changed step-boundary state (Resume makes its sequence).
func (m *Model) ForwardFrom(ctx context.Context, s *Sequence, layer int, h []float32) ([]float32, error) {
	c := m.Config
	if layer < 0 || layer >= c.Layers {
		return nil, fmt.Errorf("forward: layer %d: expected a block from 0 to %d", layer, c.Layers-1)
	}
	if len(h) != c.Dim {
		return nil, fmt.Errorf("forward: expected a state of %d values, found %d", c.Dim, len(h))
	}
	if s.pos+1 > c.MaxSeq {
		return nil, fmt.Errorf("forward: the sequence would hold %d tokens, more than the model's %d", s.pos+1, c.MaxSeq)
	}
	for l := layer + 1; l < c.Layers; l++ {
		if len(s.k[l]) != s.pos*c.KVDim() || len(s.v[l]) != s.pos*c.KVDim() {
			return nil, fmt.Errorf("forward: block %d caches %d keys for a sequence at position %d", l, len(s.k[l])/c.KVDim(), s.pos)
		}
	}
	sc := scratch{x: append([]float32(nil), h...)}
	rows := []Row{{Pos: s.pos, Token: -1, Prev: -1, InPrompt: s.pos < s.PromptLen, PromptLen: s.PromptLen}}
	if err := m.blocks(ctx, &sc, []*Sequence{s}, rows, layer+1, nil); err != nil {
		return nil, err
	}
	s.pos++
	return m.logits(sc.x, 1), nil
}

// Resume returns a sequence at position pos whose cache holds, for block
// layer+1+i, the keys k[i] and values v[i] ([pos, KVDim] each) of the
// tokens before it, as Sequence.KV gives them; the blocks up to layer hold
// nothing. ForwardFrom continues it.
func (m *Model) Resume(layer, pos int, k, v [][]float32) *Sequence {
	s := m.NewSequence()
	for i := range k {
		s.k[layer+1+i] = append([]float32(nil), k[i]...)
		s.v[layer+1+i] = append([]float32(nil), v[i]...)
	}
	s.pos = pos
	return s
}

// KV returns the keys and values block layer holds for the sequence's
// tokens, [Len, KVDim] each. They are the sequence's own: copy them to
// keep them past the sequence's next forward pass.
func (s *Sequence) KV(layer int) (k, v []float32) { return s.k[layer], s.v[layer] }

// rmsNorm writes x / sqrt(mean(x²) + eps) * w for each of n rows of d.
func rmsNorm(out, x, w []float32, n, d int, eps float32) {
	for r := range n {
		row := x[r*d : (r+1)*d]
		var ss float32
		for _, v := range row {
			ss += v * v
		}
		inv := float32(1 / math.Sqrt(float64(ss/float32(d)+eps)))
		o := out[r*d : (r+1)*d]
		for i, v := range row {
			o[i] = w[i] * (v * inv)
		}
	}
}

// Rope returns the RoPE tables at position pos ≥ 0: cos and sin of each of
// the HeadDim/2 frequencies (with the config's rope scaling, and times
// YaRN's attention factor where it has one), as the forward pass rotates
// queries and keys. The slices are shared: do not change them.
func (m *Model) Rope(pos int) (cos, sin []float32) { return m.ropeTab.at(pos) }

// rope rotates the heads of one row of queries or keys at position pos.
func (m *Model) rope(v []float32, pos int) {
	hd := m.HeadDim
	half := hd / 2
	cs, sn := m.Rope(pos)
	for h := 0; h < len(v); h += hd {
		x := v[h : h+hd]
		if m.RopeInterleaved {
			for i := range half {
				a, b := x[2*i], x[2*i+1]
				x[2*i] = a*cs[i] - b*sn[i]
				x[2*i+1] = a*sn[i] + b*cs[i]
			}
			continue
		}
		for i := range half {
			a, b := x[i], x[i+half]
			x[i] = a*cs[i] - b*sn[i]
			x[i+half] = b*cs[i] + a*sn[i]
		}
	}
}

// attention computes, for every row and head, softmax(q·K/√d)·V over the
// row's sequence up to and including its position. Rows come in runs of
// consecutive positions of one sequence (a prompt being read); each run and
// head is two matrix products with a causal softmax between them, and the
// runs and heads are spread over the cores.
func (m *Model) attention(out, q []float32, seqs []*Sequence, rows []Row, l int) {
	c := m.Config
	hd, qd, kvd := c.HeadDim, c.QDim(), c.KVDim()
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	type run struct{ r0, r1 int }
	var runs []run
	for r := 0; r < len(rows); {
		e := r + 1
		for e < len(rows) && rows[e].Seq == rows[r].Seq && rows[e].Pos == rows[e-1].Pos+1 {
			e++
		}
		runs = append(runs, run{r, e})
		r = e
	}
	impl := matmul.Impl()
	jobs := len(runs) * c.Heads
	parallel.For(jobs, 1, func(_, lo, hi int) {
		var scores []float32
		for j := lo; j < hi; j++ {
			rn, h := runs[j/c.Heads], j%c.Heads
			first := rows[rn.r0]
			s := seqs[first.Seq]
			K, V := s.k[l], s.v[l]
			kh := h / group
			nb := rn.r1 - rn.r0
			T := rows[rn.r1-1].Pos + 1 // keys the last row of the run sees
			scores = grow(scores, nb*T)
			if nb == 1 {
				// A decoding step: one query, plain loops beat a BLAS call.
				attendOne(out[rn.r0*qd+h*hd:rn.r0*qd+(h+1)*hd], q[rn.r0*qd+h*hd:rn.r0*qd+(h+1)*hd], K, V, kh*hd, kvd, T, scale, scores)
				continue
			}
			// scores = Q_run · K[:T]ᵀ, one row per query.
			impl.Sgemm(blas.NoTrans, blas.Trans, nb, T, hd, scale, q[rn.r0*qd+h*hd:], qd, K[kh*hd:], kvd, 0, scores, T)
			for i := range nb {
				row := scores[i*T : (i+1)*T]
				n := first.Pos + i + 1 // causal: keys up to the row's own position
				inv := 1 / softmaxNumerators(row[:n])
				for t := range n {
					row[t] *= inv
				}
				clear(row[n:])
			}
			// out_run = scores · V[:T].
			impl.Sgemm(blas.NoTrans, blas.NoTrans, nb, hd, T, 1, scores, T, V[kh*hd:], kvd, 0, out[rn.r0*qd+h*hd:], qd)
		}
	})
}

// attendOne computes one query's attention over T keys and values, whose
// head starts at column off of rows of stride kvd.
func attendOne(o, qv, K, V []float32, off, kvd, T int, scale float32, scores []float32) {
	hd := len(qv)
	for t := range T {
		kt := K[t*kvd+off : t*kvd+off+hd]
		var d float32
		for i, x := range qv {
			d += x * kt[i]
		}
		scores[t] = d * scale
	}
	sum := softmaxNumerators(scores[:T])
	clear(o)
	for t := range T {
		w := scores[t] / sum
		vt := V[t*kvd+off : t*kvd+off+hd]
		for i, x := range vt {
			o[i] += w * x
		}
	}
}

// softmaxNumerators replaces row by exp(row - max(row)), softmax's
// numerators shifted for stability, and returns their sum.
func softmaxNumerators(row []float32) float32 {
	mx := float32(math.Inf(-1))
	for _, d := range row {
		if d > mx {
			mx = d
		}
	}
	var sum float32
	for t, d := range row {
		e := float32(math.Exp(float64(d - mx)))
		row[t] = e
		sum += e
	}
	return sum
}

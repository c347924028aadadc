package model

import (
	"fmt"
	"math/rand/v2"
)

// Architectures the native runtime runs.
const (
	ArchLlama = "llama" // Llama 2/3 and llama2.c checkpoints
	ArchQwen2 = "qwen2" // Qwen2 (DeepSeek-R1-Distill-Qwen, QwQ): Llama with q/k/v biases
	ArchQwen3 = "qwen3" // Qwen3 (and DeepSeek-R1-0528-Qwen3): Llama with per-head q/k RMSNorm
)

// Config describes a Llama-family decoder.
type Config struct {
	Arch    string // ArchLlama, ArchQwen2 or ArchQwen3
	Dim     int    // residual stream width (hidden_size)
	Hidden  int    // MLP width (intermediate_size)
	Layers  int    // decoder blocks
	Heads   int    // attention heads
	KVHeads int    // key/value heads (grouped-query attention when fewer than Heads)
	HeadDim int    // width of one head; Dim/Heads unless the config says otherwise
	Vocab   int    // vocabulary size
	MaxSeq  int    // longest sequence (max_position_embeddings, llama2.c seq_len)
	NormEps float64
	Theta   float64 // RoPE base
	// Rope scales RoPE's frequencies (rope_scaling); the zero value is
	// plain RoPE.
	Rope RopeScaling
	// RopeInterleaved rotates adjacent pairs (x[2i], x[2i+1]), as llama2.c
	// and Meta's checkpoints do; otherwise the two halves of each head are
	// rotated together (x[i], x[i+d/2]), as Hugging Face does.
	RopeInterleaved bool
	QKVBias         bool // q, k and v projections have biases (Qwen2)
	// QKNorm applies an RMSNorm of HeadDim weights to every query and key
	// head before RoPE (Qwen3's q_norm and k_norm).
	QKNorm bool
	Tied   bool // the output projection is the token embedding
}

// Validate reports a configuration that cannot describe a model.
func (c Config) Validate() error {
	switch {
	case c.Arch != ArchLlama && c.Arch != ArchQwen2 && c.Arch != ArchQwen3:
		return fmt.Errorf("architecture: expected %s, %s or %s, found %q", ArchLlama, ArchQwen2, ArchQwen3, c.Arch)
	case c.Dim < 1 || c.Hidden < 1 || c.Layers < 1 || c.Heads < 1 || c.Vocab < 1 || c.MaxSeq < 1:
		return fmt.Errorf("expected positive sizes, found dim %d, hidden %d, layers %d, heads %d, vocab %d, max sequence %d",
			c.Dim, c.Hidden, c.Layers, c.Heads, c.Vocab, c.MaxSeq)
	case c.KVHeads < 1 || c.Heads%c.KVHeads != 0:
		return fmt.Errorf("key/value heads: expected a divisor of the %d heads, found %d", c.Heads, c.KVHeads)
	case c.HeadDim < 2 || c.HeadDim%2 != 0:
		return fmt.Errorf("head dimension: expected an even number, found %d", c.HeadDim)
	case c.Dim > 1<<16 || c.Hidden > 1<<18 || c.Layers > 1024 || c.Vocab > 1<<22 || c.Heads > 1024:
		return fmt.Errorf("sizes beyond any model this runtime expects: dim %d, hidden %d, layers %d, heads %d, vocab %d", c.Dim, c.Hidden, c.Layers, c.Heads, c.Vocab)
	case !(c.NormEps > 0) || !(c.Theta > 0):
		return fmt.Errorf("expected positive norm epsilon and RoPE theta, found %g and %g", c.NormEps, c.Theta)
	}
	return c.Rope.check()
}

// QDim and KVDim are the widths of the query and key/value projections.
func (c Config) QDim() int  { return c.Heads * c.HeadDim }
func (c Config) KVDim() int { return c.KVHeads * c.HeadDim }

// Params counts the model's weights.
func (c Config) Params() int64 {
	D, H, q, kv := int64(c.Dim), int64(c.Hidden), int64(c.QDim()), int64(c.KVDim())
	per := 2*D + D*q + 2*D*kv + q*D + 3*D*H
	if c.QKVBias {
		per += q + 2*kv
	}
	if c.QKNorm {
		per += 2 * int64(c.HeadDim)
	}
	n := int64(c.Vocab)*D + int64(c.Layers)*per + D
	if !c.Tied {
		n += int64(c.Vocab) * D
	}
	return n
}

// Block holds one decoder block's weights. Projections are row-major
// [out, in], as torch.nn.Linear stores them.
type Block struct {
	AttnNorm   []float32 // [Dim]
	WQ, WK, WV Matrix    // [qDim, Dim], [kvDim, Dim], [kvDim, Dim]
	BQ, BK, BV []float32 // biases (Qwen2), nil otherwise
	QNorm      []float32 // [HeadDim], per-head query norm (Qwen3), nil otherwise
	KNorm      []float32 // [HeadDim], per-head key norm (Qwen3), nil otherwise
	WO         Matrix    // [Dim, qDim]
	MLPNorm    []float32 // [Dim]
	WGate, WUp Matrix    // [Hidden, Dim]
	WDown      Matrix    // [Dim, Hidden]
}

// Model is a Llama-family decoder. Its weight matrices are held in
// float32, bfloat16, float16 or Q8 (see Matrix); norms and biases, the
// residual stream and every sum are float32.
type Model struct {
	Config
	Name   string // what it was loaded from, for messages
	Embed  Matrix // [Vocab, Dim]
	Blocks []Block
	Norm   []float32 // [Dim]
	Out    Matrix    // [Vocab, Dim]; the same weights as Embed when tied

	ropeTab *ropeTables // cos and sin at the positions reached so far
}

// init checks the weights' sizes against the configuration and sets up
// the RoPE tables, which fill as positions are reached: nothing here grows
// with MaxSeq.
func (m *Model) init() error {
	c := m.Config
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	D, H, q, kv := c.Dim, c.Hidden, c.QDim(), c.KVDim()
	check := func(name string, v []float32, want int) error {
		if len(v) != want {
			return fmt.Errorf("%s: %s: expected %d values, found %d", m.Name, name, want, len(v))
		}
		return nil
	}
	checkM := func(name string, w *Matrix, rows, cols int) error {
		if w.Rows != rows || w.Cols != cols || w.Len() != rows*cols {
			return fmt.Errorf("%s: %s: expected a [%d, %d] matrix, found [%d, %d] holding %d values", m.Name, name, rows, cols, w.Rows, w.Cols, w.Len())
		}
		if w.DType == Q8 && len(w.Scales) != rows*blocksPerRow(cols) {
			return fmt.Errorf("%s: %s: expected %d Q8 scales, found %d", m.Name, name, rows*blocksPerRow(cols), len(w.Scales))
		}
		return nil
	}
	if err := checkM("token embedding", &m.Embed, c.Vocab, D); err != nil {
		return err
	}
	if err := check("final norm", m.Norm, D); err != nil {
		return err
	}
	if err := checkM("output projection", &m.Out, c.Vocab, D); err != nil {
		return err
	}
	if len(m.Blocks) != c.Layers {
		return fmt.Errorf("%s: expected %d blocks, found %d", m.Name, c.Layers, len(m.Blocks))
	}
	for i, b := range m.Blocks {
		if err := check(fmt.Sprintf("block %d attention norm", i), b.AttnNorm, D); err != nil {
			return err
		}
		if err := check(fmt.Sprintf("block %d mlp norm", i), b.MLPNorm, D); err != nil {
			return err
		}
		for _, t := range []struct {
			name       string
			w          *Matrix
			rows, cols int
		}{{"q", &b.WQ, q, D}, {"k", &b.WK, kv, D}, {"v", &b.WV, kv, D}, {"o", &b.WO, D, q},
			{"gate", &b.WGate, H, D}, {"up", &b.WUp, H, D}, {"down", &b.WDown, D, H}} {
			if err := checkM(fmt.Sprintf("block %d %s", i, t.name), t.w, t.rows, t.cols); err != nil {
				return err
			}
		}
		if c.QKVBias {
			for _, t := range []struct {
				name string
				v    []float32
				n    int
			}{{"q bias", b.BQ, q}, {"k bias", b.BK, kv}, {"v bias", b.BV, kv}} {
				if err := check(fmt.Sprintf("block %d %s", i, t.name), t.v, t.n); err != nil {
					return err
				}
			}
		}
		if c.QKNorm {
			if err := check(fmt.Sprintf("block %d q norm", i), b.QNorm, c.HeadDim); err != nil {
				return err
			}
			if err := check(fmt.Sprintf("block %d k norm", i), b.KNorm, c.HeadDim); err != nil {
				return err
			}
		}
	}
	m.ropeTab = newRopeTables(c)
	return nil
}

// NewRandom returns a model of the configuration with random weights
// (normal, standard deviation 0.02; norms near 1), for benchmarks and tests
// that need a model of a given size but not its knowledge.
func NewRandom(c Config, seed uint64) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	normal := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(0.02 * rng.NormFloat64())
		}
		return v
	}
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(1 + 0.1*rng.NormFloat64())
		}
		return v
	}
	D, H, q, kv := c.Dim, c.Hidden, c.QDim(), c.KVDim()
	mat := func(rows, cols int) Matrix { return NewMatrix(rows, cols, normal(rows*cols)) }
	m := &Model{Config: c, Name: "random model", Embed: mat(c.Vocab, D), Norm: ones(D)}
	for range c.Layers {
		b := Block{AttnNorm: ones(D), WQ: mat(q, D), WK: mat(kv, D), WV: mat(kv, D), WO: mat(D, q),
			MLPNorm: ones(D), WGate: mat(H, D), WUp: mat(H, D), WDown: mat(D, H)}
		if c.QKVBias {
			b.BQ, b.BK, b.BV = normal(q), normal(kv), normal(kv)
		}
		if c.QKNorm {
			b.QNorm, b.KNorm = ones(c.HeadDim), ones(c.HeadDim)
		}
		m.Blocks = append(m.Blocks, b)
	}
	m.Out = m.Embed
	if !c.Tied {
		m.Out = mat(c.Vocab, D)
	}
	if err := m.init(); err != nil {
		return nil, err
	}
	return m, nil
}

// matrices lists the model's weight matrices, the output projection last
// and only when it is not the embedding.
func (m *Model) matrices() []*Matrix {
	ws := []*Matrix{&m.Embed}
	for i := range m.Blocks {
		b := &m.Blocks[i]
		ws = append(ws, &b.WQ, &b.WK, &b.WV, &b.WO, &b.WGate, &b.WUp, &b.WDown)
	}
	if !m.tiedOut() {
		ws = append(ws, &m.Out)
	}
	return ws
}

// tiedOut reports whether the output projection shares the embedding's
// weights.
func (m *Model) tiedOut() bool {
	same := func(a, b Matrix) bool {
		switch {
		case len(a.F32) > 0 && len(b.F32) > 0:
			return &a.F32[0] == &b.F32[0]
		case len(a.Half) > 0 && len(b.Half) > 0:
			return &a.Half[0] == &b.Half[0]
		case len(a.Q) > 0 && len(b.Q) > 0:
			return &a.Q[0] == &b.Q[0]
		}
		return false
	}
	return same(m.Embed, m.Out)
}

// WeightBytes is the memory the weights take as held: every matrix at
// its precision (the embedding once when the output projection shares
// it), plus the float32 norms and biases.
func (m *Model) WeightBytes() int64 {
	var n int64
	for _, w := range m.matrices() {
		n += w.Bytes()
	}
	vec := func(v []float32) { n += 4 * int64(len(v)) }
	vec(m.Norm)
	for _, b := range m.Blocks {
		for _, v := range [][]float32{b.AttnNorm, b.MLPNorm, b.BQ, b.BK, b.BV, b.QNorm, b.KNorm} {
			vec(v)
		}
	}
	return n
}

// DTypes counts the model's weight matrices by precision.
func (m *Model) DTypes() map[DType]int {
	out := map[DType]int{}
	for _, w := range m.matrices() {
		out[w.DType]++
	}
	return out
}

// Convert changes the precision of every weight matrix to d, one matrix
// at a time (each old matrix can be freed as soon as its copy is made).
// Norms and biases stay float32. An output projection shared with the
// embedding stays shared.
func (m *Model) Convert(d DType) {
	tied := m.tiedOut()
	for _, w := range m.matrices() {
		*w = w.To(d)
	}
	if tied {
		m.Out = m.Embed
	}
}

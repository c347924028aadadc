package model

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// RoPE scaling types: the rope_type of a Hugging Face config's
// rope_parameters (transformers 5) or rope_scaling (earlier versions).
const (
	RopeDefault = ""       // plain RoPE (rope_type "default")
	RopeLinear  = "linear" // positions divided by Factor (position interpolation)
	RopeLlama3  = "llama3" // Llama 3.1 frequency bands (also DeepSeek-R1-Distill-Llama)
	RopeYarn    = "yarn"   // YaRN (Qwen2.5 and QwQ long-context configs)
)

// RopeScaling changes RoPE's frequencies for contexts longer than the
// model was trained on. The zero value is plain RoPE. The frequencies are
// those of transformers' modeling_rope_utils.py (_compute_linear_scaling,
// _compute_llama3 and _compute_yarn parameters), evaluated in float32 in
// the same order.
type RopeScaling struct {
	Type   string  // RopeDefault, RopeLinear, RopeLlama3 or RopeYarn
	Factor float64 // how much longer the context is than in training

	// OriginalMaxPos is original_max_position_embeddings, the training
	// context (llama3, yarn).
	OriginalMaxPos int
	// LowFreqFactor and HighFreqFactor bound llama3's bands: wavelengths
	// above OriginalMaxPos/LowFreqFactor are divided by Factor, those
	// below OriginalMaxPos/HighFreqFactor are kept, and those between are
	// interpolated.
	LowFreqFactor, HighFreqFactor float64

	// YaRN (arXiv:2309.00071): the ramp between interpolated and kept
	// frequencies spans BetaFast to BetaSlow rotations over
	// OriginalMaxPos positions (default 32 and 1). AttentionFactor scales
	// cos and sin (so attention logits by its square); 0 derives it from
	// Factor, Mscale and MscaleAllDim as transformers does. NoTruncate
	// keeps the ramp's ends fractional (transformers' truncate false).
	BetaFast, BetaSlow   float64
	AttentionFactor      float64
	Mscale, MscaleAllDim float64
	NoTruncate           bool
}

// check reports scaling parameters that cannot describe a RoPE.
func (r RopeScaling) check() error {
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch r.Type {
	case RopeDefault:
		return nil
	case RopeLinear, RopeLlama3, RopeYarn:
	default:
		return fmt.Errorf("rope_type: expected default, linear, llama3 or yarn, found %q", r.Type)
	}
	if !(r.Factor > 0) || !finite(r.Factor) {
		return fmt.Errorf("rope %s: factor: expected a positive number, found %g", r.Type, r.Factor)
	}
	if r.Type == RopeLinear {
		return nil
	}
	if r.OriginalMaxPos < 1 {
		return fmt.Errorf("rope %s: original_max_position_embeddings: expected a positive number, found %d", r.Type, r.OriginalMaxPos)
	}
	if r.Type == RopeLlama3 {
		if !(r.LowFreqFactor > 0) || !(r.HighFreqFactor > r.LowFreqFactor) || !finite(r.HighFreqFactor) {
			return fmt.Errorf("rope llama3: expected 0 < low_freq_factor < high_freq_factor, found %g and %g", r.LowFreqFactor, r.HighFreqFactor)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"beta_fast", r.BetaFast}, {"beta_slow", r.BetaSlow}, {"attention_factor", r.AttentionFactor}, {"mscale", r.Mscale}, {"mscale_all_dim", r.MscaleAllDim}} {
		if f.v < 0 || !finite(f.v) {
			return fmt.Errorf("rope yarn: %s: expected a number ≥ 0, found %g", f.name, f.v)
		}
	}
	return nil
}

// ropeFrequencies returns RoPE's HeadDim/2 inverse frequencies and the
// factor that scales cos and sin (YaRN's attention factor, 1 otherwise).
//
// Every step is a float32 operation in the order transformers evaluates
// it: the exponent 2i/d and θ^(2i/d) are rounded to float32 before the
// reciprocal (llama2.c computes 1/powf(θ, i/d) the same way), a Python
// scalar divided by a tensor is the tensor's reciprocal times the scalar
// (torch's Tensor.__rtruediv__), and scalars are rounded to float32 before
// they meet a tensor. Explicit float32 conversions keep the compiler from
// fusing a multiply and an add.
func (c Config) ropeFrequencies() (inv []float32, scale float32) {
	half := c.HeadDim / 2
	d := float32(c.HeadDim)
	base := float64(float32(c.Theta))
	pos := make([]float32, half) // θ^(2i/d)
	inv = make([]float32, half)
	for i := range half {
		e := float32(float32(2*i) / d)
		pos[i] = float32(math.Pow(base, float64(e)))
		inv[i] = float32(1 / pos[i])
	}
	r := c.Rope
	f32 := func(x float64) float32 { return float32(x) }
	switch r.Type {
	case RopeLinear:
		for i := range inv {
			inv[i] = float32(inv[i] / f32(r.Factor))
		}
	case RopeLlama3:
		// _compute_llama3_parameters: wavelengths 2π/inv_freq longer than
		// old/low are divided by factor, those shorter than old/high are
		// kept, and those between mix the two with a smooth factor.
		old := float64(r.OriginalMaxPos)
		lowWave, highWave := f32(old/r.LowFreqFactor), f32(old/r.HighFreqFactor)
		factor := f32(r.Factor)
		for i, x := range inv {
			wave := float32(float32(1/x) * f32(2*math.Pi))
			scaled := x
			if wave > lowWave {
				scaled = float32(x / factor)
			}
			if !(wave < highWave) && !(wave > lowWave) {
				smooth := float32(float32(float32(1/wave)*f32(old)) - f32(r.LowFreqFactor))
				smooth = float32(smooth / f32(r.HighFreqFactor-r.LowFreqFactor))
				a := float32(float32(float32(1-smooth)*scaled) / factor)
				b := float32(smooth * scaled)
				scaled = float32(a + b)
			}
			inv[i] = scaled
		}
	case RopeYarn:
		// _compute_yarn_parameters: interpolated (1/(factor·θ^(2i/d))) and
		// kept (1/θ^(2i/d)) frequencies mixed by a linear ramp over the
		// dimensions whose rotations over the training context lie
		// between beta_slow and beta_fast.
		betaFast, betaSlow := r.BetaFast, r.BetaSlow
		if betaFast == 0 {
			betaFast = 32
		}
		if betaSlow == 0 {
			betaSlow = 1
		}
		dim := float64(c.HeadDim)
		corr := func(rot float64) float64 {
			return dim * math.Log(float64(r.OriginalMaxPos)/(rot*2*math.Pi)) / (2 * math.Log(c.Theta))
		}
		lo, hi := corr(betaFast), corr(betaSlow)
		if !r.NoTruncate {
			lo, hi = math.Floor(lo), math.Ceil(hi)
		}
		lo, hi = math.Max(lo, 0), math.Min(hi, dim-1)
		if lo == hi {
			hi += 0.001
		}
		factor := f32(r.Factor)
		for i := range inv {
			extrap := float32(1 / pos[i])
			interp := float32(1 / float32(pos[i]*factor))
			ramp := float32(float32(float32(i)-f32(lo)) / f32(hi-lo))
			ramp = min(max(ramp, 0), 1)
			keep := float32(1 - ramp)
			a := float32(interp * float32(1-keep))
			b := float32(extrap * keep)
			inv[i] = float32(a + b)
		}
		return inv, float32(c.yarnAttentionFactor())
	}
	return inv, 1
}

// yarnAttentionFactor is YaRN's scale of cos and sin: attention_factor
// when the config gives one, else 0.1·ln(factor)+1, or with mscale and
// mscale_all_dim (DeepSeek) the ratio of that formula at the two.
func (c Config) yarnAttentionFactor() float64 {
	r := c.Rope
	if r.AttentionFactor != 0 {
		return r.AttentionFactor
	}
	mscale := func(scale, m float64) float64 {
		if scale <= 1 {
			return 1
		}
		return 0.1*m*math.Log(scale) + 1
	}
	if r.Mscale != 0 && r.MscaleAllDim != 0 {
		return mscale(r.Factor, r.Mscale) / mscale(r.Factor, r.MscaleAllDim)
	}
	return mscale(r.Factor, 1)
}

// ropeChunkLen is how many positions of cos and sin are computed at once.
const ropeChunkLen = 256

// ropeTables holds cos and sin of every frequency at the positions reached
// so far, computed a chunk of positions at a time as sequences grow, so
// that a large max_position_embeddings costs nothing until it is used.
// It is safe for concurrent use.
type ropeTables struct {
	inv   []float32 // inverse frequencies, HeadDim/2
	scale float32   // YaRN's attention factor, 1 otherwise
	mu    sync.Mutex
	// chunks[k] holds positions k·ropeChunkLen onwards; the slice is
	// replaced, never changed, when it grows.
	chunks atomic.Pointer[[]*ropeChunk]
}

type ropeChunk struct{ cos, sin []float32 } // [ropeChunkLen, half]

func newRopeTables(c Config) *ropeTables {
	inv, scale := c.ropeFrequencies()
	return &ropeTables{inv: inv, scale: scale}
}

// at returns cos and sin at position pos (pos ≥ 0).
func (t *ropeTables) at(pos int) (cos, sin []float32) {
	half := len(t.inv)
	k, off := pos/ropeChunkLen, (pos%ropeChunkLen)*half
	if cs := t.chunks.Load(); cs != nil && k < len(*cs) {
		ch := (*cs)[k]
		return ch.cos[off : off+half], ch.sin[off : off+half]
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var cs []*ropeChunk
	if p := t.chunks.Load(); p != nil {
		cs = *p
	}
	if k >= len(cs) {
		grown := make([]*ropeChunk, len(cs), k+1)
		copy(grown, cs)
		for len(grown) <= k {
			grown = append(grown, t.compute(len(grown)*ropeChunkLen))
		}
		t.chunks.Store(&grown)
		cs = grown
	}
	ch := cs[k]
	return ch.cos[off : off+half], ch.sin[off : off+half]
}

// compute fills the chunk that starts at position p0. The angle p·inv is
// a float32 product, as transformers' float32 matmul of inv_freq and
// positions makes it; cos and sin are then rounded to float32.
func (t *ropeTables) compute(p0 int) *ropeChunk {
	half := len(t.inv)
	ch := &ropeChunk{cos: make([]float32, ropeChunkLen*half), sin: make([]float32, ropeChunkLen*half)}
	for j := range ropeChunkLen {
		p := float32(p0 + j)
		for i, f := range t.inv {
			a := float64(float32(p * f))
			cs, sn := float32(math.Cos(a)), float32(math.Sin(a))
			if t.scale != 1 {
				cs, sn = float32(cs*t.scale), float32(sn*t.scale)
			}
			ch.cos[j*half+i], ch.sin[j*half+i] = cs, sn
		}
	}
	return ch
}

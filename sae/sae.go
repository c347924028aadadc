package sae

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/blas"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/matmul"
	"github.com/rise-interp/rise/internal/memory"
)

// Arch names an SAE architecture. The names are SAELens's, except that
// BatchTopK, which SAELens saves as jumprelu, exists here while training.
type Arch string

// The architectures rise trains.
const (
	// Standard is a ReLU SAE trained with an L1 penalty on the latents
	// weighted by the norms of their decoder rows (RISE's recipe; SAELens
	// "standard").
	Standard Arch = "standard"
	// TopK keeps the k largest pre-activations of each row (Gao et al. 2024,
	// arXiv 2406.04093).
	TopK Arch = "topk"
	// BatchTopK keeps the k*B largest activations of a batch of B rows
	// (Bussmann et al. 2024, arXiv 2412.06410) and learns a threshold that
	// replaces the batch selection at inference, where it is a JumpReLU.
	BatchTopK Arch = "batchtopk"
	// JumpReLU zeroes pre-activations below a learned per-latent threshold,
	// trained with straight-through estimators and an L0 penalty
	// (Rajamanoharan et al. 2024, arXiv 2407.14435).
	JumpReLU Arch = "jumprelu"
)

// ParseArch reads an architecture name; "relu" is Standard.
func ParseArch(s string) (Arch, error) {
	switch s {
	case "standard", "relu":
		return Standard, nil
	case "topk":
		return TopK, nil
	case "batchtopk", "batch_topk":
		return BatchTopK, nil
	case "jumprelu":
		return JumpReLU, nil
	}
	return "", fmt.Errorf("unknown architecture %q: expected standard (relu), topk, batchtopk or jumprelu", s)
}

// Metadata records where an SAE's inputs come from (SAELens cfg.json
// "metadata").
type Metadata struct {
	ModelName string `json:"model_name,omitempty"`
	HookName  string `json:"hook_name,omitempty"`
	HookLayer int    `json:"hook_layer"`
	Dataset   string `json:"dataset_path,omitempty"`
	Position  string `json:"position,omitempty"` // which token of a step the inputs are (rise: "step_delimiter")
}

// SAE is a sparse autoencoder with SAELens v6's forward pass:
//
//	pre   = (x - b_dec·[ApplyBDecToInput]) W_enc + b_enc
//	f     = act(pre)   (ReLU, TopK, or JumpReLU with Threshold)
//	x_hat = f W_dec + b_dec
//
// Weights are row-major float32: W_enc [DIn, DSae], W_dec [DSae, DIn].
type SAE struct {
	Arch Arch
	DIn  int
	DSae int
	K    int // active latents per row (TopK) or per row on average (BatchTopK)

	WEnc      []float32 // [DIn, DSae]
	WDec      []float32 // [DSae, DIn]
	BEnc      []float32 // [DSae]
	BDec      []float32 // [DIn]
	Threshold []float32 // [DSae], JumpReLU (and BatchTopK once trained)

	ApplyBDecToInput bool

	// InputScale multiplies inputs before the encoder while training (input
	// normalisation). FoldInputScale folds it into the weights so that a
	// saved SAE takes raw activations; it is then 1.
	InputScale    float32
	Normalization activations.Normalization

	Metadata Metadata
}

// New allocates an SAE with zero weights; Init fills them. Its size is
// checked first, without overflow, against the memory the system has.
func New(arch Arch, dIn, dSae, k int) (*SAE, error) {
	if dIn <= 0 || dSae <= 0 {
		return nil, fmt.Errorf("sae: d_in and d_sae must be positive, got %d and %d", dIn, dSae)
	}
	if dSae > math.MaxInt/2/dIn {
		return nil, fmt.Errorf("sae: d_in %d × d_sae %d weights do not fit in memory addresses", dIn, dSae)
	}
	if err := checkMemory(memory.Product(4, weightFloats(dIn, dSae)), fmt.Sprintf("sae: the weights of an SAE with d_in %d and d_sae %d", dIn, dSae)); err != nil {
		return nil, err
	}
	if _, err := ParseArch(string(arch)); err != nil {
		return nil, err
	}
	if (arch == TopK || arch == BatchTopK) && (k <= 0 || k > dSae) {
		return nil, fmt.Errorf("sae: %s needs k between 1 and d_sae (%d), got %d", arch, dSae, k)
	}
	s := &SAE{
		Arch: arch, DIn: dIn, DSae: dSae, K: k,
		WEnc: make([]float32, dIn*dSae), WDec: make([]float32, dSae*dIn),
		BEnc: make([]float32, dSae), BDec: make([]float32, dIn),
		ApplyBDecToInput: true, InputScale: 1, Normalization: activations.NormNone,
	}
	if arch == JumpReLU || arch == BatchTopK {
		s.Threshold = make([]float32, dSae)
	}
	return s, nil
}

// Init sets the decoder rows to random directions of norm decNorm, the
// encoder to the decoder's transpose (W_enc = W_dec^T), b_enc to zero and
// b_dec to bDec (nil: zero). JumpReLU thresholds start at threshold.
// This is SAELens's initialisation with decoder_init_norm = decNorm.
func (s *SAE) Init(seed uint64, decNorm float32, bDec []float32, threshold float32) {
	rng := rand.New(rand.NewPCG(seed, 0x5ae))
	d, m := s.DIn, s.DSae
	for j := range m {
		row := s.WDec[j*d : (j+1)*d]
		var sq float64
		for i := range row {
			v := rng.NormFloat64()
			row[i] = float32(v)
			sq += v * v
		}
		scale := decNorm / float32(math.Sqrt(sq))
		for i := range row {
			row[i] *= scale
			s.WEnc[i*m+j] = row[i]
		}
	}
	clear(s.BEnc)
	clear(s.BDec)
	if bDec != nil {
		copy(s.BDec, bDec)
	}
	if s.Threshold != nil {
		for j := range s.Threshold {
			s.Threshold[j] = threshold
		}
	}
}

// Clone returns a deep copy.
func (s *SAE) Clone() *SAE {
	c := *s
	c.WEnc, c.WDec, c.BEnc, c.BDec = slices.Clone(s.WEnc), slices.Clone(s.WDec), slices.Clone(s.BEnc), slices.Clone(s.BDec)
	c.Threshold = slices.Clone(s.Threshold)
	return &c
}

// Check verifies that the weights have the shapes the dimensions call for
// and hold only finite values.
func (s *SAE) Check() error {
	if s.DIn <= 0 || s.DSae <= 0 {
		return fmt.Errorf("d_in and d_sae must be positive, found %d and %d", s.DIn, s.DSae)
	}
	want := []struct {
		name string
		x    []float32
		n    int
	}{
		{"W_enc", s.WEnc, s.DIn * s.DSae}, {"W_dec", s.WDec, s.DSae * s.DIn},
		{"b_enc", s.BEnc, s.DSae}, {"b_dec", s.BDec, s.DIn},
	}
	if s.Arch == JumpReLU || s.Threshold != nil {
		want = append(want, struct {
			name string
			x    []float32
			n    int
		}{"threshold", s.Threshold, s.DSae})
	}
	for _, w := range want {
		if len(w.x) != w.n {
			return fmt.Errorf("%s has %d values, expected %d for d_in %d, d_sae %d", w.name, len(w.x), w.n, s.DIn, s.DSae)
		}
		for i, v := range w.x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("%s value %d is %v, expected a finite number", w.name, i, v)
			}
		}
	}
	if (s.Arch == TopK || s.Arch == BatchTopK) && (s.K <= 0 || s.K > s.DSae) {
		return fmt.Errorf("%s needs k between 1 and d_sae (%d), found %d", s.Arch, s.DSae, s.K)
	}
	return nil
}

// FoldInputScale folds InputScale into the weights: an SAE trained on
// inputs c·x then takes x itself. With pre = (c·x - b_dec) W_enc + b_enc and
// x_hat ≈ c·x: W_enc ← c·W_enc, b_dec ← b_dec / c, W_dec ← W_dec / c.
func (s *SAE) FoldInputScale() {
	c := s.InputScale
	if c == 0 || c == 1 {
		s.InputScale = 1
		return
	}
	for i := range s.WEnc {
		s.WEnc[i] *= c
	}
	for i := range s.WDec {
		s.WDec[i] /= c
	}
	for i := range s.BDec {
		s.BDec[i] /= c
	}
	s.InputScale = 1
}

// InferenceArch is the architecture an SAE is saved and used as: BatchTopK
// becomes JumpReLU with its learned threshold.
func (s *SAE) InferenceArch() Arch {
	if s.Arch == BatchTopK {
		return JumpReLU
	}
	return s.Arch
}

// PreActivations computes pre = (x·InputScale - b_dec) W_enc + b_enc for
// rows x [n, DIn] into pre [n, DSae]; xc is scratch of len(x).
func (s *SAE) PreActivations(x, xc, pre []float32) {
	n := len(x) / s.DIn
	s.centre(x, xc)
	for r := range n {
		copy(pre[r*s.DSae:(r+1)*s.DSae], s.BEnc)
	}
	matmul.Gemm(blas.NoTrans, blas.NoTrans, n, s.DSae, s.DIn, 1, xc, s.DIn, s.WEnc, s.DSae, 1, pre, s.DSae)
}

// centre writes x·InputScale - b_dec (or x·InputScale) into xc.
func (s *SAE) centre(x, xc []float32) {
	d := s.DIn
	sc := s.InputScale
	if sc == 0 {
		sc = 1
	}
	for i, v := range x {
		xc[i] = v * sc
		if s.ApplyBDecToInput {
			xc[i] -= s.BDec[i%d]
		}
	}
}

// Activate turns pre-activations into latents in place, by the inference
// architecture: ReLU, per-row TopK, or JumpReLU.
func (s *SAE) Activate(pre []float32) {
	m := s.DSae
	switch s.InferenceArch() {
	case Standard:
		for i, v := range pre {
			if v < 0 {
				pre[i] = 0
			}
		}
	case JumpReLU:
		for i, v := range pre {
			if !(v > s.Threshold[i%m]) || v < 0 {
				pre[i] = 0
			}
		}
	case TopK:
		idx := make([]int, 0, s.K)
		vals := make([]float32, s.K)
		for r := 0; r < len(pre)/m; r++ {
			keepTopK(pre[r*m:(r+1)*m], s.K, idx, vals)
		}
	}
}

// keepTopK zeroes all but the k largest values of row and applies ReLU to
// those (SAELens TopK: topk of the pre-activations, then ReLU). Ties are
// broken by the lower index. idx and vals are scratch of capacity k.
func keepTopK(row []float32, k int, idx []int, vals []float32) {
	sel := topKIndices(row, k, idx)
	for i, j := range sel {
		vals[i] = row[j]
	}
	clear(row)
	for i, j := range sel {
		row[j] = max(vals[i], 0)
	}
}

// Encode computes the latents f for rows x [n, DIn] into f [n, DSae].
func (s *SAE) Encode(x, f []float32) {
	xc := make([]float32, len(x))
	s.PreActivations(x, xc, f)
	s.Activate(f)
}

// Decode computes x_hat = f W_dec + b_dec for latents f [n, DSae] into
// xhat [n, DIn], undoing InputScale.
func (s *SAE) Decode(f, xhat []float32) {
	n := len(f) / s.DSae
	for r := range n {
		copy(xhat[r*s.DIn:(r+1)*s.DIn], s.BDec)
	}
	matmul.Gemm(blas.NoTrans, blas.NoTrans, n, s.DIn, s.DSae, 1, f, s.DSae, s.WDec, s.DIn, 1, xhat, s.DIn)
	if sc := s.InputScale; sc != 0 && sc != 1 {
		for i := range xhat {
			xhat[i] /= sc
		}
	}
}

package sae

import (
	"errors"
	"fmt"
)

// Loss is the value of the training objective on one batch, by term. Every
// term is a mean over the batch's rows.
type Loss struct {
	Total    float64 // what the optimiser minimises: MSE + Sparsity + AuxK
	MSE      float64 // ||x_hat - x||^2 summed over dimensions (in the scaled input space)
	Sparsity float64 // the sparsity penalty with its coefficient: L1 (standard) or L0 (jumprelu)
	AuxK     float64 // the AuxK loss with its coefficient (topk, batchtopk)
	L0       float64 // active latents per row

	// BatchThreshold is, for BatchTopK, the smallest activation the batch
	// selection kept; the trainer's running average of it becomes the
	// JumpReLU threshold used at inference.
	BatchThreshold float32
}

// LossConfig sets the coefficients of the training objective for one step.
//
// The objective, for a batch of B rows x (scaled by SAE.InputScale), is
//
//	MSE      = (1/B) Σ_b ||x_hat_b - x_b||²
//	standard + λ (1/B) Σ_b Σ_j f_bj ||W_dec[j]||                  (L1 weighted by decoder-row norm)
//	jumprelu + λ (1/B) Σ_b Σ_j H(pre_bj - θ_j)                    (L0, straight-through estimator)
//	topk, batchtopk + α · s · (1/B) Σ_b ||a_b W_dec - e_b||²       (AuxK)
//
// For JumpReLU, f = pre·H(pre - θ) with θ = exp(log θ); the gradients with
// respect to θ use a rectangle kernel of width ε (Bandwidth):
// ∂f/∂θ = -(θ/ε)·rect((pre-θ)/ε) and ∂H/∂θ = -(1/ε)·rect((pre-θ)/ε), as
// SAELens; ∂f/∂pre = H(pre-θ) and ∂H/∂pre = 0.
//
// For AuxK (Gao et al. 2024, §A.2): e = x - x_hat is held constant; a keeps,
// per row, the k_aux largest pre-activations among dead latents (ReLU
// applied), k_aux = min(AuxKLatents, number dead); s = min(dead /
// AuxKLatents, 1). Without dead latents the term is zero.
//
// BatchTopK keeps the K·B largest ReLU'd pre-activations of the batch;
// TopK the K largest pre-activations of each row, ReLU'd. Ties are broken by
// the lower index (row-major for BatchTopK).
type LossConfig struct {
	Sparsity    float32 // λ, already warmed up: L1 (standard) or L0 (jumprelu) coefficient
	AuxKCoeff   float32 // α: AuxK coefficient (topk, batchtopk); 0 turns it off
	AuxKLatents int     // k_aux; 0 means DIn/2
	Bandwidth   float32 // ε, JumpReLU kernel width; 0 means 0.001
}

func (c LossConfig) auxKLatents(s *SAE) int {
	if c.AuxKLatents > 0 {
		return c.AuxKLatents
	}
	return max(1, s.DIn/2)
}

func (c LossConfig) bandwidth() float32 {
	if c.Bandwidth > 0 {
		return c.Bandwidth
	}
	return 0.001
}

// Gradients holds the gradient of the loss with respect to each parameter,
// laid out as the parameter.
type Gradients struct {
	WEnc, WDec, BEnc, BDec []float32
	// LogThreshold is ∂loss/∂log θ for JumpReLU (nil for the others).
	LogThreshold []float32
}

// NewGradients allocates gradients shaped like s's parameters.
func NewGradients(s *SAE) *Gradients {
	g := &Gradients{
		WEnc: make([]float32, len(s.WEnc)), WDec: make([]float32, len(s.WDec)),
		BEnc: make([]float32, len(s.BEnc)), BDec: make([]float32, len(s.BDec)),
	}
	if s.Arch == JumpReLU {
		g.LogThreshold = make([]float32, s.DSae)
	}
	return g
}

// Engine computes the training objective and its gradients.
type Engine interface {
	// Name is "fused" or "graph".
	Name() string
	// Step computes the loss of batch x (rows of s.DIn raw values; the
	// engine applies s.InputScale) and writes its gradients into g. dead
	// marks the latents AuxK treats as dead (nil: none). fired, when not
	// nil, gets fired[j] += the rows in which latent j was active.
	Step(s *SAE, x []float32, cfg LossConfig, dead []bool, g *Gradients, fired []int64) (Loss, error)
}

// checkStep reports the first argument of an engine's Step that does not
// fit the others: the batch must be whole rows of d_in, and the SAE's
// weights, the gradients, the masks and (JumpReLU) the thresholds shaped
// for its d_in and d_sae. It reads lengths only, nothing a step's cost
// would notice.
func checkStep(s *SAE, x []float32, g *Gradients, dead []bool, fired []int64) error {
	switch {
	case s == nil:
		return errors.New("no SAE given")
	case g == nil:
		return errors.New("no gradients given")
	case s.DIn <= 0 || s.DSae <= 0:
		return fmt.Errorf("d_in and d_sae must be positive, found %d and %d", s.DIn, s.DSae)
	case len(x) == 0 || len(x)%s.DIn != 0:
		return fmt.Errorf("batch has %d values, expected a positive multiple of d_in %d", len(x), s.DIn)
	case dead != nil && len(dead) != s.DSae:
		return fmt.Errorf("dead mask has %d entries, expected d_sae %d", len(dead), s.DSae)
	case fired != nil && len(fired) != s.DSae:
		return fmt.Errorf("fired counts have %d entries, expected d_sae %d", len(fired), s.DSae)
	}
	d, m := s.DIn, s.DSae
	type size struct {
		name    string
		n, want int
	}
	sizes := []size{
		{"W_enc", len(s.WEnc), d * m}, {"W_dec", len(s.WDec), m * d}, {"b_enc", len(s.BEnc), m}, {"b_dec", len(s.BDec), d},
		{"gradient of W_enc", len(g.WEnc), d * m}, {"gradient of W_dec", len(g.WDec), m * d},
		{"gradient of b_enc", len(g.BEnc), m}, {"gradient of b_dec", len(g.BDec), d},
	}
	if s.Arch == JumpReLU {
		sizes = append(sizes, size{"threshold", len(s.Threshold), m}, size{"gradient of log_threshold", len(g.LogThreshold), m})
	}
	for _, z := range sizes {
		if z.n != z.want {
			return fmt.Errorf("%s has %d values, expected %d for d_in %d, d_sae %d", z.name, z.n, z.want, d, m)
		}
	}
	return nil
}

package steer

import (
	"context"

	"github.com/rise-interp/rise/steer/model"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
)

// ModelInfo describes the model behind a backend.
type ModelInfo struct {
	Protocol string `json:"protocol"`
	Name     string `json:"name"`
	Arch     string `json:"arch"`
	Layers   int    `json:"layers"`
	DModel   int    `json:"d_model"`
	Vocab    int    `json:"vocab"`
	MaxSeq   int    `json:"max_seq"`
}

// Backend runs a model for rise: the native runtime in this process, or a
// server over HTTP (Remote) for models that need a GPU.
type Backend interface {
	// Info describes the model.
	Info() ModelInfo
	// Generate continues every prompt, steered by o.Hooks (Vectors; a
	// remote backend takes nothing else).
	Generate(ctx context.Context, prompts []string, o model.GenerateOptions) ([]model.Generation, error)
	// Capture records step activations of traces into a dump at dir.
	Capture(ctx context.Context, traces []activations.Trace, dir string, o CaptureOptions) (*CaptureSummary, error)
}

// Native is the in-process backend: a model.Model and its model.Tokenizer.
type Native struct {
	Model     *model.Model
	Tokenizer model.Tokenizer
}

// Info describes the native model.
func (n *Native) Info() ModelInfo {
	m := n.Model
	return ModelInfo{Protocol: Protocol, Name: m.Name, Arch: m.Arch, Layers: m.Layers, DModel: m.Dim, Vocab: m.Vocab, MaxSeq: m.MaxSeq}
}

// Generate runs Generate on the native model.
func (n *Native) Generate(ctx context.Context, prompts []string, o model.GenerateOptions) ([]model.Generation, error) {
	return model.Generate(ctx, n.Model, n.Tokenizer, prompts, o)
}

// Capture runs Capture on the native model.
func (n *Native) Capture(ctx context.Context, traces []activations.Trace, dir string, o CaptureOptions) (*CaptureSummary, error) {
	return Capture(ctx, n.Model, n.Tokenizer, traces, dir, o)
}

// ConfidenceBackend is a backend that can learn confidence vectors and
// measure next-token entropy at step boundaries: the native runtime, and
// servers that implement POST /v1/confidence and POST /v1/entropy.
type ConfidenceBackend interface {
	Backend
	// LearnConfidence learns confidence scores over the decoder columns of
	// s (only its W_dec is used) on the step boundaries of traces.
	LearnConfidence(ctx context.Context, s *sae.SAE, traces []activations.Trace, o ConfidenceOptions) (*ConfidenceResult, error)
	// BoundaryEntropy is the mean next-token entropy at the step
	// boundaries of traces with the vectors applied, and the number of
	// boundaries.
	BoundaryEntropy(ctx context.Context, traces []activations.Trace, vs []Vector) (float64, int, error)
}

// LearnConfidence runs LearnConfidence on the native model.
func (n *Native) LearnConfidence(ctx context.Context, s *sae.SAE, traces []activations.Trace, o ConfidenceOptions) (*ConfidenceResult, error) {
	return LearnConfidence(ctx, n.Model, n.Tokenizer, s, traces, o)
}

// BoundaryEntropy runs BoundaryEntropy on the native model.
func (n *Native) BoundaryEntropy(ctx context.Context, traces []activations.Trace, vs []Vector) (float64, int, error) {
	return BoundaryEntropy(ctx, n.Model, n.Tokenizer, traces, vs)
}

package steer

import (
	"context"

	"github.com/rise-interp/rise/activations"
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
	// Generate continues every prompt, steered by o.Vectors.
	Generate(ctx context.Context, prompts []string, o GenerateOptions) ([]Generation, error)
	// Capture records step activations of traces into a dump at dir.
	Capture(ctx context.Context, traces []activations.Trace, dir string, o CaptureOptions) (*CaptureSummary, error)
}

// Native is the in-process backend: a Model and its Tokenizer.
type Native struct {
	Model     *Model
	Tokenizer Tokenizer
}

// Info describes the native model.
func (n *Native) Info() ModelInfo {
	m := n.Model
	return ModelInfo{Protocol: Protocol, Name: m.Name, Arch: m.Arch, Layers: m.Layers, DModel: m.Dim, Vocab: m.Vocab, MaxSeq: m.MaxSeq}
}

// Generate runs Generate on the native model.
func (n *Native) Generate(ctx context.Context, prompts []string, o GenerateOptions) ([]Generation, error) {
	return Generate(ctx, n.Model, n.Tokenizer, prompts, o)
}

// Capture runs Capture on the native model.
func (n *Native) Capture(ctx context.Context, traces []activations.Trace, dir string, o CaptureOptions) (*CaptureSummary, error) {
	return Capture(ctx, n.Model, n.Tokenizer, traces, dir, o)
}

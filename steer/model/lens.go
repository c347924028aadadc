package model

import "fmt"

// LogitLens returns the logits the model's head gives a direction written
// into the residual stream: its final RMSNorm, then the output projection
// (the logit lens, applied to a direction such as an SAE feature's decoder
// row, as feature dashboards show which tokens a feature promotes and which
// it suppresses).
func (m *Model) LogitLens(dir []float32) ([]float32, error) {
	if len(dir) != m.Dim {
		return nil, fmt.Errorf("logit lens: expected a direction of %d values, the model's residual stream, found %d", m.Dim, len(dir))
	}
	return m.logits(dir, 1), nil
}

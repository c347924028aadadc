package model

import (
	"math"
	"testing"
)

// TestLogitLens holds the lens to the definition computed here in float64:
// RMSNorm of the direction with the final norm's weights and the model's
// epsilon, then a dot product with every row of the output projection.
func TestLogitLens(t *testing.T) {
	m, _ := loadStories(t)
	embed, out := m.Embed.Float32(), m.Out.Float32()
	for _, tok := range []int{7, 260, 401} {
		dir := embed[tok*m.Dim : (tok+1)*m.Dim]
		got, err := m.LogitLens(dir)
		if err != nil {
			t.Fatal(err)
		}
		var ss float64
		for _, v := range dir {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/float64(m.Dim)+m.NormEps)
		worst := 0.0
		for r := range m.Vocab {
			var want float64
			for i, v := range dir {
				want += float64(m.Norm[i]) * float64(v) * inv * float64(out[r*m.Dim+i])
			}
			worst = math.Max(worst, math.Abs(want-float64(got[r])))
		}
		if worst > 1e-4 {
			t.Errorf("token %d's embedding through the lens: largest difference %.3g from the definition", tok, worst)
		}
	}
	if _, err := m.LogitLens(make([]float32, m.Dim+1)); err == nil {
		t.Error("a direction of the wrong width was accepted")
	}
}

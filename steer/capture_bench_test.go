package steer

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/activations/reason"
)

// BenchmarkCapture records 300 synthetic reasoning traces (about 50,000
// tokens) through stories260K at three layers.
func BenchmarkCapture(b *testing.B) {
	m, tok := loadStories(b)
	trs, err := reason.Traces(reason.Config{N: 300, Seed: 7})
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		dir := filepath.Join(b.TempDir(), "d", string(rune('a'+i)))
		if _, err := Capture(context.Background(), m, tok, trs, dir, CaptureOptions{Layers: []int{1, 2, 3}}); err != nil {
			b.Fatal(err)
		}
	}
}

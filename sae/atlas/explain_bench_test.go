package atlas

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/sae"
)

// BenchmarkExplain explains a randomly initialised TopK SAE (k 32) over the
// 20,000 steps of the default synthetic dump (d_model 256), for d_sae 1024
// and, without -short, 16,384: the encoding pass, the phrases of every
// feature and the held-out detection scores.
//
//	go test ./sae/atlas -run '^$' -bench Explain -benchtime 1x
func BenchmarkExplain(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "dump")
	if _, err := synth.Generate(ctx, path, synth.DefaultConfig(), false, nil); err != nil {
		b.Fatal(err)
	}
	d, steps := openDump(b, path)
	layer := d.Layers[0]
	for _, width := range []int{1024, 16384} {
		b.Run(fmt.Sprint("d_sae=", width), func(b *testing.B) {
			if width > 1024 && testing.Short() {
				b.Skip("-short")
			}
			s, err := sae.New(sae.TopK, layer.DModel, width, 32)
			if err != nil {
				b.Fatal(err)
			}
			s.Init(1, 1, nil, 0)
			b.ResetTimer()
			for range b.N {
				ex, err := Explain(ctx, s, layer, steps, ExplainOptions{HoldOutSeed: 1})
				if err != nil {
					b.Fatal(err)
				}
				explained := 0
				for _, fe := range ex.Features {
					if len(fe.Phrases) > 0 {
						explained++
					}
				}
				b.ReportMetric(float64(explained), "explained")
			}
		})
	}
}

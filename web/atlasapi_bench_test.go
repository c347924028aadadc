package web

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rise-interp/rise/sae"
)

// BenchmarkSelectionSteps times GET /api/saes/{sae}/selection/steps for 32
// random features of a 2,048-feature TopK SAE over the 20,000-step demo
// dump (d_model 256), through a real HTTP server, beside its reference:
// one pass of sae.ComputeFeatureStats over the same rows, the encoding
// pass the atlas job makes. A TopK SAE encodes every latent of every row,
// so the request should cost about what that pass costs; a ReLU SAE of the
// same width (RISE's recipe) encodes the 32 selected latents only.
func BenchmarkSelectionSteps(b *testing.B) {
	const width = 2048
	ts, ds := benchDemo(b)
	s := benchSAE(b, ts, "sel", sae.TopK, width, 32, 1)
	benchSAE(b, ts, "sel-relu", sae.Standard, width, 0, 2)
	rng := rand.New(rand.NewPCG(1, 2))

	steps := func(name string) func(b *testing.B) {
		return func(b *testing.B) {
			for range b.N {
				ids := make([]string, 32)
				for i := range ids {
					ids[i] = fmt.Sprint(rng.IntN(width))
				}
				benchGet(b, ts.URL+"/api/saes/"+name+"/selection/steps?features="+strings.Join(ids, ","))
			}
			b.ReportMetric(float64(ds.Dump.Rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		}
	}
	b.Run("selection-steps-topk", steps("sel"))
	b.Run("selection-steps-relu", steps("sel-relu"))
	b.Run("reference-feature-stats-pass", func(b *testing.B) {
		for range b.N {
			if _, err := sae.ComputeFeatureStats(context.Background(), s, ds.Dump.Layers[0], sae.FeatureStatsOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(ds.Dump.Rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

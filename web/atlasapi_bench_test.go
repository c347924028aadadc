package web

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations/synth"
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
	dir := b.TempDir()
	dump := filepath.Join(dir, "demo")
	if _, err := synth.Generate(context.Background(), dump, synth.DefaultConfig(), false, nil); err != nil {
		b.Fatal(err)
	}
	ws := &Workspace{Dir: filepath.Join(dir, "work")}
	ds, err := ws.AddDataset(context.Background(), dump, "")
	if err != nil {
		b.Fatal(err)
	}
	const width = 2048
	s, err := sae.New(sae.TopK, ds.Dump.DModel, width, 32)
	if err != nil {
		b.Fatal(err)
	}
	s.Init(1, 1, nil, 0)
	s.Metadata.HookLayer = ds.Dump.Layers[0].Number
	saeDir := filepath.Join(dir, "sel")
	if err := sae.Save(saeDir, s, sae.SaveOptions{}); err != nil {
		b.Fatal(err)
	}
	relu, err := sae.New(sae.Standard, ds.Dump.DModel, width, 0)
	if err != nil {
		b.Fatal(err)
	}
	relu.Init(2, 1, nil, 0)
	relu.Metadata.HookLayer = ds.Dump.Layers[0].Number
	reluDir := filepath.Join(dir, "sel-relu")
	if err := sae.Save(reluDir, relu, sae.SaveOptions{}); err != nil {
		b.Fatal(err)
	}
	srv := New(ws, Config{})
	defer srv.Close()
	for _, p := range []string{saeDir, reluDir} {
		m, err := ws.AddSAE(p)
		if err != nil {
			b.Fatal(err)
		}
		j := srv.StartAnalysis(m)
		<-j.Done()
		if v := j.View(); v.State != StateDone {
			b.Fatalf("analysis: %s", v.Error)
		}
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	rng := rand.New(rand.NewPCG(1, 2))

	steps := func(name string) func(b *testing.B) {
		return func(b *testing.B) {
			for range b.N {
				ids := make([]string, 32)
				for i := range ids {
					ids[i] = fmt.Sprint(rng.IntN(width))
				}
				resp, err := http.Get(ts.URL + "/api/saes/" + name + "/selection/steps?features=" + strings.Join(ids, ","))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("selection steps: %d", resp.StatusCode)
				}
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

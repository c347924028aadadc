package web

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/sae"
)

// BenchmarkFeatureAPI times GET /api/saes/{sae}/features/{id} on a
// 16,384-feature SAE over the 20,000-step demo dump (d_model 256), through
// a real HTTP server, for random features, and reports the 50th and 95th
// percentile latencies (the target is p95 under 50 ms). The SAE is a
// randomly initialised TopK SAE: the page's cost does not depend on what
// the features mean. Setting up (statistics, UMAP of 16,384 columns) takes
// a minute.
func BenchmarkFeatureAPI(b *testing.B) {
	const width = 16384
	ts, _ := benchDemo(b)
	benchSAE(b, ts, "wide", sae.TopK, width, 32, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		id := rng.IntN(width)
		start := time.Now()
		benchGet(b, fmt.Sprintf("%s/api/saes/wide/features/%d", ts.URL, id))
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50_ms")
	b.ReportMetric(q(0.95), "p95_ms")
}

// benchDemo serves the 20,000-step demo dump (d_model 256) from a fresh
// workspace over loopback.
func benchDemo(b *testing.B) (*testServer, *Dataset) {
	b.Helper()
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
	return serveTest(b, New(ws, Config{})), ds
}

// benchGet fetches url, reading its body to the end, and stops the
// benchmark unless it answers 200.
func benchGet(b *testing.B, url string) {
	b.Helper()
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
}

// benchSAE adds a randomly initialised SAE (the pages' cost does not
// depend on what its features mean) on the workspace's first dataset and
// waits for its analysis.
func benchSAE(b *testing.B, ts *testServer, name string, arch sae.Arch, width, k int, seed uint64) *sae.SAE {
	b.Helper()
	ds := ts.ws.Datasets()[0]
	s, err := sae.New(arch, ds.Dump.DModel, width, k)
	if err != nil {
		b.Fatal(err)
	}
	s.Init(seed, 1, nil, 0)
	s.Metadata.HookLayer = ds.Dump.Layers[0].Number
	dir := filepath.Join(b.TempDir(), name)
	if err := sae.Save(dir, s, sae.SaveOptions{}); err != nil {
		b.Fatal(err)
	}
	m, err := ts.ws.AddSAE(dir)
	if err != nil {
		b.Fatal(err)
	}
	j := ts.srv.StartAnalysis(m)
	<-j.Done()
	if v := j.View(); v.State != StateDone {
		b.Fatalf("analysis of %s: %s", name, v.Error)
	}
	return s
}

package web

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/sae"
)

// unnamedServer serves a planted dump with an unnamed behaviour ("to sum
// up", labelled other) and an SAE trained on it, analysed and explained.
func unnamedServer(t *testing.T) *testServer {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Rows, cfg.DModel, cfg.Features, cfg.UnnamedRate = 8000, 64, 128, 0.08
	ts, _ := plantedServer(t, cfg, "unnamed", "un-sae", func(ds *Dataset, _ *synth.Truth) (*sae.SAE, error) {
		s, _, err := sae.Train(context.Background(), ds.Dump.Layers[0], sae.TrainConfig{Arch: sae.TopK, Width: 256, K: 8, Batch: 256, Samples: 1_000_000, Seed: 1}, nil)
		return s, err
	})
	return ts
}

// plantedServer serves a dump rise synth plants with cfg, named dataset,
// and the SAE makeSAE gives for it, named saeName, analysed; it returns
// the server and the planted truth.
func plantedServer(t *testing.T, cfg synth.Config, dataset, saeName string, makeSAE func(*Dataset, *synth.Truth) (*sae.SAE, error)) (*testServer, *synth.Truth) {
	t.Helper()
	dir := t.TempDir()
	dump := filepath.Join(dir, dataset)
	ctx := context.Background()
	truth, err := synth.Generate(ctx, dump, cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := &Workspace{Dir: filepath.Join(dir, "work")}
	ds, err := ws.AddDataset(ctx, dump, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := makeSAE(ds, truth)
	if err != nil {
		t.Fatal(err)
	}
	if err := sae.Save(filepath.Join(dir, saeName), s, sae.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	md, err := ws.AddSAE(filepath.Join(dir, saeName))
	if err != nil {
		t.Fatal(err)
	}
	srv := New(ws, Config{Version: "test"})
	srv.StartAnalysis(md)
	ts := serveTest(t, srv)
	ts.waitReady(t, saeName)
	return ts, truth
}

// TestBrowserCandidates opens the behaviours page of an SAE trained on a
// dump with an unnamed behaviour: the candidate list names it by its
// phrase, sorts on a click of a header, and its Steer button opens the
// steering page with the candidate's features; phrase search lists
// features; a feature page shows its explanation and detection score.
func TestBrowserCandidates(t *testing.T) {
	skipShort(t, "browser test")
	ts := unnamedServer(t)
	b := newBrowser(t, ts)
	b.open("/behaviours?sae=un-sae")
	b.run("candidates", chromedp.WaitVisible(`[data-testid="candidates-table"] tbody tr`, chromedp.ByQuery))
	var first string
	b.run("first candidate", chromedp.Text(`[data-testid="candidates-table"] tbody tr`, &first, chromedp.ByQuery))
	if !strings.Contains(first, synth.UnnamedPhrase) {
		t.Errorf("the first candidate does not say %q: %q", synth.UnnamedPhrase, first)
	}
	// A click on "size" sorts by size, largest first.
	var sizes []string
	b.run("sort by size", chromedp.Click(`[data-testid="candidates-table"] th[data-col="size"]`, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll('[data-testid="candidates-table"] tbody tr td:nth-child(3)')].map((e) => e.textContent)`, &sizes))
	for i := 1; i < len(sizes); i++ {
		if len(sizes[i]) > len(sizes[i-1]) || len(sizes[i]) == len(sizes[i-1]) && sizes[i] > sizes[i-1] {
			t.Errorf("sorted by size: %v", sizes)
			break
		}
	}
	b.run("search", chromedp.SendKeys(`[data-testid="phrase-search"]`, "wait\r", chromedp.ByQuery),
		chromedp.WaitVisible(`[data-testid="search-table"] tbody tr`, chromedp.ByQuery))
	b.screenshot("candidates")

	b.open("/behaviours?sae=un-sae")
	b.run("steer a candidate", chromedp.WaitVisible(`[data-testid="candidate-steer"]`, chromedp.ByQuery),
		chromedp.Click(`[data-testid="candidate-steer"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-testid="steer-vectors"]`, chromedp.ByQuery))
	var loc, vectors string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(vectors, "mean of features") {
		b.run("steer vectors", chromedp.Location(&loc), chromedp.Text(`[data-testid="steer-vectors"]`, &vectors, chromedp.ByQuery))
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(loc, "/steer?sae=un-sae&features=") || !strings.Contains(vectors, "mean of features") {
		t.Errorf("Steer opened %s with vectors %q", loc, vectors)
	}

	b.open("/feature/un-sae/0")
	var balanced string
	b.run("feature explanation", chromedp.WaitVisible(`[data-testid="feature-detection"]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid="feature-detection-balanced"]`, &balanced, chromedp.ByQuery))
	if !regexp.MustCompile(`on as many firing steps as not: precision [01]\.\d\d, F1 [01]\.\d\d`).MatchString(balanced) {
		t.Errorf("the feature page's balanced detection reads %q", balanced)
	}
	b.screenshot("feature-explanation")

	// Naming the first candidate labels its steps and recomputes the atlas,
	// which then has the behaviour.
	b.open("/behaviours?sae=un-sae")
	var named string
	b.run("name a candidate", chromedp.WaitVisible(`[data-testid="candidate-name"]`, chromedp.ByQuery),
		chromedp.SendKeys(`[data-testid="candidate-name"]`, "summary", chromedp.ByQuery),
		chromedp.Click(`[data-testid="candidate-name-save"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-testid="candidate-named"]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid="candidate-named"]`, &named, chromedp.ByQuery))
	if !strings.HasPrefix(named, "summary: ") || strings.HasPrefix(named, "summary: 0 ") {
		t.Errorf("naming says %q", named)
	}
	ts.waitReady(t, "un-sae")
	if ts.ws.Dataset("unnamed").labels["summary"] == 0 {
		t.Error("no step is labelled summary after naming")
	}
	b.noScriptErrors()
}

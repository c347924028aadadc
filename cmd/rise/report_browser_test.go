package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rise-interp/rise/internal/browsertest"
)

// checkReportInBrowser opens report.html in Debian's chromium, from a
// file: URL and with the network observed, and checks that the page asked
// for nothing but itself, logged nothing (a blocked request logs a
// Content-Security-Policy violation), and drew every figure the inputs
// imply at a visible size. A copy of the page with an image from a local
// server shows that the watch sees a request when there is one.
func checkReportInBrowser(t *testing.T, path string) {
	var hits sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Store(r.URL.Path, true) }))
	defer srv.Close()

	ctx := browsertest.New(t, time.Minute, 1200, 900)

	watch := browsertest.Watch(t, ctx)
	load := func(file string) (reqs, msgs []string) {
		t.Helper()
		watch.Reset()
		if err := chromedp.Run(ctx, chromedp.Navigate("file://"+file),
			chromedp.WaitReady("body", chromedp.ByQuery), chromedp.Sleep(300*time.Millisecond)); err != nil {
			t.Fatalf("open %s: %v", file, err)
		}
		return watch.Requests(), watch.Logs()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}

	// The watch works: a page that loads an image is seen doing so.
	page, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(t.TempDir(), "probe.html")
	withImage := strings.Replace(string(page), "<body>", `<body><img src="`+srv.URL+`/pixel.png">`, 1)
	if err := os.WriteFile(probe, []byte(withImage), 0o644); err != nil {
		t.Fatal(err)
	}
	reqs, msgs := load(probe)
	_, served := hits.Load("/pixel.png")
	if len(reqs) < 2 && len(msgs) == 0 && !served {
		t.Fatalf("a page with an image from %s: no request, log entry or hit was seen (requests %v): the watch is blind", srv.URL, reqs)
	}

	reqs, msgs = load(abs)
	if len(reqs) != 1 || reqs[0] != "file://"+abs {
		t.Errorf("report.html made requests %v, want only itself", reqs)
	}
	if len(msgs) > 0 {
		t.Errorf("report.html logged %q", msgs)
	}
	var figs []struct {
		Kind   string  `json:"kind"`
		Width  float64 `json:"width"`
		Height float64 `json:"height"`
		Marks  int     `json:"marks"`
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll("figure.figure")].map(f => {
		const s = f.querySelector("svg"); const r = s ? s.getBoundingClientRect() : {width: 0, height: 0};
		return {kind: f.dataset.kind, width: r.width, height: r.height, marks: s ? s.querySelectorAll("path, circle").length : 0};
	})`, &figs)); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for i, f := range figs {
		kinds[f.Kind]++
		if f.Width < 300 || f.Height < 200 || f.Marks < 3 {
			t.Errorf("figure %d (%s) drawn %.0f x %.0f px with %d marks", i+1, f.Kind, f.Width, f.Height, f.Marks)
		}
	}
	for k, n := range reportFigures {
		if kinds[k] != n {
			t.Errorf("%d %s figures in the browser, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}
	if len(figs) != 7 {
		t.Errorf("%d figures in the browser, want 7", len(figs))
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 80)); err == nil {
		if dir := os.Getenv("RISE_ARTIFACTS"); dir != "" {
			os.WriteFile(filepath.Join(dir, "report.png"), png, 0o644)
		}
	}
}

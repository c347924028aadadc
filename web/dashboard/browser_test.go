package dashboard

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rise-interp/rise/internal/browsertest"
)

// TestDashboardOpensFromDisk writes a dashboard, opens it from file:// in
// headless chromium and checks that it renders every feature page (its
// histogram bars, examples, explanation and detection scores) while the
// browser asks for nothing but the file itself.
func TestDashboardOpensFromDisk(t *testing.T) {
	browsertest.Chromium(t)
	fx := newFixture(t)
	rep, err := Build(context.Background(), fx.sae, fx.layer, fx.steps, Options{Features: []int{0, 1}, Top: 4, HoldOut: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	rep.Features[0].Lens = &Lens{Promoted: []LensToken{{Token: " Wait", ID: 7, Logit: 3.5}}, Suppressed: []LensToken{{Token: " sum", ID: 9, Logit: -2}}}
	page, err := WriteHTML(rep, HTMLOptions{SAE: "sae", Data: "dump"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "features.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + path

	ctx := browsertest.New(t, 2*time.Minute, 1200, 900)
	watch := browsertest.Watch(t, ctx)
	var sections, bars int
	var text string
	var detection []string
	if err := chromedp.Run(ctx, chromedp.Navigate(url),
		chromedp.WaitVisible(`#f1`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("section.feature").length`, &sections),
		chromedp.Evaluate(`document.querySelectorAll("#f0 svg rect.bar").length`, &bars),
		chromedp.Evaluate(`[...document.querySelectorAll("#f0 table.detection td")].map(td => td.textContent)`, &detection),
		chromedp.Text(`#f0`, &text, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 90)); err == nil {
		dir := os.Getenv("RISE_ARTIFACTS")
		if dir == "" {
			dir = filepath.Join("..", "..", ".artifacts", "browser")
		}
		if os.MkdirAll(dir, 0o755) == nil {
			os.WriteFile(filepath.Join(dir, "dashboard-file.png"), png, 0o644)
		}
	}
	for _, r := range watch.Requests() {
		if r != url {
			t.Errorf("the page asked for %s; a dashboard opened from disk must need nothing else", r)
		}
	}
	if problems := watch.Exceptions(); len(problems) > 0 {
		t.Errorf("page errors: %v", problems)
	}
	f0 := rep.Features[0]
	switch {
	case sections != 2:
		t.Errorf("%d feature sections, expected 2", sections)
	case bars == 0:
		t.Error("feature 0's histogram has no bars")
	case !strings.Contains(text, "Wait, let me check that again.") || !strings.Contains(text, "Top steps") || !strings.Contains(text, "band ("):
		t.Errorf("feature 0's page lacks its examples: %.400q", text)
	case len(f0.Phrases) == 0 || !strings.Contains(text, f0.Phrases[0].Text):
		t.Errorf("feature 0's page lacks its explanation %v: %.400q", f0.Phrases, text)
	case !strings.Contains(text, "Logit lens") || !strings.Contains(text, "Wait"):
		t.Errorf("feature 0's page lacks its logit lens: %.400q", text)
	case len(detection) != 6 || !strings.Contains(detection[0], "held-out"):
		t.Errorf("feature 0's detection row %q", detection)
	}
}

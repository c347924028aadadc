package web

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserTokenView: with a model attached, a feature page shows its
// examples token by token (one state token marked per example) and, on
// request, the tokens its direction raises and lowers.
func TestBrowserTokenView(t *testing.T) {
	skipShort(t, "browser test")
	ts := storiesServer(t)
	id := -1
	for i := range 64 {
		var f struct {
			Fires int `json:"fires"`
		}
		if ts.get(t, fmt.Sprintf("/api/saes/st-sae/features/%d", i), &f) == 200 && f.Fires >= 3 {
			id = i
			break
		}
	}
	if id < 0 {
		t.Fatal("no feature fires three times")
	}
	b := newBrowser(t, ts)
	b.open(fmt.Sprintf("/feature/st-sae/%d", id))
	var examples, states, lit int
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && examples == 0 {
		b.run("count token examples", chromedp.Evaluate(`document.querySelectorAll('[data-testid="token-example"]').length`, &examples))
		time.Sleep(100 * time.Millisecond)
	}
	b.run("count tokens", chromedp.Evaluate(`document.querySelectorAll('[data-testid="token-example"] .tok.state').length`, &states),
		chromedp.Evaluate(`[...document.querySelectorAll('[data-testid="token-example"] .tok')].filter((e) => e.style.background).length`, &lit))
	if examples == 0 || states < examples || lit == 0 {
		b.screenshot("token-view")
		t.Fatalf("token view: %d examples, %d state tokens, %d highlighted tokens (console %v)", examples, states, lit, b.console)
	}
	b.run("measure the effect", chromedp.Click(`[data-testid="measure-effect"]`, chromedp.ByQuery))
	var items int
	for deadline = time.Now().Add(30 * time.Second); time.Now().Before(deadline) && items == 0; time.Sleep(100 * time.Millisecond) {
		b.run("count effect tokens", chromedp.Evaluate(`document.querySelectorAll('[data-testid="steering-effect"] li').length`, &items))
	}
	b.screenshot("feature-token-view")
	if items != 2*effectTokens {
		t.Errorf("steering effect lists %d tokens, want %d (console %v)", items, 2*effectTokens, b.console)
	}
	b.noScriptErrors()
}

package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/sae"
)

// tokenServer serves a planted dump with a token feature (it fires on
// "Wait" whatever the step's label) and the SAE whose latents are the
// planted features (orthonormal directions: decoder rows the directions,
// encoder their transpose, b_dec the offset, b_enc above the noise). It
// returns the server and the planted truth.
func tokenServer(t *testing.T) (*testServer, *synth.Truth) {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Rows, cfg.DModel, cfg.Features, cfg.GroupCoherence, cfg.TokenRate = 6000, 256, 256, 0, 0.05
	return plantedServer(t, cfg, "tok", "tok-sae", func(_ *Dataset, truth *synth.Truth) (*sae.SAE, error) {
		s, err := sae.Oracle(truth.Directions, truth.Offset, truth.Features, truth.DModel, -0.25)
		if err == nil {
			s.Metadata.HookLayer = cfg.Layer
		}
		return s, err
	})
}

// TestTokenFeaturePage: the server probes the planted dump without a
// model; the feature API gives the planted token feature's verdict
// (flagged, left out of the reflection vector) and a planted reflection
// feature's (not flagged), and the feature page shows them.
func TestTokenFeaturePage(t *testing.T) {
	ts, truth := tokenServer(t)
	type verdict struct {
		Token *struct {
			Behaviour string  `json:"behaviour"`
			Ratio     float64 `json:"ratio"`
			Flagged   bool    `json:"flagged"`
			LeftOut   bool    `json:"left_out"`
		} `json:"token"`
	}
	get := func(id int) verdict {
		var v verdict
		if code := ts.get(t, fmt.Sprintf("/api/saes/tok-sae/features/%d", id), &v); code != http.StatusOK {
			t.Fatalf("feature %d: status %d", id, code)
		}
		return v
	}
	tokenID, reflID := -1, -1
	for _, id := range truth.Behaviours[synth.Token] {
		if v := get(id); v.Token != nil {
			tokenID = id
			if !v.Token.Flagged || !v.Token.LeftOut || v.Token.Behaviour != "reflection" {
				t.Errorf("planted token feature %d: verdict %+v, expected flagged and left out of the reflection vector", id, *v.Token)
			}
		}
	}
	for _, id := range truth.Behaviours[synth.Reflection] {
		if v := get(id); v.Token != nil {
			reflID = id
			if v.Token.Flagged {
				t.Errorf("planted reflection feature %d: verdict %+v, expected not flagged", id, *v.Token)
			}
		}
	}
	if tokenID < 0 || reflID < 0 {
		t.Fatalf("no verdict on a planted token feature (%d) or reflection feature (%d)", tokenID, reflID)
	}

	if testing.Short() {
		return
	}
	b := newBrowser(t, ts)
	var text string
	b.open(fmt.Sprintf("/feature/tok-sae/%d", tokenID))
	b.run("token verdict", chromedp.WaitVisible(`[data-testid="feature-token"][data-flagged="true"]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid="feature-token"]`, &text, chromedp.ByQuery))
	if !strings.Contains(text, "Token feature") || !strings.Contains(text, "left out of the reflection vector") {
		t.Errorf("token feature %d's page says %q", tokenID, text)
	}
	b.screenshot("feature-token")
	b.open(fmt.Sprintf("/feature/tok-sae/%d", reflID))
	b.run("no token verdict", chromedp.WaitVisible(`[data-testid="feature-token"][data-flagged="false"]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid="feature-token"]`, &text, chromedp.ByQuery))
	if !strings.Contains(text, "not a token feature") {
		t.Errorf("reflection feature %d's page says %q", reflID, text)
	}
	b.noScriptErrors()
}

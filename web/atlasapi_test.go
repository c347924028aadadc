package web

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestSelectionAPIErrors: a selection's vector and steps refuse a bad
// features or top parameter with a 400 that says what was expected and
// what was found, and an unknown SAE with a 404; a feature asked for no
// nearest features answers an empty list.
func TestSelectionAPIErrors(t *testing.T) {
	dump := plantedDump(t)
	dir := filepath.Join(t.TempDir(), "given")
	trainSAE(t, dump, dir, 1)
	ts := serverOn(t, dump, filepath.Join(t.TempDir(), "work"), dir)
	ts.waitReady(t, "given")

	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/api/saes/given/selection/vector.npy", 400, "parameter features: expected comma-separated feature ids from 0 to 127, found none"},
		{"/api/saes/given/selection/vector.npy?features=1,x", 400, `found "x"`},
		{"/api/saes/given/selection/vector.npy?features=128", 400, `ids from 0 to 127, found "128"`},
		{"/api/saes/given/selection/steps?features=-1", 400, `found "-1"`},
		{"/api/saes/given/selection/steps?features=1&top=201", 400, "parameter top: expected at most 200, found 201"},
		{"/api/saes/given/selection/steps?features=1&top=x", 400, `parameter top: expected a non-negative integer, found "x"`},
		{"/api/saes/nope/selection/steps?features=1", 404, `no SAE "nope"`},
	} {
		var e struct{ Error string }
		if code := ts.get(t, c.path, &e); code != c.status || !strings.Contains(e.Error, c.want) {
			t.Errorf("GET %s: %d %q, want %d and %q", c.path, code, e.Error, c.status, c.want)
		}
	}

	var f struct {
		Nearest  []nearView `json:"nearest"`
		TopSteps []topStep  `json:"top_steps"`
	}
	if code := ts.get(t, "/api/saes/given/features/3?top=1&nearest=0", &f); code != http.StatusOK || f.Nearest == nil || len(f.Nearest) != 0 {
		t.Errorf("GET a feature with nearest=0: %d, nearest %v; want 200 and an empty list", code, f.Nearest)
	}
}

package web

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// TestExplainAPI trains an SAE through the API and reads its explanations:
// the feature page's explanation and detection score, phrase search,
// candidate behaviours and the explanation of a selection, with the
// explanations cached in the work directory.
func TestExplainAPI(t *testing.T) {
	ts := newTestServer(t)
	ts.trainReady(t, "ex", 300)

	var f map[string]any
	if code := ts.get(t, "/api/saes/ex/features/0", &f); code != 200 {
		t.Fatalf("feature 0: %d %v", code, f)
	}
	det, ok := f["detection"].(map[string]any)
	if !ok || det["steps"].(float64) <= 0 {
		t.Errorf("feature 0: detection %v", f["detection"])
	}

	var a atlas.Atlas
	ts.get(t, "/api/saes/ex/atlas", &a)
	if a.Clusters[0].Explained == nil || a.Features[0].Detection == nil {
		t.Fatalf("atlas not explained: cluster 0 %+v, feature 0 %+v", a.Clusters[0], a.Features[0])
	}
	// Search for the first phrase of some explanation finds that feature.
	var want atlas.Feature
	for _, ft := range a.Features {
		if len(ft.Explanation) > 0 {
			want = ft
			break
		}
	}
	if want.Explanation == nil {
		t.Fatal("no feature has an explanation")
	}
	var res struct {
		Hits []atlas.SearchHit `json:"hits"`
	}
	q := want.Explanation[0].Text
	if code := ts.get(t, "/api/saes/ex/search?q="+strings.ReplaceAll(q, " ", "+"), &res); code != 200 {
		t.Fatalf("search %q: %d", q, code)
	}
	found := false
	for _, h := range res.Hits {
		found = found || h.ID == want.ID
	}
	if !found {
		t.Errorf("search %q: feature %d not among %+v", q, want.ID, res.Hits)
	}

	var cands struct {
		Candidates []atlas.GroupExplanation `json:"candidates"`
		Known      []string                 `json:"known"`
	}
	if code := ts.get(t, "/api/saes/ex/candidates", &cands); code != 200 || cands.Candidates == nil || len(cands.Known) == 0 {
		t.Errorf("candidates: %d %+v", code, cands)
	}

	var g atlas.GroupExplanation
	if code := ts.get(t, "/api/saes/ex/group?features=0,1,2", &g); code != 200 || g.Size != 3 || len(g.Vector) != 32 {
		t.Errorf("group 0,1,2: %d %+v", code, g)
	}

	var e map[string]any
	for path, want := range map[string]string{
		"/api/saes/ex/search?q=":             "parameter q",
		"/api/saes/ex/group?features=1,x":    "parameter features",
		"/api/saes/ex/group?features=100000": "parameter features",
		"/api/saes/nope/candidates":          "no SAE",
	} {
		if code := ts.get(t, path, &e); code/100 != 4 || !strings.Contains(fmt.Sprint(e["error"]), want) {
			t.Errorf("GET %s: %d %v, want a 4xx mentioning %q", path, code, e, want)
		}
	}
	// The explanations are cached beside the atlas and read back whole.
	ex, err := atlas.LoadExplanations(filepath.Join(ts.ws.Dir, "saes", "ex", explanationsFile), ts.ws.SAE("ex").Dataset.Steps)
	if err != nil || len(ex.Features) != 128 || !slices.Equal(ex.Features[want.ID].Phrases, want.Explanation) {
		t.Errorf("cached explanations: %v", err)
	}
}

// TestFeaturesDirection checks the vector of several features against the
// renormalised mean of their unit decoder columns, worked by hand.
func TestFeaturesDirection(t *testing.T) {
	s, err := sae.New(sae.Standard, 2, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	copy(s.WDec, []float32{2, 0, 0, 3, 0, 0})
	v, err := featuresDirection(s, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if c := math.Sqrt(0.5); math.Abs(float64(v[0])-c) > 1e-6 || math.Abs(float64(v[1])-c) > 1e-6 {
		t.Errorf("direction of (1,0) and (0,1): %v", v)
	}
	if _, err := featuresDirection(s, []int{0, 3}); err == nil || !strings.Contains(err.Error(), "id 3") {
		t.Errorf("feature 3 of 3: %v", err)
	}
	if _, err := featuresDirection(s, []int{2}); err == nil {
		t.Error("a zero column: expected an error")
	}
}

// TestSteerWithFeatures steers stories260K along the mean of several
// features' decoder columns, as the candidates' "Steer" button asks.
func TestSteerWithFeatures(t *testing.T) {
	ts := storiesServer(t)
	var res struct {
		Default struct{ Text string } `json:"default"`
		Steered struct{ Text string } `json:"steered"`
		Error   string                `json:"error"`
	}
	body := `{"prompt": "", "vectors": [{"sae": "st-sae", "features": [1, 3, 5]}], "operator": "add", "strength": 12, "positions": "all", "max_tokens": 40, "seed": 1}`
	if code := ts.post(t, "/api/steer", body, &res); code != 200 || res.Steered.Text == res.Default.Text {
		t.Errorf("features 1, 3, 5: %d %s, default %q, steered %q", code, res.Error, res.Default.Text, res.Steered.Text)
	}
	var e map[string]any
	bad := `{"prompt": "", "vectors": [{"sae": "st-sae", "features": [1, 999]}], "strength": 1, "max_tokens": 4}`
	if code := ts.post(t, "/api/steer", bad, &e); code != 400 || !strings.Contains(fmt.Sprint(e["error"]), "id 999") {
		t.Errorf("feature 999: %d %v", code, e)
	}
}

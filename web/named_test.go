package web

import (
	"context"
	"net/http"
	"slices"
	"testing"
)

// TestNameBehaviour: a candidate behaviour nobody named gets a name: its
// phrases label the dataset's steps, the SAE is analysed again and its
// atlas has the behaviour with a vector; the name is saved in the
// workspace and read back by a new server; bad names are refused.
func TestNameBehaviour(t *testing.T) {
	ts := unnamedServer(t)
	var c struct {
		Candidates []struct {
			Phrases []struct {
				Text string `json:"text"`
			} `json:"phrases"`
		} `json:"candidates"`
	}
	if code := ts.get(t, "/api/saes/un-sae/candidates", &c); code != 200 || len(c.Candidates) == 0 || len(c.Candidates[0].Phrases) == 0 {
		t.Fatalf("candidates: %d %+v", code, c)
	}
	phrase := c.Candidates[0].Phrases[0].Text
	if phrase != "to sum up" {
		t.Fatalf("the top candidate's first phrase is %q, want the withheld %q", phrase, "to sum up")
	}
	var named struct {
		Behaviour string   `json:"behaviour"`
		Steps     int      `json:"steps"`
		Jobs      []string `json:"jobs"`
	}
	if code := ts.post(t, "/api/datasets/unnamed/behaviours", `{"name": "summary", "phrases": ["`+phrase+`"]}`, &named); code != http.StatusAccepted || named.Steps == 0 || len(named.Jobs) != 1 {
		t.Fatalf("naming: %d %+v", code, named)
	}
	ts.waitReady(t, "un-sae")
	var bs struct {
		Behaviours []struct {
			Name    string `json:"name"`
			Steps   int    `json:"steps"`
			Columns []int  `json:"columns"`
		} `json:"behaviours"`
	}
	if code := ts.get(t, "/api/saes/un-sae/behaviours", &bs); code != 200 {
		t.Fatalf("behaviours: %d", code)
	}
	i := slices.IndexFunc(bs.Behaviours, func(b struct {
		Name    string `json:"name"`
		Steps   int    `json:"steps"`
		Columns []int  `json:"columns"`
	}) bool {
		return b.Name == "summary"
	})
	if i < 0 || bs.Behaviours[i].Steps == 0 || len(bs.Behaviours[i].Columns) == 0 {
		t.Fatalf("the atlas after naming: %+v", bs.Behaviours)
	}
	t.Logf("summary: %d steps, %d columns", bs.Behaviours[i].Steps, len(bs.Behaviours[i].Columns))

	for _, bad := range []struct {
		body string
		code int
	}{
		{`{"name": "summary", "phrases": ["x"]}`, http.StatusConflict},
		{`{"name": "reflection", "phrases": ["x"]}`, http.StatusConflict},
		{`{"name": "other", "phrases": ["x"]}`, http.StatusConflict},
		{`{"name": "a b", "phrases": ["x"]}`, http.StatusBadRequest},
		{`{"name": "fresh", "phrases": []}`, http.StatusBadRequest},
		{`{"name": "fresh", "phrases": ["  "]}`, http.StatusBadRequest},
	} {
		var e map[string]any
		if code := ts.post(t, "/api/datasets/unnamed/behaviours", bad.body, &e); code != bad.code {
			t.Errorf("POST %s: %d %v, want %d", bad.body, code, e, bad.code)
		}
	}

	// A new workspace over the same directory reads the name back.
	ws := &Workspace{Dir: ts.ws.Dir}
	ds, err := ws.AddDataset(context.Background(), ts.ws.Dataset("unnamed").Path, "")
	if err != nil {
		t.Fatal(err)
	}
	if ds.labels["summary"] != ts.ws.Dataset("unnamed").labels["summary"] || ds.labels["summary"] == 0 || len(ds.named) != 1 {
		t.Errorf("after a restart: %d summary steps and %d named, want %d and 1", ds.labels["summary"], len(ds.named), ts.ws.Dataset("unnamed").labels["summary"])
	}
}

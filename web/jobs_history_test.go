package web

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestSteerHistoryBounded sends 200 steering requests with a long prompt
// through the fake model: GET /api/jobs stays under 100 KB (the table keeps
// the last KeepEnded["steer"] of them, by their prompt's start and without
// results), a page of the list is a page, a training job is not pushed out
// by them, and a finished request shows its whole progress.
func TestSteerHistoryBounded(t *testing.T) {
	f := &fakeModel{}
	ts := steerServer(t, f, Config{Version: "test"})
	train := ts.train(t, "kept", 50)
	<-ts.srv.jobs.Get(train).Done()
	prompt := strings.Repeat("What is the sum of the first 20 odd numbers? ", 20)
	for i := range 200 {
		body := fmt.Sprintf(`{"prompt": %q, "vectors": [{"sae": "s", "feature": %d}], "max_tokens": 120}`, prompt, i%64)
		if code := ts.send(t, "POST", "/api/steer", body, nil); code != http.StatusOK {
			t.Fatalf("steering request %d: %d", i, code)
		}
	}
	for _, path := range []string{"/api/jobs", "/api/jobs?limit=500"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) >= 100<<10 {
			t.Errorf("GET %s after 200 steering requests: %d bytes, want under 100 KB", path, len(b))
		}
	}
	var all struct {
		Total, Offset, Limit int
		Jobs                 []JobView
	}
	ts.get(t, "/api/jobs?kind=steer&limit=500", &all)
	if want := KeepEnded["steer"]; all.Total != want || len(all.Jobs) != want {
		t.Errorf("after 200 steering requests the table keeps %d (%d listed), want the last %d", all.Total, len(all.Jobs), want)
	}
	for _, j := range all.Jobs {
		if j.Result != nil {
			t.Fatalf("the list carries job %s's result", j.ID)
		}
		if j.Progress.Done != j.Progress.Total || j.Progress.Total != 240 {
			t.Fatalf("a finished steering request shows progress %+v, want 240/240", j.Progress)
		}
	}
	var page struct {
		Total, Offset, Limit int
		Jobs                 []JobView
	}
	ts.get(t, "/api/jobs?offset=10&limit=5", &page)
	if page.Total != KeepEnded["steer"]+2 || len(page.Jobs) != 5 || page.Jobs[0].ID != all.Jobs[10].ID {
		t.Errorf("page offset 10 limit 5: total %d, %d jobs, first %v; want %d jobs in all and the 11th newest first",
			page.Total, len(page.Jobs), page.Jobs, KeepEnded["steer"]+2)
	}
	ts.get(t, "/api/jobs?kind=train", &page)
	if page.Total != 1 || page.Jobs[0].ID != train {
		t.Errorf("the training job after 200 steering requests: %+v", page)
	}
	var one JobView
	if code := ts.get(t, "/api/jobs/"+all.Jobs[0].ID, &one); code != http.StatusOK || one.Result == nil {
		t.Errorf("GET /api/jobs/%s: %d, result %v; want the job with its result", all.Jobs[0].ID, code, one.Result)
	}
	var e map[string]any
	if code := ts.get(t, "/api/jobs?kind=nope", &e); code != http.StatusBadRequest {
		t.Errorf("kind=nope: %d, want 400", code)
	}
}

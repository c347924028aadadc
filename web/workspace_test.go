package web

import (
	"strings"
	"testing"
)

// TestTrainSettingsOutOfRange posts training jobs whose settings no SAE
// could be trained with: each is refused with 400 naming the field, and no
// SAE or job is left behind.
func TestTrainSettingsOutOfRange(t *testing.T) {
	ts := newTestServer(t)
	for _, c := range []struct{ body, field string }{
		{`{"kind": "train", "dataset": "planted", "width": 576460752303423488}`, "width"},
		{`{"kind": "train", "dataset": "planted", "steps": -1}`, "steps"},
	} {
		var e struct{ Error string }
		if code := ts.post(t, "/api/jobs", c.body, &e); code != 400 {
			t.Errorf("POST %s: %d %q, want 400", c.body, code, e.Error)
			continue
		}
		if !strings.Contains(strings.ToLower(e.Error), c.field) {
			t.Errorf("POST %s: error %q does not name %q", c.body, e.Error, c.field)
		}
	}
	var saes, jobs []any
	ts.get(t, "/api/saes", &saes)
	ts.get(t, "/api/jobs", &jobs)
	if len(saes) != 0 || len(jobs) != 0 {
		t.Errorf("refused requests left %d SAEs and %d jobs", len(saes), len(jobs))
	}
}

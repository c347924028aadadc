package web

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
)

// FuzzAPI sends arbitrary JSON bodies to the job and steering endpoints and
// arbitrary query strings to the step browser: every answer is JSON with a
// status below 500 (a bad request is the client's), and the server goes on.
func FuzzAPI(f *testing.F) {
	f.Add(`{"kind": "train", "dataset": "nope", "k": 4}`, "q=wait&label=reflection&limit=3")
	f.Add(`{"kind": "atlas", "sae": "x"}`, "offset=-1")
	f.Add(`{"kind": 3}`, "limit=99999999999999999999")
	f.Add(`[1, 2`, "trace=%zz")
	f.Add(`{"prompt": "x", "vectors": [{"npy": "AAAA"}]}`, "label=&q=")
	ts := newTestServer(f)
	f.Fuzz(func(t *testing.T, body, query string) {
		check := func(what string, resp *http.Response, err error) {
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("%s: %d %s", what, resp.StatusCode, b)
			}
			if !json.Valid(b) {
				t.Fatalf("%s: the answer is not JSON: %.200s", what, b)
			}
		}
		for _, path := range []string{"/api/jobs", "/api/steer"} {
			resp, err := http.Post(ts.URL+path, "application/json", bytes.NewReader([]byte(body)))
			check("POST "+path, resp, err)
		}
		if v, err := url.ParseQuery(query); err == nil {
			resp, err := http.Get(ts.URL + "/api/datasets/planted/steps?" + v.Encode())
			check("GET steps", resp, err)
		}
	})
}

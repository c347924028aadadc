package web

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// jobCount is how many jobs the server has started.
func (ts *testServer) jobCount() int { return len(ts.srv.jobs.List()) }

// raw sends a request with the given headers (Host among them) and
// returns the status and the decoded JSON error, if any.
func (ts *testServer) raw(t *testing.T, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("%s %s: %d answered %q, not a JSON error: %.100s", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return resp.StatusCode, string(b)
}

const csrfTrain = `{"kind": "train", "dataset": "planted", "name": "csrf", "arch": "topk", "k": 4, "width": 32, "steps": 50}`

// TestCrossSiteWrites: a request that changes something is taken only as
// JSON and only from the workbench's own origin. What a form or a no-cors
// fetch of another site can send (text/plain, form encodings, no content
// type) gets 415; a JSON request whose Origin or Sec-Fetch-Site names
// another origin gets 403; no job starts. The preflight a cross-origin JSON
// request needs is not granted.
func TestCrossSiteWrites(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		want                     int
		says                     string
	}{
		{"text/plain form", "POST", "/api/jobs", csrfTrain, map[string]string{"Content-Type": "text/plain"}, 415, "text/plain"},
		{"no-cors fetch", "POST", "/api/jobs", csrfTrain, map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://localhost:18081", "Sec-Fetch-Site": "cross-site"}, 403, "Sec-Fetch-Site"},
		{"urlencoded form", "POST", "/api/jobs", csrfTrain, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"multipart form", "POST", "/api/jobs", csrfTrain, map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 415, "application/json"},
		{"no content type", "POST", "/api/jobs", csrfTrain, nil, 415, "found none"},
		{"steering as text", "POST", "/api/steer", `{"prompt": "x"}`, map[string]string{"Content-Type": "text/plain"}, 415, "application/json"},
		{"JSON from another origin", "POST", "/api/jobs", csrfTrain, map[string]string{"Content-Type": "application/json", "Origin": "http://localhost:18081"}, 403, "Origin"},
		{"JSON from another port of the same host", "POST", "/api/jobs", csrfTrain, map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"}, 403, "Origin"},
		{"JSON from a sandboxed page", "POST", "/api/jobs", csrfTrain, map[string]string{"Content-Type": "application/json", "Origin": "null"}, 403, "Origin"},
		{"JSON from the same site", "POST", "/api/jobs", csrfTrain, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403, "same-site"},
		{"DELETE as text", "DELETE", "/api/jobs/j1", "", nil, 415, "application/json"},
		{"PUT as form", "PUT", "/api/jobs", csrfTrain, map[string]string{"Content-Type": "text/plain"}, 415, "application/json"},
	} {
		code, body := ts.raw(t, tc.method, tc.path, tc.body, tc.header)
		if code != tc.want || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d %s, want %d mentioning %q", tc.name, code, body, tc.want, tc.says)
		}
	}
	if n := ts.jobCount(); n != 0 {
		t.Fatalf("cross-site requests started %d jobs", n)
	}

	// A preflight for a cross-origin JSON request: no CORS grant.
	req, _ := http.NewRequest("OPTIONS", ts.URL+"/api/jobs", nil)
	req.Header.Set("Origin", "http://localhost:18081")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 2 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Headers") != "" {
		t.Errorf("preflight: %d %v, want a refusal without CORS headers", resp.StatusCode, resp.Header)
	}

	// The workbench's own pages: JSON, from its origin, as browsers and
	// scripts send it.
	for _, h := range []map[string]string{
		{"Content-Type": "application/json"},
		{"Content-Type": "application/json; charset=utf-8", "Origin": ts.URL, "Sec-Fetch-Site": "same-origin"},
		{"Content-Type": "application/json", "Sec-Fetch-Site": "none"},
	} {
		body := strings.Replace(csrfTrain, `"csrf"`, fmt.Sprintf(`"own-%d"`, ts.jobCount()), 1)
		if code, b := ts.raw(t, "POST", "/api/jobs", body, h); code != http.StatusAccepted {
			t.Errorf("POST /api/jobs with %v: %d %s, want 202", h, code, b)
		}
	}
	// Reads stay open to every origin's simple requests (they get no CORS
	// grant, so the page cannot read the answer).
	if code, _ := ts.raw(t, "GET", "/api/status", "", map[string]string{"Origin": "http://localhost:18081", "Sec-Fetch-Site": "cross-site"}); code != 200 {
		t.Errorf("a GET with another Origin: %d", code)
	}
	for _, j := range ts.srv.jobs.List() {
		j.Cancel()
	}
}

package web

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
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
	host := strings.TrimPrefix(ts.URL, "http://")
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
	if code, _ := ts.raw(t, "GET", "/api/status", "", map[string]string{"Origin": "http://localhost:18081", "Sec-Fetch-Site": "cross-site", "Host": host}); code != 200 {
		t.Errorf("a GET with another Origin: %d", code)
	}
	for _, j := range ts.srv.jobs.List() {
		j.Cancel()
	}
}

// TestDNSRebinding: over loopback the server answers only requests that
// name it as localhost, 127.0.0.1 or [::1] with its port (or an allowed
// host); a request for another name, as a page of a site whose name was
// rebound to 127.0.0.1 sends, gets 421 with a JSON error, for reads,
// writes and websockets alike, and starts nothing.
func TestDNSRebinding(t *testing.T) {
	ts := newTestServer(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.URL, "http://"))
	evil := "attacker.example:" + port
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/status", ""},
		{"GET", "/", ""},
		{"GET", "/api/datasets/planted/steps", ""},
		{"POST", "/api/jobs", csrfTrain},
	} {
		code, body := ts.raw(t, tc.method, tc.path, tc.body, map[string]string{"Host": evil, "Origin": "http://" + evil, "Content-Type": "application/json"})
		if code != http.StatusMisdirectedRequest || !strings.Contains(body, "attacker.example") {
			t.Errorf("%s %s for Host %s: %d %s, want 421 naming the host", tc.method, tc.path, evil, code, body)
		}
	}
	if n := ts.jobCount(); n != 0 {
		t.Fatalf("a rebound name started %d jobs", n)
	}

	job := ts.train(t, "rebound", 50)
	u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/api/jobs/" + job + "/events"
	c, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Host": {evil}, "Origin": {"http://" + evil}})
	if err == nil {
		c.Close()
	}
	if resp == nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("a websocket for Host %s: %v %v, want 421", evil, resp, err)
	}

	for host, want := range map[string]int{
		"localhost:" + port:        200,
		"LocalHost:" + port:        200,
		"127.0.0.1:" + port:        200,
		"[::1]:" + port:            200,
		"localhost:1":              421,
		"127.0.0.1:1":              421,
		"localhost":                421, // port 80
		"localhost.:" + port:       421,
		"127.0.0.1.nip.io:" + port: 421,
		"10.0.0.2:" + port:         421,
		"tunnel.example:9000":      421,
		"tunnel.example:" + port:   421,
	} {
		if code, body := ts.raw(t, "GET", "/api/status", "", map[string]string{"Host": host}); code != want {
			t.Errorf("Host %q: %d %.100s, want %d", host, code, body, want)
		}
	}

	// Names allowed by the configuration: any port, or the one given.
	srv := New(ts.ws, Config{AllowedHosts: []string{"tunnel.example", "localhost:9000"}})
	defer srv.Close()
	ta := &testServer{Server: httptest.NewServer(srv), srv: srv, ws: ts.ws}
	defer ta.Close()
	for host, want := range map[string]int{"tunnel.example:9000": 200, "TUNNEL.example:1": 200, "localhost:9000": 200, "localhost:9001": 421, "attacker.example:9000": 421} {
		if code, _ := ta.raw(t, "GET", "/api/status", "", map[string]string{"Host": host}); code != want {
			t.Errorf("with allowed hosts, Host %q: %d, want %d", host, code, want)
		}
	}
	ts.waitReady(t, "rebound")
}

// TestHostCheckOnlyOnLoopback: a request that arrived at an address that
// is not loopback is not held to loopback names (the access token guards
// such a server).
func TestHostCheckOnlyOnLoopback(t *testing.T) {
	srv := New(&Workspace{Dir: t.TempDir()}, Config{})
	defer srv.Close()
	for local, ok := range map[string]bool{"10.1.2.3:8080": true, "[2001:db8::1]:8080": true, "127.0.0.1:8080": false, "[::1]:8080": false, "127.0.0.2:8080": false} {
		ap, err := netAddr(local)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "http://workbench.example:8080/api/status", nil)
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, ap))
		if err := srv.checkHost(r); (err == nil) != ok {
			t.Errorf("Host workbench.example:8080 arriving at %s: %v", local, err)
		}
	}
}

func netAddr(s string) (net.Addr, error) { return net.ResolveTCPAddr("tcp", s) }

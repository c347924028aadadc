package steer

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// badRequest is a request a backend server must refuse.
type badRequest struct{ method, path, body, want string }

// checkBadRequests sends each request to the server at url and requires a
// 4xx status with a JSON error that mentions the request's want.
func checkBadRequests(t *testing.T, url string, reqs []badRequest) {
	t.Helper()
	for _, tc := range reqs {
		req, _ := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e map[string]string
		if resp.StatusCode/100 != 4 || json.Unmarshal(body, &e) != nil || !strings.Contains(e["error"], tc.want) {
			t.Errorf("%s %s %.80s: %d %s, want a 4xx JSON error mentioning %q", tc.method, tc.path, tc.body, resp.StatusCode, body, tc.want)
		}
	}
}

// onBoth calls f with the native backend and then with the remote one and
// returns both results; an error from either fails the test.
func onBoth[T any](t *testing.T, native *Native, remote *Remote, f func(ConfidenceBackend) (T, error)) (T, T) {
	t.Helper()
	a, err := f(native)
	if err != nil {
		t.Fatalf("native: %v", err)
	}
	b, err := f(remote)
	if err != nil {
		t.Fatalf("remote: %v", err)
	}
	return a, b
}

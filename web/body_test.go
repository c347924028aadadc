package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/steer/model"
)

// fakeModel is a steering backend that generates a fixed text, after gate
// opens when there is one.
type fakeModel struct {
	gate chan struct{}
}

func (f *fakeModel) Info() steer.ModelInfo {
	return steer.ModelInfo{Name: "fake", Arch: "llama", Layers: 16, DModel: 32, Vocab: 10, MaxSeq: 64}
}

func (f *fakeModel) Generate(ctx context.Context, prompts []string, _ model.GenerateOptions) ([]model.Generation, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return []model.Generation{{Prompt: prompts[0], Text: "Wait, let me check.\n\nSo it is 4.", Stop: "length"}}, nil
}

func (f *fakeModel) Capture(context.Context, []activations.Trace, string, steer.CaptureOptions) (*steer.CaptureSummary, error) {
	return nil, fmt.Errorf("the fake model records nothing")
}

// steerServer is the test server with the fake model attached and an SAE
// "s" of the planted dataset (layer 12, d_model 32, like the model).
func steerServer(t *testing.T, f *fakeModel, c Config) *testServer {
	t.Helper()
	c.Backend = f
	ts := newTestServerWith(t, c)
	s, err := sae.New(sae.TopK, 32, 64, 4)
	if err != nil {
		t.Fatal(err)
	}
	s.Init(1, 1, nil, 0)
	s.Metadata.HookLayer = 12
	dir := filepath.Join(t.TempDir(), "s")
	if err := sae.Save(dir, s, sae.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.ws.AddSAE(dir); err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestRequestLimits: a body over an endpoint's limit gets 413 saying so
// (with and without Content-Length); a prompt over a megabyte gets 400
// naming the prompt; a negative layer gets 400 naming the layer, and an
// omitted one is the SAE's.
func TestRequestLimits(t *testing.T) {
	f := &fakeModel{}
	ts := steerServer(t, f, Config{Version: "test"})
	var e map[string]any
	steerBody := func(prompt, vec string) string {
		return fmt.Sprintf(`{"prompt": %q, "vectors": [%s], "max_tokens": 4}`, prompt, vec)
	}

	// Over the limit, Content-Length known: refused before reading.
	big := steerBody(strings.Repeat("a", maxSteerBody), `{"sae": "s", "feature": 1}`)
	if code := ts.send(t, "POST", "/api/steer", big, &e); code != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(e["error"]), "over the limit") {
		t.Errorf("a steering body of %d bytes: %d %v, want 413 saying it is over the limit", len(big), code, e)
	}
	// Over the limit by its Content-Length: answered before the body comes.
	c := slowBody(t, ts, "/api/jobs", maxJobBody+1)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Errorf("a job body announced over the limit: no answer before its body: %v", err)
	} else if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(b, []byte("the body has 1048577 bytes, over the limit of 1048576")) {
		t.Errorf("a job body announced over the limit: %d %s", resp.StatusCode, b)
	}
	// Over the limit, streamed without a length.
	req, _ := http.NewRequest("POST", ts.URL+"/api/jobs", io.MultiReader(strings.NewReader(`{"kind": "train", "name": "`), strings.NewReader(strings.Repeat("x", maxJobBody))))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(e["error"]), "over the limit of 1048576 bytes") || req.ContentLength != 0 {
		t.Errorf("a chunked job body over 1 MiB: %d %v, want 413 saying it is over the limit", resp.StatusCode, e)
	}

	// A 10 MB prompt.
	if code := ts.send(t, "POST", "/api/steer", steerBody(strings.Repeat("a", 10_000_000), `{"sae": "s", "feature": 1}`), &e); code != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(e["error"]), "prompt: expected at most 1048576 bytes, found 10000000") {
		t.Errorf("a 10 MB prompt: %d %v, want 400 naming the prompt", code, e)
	}

	// Layers: negative refused, omitted the SAE's.
	for _, vec := range []string{`{"sae": "s", "feature": 1, "layer": -1}`, `{"npy": "` + npyBase64(32) + `", "layer": -3}`} {
		if code := ts.send(t, "POST", "/api/steer", steerBody("x", vec), &e); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(e["error"]), "layer: expected a block from 0 to 15, found -") {
			t.Errorf("vector %s: %d %v, want 400 naming the layer", vec, code, e)
		}
	}
	var res map[string]any
	if code := ts.send(t, "POST", "/api/steer", steerBody("x", `{"sae": "s", "feature": 1}`), &res); code != 200 {
		t.Fatalf("a vector without a layer: %d %v", code, res)
	}
	feature, three := 1, 3
	for _, tc := range []struct {
		layer *int
		want  int
	}{{nil, 12}, {&three, 3}} {
		vs, err := ts.srv.steerVectors(&SteerRequest{Vectors: []SteerVector{{SAE: "s", Feature: &feature, Layer: tc.layer}}, Operator: "add", Positions: "all"})
		if err != nil || len(vs) != 1 || vs[0].Layer != tc.want {
			t.Errorf("a vector of SAE s with layer %v: %+v %v, want layer %d", tc.layer, vs, err, tc.want)
		}
	}
	if code := ts.send(t, "POST", "/api/steer", steerBody("x", `{"npy": "`+npyBase64(32)+`"}`), &e); code != 400 || !strings.Contains(fmt.Sprint(e["error"]), "layer: an uploaded vector needs one") {
		t.Errorf("an uploaded vector without a layer: %d %v", code, e)
	}
	// One JSON object and nothing after it.
	if code := ts.send(t, "POST", "/api/jobs", `{"kind": "atlas", "sae": "s"} {"kind": "atlas"}`, &e); code != 400 || !strings.Contains(fmt.Sprint(e["error"]), "found more after the object") {
		t.Errorf("two objects: %d %v", code, e)
	}
	if n := ts.srv.bodies.inFlight(); n != 0 {
		t.Errorf("%d bytes of bodies still counted after every request ended", n)
	}
}

func npyBase64(n int) string {
	v := make([]float32, n)
	v[0] = 1
	return base64.StdEncoding.EncodeToString(activations.EncodeNpy(v, 1, n))
}

// slowBody starts a request whose body has the given length but sends only
// its first byte, and returns the connection (closing it ends the request).
func slowBody(t *testing.T, ts *testServer, path string, length int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, strings.TrimPrefix(ts.URL, "http://"), length)
	return c
}

// TestBodyBudget: the bytes of bodies in flight have a server-wide limit.
// While one request holds most of it, another that does not fit gets 503
// with Retry-After (with a length or streamed); once the first ends, the
// same request is taken.
func TestBodyBudget(t *testing.T) {
	f := &fakeModel{}
	ts := steerServer(t, f, Config{Version: "test", MaxBodyBytes: 4 << 20})
	hog := slowBody(t, ts, "/api/steer", 3<<20)
	deadline := time.Now().Add(10 * time.Second)
	for ts.srv.bodies.inFlight() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := ts.srv.bodies.inFlight(); n != 3<<20 {
		t.Fatalf("a 3 MiB body in flight counts %d bytes", n)
	}
	body := `{"prompt": "x", "vectors": [{"sae": "s", "feature": 1}], "max_tokens": 4` + strings.Repeat(" ", 2<<20) + `}`
	for _, streamed := range []bool{false, true} {
		var r io.Reader = strings.NewReader(body)
		if streamed {
			r = io.MultiReader(r) // no length: read and counted as it comes
		}
		req, _ := http.NewRequest("POST", ts.URL+"/api/steer", r)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]any
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(fmt.Sprint(e["error"]), "try again") {
			t.Errorf("a 2 MiB body (streamed %v) while 3 MiB of 4 are held: %d, Retry-After %q, %v; want 503 with Retry-After",
				streamed, resp.StatusCode, resp.Header.Get("Retry-After"), e)
		}
	}
	hog.Close()
	for ts.srv.bodies.inFlight() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var res map[string]any
	if code := ts.send(t, "POST", "/api/steer", body, &res); code != 200 || res["steered"] == nil {
		t.Errorf("the same body once the budget is free: %d %v, want it taken", code, res)
	}
	if n := ts.srv.bodies.inFlight(); n != 0 {
		t.Errorf("%d bytes still counted after every request ended", n)
	}
}

// TestBodyTimeout: a body that does not arrive in time gets 408 and its
// connection is closed; a request whose body has arrived may take longer
// than that to answer (a steering request waits for its generation), also
// through Serve, the server rise serve runs.
func TestBodyTimeout(t *testing.T) {
	f := &fakeModel{gate: make(chan struct{})}
	ts := steerServer(t, f, Config{Version: "test", BodyTimeout: 300 * time.Millisecond})
	c := slowBody(t, ts, "/api/jobs", 100)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a slow body: no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !bytes.Contains(b, []byte("did not arrive within 300ms")) {
		t.Errorf("a slow body: %d %s, want 408", resp.StatusCode, b)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the connection of a slow body is still open")
	}

	// Steering requests answered well after their bodies arrived.
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ts.srv.Serve(ctx, l) }()
	defer func() { stop(); <-served }()
	go func() {
		time.Sleep(time.Second)
		close(f.gate)
	}()
	var wg sync.WaitGroup
	for _, base := range []string{ts.URL, "http://" + l.Addr().String()} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(base+"/api/steer", "application/json", strings.NewReader(`{"prompt": "x", "vectors": [{"sae": "s", "feature": 1}], "max_tokens": 4}`))
			if err != nil {
				t.Errorf("a steering request answered after the body time limit (%s): %v", base, err)
				return
			}
			defer resp.Body.Close()
			var res map[string]any
			json.NewDecoder(resp.Body).Decode(&res)
			if resp.StatusCode != 200 || res["default"] == nil {
				t.Errorf("a steering request answered after the body time limit (%s): %d %v", base, resp.StatusCode, res)
			}
		}()
	}
	wg.Wait()
}

package web

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/bf16"
	"github.com/rise-interp/rise/sae"
)

// testServer serves a workspace with one small planted dataset.
type testServer struct {
	*httptest.Server
	srv *Server
	ws  *Workspace
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	return newTestServerWith(t, Config{Version: "test"})
}

// newTestServerWith is newTestServer with the server's configuration.
func newTestServerWith(t testing.TB, c Config) *testServer {
	t.Helper()
	ws := &Workspace{Dir: filepath.Join(t.TempDir(), "work")}
	if _, err := ws.AddDataset(context.Background(), plantedDump(t), ""); err != nil {
		t.Fatal(err)
	}
	return serveTest(t, New(ws, c))
}

// serveTest serves srv and its workspace over loopback until the test
// ends, then closes both.
func serveTest(t testing.TB, srv *Server) *testServer {
	ts := &testServer{Server: httptest.NewServer(srv), srv: srv, ws: srv.ws}
	t.Cleanup(ts.stop)
	return ts
}

// get fetches a path and decodes its JSON body into v (when not nil),
// returning the status.
func (ts *testServer) get(t testing.TB, path string, v any) int {
	t.Helper()
	return ts.send(t, http.MethodGet, path, "", v)
}

func (ts *testServer) post(t testing.TB, path, body string, v any) int {
	t.Helper()
	return ts.send(t, http.MethodPost, path, body, v)
}

// send makes a request, with a JSON body when there is one (the
// workbench's own pages send every change as JSON), and decodes the JSON
// answer into v (when not nil), returning the status.
func (ts *testServer) send(t testing.TB, method, path, body string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" || method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %d, body not JSON: %v: %.200s", method, path, resp.StatusCode, err, b)
		}
	}
	return resp.StatusCode
}

// train starts a small training job through the API and returns its id.
func (ts *testServer) train(t testing.TB, name string, steps int) string {
	t.Helper()
	var j JobView
	body := fmt.Sprintf(`{"kind": "train", "dataset": "planted", "name": %q, "arch": "topk", "k": 4, "width": 128, "steps": %d, "batch": 256}`, name, steps)
	if code := ts.post(t, "/api/jobs", body, &j); code != http.StatusAccepted {
		t.Fatalf("POST /api/jobs: %d %+v", code, j)
	}
	return j.ID
}

// waitReady polls until the SAE is ready.
func (ts *testServer) waitReady(t testing.TB, name string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var list []saeView
		ts.get(t, "/api/saes", &list)
		for _, v := range list {
			if v.Name == name && v.State == SAEReady {
				return
			}
			if v.Name == name && v.State == SAEFailed {
				t.Fatalf("SAE %s failed: %s", name, v.Error)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("SAE %s not ready after 2 minutes", name)
}

// trainReady trains an SAE through the API, as train does, and waits
// until it is ready.
func (ts *testServer) trainReady(t testing.TB, name string, steps int) {
	t.Helper()
	ts.train(t, name, steps)
	ts.waitReady(t, name)
}

// sweepLayers asks for a dataset's layer sweep until the job that makes it
// on the first request is done (409 until then, a minute at most) and
// returns the layers it covers.
func (ts *testServer) sweepLayers(t testing.TB, dataset string) []int {
	t.Helper()
	var sw struct {
		Layers []struct {
			Layer int `json:"layer"`
		} `json:"layers"`
	}
	path := "/api/datasets/" + dataset + "/sweep"
	deadline := time.Now().Add(time.Minute)
	for code := ts.get(t, path, &sw); code != http.StatusOK; code = ts.get(t, path, &sw) {
		if code != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("sweep: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	layers := make([]int, len(sw.Layers))
	for i, l := range sw.Layers {
		layers[i] = l.Layer
	}
	return layers
}

func (ts *testServer) dial(t testing.TB, job string, from int) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/api/jobs/" + job + "/events"
	if from > 0 {
		u += fmt.Sprint("?from=", from)
	}
	c, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", u, err, resp)
	}
	return c
}

// readAll reads events until the server closes the stream.
func readAll(c *websocket.Conn) ([]map[string]any, error) {
	var evs []map[string]any
	for {
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		var m map[string]any
		if err := c.ReadJSON(&m); err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				return evs, nil
			}
			return evs, err
		}
		evs = append(evs, m)
	}
}

func TestWorkbenchAPI(t *testing.T) {
	ts := newTestServer(t)
	var status map[string]any
	if code := ts.get(t, "/api/status", &status); code != 200 || status["version"] != "test" || status["model"] != nil {
		t.Fatalf("status %d %v", code, status)
	}

	// Datasets and steps.
	var dss []datasetView
	ts.get(t, "/api/datasets", &dss)
	if len(dss) != 1 || dss[0].Name != "planted" || dss[0].Rows != 3000 || dss[0].Labels["reflection"] == 0 || dss[0].Lengths["long"] == 0 {
		t.Fatalf("datasets: %+v", dss)
	}
	var page struct {
		Total int        `json:"total"`
		Steps []stepView `json:"steps"`
	}
	ts.get(t, "/api/datasets/planted/steps?label=reflection&limit=7&offset=3", &page)
	if page.Total != dss[0].Labels["reflection"] || len(page.Steps) != 7 {
		t.Fatalf("reflection steps: total %d (want %d), %d steps", page.Total, dss[0].Labels["reflection"], len(page.Steps))
	}
	for _, s := range page.Steps {
		if len(s.Labels) == 0 || s.Labels[0] != "reflection" {
			t.Errorf("step %d labelled %v in a reflection filter", s.Row, s.Labels)
		}
	}
	ts.get(t, "/api/datasets/planted/steps?q=ALTERNATIVELY&limit=500", &page)
	if page.Total == 0 {
		t.Error("search for 'alternatively' found nothing")
	}
	for _, s := range page.Steps {
		if !strings.Contains(strings.ToLower(s.Text), "alternatively") {
			t.Errorf("search hit %q lacks the query", s.Text)
		}
	}
	var tr struct {
		Trace string     `json:"trace"`
		Steps []stepView `json:"steps"`
	}
	if code := ts.get(t, "/api/datasets/planted/traces/"+page.Steps[0].Trace, &tr); code != 200 || len(tr.Steps) == 0 || tr.Steps[0].Step != 0 {
		t.Errorf("trace: %d %+v", code, tr)
	}
	var e map[string]any
	for path, want := range map[string]int{
		"/api/datasets/planted/steps?limit=501":   400,
		"/api/datasets/planted/steps?offset=-1":   400,
		"/api/datasets/nope/steps":                404,
		"/api/datasets/planted/traces/nope":       404,
		"/api/saes/nope/atlas":                    404,
		"/api/nothing/here":                       404,
		"/api/datasets/..%2f..%2fetc/steps":       404,
		"/api/datasets/planted/traces?limit=5000": 400,
	} {
		if code := ts.get(t, path, &e); code != want || e["error"] == "" {
			t.Errorf("GET %s: %d %v, want %d and an error message", path, code, e, want)
		}
	}

	// Train through the API; the atlas answers 409 until the SAE is ready.
	job := ts.train(t, "small", 300)
	if code := ts.get(t, "/api/saes/small/atlas", &e); code != 409 || e["job"] == "" {
		t.Errorf("atlas while training: %d %v, want 409 naming a job", code, e)
	}
	ts.waitReady(t, "small")
	var jv JobView
	ts.get(t, "/api/jobs/"+job, &jv)
	if jv.State != StateDone || jv.Progress.Done != 300 {
		t.Errorf("train job: %+v", jv)
	}
	if _, err := os.Stat(filepath.Join(ts.ws.Dir, "saes", "small", "cfg.json")); err != nil {
		t.Errorf("the trained SAE was not saved in the workspace: %v", err)
	}
	if code := ts.post(t, "/api/jobs", `{"kind": "train", "dataset": "planted", "name": "small", "arch": "topk", "k": 4}`, &e); code != 400 || !strings.Contains(e["error"].(string), "taken") {
		t.Errorf("a second SAE named small: %d %v", code, e)
	}
	for body, want := range map[string]string{
		`{"kind": "train", "dataset": "planted", "arch": "topk"}`:          "needs k",
		`{"kind": "train", "dataset": "planted", "arch": "lasso", "k": 2}`: "arch",
		`{"kind": "train", "dataset": "planted", "layer": 3, "k": 2}`:      "layers [12]",
		`{"kind": "train", "dataset": "planted", "name": "../x", "k": 2}`:  "name",
		`{"kind": "dance"}`:           "job kind",
		`{"kind": "train", "wat": 1}`: "unknown field",
		`not json`:                    "expected a JSON object",
	} {
		if code := ts.post(t, "/api/jobs", body, &e); code/100 != 4 || !strings.Contains(fmt.Sprint(e["error"]), want) {
			t.Errorf("POST %s: %d %v, want a 4xx error mentioning %q", body, code, e, want)
		}
	}

	// The atlas and the feature page.
	var a struct {
		DSae     int `json:"d_sae"`
		Features []struct {
			ID        int    `json:"id"`
			Behaviour string `json:"behaviour"`
		} `json:"features"`
		Behaviours map[string]struct {
			Columns []int     `json:"columns"`
			Vector  []float32 `json:"vector"`
		} `json:"behaviours"`
	}
	if code := ts.get(t, "/api/saes/small/atlas", &a); code != 200 || a.DSae != 128 || len(a.Features) != 128 {
		t.Fatalf("atlas: %d, d_sae %d, %d features", code, a.DSae, len(a.Features))
	}
	id := a.Behaviours["reflection"].Columns[0]
	var f struct {
		ID       int `json:"id"`
		Fires    int `json:"fires"`
		TopSteps []struct {
			Row        int      `json:"row"`
			Value      float32  `json:"value"`
			Text       string   `json:"text"`
			Before     []string `json:"before"`
			After      []string `json:"after"`
			NextLabels []string `json:"next_labels"`
		} `json:"top_steps"`
		Behaviours []behaviourStat `json:"behaviours"`
		Nearest    []nearView      `json:"nearest"`
		Histogram  []sae.FeatureHistBin
	}
	if code := ts.get(t, fmt.Sprintf("/api/saes/small/features/%d?top=5&nearest=4", id), &f); code != 200 {
		t.Fatalf("feature %d: %d", id, code)
	}
	if f.ID != id || f.Fires == 0 || len(f.TopSteps) != 5 || len(f.Nearest) != 4 || len(f.Behaviours) != 3 {
		t.Fatalf("feature page: %+v", f)
	}
	for i := 1; i < len(f.TopSteps); i++ {
		if f.TopSteps[i].Value > f.TopSteps[i-1].Value {
			t.Errorf("top steps out of order: %v after %v", f.TopSteps[i].Value, f.TopSteps[i-1].Value)
		}
	}
	// Each top step carries the labels of the step after it (none after a
	// trace's last step).
	ds := ts.ws.Dataset(ts.ws.SAE("small").Dataset.Name)
	for _, st := range f.TopSteps {
		rows := ds.traceRows[ds.Steps[st.Row].Trace]
		p := slices.Index(rows, st.Row)
		var want []string
		if p+1 < len(rows) {
			want = ds.Steps[rows[p+1]].Labels
		}
		if !slices.Equal(st.NextLabels, want) && !(len(want) == 0 && len(st.NextLabels) == 0) {
			t.Errorf("row %d: next labels %v, want %v", st.Row, st.NextLabels, want)
		}
	}
	for i, n := range f.Nearest {
		if n.ID == id || i > 0 && n.Cos > f.Nearest[i-1].Cos {
			t.Errorf("nearest features: %+v", f.Nearest)
		}
	}
	for _, b := range f.Behaviours {
		if b.Name == "reflection" && b.Enrichment <= 1 {
			t.Errorf("a reflection-specific feature has enrichment %.2f on reflection steps", b.Enrichment)
		}
	}
	if code := ts.get(t, "/api/saes/small/features/128", &e); code != 404 {
		t.Errorf("feature 128 of 128: %d", code)
	}

	// Behaviours.
	var bv struct {
		Cosine struct {
			Names  []string    `json:"names"`
			Matrix [][]float64 `json:"matrix"`
		} `json:"cosine"`
		Venhoff map[string]float64 `json:"venhoff_cosine"`
	}
	ts.get(t, "/api/saes/small/behaviours", &bv)
	if len(bv.Cosine.Names) < 2 || len(bv.Venhoff) == 0 {
		t.Fatalf("behaviours: %+v", bv)
	}
	for i := range bv.Cosine.Names {
		if d := bv.Cosine.Matrix[i][i]; d < 0.999 || d > 1.001 {
			t.Errorf("cosine of %s with itself: %v", bv.Cosine.Names[i], d)
		}
	}

	// Exports.
	npy := ts.bytes(t, fmt.Sprintf("/api/saes/small/features/%d/vector.npy", id), "application/octet-stream")
	x, shape, err := activations.ReadNpyArray(bytes.NewReader(npy), int64(len(npy)))
	if err != nil || len(shape) != 2 || shape[0] != 1 || shape[1] != 32 || len(x) != 32 {
		t.Errorf("feature vector.npy: shape %v, %v", shape, err)
	}
	npy = ts.bytes(t, "/api/saes/small/behaviours/reflection/vector.npy", "application/octet-stream")
	x, _, err = activations.ReadNpyArray(bytes.NewReader(npy), int64(len(npy)))
	if err != nil || len(x) != 32 || x[0] != a.Behaviours["reflection"].Vector[0] {
		t.Errorf("behaviour vector.npy: %v", err)
	}
	z := ts.bytes(t, "/api/saes/small/export.zip", "application/zip")
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, zf := range zr.File {
		rc, _ := zf.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		os.MkdirAll(filepath.Join(out, filepath.Dir(zf.Name)), 0o755)
		os.WriteFile(filepath.Join(out, zf.Name), b, 0o644)
	}
	if s, err := sae.Load(filepath.Join(out, "small")); err != nil || s.DSae != 128 {
		t.Errorf("the exported zip does not load as an SAE: %v", err)
	}
	if svg := ts.bytes(t, "/api/saes/small/map.svg?color=cluster", "image/svg+xml"); !bytes.Contains(svg, []byte("<svg")) {
		t.Error("map.svg is not SVG")
	}
	if png := ts.bytes(t, "/api/saes/small/map.png", "image/png"); !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Error("map.png is not PNG")
	}
	if js := ts.bytes(t, "/api/saes/small/atlas.json", "application/json"); !bytes.Contains(js, []byte(`"rise-atlas/1"`)) {
		t.Error("atlas.json download is not an atlas")
	}

	// The sweep: computed by a job on first request.
	if layers := ts.sweepLayers(t, "planted"); !slices.Equal(layers, []int{12}) {
		t.Errorf("sweep over layers %v, want [12]", layers)
	}
	if code := ts.get(t, "/api/datasets/planted/sweep.svg", &e); code != 409 {
		t.Errorf("a one-layer sweep chart: %d", code)
	}

	// Steering without a model says so.
	if code := ts.post(t, "/api/steer", `{"prompt": "x"}`, &e); code != 503 || !strings.Contains(e["error"].(string), "no model attached") {
		t.Errorf("steer: %d %v", code, e)
	}
}

// bytes fetches a download and checks its content type.
func (ts *testServer) bytes(t testing.TB, path, contentType string) []byte {
	t.Helper()
	resp, err := http.Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != contentType {
		t.Fatalf("GET %s: %d %s: %.200s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return b
}

// TestPagesAndAssets: every page route answers the UI, assets are served
// from the embedded files only, and nothing outside them is reachable.
func TestPagesAndAssets(t *testing.T) {
	ts := newTestServer(t)
	for _, p := range []string{"/", "/train", "/atlas", "/behaviours", "/steer", "/feature/x/3", "/atlas?sae=x"} {
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte("/static/")) {
			t.Errorf("GET %s: %d, %.100s", p, resp.StatusCode, b)
		}
	}
	// An unknown page gets the app, which draws its not-found page, with
	// status 404; the API's unknown routes answer JSON.
	for _, p := range []string{"/nope", "/atlas/extra/segments", "/feature/x"} {
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || !bytes.Contains(b, []byte("/static/app.js")) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s, %.100s; want 404 and the app", p, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	if b := ts.bytes(t, "/static/app.js", "text/javascript; charset=utf-8"); len(b) == 0 {
		t.Error("app.js is empty")
	}
	for _, p := range []string{"/static/../server.go", "/static/%2e%2e/server.go", "/../../etc/passwd", "/static/../../../../etc/passwd",
		"/server.go", "/web/server.go", "/static/", "/favicon.ico.php"} {
		req, _ := http.NewRequest("GET", ts.URL+p, nil)
		req.URL.Opaque = p // keep the path as written, dots and all
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(b, []byte("package web")) || bytes.Contains(b, []byte("root:")) {
			t.Errorf("GET %s served a file outside the assets: %.80s", p, b)
		}
		if resp.StatusCode == 200 && p != "/static/" {
			t.Errorf("GET %s: 200", p)
		}
	}
}

func TestListenRefusesEveryInterfaceByDefault(t *testing.T) {
	if _, err := Listen(":0"); err == nil || !strings.Contains(err.Error(), "no host") {
		t.Errorf("Listen(\":0\") = %v, want a refusal", err)
	}
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// TestJobStreams: 50 watchers of one training job see the same events,
// ending with its final state; a watcher that leaves mid-stream harms no
// one; a cancelled job ends cancelled for its watchers; a reload with
// ?from= gets the rest.
func TestJobStreams(t *testing.T) {
	ts := newTestServer(t)
	before := runtime.NumGoroutine()
	job := ts.train(t, "watched", 1500)

	// One watcher leaves after its first event.
	quitter := ts.dial(t, job, 0)
	var first map[string]any
	if err := quitter.ReadJSON(&first); err != nil || first["type"] != "state" {
		t.Fatalf("first event %v %v", first, err)
	}
	quitter.Close()

	const watchers = 50
	streams := make([][]map[string]any, watchers)
	errs := make([]error, watchers)
	var wg sync.WaitGroup
	for i := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ts.dial(t, job, 0)
			defer c.Close()
			streams[i], errs[i] = readAll(c)
		}()
	}
	wg.Wait()
	ref := streams[0]
	if errs[0] != nil || len(ref) < 3 {
		t.Fatalf("watcher 0: %d events, %v", len(ref), errs[0])
	}
	last := ref[len(ref)-1]
	if last["type"] != "state" || last["state"] != StateDone {
		t.Fatalf("last event %v, want the done state", last)
	}
	trains := 0
	for _, e := range ref {
		if e["type"] == "train" {
			trains++
		}
	}
	if trains == 0 {
		t.Error("no train events")
	}
	for i := 1; i < watchers; i++ {
		if errs[i] != nil {
			t.Fatalf("watcher %d: %v", i, errs[i])
		}
		a, _ := json.Marshal(streams[i])
		b, _ := json.Marshal(ref)
		if !bytes.Equal(a, b) {
			t.Fatalf("watcher %d saw %d events, watcher 0 %d: the streams differ", i, len(streams[i]), len(ref))
		}
	}
	// A reload from the middle gets the rest.
	mid := int(ref[len(ref)/2]["seq"].(float64))
	c := ts.dial(t, job, mid)
	rest, err := readAll(c)
	c.Close()
	if err != nil || len(rest) == 0 || int(rest[0]["seq"].(float64)) != mid || rest[len(rest)-1]["state"] != StateDone {
		t.Errorf("from=%d: %d events, %v", mid, len(rest), err)
	}

	// Cancel a job while it is watched.
	ts.waitReady(t, "watched")
	long := ts.train(t, "cancelled", 100000)
	w := ts.dial(t, long, 0)
	time.Sleep(200 * time.Millisecond)
	if code := ts.send(t, "DELETE", "/api/jobs/"+long, "", nil); code != http.StatusAccepted {
		t.Fatalf("DELETE of a running job: %d", code)
	}
	evs, err := readAll(w)
	w.Close()
	if err != nil || evs[len(evs)-1]["state"] != StateCancelled {
		t.Fatalf("cancelled job's stream ends with %v (%v)", evs[len(evs)-1], err)
	}
	var list []saeView
	ts.get(t, "/api/saes", &list)
	for _, v := range list {
		if v.Name == "cancelled" && (v.State != SAEInterrupted || !v.Resumable) {
			t.Errorf("the SAE of a cancelled training is %s (resumable %v), want interrupted and resumable", v.State, v.Resumable)
		}
	}
	var status map[string]any
	ts.get(t, "/api/status", &status)
	if status["jobs_running"].(float64) != 0 {
		t.Errorf("%v jobs still running", status["jobs_running"])
	}
	// Every stream goroutine has ended (allow the HTTP server's own idle
	// connections a moment to close).
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+8 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+8 {
		t.Errorf("%d goroutines after the streams ended, %d before", n, before)
	}
}

// TestToken: with a token, requests without it get 401 JSON; the bearer
// header, the cookie and ?token= (which sets the cookie and redirects) get
// in.
func TestToken(t *testing.T) {
	ts := newTestServer(t)
	h := RequireToken("s3cret", ts.srv)
	tt := httptest.NewServer(h)
	defer tt.Close()
	resp, err := http.Get(tt.URL + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !json.Valid(b) {
		t.Fatalf("without the token: %d %s", resp.StatusCode, b)
	}
	req, _ := http.NewRequest("GET", tt.URL+"/api/status", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("bearer: %v %v", resp, err)
	}
	req.Header.Set("Authorization", "Bearer wrong")
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 401 {
		t.Errorf("a wrong bearer: %d", resp.StatusCode)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err = c.Get(tt.URL + "/atlas?sae=x&token=s3cret")
	if err != nil || resp.StatusCode != 200 || resp.Request.URL.Query().Get("token") != "" || resp.Request.URL.Query().Get("sae") != "x" {
		t.Fatalf("?token=: %v %v", resp, err)
	}
	if resp, err := c.Get(tt.URL + "/api/status"); err != nil || resp.StatusCode != 200 {
		t.Errorf("the cookie did not let the browser in: %v %v", resp, err)
	}
	if !IsLoopback("127.0.0.1:80") || !IsLoopback("[::1]:80") || !IsLoopback("localhost:1") || IsLoopback("0.0.0.0:80") || IsLoopback("10.0.0.2:80") {
		t.Error("IsLoopback is wrong")
	}
}

// TestCrossOrigin: no CORS headers, and a websocket from another site's
// page is refused.
func TestCrossOrigin(t *testing.T) {
	ts := newTestServer(t)
	req, _ := http.NewRequest("GET", ts.URL+"/api/status", nil)
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Access-Control-Allow-Origin"); h != "" {
		t.Errorf("Access-Control-Allow-Origin: %q", h)
	}
	job := ts.train(t, "origin", 50)
	u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/api/jobs/" + job + "/events"
	_, resp, err = websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"http://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a websocket from another origin: %v %v", resp, err)
	}
	c, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {ts.URL}})
	if err != nil {
		t.Errorf("a websocket from the workbench's own origin: %v", err)
	} else {
		c.Close()
	}
	ts.waitReady(t, "origin")
}

// TestTrainResample trains with dead-latent resampling through the API:
// batchtopk, which does not resample, is refused in one line; a topk run
// records its setting and how many latents it resampled in cfg.json.
func TestTrainResample(t *testing.T) {
	ts := newTestServer(t)
	var e map[string]any
	bad := `{"kind": "train", "dataset": "planted", "name": "rs-bad", "arch": "batchtopk", "k": 4, "width": 64, "steps": 40, "resample_every": 10}`
	if code := ts.post(t, "/api/jobs", bad, &e); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(e["error"]), "resample every") {
		t.Fatalf("batchtopk with resampling: %d %v", code, e)
	}
	raw := ts.trainedConfig(t, "rs", `{"kind": "train", "dataset": "planted", "name": "rs", "arch": "topk", "k": 4, "width": 256, "steps": 60, "batch": 256, "resample_every": 10}`)
	if !strings.Contains(string(raw), `"resample_every": 10`) || !strings.Contains(string(raw), `"resampled"`) {
		t.Errorf("cfg.json: %s", raw)
	}
}

// TestTrainPrecision: a training request names its precision; another
// than f32 or bf16 is refused in one line, and a bf16 run (on a CPU with
// AVX512_BF16) records it in cfg.json.
func TestTrainPrecision(t *testing.T) {
	ts := newTestServer(t)
	var e map[string]any
	bad := `{"kind": "train", "dataset": "planted", "name": "p-bad", "arch": "topk", "k": 4, "width": 64, "steps": 40, "precision": "f16"}`
	if code := ts.post(t, "/api/jobs", bad, &e); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(e["error"]), `precision must be f32 or bf16, got "f16"`) {
		t.Fatalf("precision f16: %d %v", code, e)
	}
	if !bf16.Native() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	raw := ts.trainedConfig(t, "p16", `{"kind": "train", "dataset": "planted", "name": "p16", "arch": "topk", "k": 4, "width": 256, "steps": 60, "batch": 256, "precision": "bf16"}`)
	if !strings.Contains(string(raw), `"precision": "bf16"`) {
		t.Errorf("cfg.json does not record the precision: %s", raw)
	}
}

// trainedConfig starts the training request body (which names the SAE
// name), waits for the SAE and returns its cfg.json.
func (ts *testServer) trainedConfig(t *testing.T, name, body string) []byte {
	t.Helper()
	var j JobView
	if code := ts.post(t, "/api/jobs", body, &j); code != http.StatusAccepted {
		t.Fatalf("training %s: %d %+v", name, code, j)
	}
	ts.waitReady(t, name)
	raw, err := os.ReadFile(filepath.Join(ts.ws.SAE(name).Path, "cfg.json"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

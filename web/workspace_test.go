package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/synth"
	"github.com/rise-interp/rise/sae"
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
	var saes []any
	var jobs struct{ Total int }
	ts.get(t, "/api/saes", &saes)
	ts.get(t, "/api/jobs", &jobs)
	if len(saes) != 0 || jobs.Total != 0 {
		t.Errorf("refused requests left %d SAEs and %d jobs", len(saes), jobs.Total)
	}
}

// plantedDump writes the test dump of newTestServer into a temporary
// directory.
func plantedDump(t testing.TB) string {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Rows, cfg.DModel, cfg.Features = 3000, 32, 64
	dump := filepath.Join(t.TempDir(), "planted")
	if _, err := synth.Generate(context.Background(), dump, cfg, false, nil); err != nil {
		t.Fatal(err)
	}
	return dump
}

// serverOn starts a server over the dump with its workspace in work, as
// rise serve does: the dataset, then the SAEs given (as --sae), then what
// earlier runs left in work.
func serverOn(t testing.TB, dump, work string, saes ...string) *testServer {
	t.Helper()
	ws := &Workspace{Dir: work}
	if _, err := ws.AddDataset(context.Background(), dump, ""); err != nil {
		t.Fatal(err)
	}
	srv := New(ws, Config{Version: "test"})
	for _, p := range saes {
		m, err := ws.AddSAE(p)
		if err != nil {
			t.Fatal(err)
		}
		srv.StartAnalysis(m)
	}
	if err := srv.Restore(); err != nil {
		t.Fatal(err)
	}
	return serveTest(t, srv)
}

// stop closes a server before the test ends, as a graceful stop does.
func (ts *testServer) stop() {
	ts.Close()
	ts.srv.Close()
}

func (ts *testServer) saeViews(t testing.TB) map[string]saeView {
	t.Helper()
	var list []saeView
	ts.get(t, "/api/saes", &list)
	out := map[string]saeView{}
	for _, v := range list {
		out[v.Name] = v
	}
	return out
}

// frequencies are the firing rates of an SAE's features as its atlas
// gives them.
func (ts *testServer) frequencies(t testing.TB, name string) []float64 {
	t.Helper()
	var a struct {
		Features []struct {
			Frequency float64 `json:"frequency"`
		} `json:"features"`
	}
	if code := ts.get(t, "/api/saes/"+name+"/atlas", &a); code != http.StatusOK {
		t.Fatalf("atlas of %s: %d", name, code)
	}
	out := make([]float64, len(a.Features))
	for i, f := range a.Features {
		out[i] = f.Frequency
	}
	return out
}

// trainSAE trains a small TopK SAE on the dump's layer with the seed and
// saves it in dir.
func trainSAE(t testing.TB, dump, dir string, seed uint64) {
	t.Helper()
	d, err := activations.Open(dump)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, _, err := sae.Train(context.Background(), d.Layers[0], sae.TrainConfig{Arch: sae.TopK, Width: 128, K: 4, Steps: 200, Batch: 256, Seed: seed}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Metadata = sae.Metadata{HookLayer: d.Layers[0].Number, HookName: fmt.Sprintf("blocks.%d.hook_resid_post", d.Layers[0].Number), Dataset: dump}
	if err := sae.Save(dir, s, sae.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
}

// givenServer serves the planted dump from a fresh workspace in work, with
// a small SAE trained on it saved in given and passed as --sae (its name
// is "given").
func givenServer(t testing.TB) (ts *testServer, work, given string) {
	t.Helper()
	dump := plantedDump(t)
	work = filepath.Join(t.TempDir(), "work")
	given = filepath.Join(t.TempDir(), "given")
	trainSAE(t, dump, given, 1)
	return serverOn(t, dump, work, given), work, given
}

// TestDerivedFilesFollowWeights replaces an SAE's weights between two runs
// of the server under the same name: the second run must show the atlas
// and statistics of the new weights, as a server with an empty workspace
// does, not those kept from the old ones.
func TestDerivedFilesFollowWeights(t *testing.T) {
	dump := plantedDump(t)
	work := filepath.Join(t.TempDir(), "work")
	dir := filepath.Join(t.TempDir(), "x")
	trainSAE(t, dump, dir, 1)
	ts := serverOn(t, dump, work, dir)
	ts.waitReady(t, "x")
	old := ts.frequencies(t, "x")
	ts.stop()

	trainSAE(t, dump, dir, 2)
	ts = serverOn(t, dump, work, dir)
	ts.waitReady(t, "x")
	got := ts.frequencies(t, "x")
	ts.stop()
	fresh := serverOn(t, dump, filepath.Join(t.TempDir(), "clean"), dir)
	fresh.waitReady(t, "x")
	want := fresh.frequencies(t, "x")
	if slices.Equal(old, want) {
		t.Fatal("the SAEs of seeds 1 and 2 have the same feature frequencies: the test cannot tell them apart")
	}
	if !slices.Equal(got, want) {
		t.Errorf("after new weights under the old name, the atlas gives the frequencies of the old weights: %v, want %v", got[:8], want[:8])
	}
}

// TestRestartKeepsWorkspace stops a server with two SAEs trained from the
// browser and one training under way, and starts another on the same
// workspace: the two are listed and analysed again, the third is listed as
// interrupted, and resuming it ends at the weights of an unbroken run.
func TestRestartKeepsWorkspace(t *testing.T) {
	dump := plantedDump(t)
	work := filepath.Join(t.TempDir(), "work")
	ts := serverOn(t, dump, work)
	ts.train(t, "a", 200)
	ts.train(t, "b", 200)
	ts.waitReady(t, "a")
	ts.waitReady(t, "b")
	ts.trainToCheckpoint(t, "c", 6000)
	ts.stop()

	ts = serverOn(t, dump, work)
	vs := ts.saeViews(t)
	if len(vs) != 3 || vs["c"].State != SAEInterrupted || !vs["c"].Resumable || !vs["a"].Deletable {
		t.Fatalf("after a restart: %+v, want a, b and c interrupted", vs)
	}
	ts.waitReady(t, "a")
	ts.waitReady(t, "b")
	var j JobView
	if code := ts.send(t, "POST", "/api/saes/c/resume", "", &j); code != http.StatusAccepted {
		t.Fatalf("resume: %d %+v", code, j)
	}
	if code := ts.send(t, "POST", "/api/saes/c/resume", "", nil); code != http.StatusConflict {
		t.Errorf("a second resume: %d, want 409", code)
	}
	ts.sameAsUnbroken(t, "c", 6000)
	for _, f := range []string{ckptFile, jobFile} {
		if _, err := os.Stat(filepath.Join(work, "saes", "c", f)); err == nil {
			t.Errorf("the resumed SAE keeps its %s", f)
		}
	}
}

// TestCancelledTrainingResumes cancels a running training: the SAE is
// listed as interrupted, never failed, and resumes to an unbroken run's
// weights.
func TestCancelledTrainingResumes(t *testing.T) {
	dump := plantedDump(t)
	work := filepath.Join(t.TempDir(), "work")
	ts := serverOn(t, dump, work)
	id := ts.trainToCheckpoint(t, "c", 6000)
	ts.stopJob(t, id)
	if v := ts.saeViews(t)["c"]; v.State != SAEInterrupted || !v.Resumable {
		t.Fatalf("a cancelled training: %+v, want interrupted and resumable", v)
	}
	if code := ts.send(t, "POST", "/api/saes/c/resume", "", nil); code != http.StatusAccepted {
		t.Fatalf("resume: %d", code)
	}
	ts.sameAsUnbroken(t, "c", 6000)
}

// TestDeleteSAE deletes an SAE trained from the browser, files and all,
// and is refused one given on the command line, whose files stay.
func TestDeleteSAE(t *testing.T) {
	ts, work, given := givenServer(t)
	ts.trainReady(t, "mine", 200)
	ts.waitReady(t, "given")
	var e struct{ Error string }
	if code := ts.send(t, "DELETE", "/api/saes/given", "", &e); code != http.StatusConflict || !strings.Contains(e.Error, "command line") {
		t.Errorf("DELETE of a --sae SAE: %d %q, want 409 saying it was given on the command line", code, e.Error)
	}
	if _, err := os.Stat(filepath.Join(given, "cfg.json")); err != nil {
		t.Errorf("the refused delete touched the SAE's files: %v", err)
	}
	if code := ts.send(t, "DELETE", "/api/saes/mine", "", nil); code != http.StatusOK {
		t.Fatalf("DELETE of a trained SAE: %d", code)
	}
	if _, err := os.Stat(filepath.Join(work, "saes", "mine")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the deleted SAE's directory: %v, want it gone", err)
	}
	if _, ok := ts.saeViews(t)["mine"]; ok {
		t.Error("the deleted SAE is still listed")
	}
	if code := ts.send(t, "DELETE", "/api/saes/mine", "", nil); code != http.StatusNotFound {
		t.Errorf("a second DELETE: %d, want 404", code)
	}
	// The name is free again, and the new SAE gets its own atlas.
	ts.trainReady(t, "mine", 200)

	// An SAE in training: its job is cancelled, then its files go.
	id := ts.trainToCheckpoint(t, "busy", 1000000)
	if code := ts.send(t, "DELETE", "/api/saes/busy", "", nil); code != http.StatusOK {
		t.Fatalf("DELETE of an SAE in training: %d", code)
	}
	if s := ts.srv.jobs.Get(id).State(); s != StateCancelled {
		t.Errorf("the deleted SAE's training job is %s, want cancelled", s)
	}
	if _, err := os.Stat(filepath.Join(work, "saes", "busy")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the deleted SAE's directory after its training stopped: %v, want it gone", err)
	}
}

// trainToCheckpoint starts a training job as train does and waits until it
// has saved its first checkpoint; it returns the job's id.
func (ts *testServer) trainToCheckpoint(t testing.TB, name string, steps int) string {
	t.Helper()
	id := ts.train(t, name, steps)
	waitFile(t, filepath.Join(ts.ws.Dir, "saes", name, ckptFile))
	return id
}

// stopJob cancels a job through the API and waits for it to end.
func (ts *testServer) stopJob(t testing.TB, id string) {
	t.Helper()
	ts.send(t, "DELETE", "/api/jobs/"+id, "", nil)
	<-ts.srv.jobs.Get(id).Done()
}

// sameAsUnbroken trains an SAE named whole for steps without a break and
// checks that the SAE name, resumed after an interruption, ends at its
// weights.
func (ts *testServer) sameAsUnbroken(t testing.TB, name string, steps int) {
	t.Helper()
	ts.train(t, "whole", steps)
	ts.waitReady(t, name)
	ts.waitReady(t, "whole")
	sameWeights(t, filepath.Join(ts.ws.Dir, "saes", name), filepath.Join(ts.ws.Dir, "saes", "whole"))
}

func waitFile(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", path)
}

// sameWeights checks that two SAE directories hold byte-identical weights.
func sameWeights(t testing.TB, a, b string) {
	t.Helper()
	wa, err := os.ReadFile(filepath.Join(a, weightsFile))
	if err != nil {
		t.Fatal(err)
	}
	wb, err := os.ReadFile(filepath.Join(b, weightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wa, wb) {
		t.Errorf("the weights of %s differ from those of %s", a, b)
	}
}

// TestRestoreSaysWhatItCannotRead: what a workspace holds but cannot list
// is reported by name, never skipped without a word, and its name is not
// taken over by a new training.
func TestRestoreSaysWhatItCannotRead(t *testing.T) {
	dump := plantedDump(t)
	work := filepath.Join(t.TempDir(), "work")
	for _, name := range []string{"empty", "elsewhere"} {
		if err := os.MkdirAll(filepath.Join(work, "saes", name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	layer := 12
	if err := writeJobRecord(filepath.Join(work, "saes", "elsewhere"), jobRecord{Request: TrainRequest{Kind: "train", Dataset: "gone", Layer: &layer},
		DatasetPath: "/no/such/dump", Layer: layer}); err != nil {
		t.Fatal(err)
	}
	ws := &Workspace{Dir: work}
	if _, err := ws.AddDataset(context.Background(), dump, ""); err != nil {
		t.Fatal(err)
	}
	srv := New(ws, Config{Version: "test"})
	defer srv.Close()
	err := srv.Restore()
	if err == nil || !strings.Contains(err.Error(), "SAE empty: expected trained weights or a job.json") ||
		!strings.Contains(err.Error(), "needs the dataset gone (/no/such/dump)") {
		t.Errorf("Restore: %v, want both entries named", err)
	}
	if _, err := srv.StartTrain(TrainRequest{Kind: "train", Dataset: "planted", Name: "empty", Steps: 10}); err == nil || !strings.Contains(err.Error(), "taken by the files") {
		t.Errorf("training under the name of files left in the workspace: %v, want a refusal", err)
	}
}

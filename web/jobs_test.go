package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestJobQueue: with a limit of two, five jobs of a kind run two at a time
// and in the order they came; the others are queued, say so in their first
// event, and end cancelled without running when cancelled while queued;
// other kinds are not held up; closing the table ends queued jobs too.
func TestJobQueue(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	js := NewJobs(ctx)
	js.SetLimit("slow", 2)
	var running, most atomic.Int32
	started := make(chan int, 10) // which job's work began
	gates := make([]chan struct{}, 5)
	for i := range gates {
		gates[i] = make(chan struct{})
	}
	work := func(i int) func(ctx context.Context, j *Job) (any, error) {
		return func(ctx context.Context, j *Job) (any, error) {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			started <- i
			select {
			case <-gates[i]:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	var jobs []*Job
	for i := range 5 {
		jobs = append(jobs, js.Start("slow", nil, work(i)))
	}
	next := func() int {
		t.Helper()
		select {
		case i := <-started:
			return i
		case <-time.After(time.Minute):
			t.Fatal("no queued job started")
			return -1
		}
	}
	if a, b := next(), next(); a+b != 1 {
		t.Fatalf("jobs %d and %d started first, want 0 and 1", a, b)
	}
	other := js.Start("quick", nil, func(context.Context, *Job) (any, error) { return "ok", nil })
	<-other.Done()
	if v := other.View(); v.State != StateDone {
		t.Fatalf("a job of a kind without a limit waited: %+v", v)
	}
	want := []string{StateRunning, StateRunning, StateQueued, StateQueued, StateQueued}
	for i, j := range jobs {
		if s := j.State(); s != want[i] {
			t.Errorf("job %d is %s, want %s", i, s, want[i])
		}
	}
	if js.Running() != 2 || js.Queued() != 3 {
		t.Errorf("Running %d, Queued %d; want 2 and 3", js.Running(), js.Queued())
	}
	evs, ended, _ := jobs[2].Events(0)
	if ended || len(evs) != 1 || evs[0].Data["state"] != StateQueued {
		t.Errorf("a queued job's events: %+v (ended %v), want one queued state", evs, ended)
	}

	// Cancelled while queued: it ends at once and never runs.
	jobs[3].Cancel()
	select {
	case <-jobs[3].Done():
	default:
		t.Fatal("a job cancelled while queued has not ended")
	}
	if v := jobs[3].View(); v.State != StateCancelled || v.Finished == nil {
		t.Errorf("cancelled while queued: %+v", v)
	}

	// Each job that ends lets the next queued one run, first come first
	// served.
	close(gates[0])
	if i := next(); i != 2 {
		t.Errorf("job %d ran after job 0 ended, want 2", i)
	}
	close(gates[1])
	if i := next(); i != 4 {
		t.Errorf("job %d ran after job 1 ended, want 4 (3 was cancelled)", i)
	}
	close(gates[2])
	close(gates[4])
	for i, j := range jobs {
		<-j.Done()
		want := StateDone
		if i == 3 {
			want = StateCancelled
		}
		if s := j.State(); s != want {
			t.Errorf("job %d ended %s, want %s", i, s, want)
		}
	}
	if m := most.Load(); m != 2 {
		t.Errorf("%d jobs of the kind ran at once, want 2", m)
	}
	evs, _, _ = jobs[2].Events(0)
	var states []string
	for _, e := range evs {
		states = append(states, fmt.Sprint(e.Data["state"]))
	}
	if strings.Join(states, ",") != "queued,running,done" {
		t.Errorf("a queued job's states: %v", states)
	}

	// Stopping the table ends what is queued.
	js.SetLimit("slow", 1)
	block := func(ctx context.Context, j *Job) (any, error) { <-ctx.Done(); return nil, ctx.Err() }
	a, b := js.Start("slow", nil, block), js.Start("slow", nil, block)
	if b.State() != StateQueued {
		t.Fatalf("second job with limit 1: %s", b.State())
	}
	stop()
	js.Wait()
	if a.State() != StateCancelled || b.State() != StateCancelled {
		t.Errorf("after the table stopped: %s and %s, want both cancelled", a.State(), b.State())
	}
}

// TestJobQueueAPI: training jobs posted at once run one at a time by
// default; the rest show "queued" in /api/jobs and the status; a queued one
// cancelled by DELETE ends at once (200) and its SAE says why it failed; a
// job that has ended cannot be cancelled (409).
func TestJobQueueAPI(t *testing.T) {
	ts := newTestServer(t)
	var ids []string
	for i := range 4 {
		ids = append(ids, ts.train(t, fmt.Sprint("q", i), 100000))
	}
	var list struct{ Jobs []JobView }
	ts.get(t, "/api/jobs", &list)
	states := map[string]string{}
	for _, v := range list.Jobs {
		states[v.ID] = v.State
	}
	if states[ids[0]] != StateRunning || states[ids[1]] != StateQueued || states[ids[2]] != StateQueued || states[ids[3]] != StateQueued {
		t.Fatalf("four trainings at once: %v, want the first running and the others queued", states)
	}
	var status map[string]any
	ts.get(t, "/api/status", &status)
	if status["jobs_running"] != 1.0 || status["jobs_queued"] != 3.0 {
		t.Errorf("status: %v running, %v queued", status["jobs_running"], status["jobs_queued"])
	}

	var v JobView
	if code := ts.send(t, "DELETE", "/api/jobs/"+ids[2], "", &v); code != http.StatusOK || v.State != StateCancelled {
		t.Errorf("DELETE of a queued job: %d %+v, want 200 and cancelled", code, v)
	}
	var saes []saeView
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts.get(t, "/api/saes", &saes)
		var q2 saeView
		for _, s := range saes {
			if s.Name == "q2" {
				q2 = s
			}
		}
		if q2.State == SAEInterrupted && q2.Resumable && strings.Contains(q2.Error, "cancelled before it started") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SAE of a training cancelled while queued: %+v", q2)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Cancelling the running one lets the next start.
	if code := ts.send(t, "DELETE", "/api/jobs/"+ids[0], "", &v); code != http.StatusAccepted {
		t.Errorf("DELETE of a running job: %d", code)
	}
	<-ts.srv.jobs.Get(ids[0]).Done()
	deadline = time.Now().Add(10 * time.Second)
	for ts.srv.jobs.Get(ids[1]).State() != StateRunning && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := ts.srv.jobs.Get(ids[1]).State(); s != StateRunning {
		t.Errorf("the next queued training is %s after the running one was cancelled", s)
	}

	var e map[string]any
	if code := ts.send(t, "DELETE", "/api/jobs/"+ids[0], "", &e); code != http.StatusConflict || !strings.Contains(fmt.Sprint(e["error"]), "found it cancelled") {
		t.Errorf("DELETE of a job that has ended: %d %v, want 409 saying it has ended", code, e)
	}
	if code := ts.send(t, "DELETE", "/api/jobs/j999", "", &e); code != http.StatusNotFound {
		t.Errorf("DELETE of no job: %d", code)
	}
	for _, id := range ids {
		ts.srv.jobs.Get(id).Cancel()
	}
}

func TestParseJobLimits(t *testing.T) {
	l, err := ParseJobLimits("train=2, steer=0,atlas=1")
	if err != nil || len(l) != 3 || l["train"] != 2 || l["steer"] != 0 || l["atlas"] != 1 {
		t.Errorf("ParseJobLimits: %v %v", l, err)
	}
	for _, bad := range []string{"train", "train=-1", "dance=1", "train=x"} {
		if _, err := ParseJobLimits(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseJobLimits(%q) = %v, want an error naming it", bad, err)
		}
	}
	srv := New(&Workspace{Dir: t.TempDir()}, Config{JobLimits: map[string]int{"train": 3}})
	defer srv.Close()
	if srv.jobs.Limit("train") != 3 || srv.jobs.Limit("atlas") != DefaultJobLimits["atlas"] {
		t.Errorf("limits: train %d, atlas %d", srv.jobs.Limit("train"), srv.jobs.Limit("atlas"))
	}
}

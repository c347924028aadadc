package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Job states.
const (
	StateRunning   = "running"
	StateDone      = "done"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// maxEvents bounds a job's event history. Beyond it every other event of
// the older half is dropped, so a long run keeps its whole curve at a
// coarser grain and memory stays bounded.
const maxEvents = 4096

// Event is one message of a job's stream, as sent over the websocket.
type Event struct {
	Seq  int            `json:"seq"`
	Type string         `json:"type"`
	Data map[string]any `json:"-"`
}

// MarshalJSON flattens Data beside seq and type.
func (e Event) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(e.Data)+2)
	for k, v := range e.Data {
		m[k] = v
	}
	m["seq"], m["type"] = e.Seq, e.Type
	return json.Marshal(m)
}

// Progress is a job's latest progress.
type Progress struct {
	Stage string `json:"stage,omitempty"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// Job is a cancellable piece of background work with a stream of events
// that any number of watchers can follow from the start.
type Job struct {
	ID      string
	Kind    string
	Params  any
	Created time.Time

	cancel context.CancelFunc

	mu       sync.Mutex
	state    string
	finished time.Time
	err      string
	result   any
	progress Progress
	events   []Event
	nextSeq  int
	changed  chan struct{} // closed and replaced on every new event
}

// JobView is a job as the API shows it.
type JobView struct {
	ID       string     `json:"id"`
	Kind     string     `json:"kind"`
	State    string     `json:"state"`
	Params   any        `json:"params"`
	Created  time.Time  `json:"created"`
	Finished *time.Time `json:"finished"`
	Error    string     `json:"error"`
	Progress Progress   `json:"progress"`
	Result   any        `json:"result"`
}

// View returns the job's current state.
func (j *Job) View() JobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := JobView{ID: j.ID, Kind: j.Kind, State: j.state, Params: j.Params, Created: j.Created,
		Error: j.err, Progress: j.progress, Result: j.result}
	if !j.finished.IsZero() {
		f := j.finished
		v.Finished = &f
	}
	return v
}

// State returns the job's state.
func (j *Job) State() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state
}

// Cancel asks the job to stop; it ends cancelled once its work returns.
func (j *Job) Cancel() { j.cancel() }

// emit appends an event and wakes the watchers.
func (j *Job) emit(typ string, data map[string]any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.emitLocked(typ, data)
}

func (j *Job) emitLocked(typ string, data map[string]any) {
	j.events = append(j.events, Event{Seq: j.nextSeq, Type: typ, Data: data})
	j.nextSeq++
	if len(j.events) > maxEvents {
		j.thin()
	}
	close(j.changed)
	j.changed = make(chan struct{})
}

// thin halves the older half of the history, keeping the first event (the
// opening state) and every state event.
func (j *Job) thin() {
	half := len(j.events) / 2
	kept := j.events[:0:0]
	for i, e := range j.events {
		if i >= half || i == 0 || e.Type == "state" || i%2 == 0 {
			kept = append(kept, e)
		}
	}
	j.events = kept
}

// Progress records the job's progress and sends it as an event.
func (j *Job) Progress(stage string, done, total int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.progress = Progress{Stage: stage, Done: done, Total: total}
	j.emitLocked("progress", map[string]any{"stage": stage, "done": done, "total": total})
}

// Events returns the events with seq >= from, whether the job has ended,
// and a channel closed when there is more.
func (j *Job) Events(from int) (evs []Event, ended bool, more <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	i := sort.Search(len(j.events), func(i int) bool { return j.events[i].Seq >= from })
	evs = append(evs, j.events[i:]...)
	return evs, j.state != StateRunning, j.changed
}

// Jobs runs and remembers jobs.
type Jobs struct {
	mu   sync.Mutex
	jobs map[string]*Job
	next int
	wg   sync.WaitGroup
	ctx  context.Context
}

// NewJobs returns a job table whose jobs are cancelled with ctx.
func NewJobs(ctx context.Context) *Jobs {
	return &Jobs{jobs: map[string]*Job{}, ctx: ctx}
}

// Start runs work in the background as a new job. work's error decides the
// final state: nil is done, a cancellation is cancelled, anything else is
// failed with its message. A panic in work fails the job rather than the
// server.
func (js *Jobs) Start(kind string, params any, work func(ctx context.Context, j *Job) (any, error)) *Job {
	ctx, cancel := context.WithCancel(js.ctx)
	js.mu.Lock()
	js.next++
	j := &Job{ID: fmt.Sprintf("j%d", js.next), Kind: kind, Params: params, Created: time.Now().UTC(),
		cancel: cancel, state: StateRunning, changed: make(chan struct{})}
	js.jobs[j.ID] = j
	js.mu.Unlock()
	j.emit("state", map[string]any{"state": StateRunning})
	js.wg.Add(1)
	go func() {
		defer js.wg.Done()
		defer cancel()
		var result any
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("internal error: %v", r)
				}
			}()
			result, err = work(ctx, j)
		}()
		j.mu.Lock()
		defer j.mu.Unlock()
		j.finished = time.Now().UTC()
		switch {
		case err == nil:
			j.state, j.result = StateDone, result
		case ctx.Err() != nil && errors.Is(err, context.Canceled):
			j.state, j.err = StateCancelled, "cancelled"
		default:
			j.state, j.err = StateFailed, err.Error()
		}
		data := map[string]any{"state": j.state}
		if j.err != "" {
			data["error"] = j.err
		}
		j.emitLocked("state", data)
	}()
	return j
}

// Get returns the job with the id, or nil.
func (js *Jobs) Get(id string) *Job {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.jobs[id]
}

// List returns every job, newest first.
func (js *Jobs) List() []*Job {
	js.mu.Lock()
	out := make([]*Job, 0, len(js.jobs))
	for _, j := range js.jobs {
		out = append(out, j)
	}
	js.mu.Unlock()
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Created.Equal(out[b].Created) {
			return out[a].Created.After(out[b].Created)
		}
		return len(out[a].ID) > len(out[b].ID) || (len(out[a].ID) == len(out[b].ID) && out[a].ID > out[b].ID)
	})
	return out
}

// Running counts the running jobs.
func (js *Jobs) Running() int {
	n := 0
	for _, j := range js.List() {
		if j.State() == StateRunning {
			n++
		}
	}
	return n
}

// Wait waits for every job to return.
func (js *Jobs) Wait() { js.wg.Wait() }

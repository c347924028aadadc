package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Job states. A job waits in its kind's queue (queued) until fewer than
// the kind's limit of jobs run, then runs, then ends done, failed or
// cancelled.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateDone      = "done"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// hasEnded reports whether a job in the state has ended.
func hasEnded(state string) bool { return state != StateQueued && state != StateRunning }

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

	ctx    context.Context
	cancel context.CancelFunc
	work   func(ctx context.Context, j *Job) (any, error)
	jobs   *Jobs
	// unwatch stops the watch that drops the job from its queue when its
	// context ends.
	unwatch func() bool
	done    chan struct{} // closed when the job has ended

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

// Done returns a channel closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.done }

// Cancel asks the job to stop: a queued job ends cancelled at once, a
// running one once its work returns.
func (j *Job) Cancel() {
	j.cancel()
	j.jobs.drop(j)
}

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
	return evs, hasEnded(j.state), j.changed
}

// end records the job's final state from its work's result and error:
// nil is done, a cancellation is cancelled, anything else is failed with
// its message.
func (j *Job) end(result any, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.finished = time.Now().UTC()
	switch {
	case err == nil:
		j.state, j.result = StateDone, result
		if j.progress.Total > 0 { // a generation that stopped early is still whole
			j.progress.Done = j.progress.Total
		}
	case j.ctx.Err() != nil && errors.Is(err, context.Canceled):
		j.state, j.err = StateCancelled, "cancelled"
	default:
		j.state, j.err = StateFailed, err.Error()
	}
	data := map[string]any{"state": j.state}
	if j.err != "" {
		data["error"] = j.err
	}
	j.emitLocked("state", data)
	close(j.done)
}

// Jobs runs and remembers jobs. Each kind of job may have a limit on how
// many run at once; the others wait in the kind's queue, first come first
// served.
type Jobs struct {
	mu      sync.Mutex
	jobs    map[string]*Job
	next    int
	wg      sync.WaitGroup
	ctx     context.Context
	limits  map[string]int
	running map[string]int
	queues  map[string][]*Job
	keep    map[string]int // ended jobs kept per kind (KeepEnded)
}

// KeepEnded is how many ended jobs of a kind the table keeps, newest
// first; older ones are forgotten. Steering requests, answered as they
// end, keep a short history; kinds it leaves out keep DefaultKeepEnded.
var KeepEnded = map[string]int{"steer": 50}

// DefaultKeepEnded is how many ended jobs of a kind not in KeepEnded the
// table keeps.
const DefaultKeepEnded = 200

// NewJobs returns a job table whose jobs are cancelled with ctx. No kind
// has a limit until SetLimit gives it one.
func NewJobs(ctx context.Context) *Jobs {
	return &Jobs{jobs: map[string]*Job{}, ctx: ctx, limits: map[string]int{}, running: map[string]int{}, queues: map[string][]*Job{},
		keep: maps.Clone(KeepEnded)}
}

// SetLimit lets at most n jobs of the kind run at once (n < 1: no limit).
// Queued jobs of the kind start if the new limit has room for them.
func (js *Jobs) SetLimit(kind string, n int) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if n < 1 {
		delete(js.limits, kind)
	} else {
		js.limits[kind] = n
	}
	js.dispatchLocked(kind)
}

// Limit returns the kind's limit of jobs running at once (0: none).
func (js *Jobs) Limit(kind string) int {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.limits[kind]
}

func (js *Jobs) roomLocked(kind string) bool {
	n := js.limits[kind]
	return n < 1 || js.running[kind] < n
}

// Start makes a new job of work. It runs at once if its kind has room,
// else it is queued until a job of its kind ends; a job cancelled while
// queued ends cancelled without running. work's error decides the final
// state: nil is done, a cancellation is cancelled, anything else is failed
// with its message. A panic in work fails the job rather than the server.
func (js *Jobs) Start(kind string, params any, work func(ctx context.Context, j *Job) (any, error)) *Job {
	ctx, cancel := context.WithCancel(js.ctx)
	js.mu.Lock()
	defer js.mu.Unlock()
	js.next++
	j := &Job{ID: fmt.Sprintf("j%d", js.next), Kind: kind, Params: params, Created: time.Now().UTC(),
		ctx: ctx, cancel: cancel, work: work, jobs: js, done: make(chan struct{}), changed: make(chan struct{})}
	js.jobs[j.ID] = j
	js.wg.Add(1)
	if js.roomLocked(kind) {
		js.runLocked(j)
		return j
	}
	j.state = StateQueued
	j.emit("state", map[string]any{"state": StateQueued})
	js.queues[kind] = append(js.queues[kind], j)
	j.unwatch = context.AfterFunc(ctx, func() { js.drop(j) })
	return j
}

// runLocked starts a job's work in its own goroutine.
func (js *Jobs) runLocked(j *Job) {
	js.running[j.Kind]++
	j.mu.Lock()
	j.state = StateRunning
	j.emitLocked("state", map[string]any{"state": StateRunning})
	j.mu.Unlock()
	go func() {
		defer js.wg.Done()
		var result any
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("internal error: %v", r)
				}
			}()
			result, err = j.work(j.ctx, j)
		}()
		j.end(result, err)
		j.cancel()
		js.mu.Lock()
		js.running[j.Kind]--
		js.dispatchLocked(j.Kind)
		js.pruneLocked(j.Kind)
		js.mu.Unlock()
	}()
}

// dispatchLocked starts queued jobs of the kind while it has room.
func (js *Jobs) dispatchLocked(kind string) {
	for len(js.queues[kind]) > 0 && js.roomLocked(kind) {
		j := js.queues[kind][0]
		js.queues[kind] = js.queues[kind][1:]
		j.unwatch()
		if j.ctx.Err() != nil {
			js.endQueuedLocked(j)
			continue
		}
		js.runLocked(j)
	}
}

// drop ends a queued job whose context has ended; it does nothing to a job
// that is not queued.
func (js *Jobs) drop(j *Job) {
	js.mu.Lock()
	defer js.mu.Unlock()
	q := js.queues[j.Kind]
	for i, x := range q {
		if x == j {
			js.queues[j.Kind] = append(q[:i:i], q[i+1:]...)
			js.endQueuedLocked(j)
			return
		}
	}
}

// endQueuedLocked ends a job taken off its queue without running it.
func (js *Jobs) endQueuedLocked(j *Job) {
	j.cancel()
	j.end(nil, context.Canceled)
	js.wg.Done()
	js.pruneLocked(j.Kind)
}

// pruneLocked forgets the oldest ended jobs of the kind beyond the number
// it keeps.
func (js *Jobs) pruneLocked(kind string) {
	keep, ok := js.keep[kind]
	if !ok {
		keep = DefaultKeepEnded
	}
	var ended []*Job
	for _, j := range js.jobs {
		if j.Kind == kind && hasEnded(j.State()) {
			ended = append(ended, j)
		}
	}
	if len(ended) <= keep {
		return
	}
	sort.Slice(ended, func(a, b int) bool { return newer(ended[b], ended[a]) })
	for _, j := range ended[:len(ended)-keep] {
		delete(js.jobs, j.ID)
	}
}

// newer reports whether job a was created after job b (by id when at the
// same instant: ids count up).
func newer(a, b *Job) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	return len(a.ID) > len(b.ID) || (len(a.ID) == len(b.ID) && a.ID > b.ID)
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
	sort.Slice(out, func(a, b int) bool { return newer(out[a], out[b]) })
	return out
}

// Running counts the running jobs.
func (js *Jobs) Running() int { return js.count(StateRunning) }

// Queued counts the jobs waiting in their queues.
func (js *Jobs) Queued() int { return js.count(StateQueued) }

func (js *Jobs) count(state string) int {
	n := 0
	for _, j := range js.List() {
		if j.State() == state {
			n++
		}
	}
	return n
}

// Wait waits for every job to return.
func (js *Jobs) Wait() { js.wg.Wait() }

// ParseJobLimits reads limits of jobs running at once, as rise serve
// --jobs gives them: "train=1,atlas=1,sweep=1,steer=2", any of the kinds
// of DefaultJobLimits, 0 for no limit.
func ParseJobLimits(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kind, v, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(v)
		if _, known := DefaultJobLimits[kind]; !ok || !known || err != nil || n < 0 {
			return nil, fmt.Errorf("job limit %q: expected KIND=N with KIND train, atlas, sweep or steer and N ≥ 0 (0: no limit)", part)
		}
		out[kind] = n
	}
	return out, nil
}

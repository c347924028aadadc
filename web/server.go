package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer"
)

//go:embed static
var staticFS embed.FS

// Config configures a Server.
type Config struct {
	Version string
	Seed    uint64 // seed of atlases and sweeps
	Demo    bool   // the workspace is the built-in demo
	// Backend, when set, runs the model of the steering page: the native
	// runtime, or a model server over HTTP.
	Backend steer.Backend
	// Token, when set, is required of every request (RequireToken).
	Token string
	// AllowedHosts are further names (NAME, or NAME:PORT for that port
	// only) that a request arriving at a loopback address may give as its
	// Host: the name of a tunnel or proxy that leads here. localhost and
	// loopback IPs with the listening port are always allowed.
	AllowedHosts []string
	// JobLimits is how many jobs of a kind ("train", "atlas", "sweep",
	// "steer") run at once; the others wait in a queue. Kinds it leaves out
	// take DefaultJobLimits; a limit below 1 is no limit.
	JobLimits map[string]int
	// MaxBodyBytes bounds the bytes of request bodies the server reads or
	// holds at once (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// BodyTimeout bounds the time a request's body takes to arrive
	// (default DefaultBodyTimeout).
	BodyTimeout time.Duration
	Log         *log.Logger
}

// DefaultJobLimits are the jobs of each kind that run at once: one
// training, one atlas and one sweep (each can use every core), and two
// steering requests.
var DefaultJobLimits = map[string]int{"train": 1, "atlas": 1, "sweep": 1, "steer": 2, "steer-sweep": 1}

// Server is the workbench: the API, the websocket streams and the embedded
// pages over a Workspace.
type Server struct {
	cfg  Config
	ws   *Workspace
	jobs *Jobs
	ctx  context.Context
	stop context.CancelFunc
	mux  *http.ServeMux

	sweeps *sweepCache
	bodies *bodyBudget
	// namedMu orders the writes of named behaviours (named.go).
	namedMu sync.Mutex
}

// New returns a server over the workspace. Close stops its jobs.
func New(ws *Workspace, cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = log.New(nilWriter{}, "", 0)
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, ws: ws, jobs: NewJobs(ctx), ctx: ctx, stop: stop, mux: http.NewServeMux(), sweeps: newSweepCache(),
		bodies: &bodyBudget{limit: cfg.MaxBodyBytes}}
	limits := maps.Clone(DefaultJobLimits)
	maps.Copy(limits, cfg.JobLimits)
	for kind, n := range limits {
		s.jobs.SetLimit(kind, n)
	}
	s.routes()
	return s
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }

// Jobs returns the server's job table.
func (s *Server) Jobs() *Jobs { return s.jobs }

// Close cancels every job and waits for them.
func (s *Server) Close() {
	s.stop()
	s.jobs.Wait()
}

// ServeHTTP serves the workbench. It first refuses what a page of another
// site could send (see origin.go), then gives a request's body its time
// limit.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.checkHost(r); err != nil {
		fail(w, err)
		return
	}
	if err := checkSameOrigin(r); err != nil {
		fail(w, err)
		return
	}
	s.limitBodyTime(w, r)
	s.mux.ServeHTTP(w, r)
}

// pages are the paths the single-page UI answers; each loads index.html.
var pages = []string{"/{$}", "/train", "/atlas", "/behaviours", "/steer", "/feature/{sae}/{id}"}

func (s *Server) routes() {
	m := s.mux
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	for _, p := range pages {
		m.HandleFunc("GET "+p, s.index)
	}
	// Any other page: the app, answering 404, draws its own not-found page.
	m.HandleFunc("/", s.notFound)
	m.HandleFunc("GET /api/status", api(s.status))
	m.HandleFunc("GET /api/datasets", api(s.datasets))
	m.HandleFunc("GET /api/datasets/{dataset}/steps", api(s.steps))
	m.HandleFunc("GET /api/datasets/{dataset}/traces", api(s.traces))
	m.HandleFunc("GET /api/datasets/{dataset}/traces/{trace}", api(s.trace))
	m.HandleFunc("GET /api/datasets/{dataset}/sweep", api(s.sweep))
	m.HandleFunc("GET /api/datasets/{dataset}/behaviours", api(s.namedList))
	m.HandleFunc("POST /api/datasets/{dataset}/behaviours", api(s.nameBehaviour))
	m.HandleFunc("GET /api/datasets/{dataset}/sweep.svg", api(s.sweepChart(atlas.SVG)))
	m.HandleFunc("GET /api/datasets/{dataset}/sweep.png", api(s.sweepChart(atlas.PNG)))
	m.HandleFunc("POST /api/datasets/{dataset}/report", api(s.report))
	m.HandleFunc("GET /api/saes", api(s.saes))
	m.HandleFunc("DELETE /api/saes/{sae}", api(s.deleteSAE))
	m.HandleFunc("POST /api/saes/{sae}/resume", api(s.resumeSAE))
	m.HandleFunc("GET /api/saes/{sae}/atlas", api(s.atlas))
	m.HandleFunc("GET /api/saes/{sae}/atlas.json", api(s.atlasFile))
	m.HandleFunc("GET /api/saes/{sae}/features/{id}", api(s.feature))
	m.HandleFunc("GET /api/saes/{sae}/features/{id}/vector.npy", api(s.featureVector))
	m.HandleFunc("GET /api/saes/{sae}/features/{id}/tokens", api(s.featureTokens))
	m.HandleFunc("GET /api/saes/{sae}/features/{id}/effect", api(s.featureEffect))
	m.HandleFunc("GET /api/saes/{sae}/behaviours", api(s.behaviours))
	m.HandleFunc("GET /api/saes/{sae}/behaviours/{behaviour}/vector.npy", api(s.behaviourVector))
	m.HandleFunc("GET /api/saes/{sae}/export.zip", api(s.exportZip))
	m.HandleFunc("GET /api/saes/{sae}/selection/vector.npy", api(s.selectionVector))
	m.HandleFunc("GET /api/saes/{sae}/selection/steps", api(s.selectionSteps))
	m.HandleFunc("GET /api/saes/{sae}/clusters", api(s.clusters))
	m.HandleFunc("GET /api/saes/{sae}/map.svg", api(s.mapChart(atlas.SVG)))
	m.HandleFunc("GET /api/saes/{sae}/map.png", api(s.mapChart(atlas.PNG)))
	m.HandleFunc("GET /api/saes/{sae}/search", api(s.search))
	m.HandleFunc("GET /api/saes/{sae}/candidates", api(s.candidates))
	m.HandleFunc("GET /api/saes/{sae}/group", api(s.group))
	m.HandleFunc("GET /api/steer/prompts", api(s.steerPrompts))
	m.HandleFunc("POST /api/steer/sweep", api(s.steerSweep))
	m.HandleFunc("GET /api/jobs", api(s.listJobs))
	m.HandleFunc("POST /api/jobs", api(s.startJob))
	m.HandleFunc("GET /api/jobs/{id}", api(s.getJob))
	m.HandleFunc("DELETE /api/jobs/{id}", api(s.cancelJob))
	m.HandleFunc("GET /api/jobs/{id}/events", s.jobEvents)
	m.HandleFunc("POST /api/steer", api(s.steer))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no API endpoint %s %s (see GET /api/status and the API reference)", r.Method, r.URL.Path))
	})
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) { s.servePage(w, http.StatusOK) }

// notFound answers a GET of a page the workbench does not have with the app
// and status 404, and the app shows its not-found page; other methods get a
// JSON error.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusNotFound, fmt.Errorf("no page or endpoint %s %s", r.Method, r.URL.Path))
		return
	}
	s.servePage(w, http.StatusNotFound)
}

func (s *Server) servePage(w http.ResponseWriter, status int) {
	b, err := staticFS.ReadFile("static/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	w.Write(b)
}

// apiError is an error with the HTTP status it answers with, and
// optionally the job to wait for or the time after which to try again.
type apiError struct {
	status     int
	msg        string
	job        string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	body := map[string]any{"error": err.Error()}
	var ae *apiError
	if errors.As(err, &ae) {
		status = ae.status
		if ae.job != "" {
			body["job"] = ae.job
		}
		if ae.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((ae.retryAfter+time.Second-1)/time.Second)))
		}
	}
	writeJSON(w, status, body)
}

// fail answers with err: its own status when it is an apiError, 400 when it
// is the caller's fault (inputerr), 500 otherwise.
func fail(w http.ResponseWriter, err error) { writeError(w, statusOf(err), err) }

// An apiFunc answers a request with a value or an error; api writes either,
// so a handler never writes its own answer. A handler reads w only to limit
// the request's body (readJSON).
type apiFunc func(w http.ResponseWriter, r *http.Request) (any, error)

// accepted is an answer with status 202: a job that was started.
type accepted struct{ v any }

// file is an answer that is not JSON: a chart shown inline, or a download.
type file struct {
	mime, name string
	inline     bool
	data       []byte
}

// api turns an apiFunc into a handler: errors by their kind (fail), files
// as they are, anything else as JSON with status 200.
func api(f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(w, r)
		if err != nil {
			fail(w, err)
			return
		}
		switch v := v.(type) {
		case accepted:
			writeJSON(w, http.StatusAccepted, v.v)
		case file:
			disposition := "attachment"
			if v.inline {
				disposition = "inline"
			}
			w.Header().Set("Content-Type", v.mime)
			w.Header().Set("Content-Disposition", fmt.Sprintf("%s; filename=%q", disposition, v.name))
			w.Write(v.data)
		default:
			writeJSON(w, http.StatusOK, v)
		}
	}
}

// statusOf is the status of an error by its kind, never by its wording.
func statusOf(err error) int {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status
	case inputerr.Is(err):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// CheckAddr refuses a listen address that is not HOST:PORT, or has no host
// (which would listen on every interface without saying so).
func CheckAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: expected HOST:PORT such as 127.0.0.1:8080: %v", addr, err)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host: name one (127.0.0.1 for this machine only, 0.0.0.0 for every interface)", addr)
	}
	return nil
}

// Listen binds addr after CheckAddr.
func Listen(addr string) (net.Listener, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, err
	}
	return net.Listen("tcp", addr)
}

// Serve serves on l until ctx ends, then shuts down gracefully: running
// jobs are cancelled and open streams closed. The server has no
// ReadTimeout: net/http would cancel a request whose answer takes longer
// (a steering request waits for its generation); each body has its own
// deadline instead (Config.BodyTimeout).
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	var h http.Handler = s
	if s.cfg.Token != "" {
		h = RequireToken(s.cfg.Token, s)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 1 << 20,
		BaseContext: func(net.Listener) context.Context { return s.ctx }}
	err := ServeUntil(ctx, hs, l, s.stop)
	if ctx.Err() != nil {
		s.jobs.Wait() // stopped: the jobs were cancelled
	}
	return err
}

// ServeUntil serves hs on l until ctx ends, then calls stopping (when not
// nil) and shuts hs down, giving open requests five seconds to finish.
func ServeUntil(ctx context.Context, hs *http.Server, l net.Listener, stopping func()) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if stopping != nil {
		stopping()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// pathName checks a {dataset} or {sae} path value.
func pathValue(r *http.Request, key string) string { return strings.TrimSpace(r.PathValue(key)) }

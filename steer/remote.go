package steer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/steer/model"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
)

// Protocol names the version of the model-backend HTTP protocol (see
// steer/remote/README.md, with a session): GET /v1/info, POST /v1/generate,
// POST /v1/capture, POST /v1/confidence and POST /v1/entropy.
const Protocol = "rise-backend/1"

// WireVector is a steering vector on the wire: the direction itself, so
// the server needs none of rise's files.
type WireVector struct {
	Direction []float32 `json:"direction"`
	Layer     int       `json:"layer"`
	Op        string    `json:"op"`
	Strength  float64   `json:"strength"`
	Positions string    `json:"positions"`
	// Window and Triggers go with positions "window" and "trigger".
	Window   *TokenWindow `json:"window,omitempty"`
	Triggers []int        `json:"triggers,omitempty"`
}

// GenerateRequest is the body of POST /v1/generate.
type GenerateRequest struct {
	Prompts     []string     `json:"prompts"`
	MaxTokens   int          `json:"max_tokens"`
	Temperature float64      `json:"temperature"`
	TopP        float64      `json:"top_p"`
	Seed        uint64       `json:"seed"`
	Special     bool         `json:"special"`
	NoStop      bool         `json:"no_stop"`
	Vectors     []WireVector `json:"vectors"`
	// Default also generates every prompt without the vectors, with the
	// same seed, and answers it as "default".
	Default bool `json:"default"`
}

// GenerateResponse is the answer of POST /v1/generate.
type GenerateResponse struct {
	Generations []model.Generation `json:"generations"`
	Default     []model.Generation `json:"default,omitempty"`
}

// CaptureRequest is the body of POST /v1/capture.
type CaptureRequest struct {
	Traces    []activations.Trace `json:"traces"`
	Layers    []int               `json:"layers"`
	Delimiter string              `json:"delimiter"`
	Special   bool                `json:"special"` // the prompts hold a chat template's special tokens
}

// CaptureLine is one line of the answer of POST /v1/capture (JSON lines):
// a trace's steps and rows, or, last, the end (Done) or an error.
type CaptureLine struct {
	Trace          *activations.Trace   `json:"trace,omitempty"`
	ResponseTokens int                  `json:"response_tokens,omitempty"`
	Steps          []StepRecord         `json:"steps,omitempty"`
	Rows           map[string][]float32 `json:"rows,omitempty"` // by layer number
	Truncated      int                  `json:"truncated,omitempty"`
	Done           bool                 `json:"done,omitempty"`
	Error          string               `json:"error,omitempty"`
}

// ConfidenceRequest is the body of POST /v1/confidence: the decoder of an
// SAE ([d_sae, d_model], row-major), the layer and the traces, and the
// optimiser's settings (ConfidenceOptions; zeros take its defaults).
type ConfidenceRequest struct {
	WDec      []float32           `json:"w_dec"`
	DSae      int                 `json:"d_sae"`
	Layer     int                 `json:"layer"`
	Traces    []activations.Trace `json:"traces"`
	Iters     int                 `json:"iters"`
	Batch     int                 `json:"batch"`
	LR        float64             `json:"lr"`
	MaxStates int                 `json:"states"`
	Seed      uint64              `json:"seed"`
}

// ConfidenceResponse is the answer of POST /v1/confidence.
type ConfidenceResponse struct {
	*ConfidenceResult
	Scores []float32 `json:"scores"`
}

// EntropyRequest is the body of POST /v1/entropy.
type EntropyRequest struct {
	Traces  []activations.Trace `json:"traces"`
	Vectors []WireVector        `json:"vectors"`
}

// EntropyResponse is the answer of POST /v1/entropy.
type EntropyResponse struct {
	Entropy float64 `json:"entropy"`
	States  int     `json:"states"`
}

// maxRequest bounds a request body of the backend protocol.
const maxRequest = 256 << 20

// NewBackendHandler serves a backend over the protocol. rise backend runs
// it on the native runtime; the tests run the client against it.
func NewBackendHandler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		writeWire(w, http.StatusOK, b.Info())
	})
	mux.HandleFunc("POST /v1/generate", func(w http.ResponseWriter, r *http.Request) {
		var req GenerateRequest
		if err := decodeWire(r, &req); err != nil {
			wireError(w, http.StatusBadRequest, err)
			return
		}
		info := b.Info()
		vs, err := req.vectors(info)
		if err != nil {
			wireError(w, http.StatusBadRequest, err)
			return
		}
		if len(req.Prompts) == 0 {
			wireError(w, http.StatusBadRequest, errors.New("prompts: expected at least one prompt"))
			return
		}
		o := model.GenerateOptions{MaxTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, Seed: req.Seed,
			Special: req.Special, NoStop: req.NoStop}
		var res GenerateResponse
		if req.Default {
			if res.Default, err = b.Generate(r.Context(), req.Prompts, o); err != nil {
				wireError(w, statusOf(err), err)
				return
			}
		}
		o.Hooks = Vectors(vs)
		if res.Generations, err = b.Generate(r.Context(), req.Prompts, o); err != nil {
			wireError(w, statusOf(err), err)
			return
		}
		writeWire(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /v1/capture", func(w http.ResponseWriter, r *http.Request) {
		var req CaptureRequest
		if err := decodeWire(r, &req); err != nil {
			wireError(w, http.StatusBadRequest, err)
			return
		}
		if len(req.Traces) == 0 {
			wireError(w, http.StatusBadRequest, errors.New("traces: expected at least one trace"))
			return
		}
		n, ok := b.(*Native)
		if !ok {
			wireError(w, http.StatusNotImplemented, errors.New("capture: this server's backend cannot stream records"))
			return
		}
		o := CaptureOptions{Layers: req.Layers, Delimiter: req.Delimiter}
		if req.Special {
			o.Wrap = func(p string) (string, bool) { return p, true }
		}
		if _, err := o.normalise(n.Model.Layers); err != nil {
			wireError(w, http.StatusBadRequest, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		flush := func() {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		layers := append([]int(nil), o.Layers...)
		sort.Ints(layers)
		err := CaptureRecords(r.Context(), n.Model, n.Tokenizer, req.Traces, o, func(rec TraceRecord) error {
			line := CaptureLine{Trace: &rec.Trace, ResponseTokens: rec.ResponseTokens, Steps: rec.Steps, Truncated: rec.Truncated,
				Rows: map[string][]float32{}}
			for i, l := range layers {
				line.Rows[strconv.Itoa(l)] = rec.Rows[i]
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
			flush()
			return nil
		})
		if err != nil {
			enc.Encode(CaptureLine{Error: err.Error()})
			return
		}
		enc.Encode(CaptureLine{Done: true})
	})
	mux.HandleFunc("POST /v1/confidence", confidenceHandler(b, "confidence: this server's backend cannot learn confidence vectors", func(w http.ResponseWriter, r *http.Request, cb ConfidenceBackend, req *ConfidenceRequest) {
		info := b.Info()
		if req.DSae < 1 || len(req.WDec) != req.DSae*info.DModel {
			wireError(w, http.StatusBadRequest, fmt.Errorf("w_dec: expected d_sae × d_model = %d × %d values, found %d", req.DSae, info.DModel, len(req.WDec)))
			return
		}
		s := &sae.SAE{DIn: info.DModel, DSae: req.DSae, WDec: req.WDec}
		res, err := cb.LearnConfidence(r.Context(), s, req.Traces, ConfidenceOptions{Layer: req.Layer, Iters: req.Iters, Batch: req.Batch,
			LR: req.LR, MaxStates: req.MaxStates, Seed: req.Seed})
		if err != nil {
			wireError(w, statusOf(err), err)
			return
		}
		writeWire(w, http.StatusOK, ConfidenceResponse{ConfidenceResult: res, Scores: res.Scores})
	}))
	mux.HandleFunc("POST /v1/entropy", confidenceHandler(b, "entropy: this server's backend cannot measure it", func(w http.ResponseWriter, r *http.Request, cb ConfidenceBackend, req *EntropyRequest) {
		vs, err := (&GenerateRequest{Vectors: req.Vectors}).vectors(b.Info())
		if err != nil {
			wireError(w, http.StatusBadRequest, err)
			return
		}
		h, n, err := cb.BoundaryEntropy(r.Context(), req.Traces, vs)
		if err != nil {
			wireError(w, statusOf(err), err)
			return
		}
		writeWire(w, http.StatusOK, EntropyResponse{Entropy: h, States: n})
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wireError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s: the %s protocol has GET /v1/info and POST /v1/generate, /v1/capture, /v1/confidence and /v1/entropy", r.Method, r.URL.Path, Protocol))
	})
	return mux
}

// confidenceHandler serves a request of type Req that a ConfidenceBackend
// answers: it refuses the request with 501 and the message unsupported when
// the server's backend is not one, and with 400 when the body does not
// decode.
func confidenceHandler[Req any](b Backend, unsupported string, serve func(w http.ResponseWriter, r *http.Request, cb ConfidenceBackend, req *Req)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cb, ok := b.(ConfidenceBackend)
		if !ok {
			wireError(w, http.StatusNotImplemented, errors.New(unsupported))
			return
		}
		var req Req
		if err := decodeWire(r, &req); err != nil {
			wireError(w, http.StatusBadRequest, err)
			return
		}
		serve(w, r, cb, &req)
	}
}

// vectors checks the wire vectors against the model and makes them unit.
func (req *GenerateRequest) vectors(info ModelInfo) ([]Vector, error) {
	var out []Vector
	for i, wv := range req.Vectors {
		v, err := NewVector(VectorSpec{Layer: wv.Layer, Op: wv.Op, Strength: wv.Strength, Positions: wv.Positions, Window: wv.Window, Triggers: wv.Triggers}, wv.Direction, info.DModel, info.Layers)
		if err != nil {
			return nil, fmt.Errorf("vectors[%d]: %w", i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func decodeWire(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: expected a JSON object of the %s protocol: %v", Protocol, err)
	}
	return nil
}

func writeWire(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func wireError(w http.ResponseWriter, status int, err error) {
	writeWire(w, status, map[string]string{"error": err.Error()})
}

// statusOf maps a backend error to an HTTP status: a cancelled request is
// not the server's fault.
func statusOf(err error) int {
	if errors.Is(err, context.Canceled) {
		return 499
	}
	if inputerr.Is(err) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// Remote is a Backend served over HTTP by a model server speaking the
// protocol (rise backend, or the reference PyTorch server).
type Remote struct {
	base   *url.URL
	client *http.Client
	info   ModelInfo
	token  string
}

// Dial connects to a backend at rawURL and reads its model info. The
// environment variable RISE_BACKEND_TOKEN, when set, is sent as the
// server's access token.
func Dial(ctx context.Context, rawURL string) (*Remote, error) {
	u, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("backend %q: expected a URL such as http://gpu-box:8000", rawURL)
	}
	r := &Remote{base: u, client: &http.Client{Timeout: 0}, token: os.Getenv("RISE_BACKEND_TOKEN")}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.call(cctx, "GET", "/v1/info", nil, &r.info); err != nil {
		return nil, err
	}
	if r.info.Protocol != Protocol {
		return nil, fmt.Errorf("backend %s speaks %q, expected %q", rawURL, r.info.Protocol, Protocol)
	}
	if r.info.Layers < 1 || r.info.DModel < 1 {
		return nil, fmt.Errorf("backend %s: model info has %d layers and d_model %d", rawURL, r.info.Layers, r.info.DModel)
	}
	return r, nil
}

// Info describes the remote model.
func (r *Remote) Info() ModelInfo { return r.info }

func (r *Remote) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := r.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<30)).Decode(out); err != nil {
		return fmt.Errorf("backend %s%s: reading the answer: %w", r.base, path, err)
	}
	return nil
}

func (r *Remote) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base.String()+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", r.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("backend %s%s: %s: %s", r.base, path, resp.Status, e.Error)
	}
	return resp, nil
}

func wireVectors(vs []Vector) []WireVector {
	out := make([]WireVector, len(vs))
	for i, v := range vs {
		out[i] = WireVector{Direction: v.Dir, Layer: v.Layer, Op: v.Op, Strength: v.Strength, Positions: v.Positions, Window: v.Window, Triggers: v.Triggers}
	}
	return out
}

// Generate asks the server to continue the prompts.
func (r *Remote) Generate(ctx context.Context, prompts []string, o model.GenerateOptions) ([]model.Generation, error) {
	var vs Vectors
	switch h := o.Hooks.(type) {
	case nil:
	case Vectors:
		vs = h
	default:
		return nil, fmt.Errorf("backend %s: a model server steers with vectors only, found hooks of type %T", r.base, o.Hooks)
	}
	req := GenerateRequest{Prompts: prompts, MaxTokens: o.MaxTokens, Temperature: o.Temperature, TopP: o.TopP, Seed: o.Seed,
		Special: o.Special, NoStop: o.NoStop, Vectors: wireVectors(vs)}
	var res GenerateResponse
	if err := r.call(ctx, "POST", "/v1/generate", req, &res); err != nil {
		return nil, err
	}
	if len(res.Generations) != len(prompts) {
		return nil, fmt.Errorf("backend %s: %d generations for %d prompts", r.base, len(res.Generations), len(prompts))
	}
	if o.Progress != nil {
		o.Progress(len(prompts)*max(o.MaxTokens, 1), len(prompts)*max(o.MaxTokens, 1))
	}
	return res.Generations, nil
}

// Capture asks the server for the traces' step activations, streamed
// trace by trace, and writes them as a dump at dir.
func (r *Remote) Capture(ctx context.Context, traces []activations.Trace, dir string, o CaptureOptions) (*CaptureSummary, error) {
	layers, err := o.normalise(r.info.Layers)
	if err != nil {
		return nil, err
	}
	req := CaptureRequest{Traces: traces, Layers: layers, Delimiter: o.Delimiter}
	if o.Wrap != nil {
		req.Traces = make([]activations.Trace, len(traces))
		for i, t := range traces {
			t.Prompt, req.Special = o.Wrap(t.Prompt)
			req.Traces[i] = t
		}
	}
	resp, err := r.do(ctx, "POST", "/v1/capture", req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	name := o.Model
	if name == "" {
		name = r.info.Name
	}
	sink, err := NewDumpSink(dir, name, r.info.DModel, layers, o)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	done, n := false, 0
	for sc.Scan() {
		var line CaptureLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			sink.Abort()
			return nil, fmt.Errorf("backend %s/v1/capture: line %d: %w", r.base, n+1, err)
		}
		n++
		if line.Error != "" {
			sink.Abort()
			return nil, fmt.Errorf("backend %s/v1/capture: %s", r.base, line.Error)
		}
		if line.Done {
			done = true
			break
		}
		if line.Trace == nil {
			sink.Abort()
			return nil, fmt.Errorf("backend %s/v1/capture: line %d has no trace", r.base, n)
		}
		rec := TraceRecord{Trace: *line.Trace, ResponseTokens: line.ResponseTokens, Steps: line.Steps, Truncated: line.Truncated}
		for _, l := range layers {
			rec.Rows = append(rec.Rows, line.Rows[strconv.Itoa(l)])
		}
		if err := sink.Add(rec); err != nil {
			sink.Abort()
			return nil, err
		}
		if o.Progress != nil {
			o.Progress(n, len(traces))
		}
	}
	if err := sc.Err(); err != nil {
		sink.Abort()
		return nil, fmt.Errorf("backend %s/v1/capture: %w", r.base, err)
	}
	if !done {
		sink.Abort()
		return nil, fmt.Errorf("backend %s/v1/capture: the stream ended before its last line", r.base)
	}
	return sink.Close()
}

// LearnConfidence asks the server to learn confidence scores over the
// decoder columns of s.
func (r *Remote) LearnConfidence(ctx context.Context, s *sae.SAE, traces []activations.Trace, o ConfidenceOptions) (*ConfidenceResult, error) {
	if s.DIn != r.info.DModel {
		return nil, fmt.Errorf("confidence: the SAE takes %d values, the model's residual stream has %d", s.DIn, r.info.DModel)
	}
	req := ConfidenceRequest{WDec: s.WDec, DSae: s.DSae, Layer: o.Layer, Traces: traces, Iters: o.Iters, Batch: o.Batch,
		LR: o.LR, MaxStates: o.MaxStates, Seed: o.Seed}
	var res ConfidenceResponse
	if err := r.call(ctx, "POST", "/v1/confidence", req, &res); err != nil {
		return nil, err
	}
	if res.ConfidenceResult == nil || len(res.Scores) != s.DSae || len(res.Vector) != s.DIn {
		return nil, fmt.Errorf("backend %s/v1/confidence: expected %d scores and a vector of %d, found %d and %d", r.base, s.DSae, s.DIn, len(res.Scores), len(res.Vector))
	}
	res.ConfidenceResult.Scores = res.Scores
	if o.Progress != nil {
		o.Progress(max(o.Iters, 1), max(o.Iters, 1), 0)
	}
	return res.ConfidenceResult, nil
}

// BoundaryEntropy asks the server for the mean next-token entropy at the
// step boundaries of traces with the vectors applied.
func (r *Remote) BoundaryEntropy(ctx context.Context, traces []activations.Trace, vs []Vector) (float64, int, error) {
	var res EntropyResponse
	if err := r.call(ctx, "POST", "/v1/entropy", EntropyRequest{Traces: traces, Vectors: wireVectors(vs)}, &res); err != nil {
		return 0, 0, err
	}
	return res.Entropy, res.States, nil
}

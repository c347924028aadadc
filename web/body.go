package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Request bodies: each endpoint bounds its own (413 beyond), the server
// bounds the bytes of all bodies being read or held at once (503 with
// Retry-After beyond: many large steering requests at once would otherwise
// take the server's memory), and a body must arrive within a time limit, so
// that slow senders cannot hold connections open.
const (
	// DefaultMaxBodyBytes bounds the bytes of request bodies in flight.
	DefaultMaxBodyBytes = 128 << 20
	// DefaultBodyTimeout bounds the time a request's body takes to arrive.
	DefaultBodyTimeout = 30 * time.Second
	// bodyRetryAfter is what a 503 for a full body budget suggests.
	bodyRetryAfter = 2 * time.Second
)

// bodyBudget counts the bytes of request bodies in flight against a limit.
type bodyBudget struct {
	mu    sync.Mutex
	held  int64
	limit int64
}

// take reserves n bytes, or reports that they do not fit.
func (b *bodyBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held+n > b.limit {
		return false
	}
	b.held += n
	return true
}

func (b *bodyBudget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held -= n
}

// inFlight returns the bytes reserved now.
func (b *bodyBudget) inFlight() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// errBodyBudget is the error of a body read that the budget has no room for.
var errBodyBudget = errors.New("the server's budget for request bodies is full")

// budgetReader reserves the bytes of a body of unknown length as they are
// read.
type budgetReader struct {
	r    io.Reader
	b    *bodyBudget
	held int64
}

func (br *budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	if n > 0 {
		if !br.b.take(int64(n)) {
			return 0, errBodyBudget
		}
		br.held += int64(n)
	}
	return n, err
}

// limitBodyTime gives the request's body the server's time limit to
// arrive. Requests without a body keep no deadline. Once a body has been
// read to its end, net/http clears the deadline as it starts watching the
// connection for the client leaving, so the limit bounds the upload only,
// never a long answer (a steering request waits for its generation) or a
// stream; TestBodyTimeout holds it to that.
func (s *Server) limitBodyTime(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
}

// readJSON decodes the request's body, one JSON object of at most limit
// bytes, into v. what names the request in errors and example shows its
// shape. The bytes it read stay counted against the server's body budget
// until release is called, which the handler defers: the decoded request
// lives as long as the handler. Errors: 413 for a body over the limit, 503
// (with Retry-After) when the budget is full, 408 for a body that did not
// arrive in time, 400 for anything that is not one JSON object of v's
// fields.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any, what, example string) (release func(), err error) {
	release = func() {}
	limit = min(limit, s.bodies.limit) // a body the budget can never hold is too large
	if r.ContentLength > limit {
		return release, errorf(http.StatusRequestEntityTooLarge, "%s: the body has %d bytes, over the limit of %d", what, r.ContentLength, limit)
	}
	busy := func() error {
		return &apiError{status: http.StatusServiceUnavailable, retryAfter: bodyRetryAfter, msg: fmt.Sprintf(
			"%s: the server is reading %d bytes of other requests' bodies, its limit is %d: try again shortly", what, s.bodies.inFlight(), s.bodies.limit)}
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength > 0 {
		n := r.ContentLength
		if !s.bodies.take(n) {
			return release, busy()
		}
		release = func() { s.bodies.give(n) }
	} else {
		br := &budgetReader{r: body, b: s.bodies}
		body = br
		release = func() { s.bodies.give(br.held) }
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		// One object, then nothing but white space to the end.
		var more json.RawMessage
		if e := dec.Decode(&more); e == nil {
			err = fmt.Errorf("found more after the object: %.40s", more)
		} else if e != io.EOF {
			err = e
		}
	}
	var tooBig *http.MaxBytesError
	var timeout net.Error
	switch {
	case err == nil:
		return release, nil
	case errors.As(err, &tooBig):
		return release, errorf(http.StatusRequestEntityTooLarge, "%s: the body is over the limit of %d bytes", what, limit)
	case errors.Is(err, errBodyBudget):
		return release, busy()
	case errors.As(err, &timeout) && timeout.Timeout():
		return release, errorf(http.StatusRequestTimeout, "%s: the body did not arrive within %v", what, s.cfg.BodyTimeout)
	default:
		return release, errorf(http.StatusBadRequest, "%s: expected a JSON object such as %s: %v", what, example, err)
	}
}

package activations

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// Step describes one row of a dump: one reasoning step of one trace. It is a
// line of steps.jsonl. Fields that rise does not know are kept in Extra and
// written back unchanged.
type Step struct {
	Trace      string   // trace id, e.g. "math-0003"
	Step       int      // index of the step within its trace, from 0
	Text       string   // the step's text
	Labels     []string // behaviour labels; empty when the step is unlabelled
	TokenStart *int     // first token of the step in the trace, when known
	TokenEnd   *int     // one past the delimiter token that ends the step, when known

	// Extra holds every other field of the JSON object, by name.
	Extra map[string]json.RawMessage
}

var stepKnown = map[string]bool{"trace": true, "step": true, "text": true, "labels": true, "token_start": true, "token_end": true}

// MarshalJSON writes the known fields first, in a fixed order, then the extra
// fields sorted by name.
func (s Step) MarshalJSON() ([]byte, error) {
	var w objectWriter
	w.field("trace", s.Trace)
	w.field("step", s.Step)
	w.field("text", s.Text)
	if s.Labels != nil {
		w.field("labels", s.Labels)
	}
	if s.TokenStart != nil {
		w.field("token_start", *s.TokenStart)
	}
	if s.TokenEnd != nil {
		w.field("token_end", *s.TokenEnd)
	}
	return w.end(s.Extra, stepKnown)
}

// UnmarshalJSON reads a steps.jsonl object. Missing known fields keep their
// zero value; a known field of the wrong type is an error naming the field.
func (s *Step) UnmarshalJSON(data []byte) error {
	r, err := readObject(data)
	if err != nil {
		return err
	}
	*s = Step{}
	r.field("trace", &s.Trace)
	r.field("step", &s.Step)
	r.field("text", &s.Text)
	r.field("labels", &s.Labels)
	r.optInt("token_start", &s.TokenStart)
	r.optInt("token_end", &s.TokenEnd)
	s.Extra = r.rest(stepKnown)
	return r.err
}

// HasLabel reports whether the step carries the behaviour label name.
func (s *Step) HasLabel(name string) bool {
	for _, l := range s.Labels {
		if l == name {
			return true
		}
	}
	return false
}

// Trace is one line of traces.jsonl: a whole chain-of-thought response.
type Trace struct {
	Trace    string // trace id, matching Step.Trace
	Prompt   string
	Response string
	Tokens   *int  // response length in tokens, when known
	Correct  *bool // whether the final answer was right, when known

	// Extra holds every other field of the JSON object, by name.
	Extra map[string]json.RawMessage
}

var traceKnown = map[string]bool{"trace": true, "prompt": true, "response": true, "tokens": true, "correct": true}

// MarshalJSON writes the known fields first, then the extra fields sorted by name.
func (t Trace) MarshalJSON() ([]byte, error) {
	var w objectWriter
	w.field("trace", t.Trace)
	w.field("prompt", t.Prompt)
	w.field("response", t.Response)
	if t.Tokens != nil {
		w.field("tokens", *t.Tokens)
	}
	if t.Correct != nil {
		w.field("correct", *t.Correct)
	}
	return w.end(t.Extra, traceKnown)
}

// UnmarshalJSON reads a traces.jsonl object.
func (t *Trace) UnmarshalJSON(data []byte) error {
	r, err := readObject(data)
	if err != nil {
		return err
	}
	*t = Trace{}
	r.field("trace", &t.Trace)
	r.field("prompt", &t.Prompt)
	r.field("response", &t.Response)
	r.optInt("tokens", &t.Tokens)
	if raw, ok := r.m["correct"]; ok && string(raw) != "null" {
		var c bool
		if err := json.Unmarshal(raw, &c); err != nil && r.err == nil {
			r.err = fmt.Errorf("field \"correct\": expected true or false, found %s", short(raw))
		}
		t.Correct = &c
	}
	t.Extra = r.rest(traceKnown)
	return r.err
}

// objectWriter writes a JSON object field by field, keeping the first
// error; the first field opens the object and end closes it.
type objectWriter struct {
	b   bytes.Buffer
	n   int
	err error
}

func (w *objectWriter) field(name string, v any) {
	if w.err != nil {
		return
	}
	val, err := json.Marshal(v)
	if err != nil {
		w.err = fmt.Errorf("field %q: %w", name, err)
		return
	}
	w.raw(name, val)
}

func (w *objectWriter) raw(name string, val []byte) {
	if w.n > 0 {
		w.b.WriteByte(',')
	} else {
		w.b.WriteByte('{')
	}
	w.n++
	key, _ := json.Marshal(name)
	w.b.Write(key)
	w.b.WriteByte(':')
	w.b.Write(val)
}

func (w *objectWriter) extra(m map[string]json.RawMessage, known map[string]bool) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !known[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		var c bytes.Buffer
		if err := json.Compact(&c, m[k]); err != nil {
			if w.err == nil {
				w.err = fmt.Errorf("field %q: %w", k, err)
			}
			return
		}
		w.raw(k, c.Bytes())
	}
}

// end writes the fields of m that are not known, sorted by name, and
// closes the object; it returns the object or the first error.
func (w *objectWriter) end(m map[string]json.RawMessage, known map[string]bool) ([]byte, error) {
	w.extra(m, known)
	if w.err != nil {
		return nil, w.err
	}
	if w.n == 0 {
		w.b.WriteByte('{')
	}
	w.b.WriteByte('}')
	return w.b.Bytes(), nil
}

// objectReader reads the fields of a JSON object by name, keeping the first
// error.
type objectReader struct {
	m   map[string]json.RawMessage
	err error
}

// readObject splits the JSON object in data into its fields.
func readObject(data []byte) (objectReader, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return objectReader{}, err
	}
	return objectReader{m: m}, nil
}

func (r *objectReader) field(name string, dst any) {
	raw, ok := r.m[name]
	if !ok || string(raw) == "null" || r.err != nil {
		return
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		r.err = fmt.Errorf("field %q: expected %s, found %s", name, kindOf(dst), short(raw))
	}
}

func (r *objectReader) optInt(name string, dst **int) {
	raw, ok := r.m[name]
	if !ok || string(raw) == "null" || r.err != nil {
		return
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil {
		r.err = fmt.Errorf("field %q: expected an integer, found %s", name, short(raw))
		return
	}
	*dst = &v
}

func (r *objectReader) rest(known map[string]bool) map[string]json.RawMessage {
	var extra map[string]json.RawMessage
	for k, v := range r.m {
		if known[k] {
			continue
		}
		if extra == nil {
			extra = make(map[string]json.RawMessage)
		}
		extra[k] = v
	}
	return extra
}

func kindOf(dst any) string {
	switch dst.(type) {
	case *string:
		return "a string"
	case *int:
		return "an integer"
	case *[]string:
		return "a list of strings"
	}
	return fmt.Sprintf("%T", dst)
}

// short quotes at most 40 bytes of a raw JSON value for an error message.
func short(raw []byte) string {
	const max = 40
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	return string(raw)
}

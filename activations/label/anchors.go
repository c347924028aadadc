package label

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/files"
)

// File names of a Thought Anchors trace directory (Bogdan et al., "Thought
// Anchors: Which LLM reasoning steps matter?", arXiv 2506.19143).
const (
	AnchorSolutionFile = "base_solution.json"
	AnchorChunksFile   = "chunks_labeled.json"
)

// An AnchorTrace is one Thought Anchors trace: a whole response and the
// sentence-like chunks it was cut into, each tagged with its function by
// GPT-4o.
type AnchorTrace struct {
	// ID is the trace directory relative to the directory read, with
	// forward slashes, such as
	// "deepseek-r1-distill-llama-8b/correct_base_solution/problem_330".
	ID string
	// Trace holds the trace for traces.jsonl: ID, the prompt, the <think>
	// text of base_solution.json as the response, and whether the answer was
	// correct when the file says so.
	Trace activations.Trace
	// Chunks lists the chunks of chunks_labeled.json in file order.
	Chunks []AnchorChunk
}

// An AnchorChunk is one chunk of a Thought Anchors trace.
type AnchorChunk struct {
	Index int    // "chunk_idx"
	Text  string // "chunk"
	// Tags are the "function_tags", such as "uncertainty_management",
	// "self_checking" or "active_computation".
	Tags []string
}

// IsThoughtAnchors reports whether dir is, or holds beneath it, a Thought
// Anchors trace directory (one with a base_solution.json file).
func IsThoughtAnchors(dir string) (bool, error) {
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == AnchorSolutionFile {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	return found, err
}

// ReadThoughtAnchors reads every Thought Anchors trace beneath dir: each
// directory holding a base_solution.json, which must have a
// chunks_labeled.json beside it. Traces are returned in lexical order of
// their IDs. It is an error when dir holds no trace. Errors name the file and
// the field, and say what was expected and what was found.
func ReadThoughtAnchors(dir string) ([]AnchorTrace, error) {
	var traces []AnchorTrace
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != AnchorSolutionFile {
			return nil
		}
		traceDir := filepath.Dir(path)
		id, err := filepath.Rel(dir, traceDir)
		if err != nil {
			return err
		}
		if id == "." {
			abs, err := filepath.Abs(traceDir)
			if err != nil {
				return err
			}
			id = filepath.Base(abs)
		}
		t, err := readAnchorTrace(traceDir, filepath.ToSlash(id))
		if err != nil {
			return err
		}
		traces = append(traces, t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(traces, func(i, j int) bool { return traces[i].ID < traces[j].ID })
	if len(traces) == 0 {
		return nil, fmt.Errorf("%s: expected Thought Anchors traces (directories with %s), found none", dir, AnchorSolutionFile)
	}
	return traces, nil
}

func readAnchorTrace(dir, id string) (AnchorTrace, error) {
	t := AnchorTrace{ID: id, Trace: activations.Trace{Trace: id}}

	path := filepath.Join(dir, AnchorSolutionFile)
	var sol map[string]json.RawMessage
	if err := readJSONFile(path, &sol, "a JSON object"); err != nil {
		return t, err
	}
	fields := jsonFields{path: path, m: sol}
	t.Trace.Response = fields.str("solution", true)
	t.Trace.Prompt = fields.str("prompt", false)
	if raw, ok := sol["is_correct"]; ok && string(raw) != "null" {
		var c bool
		if err := json.Unmarshal(raw, &c); err != nil {
			fields.fail("is_correct", "true or false", raw)
		}
		t.Trace.Correct = &c
	}
	if fields.err != nil {
		return t, fields.err
	}

	path = filepath.Join(dir, AnchorChunksFile)
	var chunks []map[string]json.RawMessage
	if err := readJSONFile(path, &chunks, "a list of chunk objects"); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return t, fmt.Errorf("%s: expected %s beside %s, found none", dir, AnchorChunksFile, AnchorSolutionFile)
		}
		return t, err
	}
	for i, c := range chunks {
		f := jsonFields{path: fmt.Sprintf("%s: chunk %d", path, i), m: c}
		ch := AnchorChunk{Index: i, Text: f.str("chunk", true)}
		if raw, ok := c["chunk_idx"]; ok {
			if err := json.Unmarshal(raw, &ch.Index); err != nil {
				f.fail("chunk_idx", "an integer", raw)
			}
		}
		if raw, ok := c["function_tags"]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &ch.Tags); err != nil {
				f.fail("function_tags", "a list of strings", raw)
			}
		}
		if f.err != nil {
			return t, f.err
		}
		t.Chunks = append(t.Chunks, ch)
	}
	return t, nil
}

// readJSONFile decodes the JSON file at path into v, which the message calls
// want.
func readJSONFile(path string, v any, want string) error {
	data, err := files.ReadRegular(path, maxJSONBytes, want)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("%s: expected %s, found invalid JSON: %v (at byte %d)", path, want, se, se.Offset)
		case errors.As(err, &te):
			where := ""
			if te.Field != "" {
				where = " at " + te.Field
			}
			return fmt.Errorf("%s: expected %s, found a JSON %s%s (at byte %d)", path, want, te.Value, where, te.Offset)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// jsonFields reads typed fields of a decoded JSON object and keeps the first
// error, which names the place and the field.
type jsonFields struct {
	path string
	m    map[string]json.RawMessage
	err  error
}

func (f *jsonFields) str(name string, required bool) string {
	raw, ok := f.m[name]
	if !ok || string(raw) == "null" {
		if required && f.err == nil {
			f.err = fmt.Errorf("%s: field %q: expected a string, found none", f.path, name)
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		f.fail(name, "a string", raw)
	}
	return s
}

func (f *jsonFields) fail(name, want string, raw json.RawMessage) {
	if f.err == nil {
		f.err = fmt.Errorf("%s: field %q: expected %s, found %s", f.path, name, want, clip(string(raw), 40))
	}
}

package label

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/rise-interp/rise/activations"
)

// ReadTraces reads a traces.jsonl file: one activations.Trace per line.
// Blank lines are skipped. Every trace needs a non-empty "trace" id, unique in
// the file, and a "response" string. Errors name the file and the line and
// say what was wrong.
func ReadTraces(path string) ([]activations.Trace, error) {
	first := map[string]int{}
	return readObjects(path, func(t *activations.Trace, raw json.RawMessage, line int) error {
		switch _, hasResponse := t.Extra["response"]; {
		case t.Trace == "":
			return errors.New(`field "trace": expected a non-empty trace id, found none`)
		case t.Response == "" && !hasResponse && !bytes.Contains(raw, []byte(`"response"`)):
			return fmt.Errorf(`trace %q: field "response": expected the response text, found none`, t.Trace)
		}
		if l, dup := first[t.Trace]; dup {
			return fmt.Errorf("trace %q: expected each trace id once, found it again (first on line %d)", t.Trace, l)
		}
		first[t.Trace] = line
		return nil
	})
}

// ReadSteps reads a steps.jsonl file: one activations.Step per line, with
// every field kept. Blank lines are skipped. Errors name the file and the line
// and say what was wrong.
func ReadSteps(path string) ([]activations.Step, error) {
	return readObjects(path, func(s *activations.Step, raw json.RawMessage, _ int) error {
		if s.Text == "" && !bytes.Contains(raw, []byte(`"text"`)) {
			return fmt.Errorf(`step %d of trace %q: field "text": expected the step text, found none`, s.Step, s.Trace)
		}
		return nil
	})
}

// readObjects reads a JSON-lines file of objects, skipping blank lines. It
// decodes each line into a T and hands it, with the line's text and number,
// to check; errors name the file and the line.
func readObjects[T any](path string, check func(v *T, raw json.RawMessage, line int) error) ([]T, error) {
	r, err := activations.OpenLines(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []T
	for {
		var raw json.RawMessage
		err := r.Next(&raw)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var v T
		if err := decodeObject(raw, &v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, r.Line(), err)
		}
		if err := check(&v, raw, r.Line()); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, r.Line(), err)
		}
		out = append(out, v)
	}
}

// decodeObject decodes one JSON object, saying what the line holds when it
// is something else.
func decodeObject(raw json.RawMessage, v any) error {
	if len(raw) > 0 && raw[0] != '{' {
		kind := map[byte]string{'[': "a list", '"': "a string", 'n': "null", 't': "true or false", 'f': "true or false"}[raw[0]]
		if kind == "" {
			kind = "a number"
		}
		return fmt.Errorf("expected a JSON object, found %s", kind)
	}
	return json.Unmarshal(raw, v)
}

// EncodeJSONL returns the values as JSON lines, one value per line.
func EncodeJSONL[T any](values []T) ([]byte, error) {
	var b bytes.Buffer
	for i := range values {
		line, err := json.Marshal(values[i])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

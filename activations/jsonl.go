package activations

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rise-interp/rise/internal/files"
)

// maxLineBytes bounds one line of a JSON-lines file. A step or a trace is
// text of at most a few megabytes; a longer line is a broken file (say, a
// missing newline), and reading it whole would cost memory for nothing.
const maxLineBytes = 64 << 20

// LinesReader reads a JSON-lines file one object at a time, keeping the line
// number for errors. Blank lines are skipped.
type LinesReader struct {
	path string
	f    *os.File
	r    *bufio.Reader
	line int
	buf  []byte
}

// OpenLines opens a JSON-lines file. It must be a regular file: a named
// pipe or a device (which could block or never end) is an error naming it.
func OpenLines(path string) (*LinesReader, error) {
	f, _, err := files.OpenRegular(path)
	if err != nil {
		return nil, fileErr(path, err)
	}
	return &LinesReader{path: path, f: f, r: bufio.NewReaderSize(f, 1<<16)}, nil
}

// Line returns the number of the line read last, from 1.
func (r *LinesReader) Line() int { return r.line }

// Next decodes the next non-blank line into v. It returns io.EOF after the
// last line; any other error names the file and the line.
func (r *LinesReader) Next(v any) error {
	for {
		r.buf = r.buf[:0]
		for {
			chunk, err := r.r.ReadSlice('\n')
			r.buf = append(r.buf, chunk...)
			if len(r.buf) > maxLineBytes {
				return fmt.Errorf("%s:%d: line longer than %d MiB: expected one JSON object per line", r.path, r.line+1, maxLineBytes>>20)
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err == io.EOF && len(r.buf) == 0 {
				return io.EOF
			}
			if err != nil && err != io.EOF {
				return fileErr(r.path, err)
			}
			break
		}
		r.line++
		line := bytes.TrimSpace(r.buf)
		if len(line) == 0 {
			continue
		}
		if err := json.Unmarshal(line, v); err != nil {
			return fmt.Errorf("%s:%d: %s", r.path, r.line, describeJSONErr(err, line))
		}
		return nil
	}
}

// Close closes the file.
func (r *LinesReader) Close() error { return r.f.Close() }

func describeJSONErr(err error, line []byte) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at column %d: %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q: expected %s, found JSON %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("expected a JSON object, found JSON %s", te.Value)
	case bytes.HasPrefix(line, []byte("{")):
		return err.Error()
	}
	return fmt.Sprintf("expected a JSON object, found %q", clip(string(line), 40))
}

// ReadTraces reads a traces.jsonl file: one Trace per line.
// Blank lines are skipped. Every trace needs a non-empty "trace" id, unique in
// the file, and a "response" string. Errors name the file and the line and
// say what was wrong.
func ReadTraces(path string) ([]Trace, error) {
	first := map[string]int{}
	return readObjects(path, func(t *Trace, raw json.RawMessage, line int) error {
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

// ReadSteps reads a steps.jsonl file: one Step per line, with
// every field kept. Blank lines are skipped. Errors name the file and the line
// and say what was wrong.
func ReadSteps(path string) ([]Step, error) {
	return readObjects(path, func(s *Step, raw json.RawMessage, _ int) error {
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
	r, err := OpenLines(path)
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

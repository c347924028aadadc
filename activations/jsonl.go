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

// ReadSteps reads a whole steps.jsonl file into memory.
func ReadSteps(path string) ([]Step, error) { return readAllLines[Step](path) }

// ReadTraces reads a whole traces.jsonl file into memory.
func ReadTraces(path string) ([]Trace, error) { return readAllLines[Trace](path) }

func readAllLines[T any](path string) ([]T, error) {
	r, err := OpenLines(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []T
	for {
		var v T
		err := r.Next(&v)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

package activations

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadWriteJSONL(t *testing.T) {
	dir := t.TempDir()
	yes := true
	traces := []Trace{
		{Trace: "a", Prompt: "p", Response: "r1\n\nr2", Correct: &yes, Extra: map[string]json.RawMessage{"source": json.RawMessage(`"x"`)}},
		{Trace: "b", Response: "Wait."},
	}
	data, err := EncodeJSONL(traces)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "traces.jsonl")
	os.WriteFile(path, append(data, "\n  \n"...), 0o644) // blank lines are skipped
	got, err := ReadTraces(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Trace != "a" || *got[0].Correct != true || string(got[0].Extra["source"]) != `"x"` || got[1].Response != "Wait." {
		t.Errorf("ReadTraces = %+v", got)
	}

	// Steps as rise label writes them: labels, and extra fields kept.
	steps := []Step{
		{Trace: "a", Step: 0, Text: "r1", Labels: []string{"other"}, Extra: map[string]json.RawMessage{"char_start": json.RawMessage("0"), "char_end": json.RawMessage("2")}},
		{Trace: "a", Step: 1, Text: "r2", Labels: []string{"other"}, Extra: map[string]json.RawMessage{"char_start": json.RawMessage("4"), "char_end": json.RawMessage("6")}},
		{Trace: "b", Step: 0, Text: "Wait.", Labels: []string{"reflection"}, Extra: map[string]json.RawMessage{"char_start": json.RawMessage("0"), "char_end": json.RawMessage("5")}},
	}
	data, err = EncodeJSONL(steps)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "steps.jsonl")
	os.WriteFile(path, data, 0o644)
	back, err := ReadSteps(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, steps) {
		t.Errorf("ReadSteps(EncodeJSONL(steps)) =\n%+v\nwant\n%+v", back, steps)
	}
}

func TestReadTracesErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"syntax", "{\"trace\": \"a\", \"response\": \"x\"}\n{\"trace\": \"b\", \n", ":2: malformed JSON"},
		{"list", `["a"]`, ":1: expected a JSON object, found a list"},
		{"number", "\n\n42\n", ":3: expected a JSON object, found a number"},
		{"null", "null", ":1: expected a JSON object, found null"},
		{"no id", `{"response": "x"}`, `:1: field "trace": expected a non-empty trace id, found none`},
		{"no response", `{"trace": "a"}`, `:1: trace "a": field "response": expected the response text, found none`},
		{"bad response", `{"trace": "a", "response": 3}`, `:1: field "response": expected a string, found 3`},
		{"bad correct", `{"trace": "a", "response": "x", "correct": "yes"}`, `:1: field "correct": expected true or false, found "yes"`},
		{"duplicate", "{\"trace\": \"a\", \"response\": \"x\"}\n{\"trace\": \"a\", \"response\": \"y\"}", `:2: trace "a": expected each trace id once, found it again (first on line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".jsonl")
			os.WriteFile(path, []byte(tt.content), 0o644)
			_, err := ReadTraces(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("ReadTraces error = %v, want the file name and %q", err, tt.want)
			}
		})
	}
	// An empty response is allowed when the field is there.
	path := filepath.Join(dir, "empty.jsonl")
	os.WriteFile(path, []byte(`{"trace": "a", "response": ""}`), 0o644)
	if _, err := ReadTraces(path); err != nil {
		t.Errorf("ReadTraces(empty response) = %v", err)
	}
	if _, err := ReadTraces(filepath.Join(dir, "missing.jsonl")); err == nil {
		t.Error("ReadTraces(missing file) succeeded")
	}
}

func TestReadStepsErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"labels", `{"trace": "a", "step": 0, "text": "x", "labels": "reflection"}`, `:1: field "labels": expected a list of strings, found "reflection"`},
		{"step", "{\"trace\": \"a\", \"step\": 0, \"text\": \"x\"}\n{\"trace\": \"a\", \"step\": \"1\", \"text\": \"x\"}", `:2: field "step": expected an integer, found "1"`},
		{"no text", `{"trace": "a", "step": 4}`, `:1: step 4 of trace "a": field "text": expected the step text, found none`},
		{"string", `"x"`, ":1: expected a JSON object, found a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".jsonl")
			os.WriteFile(path, []byte(tt.content), 0o644)
			_, err := ReadSteps(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("ReadSteps error = %v, want the file name and %q", err, tt.want)
			}
		})
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
)

// riseLabel runs "rise label ARGS..." in-process and returns the exit status
// and output.
func riseLabel(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runRise(t, append([]string{"label"}, args...)...)
}

func writeTestFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const testTraces = `{"trace": "a", "prompt": "What is 2+2?", "response": "2+2 = 4.\n\nWait, let me check. Yes.\n\nAlternatively, count.", "correct": true}
{"trace": "b", "response": "Hmm.\nSo 3."}
`

func readStepsFile(t *testing.T, path string) []activations.Step {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []activations.Step
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var s activations.Step
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("%s line %d: %v", path, i+1, err)
		}
		steps = append(steps, s)
	}
	return steps
}

func stepSummary(steps []activations.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Trace+"/"+string(rune('0'+s.Step))+" "+strings.Join(s.Labels, "+")+": "+s.Text)
	}
	return out
}

func TestLabelTracesFile(t *testing.T) {
	dir := t.TempDir()
	in := writeTestFile(t, filepath.Join(dir, "traces.jsonl"), testTraces)
	out := filepath.Join(dir, "out", "sub")

	code, stdout, stderr := riseLabel(t, "--traces", in, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	steps := readStepsFile(t, filepath.Join(out, "steps.jsonl"))
	want := []string{
		"a/0 other: 2+2 = 4.",
		"a/1 reflection: Wait, let me check. Yes.",
		"a/2 backtracking: Alternatively, count.",
		"b/0 other: Hmm.\nSo 3.",
	}
	if got := stepSummary(steps); !reflect.DeepEqual(got, want) {
		t.Errorf("steps =\n%q\nwant\n%q", got, want)
	}
	if s := steps[1]; string(s.Extra["char_start"]) != "10" || string(s.Extra["char_end"]) != "34" {
		t.Errorf("step a/1 offsets = %s, %s; want 10, 34", s.Extra["char_start"], s.Extra["char_end"])
	}
	tr, err := os.ReadFile(filepath.Join(out, "traces.jsonl"))
	if err != nil || strings.Count(string(tr), "\n") != 2 || !strings.Contains(string(tr), `"correct":true`) {
		t.Errorf("traces.jsonl = %q, %v", tr, err)
	}
	squashed := strings.Join(strings.Fields(stdout), " ")
	for _, w := range []string{"wrote 4 steps of 2 traces", "reflection 1 25.0%", "backtracking 1 25.0%", "other 2 50.0%", "all steps 4"} {
		if !strings.Contains(squashed, w) {
			t.Errorf("stdout lacks %q:\n%s", w, stdout)
		}
	}

	// The outputs exist now: refused without --force, replaced with it.
	code, _, stderr = riseLabel(t, "--traces", in, "--out", out)
	if code != 1 || !strings.Contains(stderr, "steps.jsonl already exists; pass --force to overwrite it") {
		t.Errorf("rerun without --force: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = riseLabel(t, "--traces", in, "--out", out, "--force", "--delimiter", `\n`, "--sentences")
	if code != 0 {
		t.Fatalf("--force: exit %d: %s", code, stderr)
	}
	want = []string{
		"a/0 other: 2+2 = 4.",
		"a/1 reflection: Wait, let me check.",
		"a/2 other: Yes.",
		"a/3 backtracking: Alternatively, count.",
		"b/0 other: Hmm.",
		"b/1 other: So 3.",
	}
	if got := stepSummary(readStepsFile(t, filepath.Join(out, "steps.jsonl"))); !reflect.DeepEqual(got, want) {
		t.Errorf("steps with --delimiter '\\n' --sentences =\n%q\nwant\n%q", got, want)
	}
}

func TestLabelCustomRules(t *testing.T) {
	dir := t.TempDir()
	in := writeTestFile(t, filepath.Join(dir, "traces.jsonl"), testTraces)
	rules := writeTestFile(t, filepath.Join(dir, "rules.json"), `{"doubt": ["hmm"], "check": ["let me check"]}`)
	code, stdout, stderr := riseLabel(t, "--traces", in, "--out", filepath.Join(dir, "out"), "--rules", rules)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := []string{
		"a/0 other: 2+2 = 4.",
		"a/1 check: Wait, let me check. Yes.",
		"a/2 other: Alternatively, count.",
		"b/0 doubt: Hmm.\nSo 3.",
	}
	if got := stepSummary(readStepsFile(t, filepath.Join(dir, "out", "steps.jsonl"))); !reflect.DeepEqual(got, want) {
		t.Errorf("steps =\n%q\nwant\n%q", got, want)
	}
	if !inOrder(stdout, "doubt", "check", "other") {
		t.Errorf("counts are not in rules order:\n%s", stdout)
	}

	bad := writeTestFile(t, filepath.Join(dir, "bad.json"), `{"doubt": []}`)
	code, _, stderr = riseLabel(t, "--traces", in, "--out", filepath.Join(dir, "x"), "--rules", bad)
	if code != 1 || !strings.Contains(stderr, bad) || !strings.Contains(stderr, `behaviour "doubt": expected at least one phrase, found an empty list`) {
		t.Errorf("bad rules: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("bad rules: the output directory was created")
	}
}

// inOrder reports whether the labels start lines of out in this order.
func inOrder(out string, labels ...string) bool {
	i := 0
	for _, line := range strings.Split(out, "\n") {
		if i < len(labels) && strings.HasPrefix(line, labels[i]+" ") {
			i++
		}
	}
	return i == len(labels)
}

func TestLabelRelabelSteps(t *testing.T) {
	dir := t.TempDir()
	in := writeTestFile(t, filepath.Join(dir, "steps.jsonl"),
		`{"trace": "a", "step": 0, "text": "Wait, no.", "labels": ["judge-doubt"], "token_end": 7}`+"\n"+
			`{"trace": "a", "step": 1, "text": "Another approach.", "extra": [1, 2]}`+"\n")
	out := filepath.Join(dir, "out")
	code, stdout, stderr := riseLabel(t, "--steps", in, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	steps := readStepsFile(t, filepath.Join(out, "steps.jsonl"))
	if got, want := stepSummary(steps), []string{"a/0 judge-doubt: Wait, no.", "a/1 backtracking: Another approach."}; !reflect.DeepEqual(got, want) {
		t.Errorf("steps = %q, want %q", got, want)
	}
	if steps[0].TokenEnd == nil || *steps[0].TokenEnd != 7 || string(steps[1].Extra["extra"]) != "[1,2]" {
		t.Errorf("fields were not kept: %+v", steps)
	}
	if !strings.Contains(stdout, "1 labelled by the keyword rules, 1 kept the labels they had") || !strings.Contains(stdout, "judge-doubt") {
		t.Errorf("stdout = %q", stdout)
	}

	// In place, relabelling everything.
	code, _, stderr = riseLabel(t, "--steps", in, "--out", dir, "--overwrite-labels", "--force")
	if code != 0 {
		t.Fatalf("--overwrite-labels: exit %d: %s", code, stderr)
	}
	if got, want := stepSummary(readStepsFile(t, in)), []string{"a/0 reflection: Wait, no.", "a/1 backtracking: Another approach."}; !reflect.DeepEqual(got, want) {
		t.Errorf("--overwrite-labels steps = %q, want %q", got, want)
	}
}

func TestLabelBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := writeTestFile(t, filepath.Join(dir, "bad.jsonl"), `{"trace": "a", "response": "x"}`+"\n"+`{"trace": "b", "response": 7}`+"\n")
	code, _, stderr := riseLabel(t, "--traces", bad, "--out", filepath.Join(dir, "o"))
	if code != 1 || !strings.Contains(stderr, bad+":2:") || !strings.Contains(stderr, `field "response": expected a string, found 7`) {
		t.Errorf("malformed line: exit %d, stderr %q", code, stderr)
	}
	if strings.Count(stderr, "\n") != 1 {
		t.Errorf("error is not one line: %q", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "o")); err == nil {
		t.Error("malformed input: the output directory was created")
	}

	badSteps := writeTestFile(t, filepath.Join(dir, "steps.jsonl"), "{\"trace\": \"a\", \"text\": \"x\"}\n[]\n")
	code, _, stderr = riseLabel(t, "--steps", badSteps, "--out", filepath.Join(dir, "o"))
	if code != 1 || !strings.Contains(stderr, badSteps+":2: expected a JSON object, found a list") {
		t.Errorf("malformed steps: exit %d, stderr %q", code, stderr)
	}

	code, _, stderr = riseLabel(t, "--traces", filepath.Join(dir, "missing.jsonl"), "--out", dir)
	if code != 1 || !strings.Contains(stderr, "missing.jsonl") {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	code, _, stderr = riseLabel(t, "--traces", empty, "--out", dir)
	if code != 1 || !strings.Contains(stderr, "expected a traces.jsonl file or a Thought Anchors directory") {
		t.Errorf("directory without traces: exit %d, stderr %q", code, stderr)
	}
}

func TestLabelUsageErrors(t *testing.T) {
	dir := t.TempDir()
	in := writeTestFile(t, filepath.Join(dir, "traces.jsonl"), testTraces)
	tests := []struct {
		args []string
		want string
	}{
		{nil, "expected --traces PATH or --steps FILE"},
		{[]string{"--traces", in, "--steps", in, "--out", dir}, "expected one of --traces and --steps, found both"},
		{[]string{"--traces", in}, "expected --out DIR"},
		{[]string{"--traces", in, "--out", dir, "extra"}, `expected no arguments, found "extra"`},
		{[]string{"--traces", in, "--out", dir, "--delimiter", `\q`}, `expected Go-escaped text such as '\n\n', found "\\q"`},
		{[]string{"--traces", in, "--out", dir, "--delimiter", ""}, "expected a non-empty delimiter"},
		{[]string{"--traces", in, "--out", dir, "--overwrite-labels"}, "--overwrite-labels applies to --steps"},
		{[]string{"--steps", in, "--out", dir, "--sentences"}, "--delimiter and --sentences apply to --traces"},
		{[]string{"--steps", in, "--eval"}, "--eval needs --traces with a Thought Anchors directory"},
		{[]string{"--traces", in, "--eval"}, "--eval needs a Thought Anchors directory, found the file"},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		code, stdout, stderr := riseLabel(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) || stdout != "" {
			t.Errorf("rise label %q: exit %d, stderr %q; want exit 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "steps.jsonl")); err == nil {
		t.Error("a usage error wrote output")
	}
}

func TestLabelDelimiterFlag(t *testing.T) {
	var s string
	d := delimiterFlag{&s}
	for in, want := range map[string]string{`\n\n`: "\n\n", `\n`: "\n", "||": "||", `\t`: "\t", `say "x"`: `say "x"`, `\"`: `"`, `\u2029`: "\u2029"} {
		if err := d.Set(in); err != nil || s != want {
			t.Errorf("Set(%q) = %v, value %q; want %q", in, err, s, want)
		}
	}
	s = "\n\n"
	if d.String() != `\n\n` {
		t.Errorf("String() = %q", d.String())
	}
}

// writeAnchors writes a small Thought Anchors directory with two traces.
func writeAnchors(t *testing.T, dir string) {
	writeTestFile(t, filepath.Join(dir, "m/correct/p1/base_solution.json"),
		`{"prompt": "P", "solution": "Compute 2+2. It is 4.\n\nWait, is it? Yes.", "is_correct": true}`)
	writeTestFile(t, filepath.Join(dir, "m/correct/p1/chunks_labeled.json"), `[
		{"chunk": "Compute 2+2.", "chunk_idx": 0, "function_tags": ["active_computation"]},
		{"chunk": "It is 4.", "chunk_idx": 1, "function_tags": ["active_computation"]},
		{"chunk": "Wait, is it?", "chunk_idx": 2, "function_tags": ["uncertainty_management"]},
		{"chunk": "Yes.", "chunk_idx": 3, "function_tags": ["self_checking"]}]`)
	writeTestFile(t, filepath.Join(dir, "m/incorrect/p1/base_solution.json"),
		`{"prompt": "P", "solution": "It is 5.", "is_correct": false}`)
	writeTestFile(t, filepath.Join(dir, "m/incorrect/p1/chunks_labeled.json"),
		`[{"chunk": "It is 5.", "chunk_idx": 0, "function_tags": ["final_answer_emission"]}]`)
}

func TestLabelThoughtAnchors(t *testing.T) {
	dir := t.TempDir()
	writeAnchors(t, filepath.Join(dir, "ta"))
	out := filepath.Join(dir, "out")

	code, stdout, stderr := riseLabel(t, "--traces", filepath.Join(dir, "ta"), "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := []string{"m/correct/p1/0 other: Compute 2+2. It is 4.", "m/correct/p1/1 reflection: Wait, is it? Yes.", "m/incorrect/p1/0 other: It is 5."}
	if got := stepSummary(readStepsFile(t, filepath.Join(out, "steps.jsonl"))); !reflect.DeepEqual(got, want) {
		t.Errorf("steps = %q, want %q", got, want)
	}
	tr, _ := os.ReadFile(filepath.Join(out, "traces.jsonl"))
	if !strings.Contains(string(tr), `{"trace":"m/correct/p1","prompt":"P","response":"Compute 2+2. It is 4.\n\nWait, is it? Yes.","correct":true}`) {
		t.Errorf("traces.jsonl = %s", tr)
	}
	if strings.Contains(stdout, "Chunk level") {
		t.Errorf("agreement printed without --eval:\n%s", stdout)
	}

	// --eval alone prints both tables and writes nothing.
	code, stdout, stderr = riseLabel(t, "--traces", filepath.Join(dir, "ta"), "--eval")
	if code != 0 {
		t.Fatalf("--eval: exit %d: %s", code, stderr)
	}
	squashed := strings.Join(strings.Fields(stdout), " ")
	for _, w := range []string{
		"Chunk level", "uncertainty_management 1 1 (100.0%) 0 (0.0%) 1 (100.0%)",
		"Step level", "self_checking 1 1 (100.0%) 0 (0.0%) 1 (100.0%)",
		"Chunks located: 5 of 5",
	} {
		if !strings.Contains(squashed, w) {
			t.Errorf("--eval output lacks %q:\n%s", w, stdout)
		}
	}
	if strings.Contains(stdout, "wrote") {
		t.Errorf("--eval without --out wrote files:\n%s", stdout)
	}

	// --eval with --out does both.
	code, stdout, _ = riseLabel(t, "--traces", filepath.Join(dir, "ta"), "--eval", "--out", out, "--force")
	if code != 0 || !strings.Contains(stdout, "Step level") || !strings.Contains(stdout, "wrote 3 steps of 2 traces") {
		t.Errorf("--eval --out: exit %d:\n%s", code, stdout)
	}
}

// TestLabelEvalRealData runs --eval on the Thought Anchors traces beside the
// repository and checks the headline figures (see the label package's tests
// for the full counts).
func TestLabelEvalRealData(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "data", "thought-anchors")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the Thought Anchors data is missing: expected the folder %s (../shared/data/thought-anchors beside the repository): %v", dir, err)
		}
		t.Skipf("the Thought Anchors data is missing (%v); skipping", err)
	}
	code, stdout, stderr := riseLabel(t, "--traces", dir, "--eval")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{
		"Caught: 52.3% of uncertainty_management chunks, 21.7% of self_checking chunks; false alarms: 2.4% of active_computation chunks.",
		"Caught: 76.6% of uncertainty_management chunks, 41.5% of self_checking chunks; false alarms: 14.5% of active_computation chunks.",
		"Chunks located: 6011 of 6011",
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
}

func TestLabelHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"help", "label"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, w := range []string{"-delimiter S", "(default \\n\\n)", "arXiv 2512.23988", "Examples:\n\n\trise label --traces"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("help lacks %q:\n%s", w, out.String())
		}
	}
}

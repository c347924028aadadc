package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/label"
	"github.com/rise-interp/rise/internal/atomicfile"
)

// labelFlags holds the flags of "rise label".
type labelFlags struct {
	traces, steps, out, rules string
	delimiter                 string
	sentences, force          bool
	overwriteLabels, eval     bool
}

func init() {
	var f labelFlags
	register(&command{
		name:    "label",
		summary: "split traces into steps and label them with behaviours by keyword rules",
		usage:   "(--traces PATH | --steps FILE) [--out DIR] [--delimiter S] [--sentences] [--rules FILE] [--force] [--overwrite-labels] [--eval]",
		help: `With --traces, every response is cut into steps at the delimiter (a blank
line by default, as in RISE), each step is labelled with the keyword rules, and
DIR/steps.jsonl (one step per line, with the byte offsets char_start and
char_end of its text in the response) and DIR/traces.jsonl are written. PATH is
a traces.jsonl file ({"trace": ..., "prompt": ..., "response": ...} per line)
or a Thought Anchors directory (base_solution.json and chunks_labeled.json per
trace, found anywhere beneath it).

With --steps, an existing steps.jsonl is labelled again into DIR/steps.jsonl:
steps that already have labels (from an LLM judge, say) keep them, unless
--overwrite-labels is given.

The default rules are those of RISE (arXiv 2512.23988, Table 3), taken from
SEAL (arXiv 2504.07986): reflection = wait, verify, make sure, hold on, think
again, 's correct, 's incorrect, let me check, seems right; backtracking =
alternatively, think differently, another way / approach / method / solution /
strategy / technique. Phrases match case-insensitively at word boundaries; a
step may get both labels, and a step that matches neither is "other".
--rules FILE replaces them with a JSON object mapping each behaviour to its
phrases, such as {"reflection": ["wait", "let me check"]}, in that order.

--eval compares the keyword labels of a Thought Anchors directory with its
GPT-4o function tags, chunk by chunk and step by step, and prints the tables;
--out is then optional.

Existing output files are left alone unless --force is given. The label
counts are printed at the end.

Examples:

	rise label --traces traces.jsonl --out labelled
	rise label --traces ../shared/data/thought-anchors --eval
	rise label --steps dump/steps.jsonl --out relabelled --rules rules.json`,
		setFlags: func(fs *flag.FlagSet) {
			f = labelFlags{delimiter: label.DefaultDelimiter}
			fs.StringVar(&f.traces, "traces", "", "read traces from `PATH`: a traces.jsonl file or a Thought Anchors directory")
			fs.StringVar(&f.steps, "steps", "", "label the steps of an existing steps.jsonl `FILE` again")
			fs.StringVar(&f.out, "out", "", "write steps.jsonl (and traces.jsonl) into `DIR`, created if needed")
			fs.Var(delimiterFlag{&f.delimiter}, "delimiter", "end steps at the Go-escaped text `S` (so '\\n' means a newline)")
			fs.BoolVar(&f.sentences, "sentences", false, "split every step further into sentences")
			fs.StringVar(&f.rules, "rules", "", "read the keyword rules from a JSON `FILE` instead of using RISE's")
			fs.BoolVar(&f.force, "force", false, "overwrite existing output files")
			fs.BoolVar(&f.overwriteLabels, "overwrite-labels", false, "with --steps, label every step anew, replacing the labels it has")
			fs.BoolVar(&f.eval, "eval", false, "compare the keyword labels with the function tags of a Thought Anchors directory")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			return runLabel(ctx, e, fs, f)
		},
	})
}

func runLabel(ctx context.Context, e *env, fs *flag.FlagSet, f labelFlags) error {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch {
	case fs.NArg() > 0:
		return usagef("expected no arguments, found %q (give the input with --traces or --steps)", fs.Arg(0))
	case f.traces != "" && f.steps != "":
		return usagef("expected one of --traces and --steps, found both")
	case f.traces == "" && f.steps == "":
		return usagef("expected --traces PATH or --steps FILE")
	case f.out == "" && !f.eval:
		return usagef("expected --out DIR (or --eval with a Thought Anchors directory)")
	case f.steps != "" && (set["delimiter"] || set["sentences"]):
		return usagef("--delimiter and --sentences apply to --traces; --steps keeps the steps as they are")
	case f.steps != "" && f.eval:
		return usagef("--eval needs --traces with a Thought Anchors directory, found --steps")
	case f.traces != "" && f.overwriteLabels:
		return usagef("--overwrite-labels applies to --steps; steps cut from traces have no labels yet")
	}

	m := label.DefaultMatcher()
	if f.rules != "" {
		rules, err := label.LoadRules(f.rules)
		if err != nil {
			return err
		}
		if m, err = rules.Compile(); err != nil {
			return fmt.Errorf("rules file %s: %w", f.rules, err)
		}
	}
	if f.steps != "" {
		return relabelSteps(ctx, e, f, m)
	}
	return labelTraces(ctx, e, f, m)
}

// labelTraces runs "rise label --traces".
func labelTraces(ctx context.Context, e *env, f labelFlags, m *label.Matcher) error {
	info, err := os.Stat(f.traces)
	if err != nil {
		return fmt.Errorf("traces: %w", err)
	}
	var anchors []label.AnchorTrace
	if info.IsDir() {
		ok, err := label.IsThoughtAnchors(f.traces)
		if err != nil {
			return fmt.Errorf("traces: %w", err)
		}
		if !ok {
			return fmt.Errorf("traces %s: expected a traces.jsonl file or a Thought Anchors directory (with %s files beneath it), found a directory without any",
				f.traces, label.AnchorSolutionFile)
		}
	} else if f.eval {
		return usagef("--eval needs a Thought Anchors directory, found the file %s", f.traces)
	}
	var outputs []string
	if f.out != "" {
		outputs = []string{filepath.Join(f.out, "steps.jsonl"), filepath.Join(f.out, "traces.jsonl")}
		if err := checkOutputs(outputs, f.force); err != nil {
			return err
		}
	}

	var traces []activations.Trace
	if info.IsDir() {
		if anchors, err = label.ReadThoughtAnchors(f.traces); err != nil {
			return err
		}
		for _, a := range anchors {
			traces = append(traces, a.Trace)
		}
	} else if traces, err = activations.ReadTraces(f.traces); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	seg := label.SegmentOptions{Delimiter: f.delimiter, Sentences: f.sentences}
	if f.eval {
		for i, a := range []*label.Agreement{label.ChunkAgreement(anchors, m), label.StepAgreement(anchors, m, seg)} {
			if i > 0 {
				fmt.Fprintln(e.stdout)
			}
			if err := a.WriteTable(e.stdout); err != nil {
				return err
			}
		}
		if f.out == "" {
			return nil
		}
		fmt.Fprintln(e.stdout)
	}

	steps := label.LabelTraces(traces, label.Options{SegmentOptions: seg, Matcher: m})
	if err := writeJSONL(outputs[0], steps); err != nil {
		return err
	}
	if err := writeJSONL(outputs[1], traces); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %d steps of %d traces to %s and %s\n", len(steps), len(traces), outputs[0], outputs[1])
	return label.CountLabels(steps, m.Behaviours()).WriteTable(e.stdout)
}

// relabelSteps runs "rise label --steps".
func relabelSteps(ctx context.Context, e *env, f labelFlags, m *label.Matcher) error {
	out := filepath.Join(f.out, "steps.jsonl")
	if err := checkOutputs([]string{out}, f.force); err != nil {
		return err
	}
	steps, err := activations.ReadSteps(f.steps)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := label.LabelSteps(steps, m, !f.overwriteLabels)
	if err := writeJSONL(out, steps); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %d steps to %s: %d labelled by the keyword rules, %d kept the labels they had\n",
		len(steps), out, r.Keyword, r.Kept)
	return r.WriteTable(e.stdout)
}

// checkOutputs refuses to overwrite existing files unless force is set.
func checkOutputs(paths []string, force bool) error {
	if force {
		return nil
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s already exists; pass --force to overwrite it", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeJSONL writes values to path as JSON lines, atomically, creating the
// directory if needed.
func writeJSONL[T any](path string, values []T) error {
	data, err := activations.EncodeJSONL(values)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// delimiterFlag is a flag.Value for Go-escaped text: '\n\n' is two newlines.
type delimiterFlag struct{ s *string }

func (d delimiterFlag) String() string {
	if d.s == nil {
		return ""
	}
	q := strconv.Quote(*d.s)
	return q[1 : len(q)-1]
}

func (d delimiterFlag) Set(v string) error {
	// Escape bare double quotes so that the text can be unquoted as a Go
	// string literal.
	var b strings.Builder
	escaped := false
	for _, r := range v {
		if r == '"' && !escaped {
			b.WriteByte('\\')
		}
		escaped = r == '\\' && !escaped
		b.WriteRune(r)
	}
	s, err := strconv.Unquote(`"` + b.String() + `"`)
	if err != nil {
		return fmt.Errorf(`expected Go-escaped text such as '\n\n', found %q`, v)
	}
	if s == "" {
		return errors.New("expected a non-empty delimiter, found an empty one")
	}
	*d.s = s
	return nil
}

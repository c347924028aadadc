package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/internal/atomicfile"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer"
)

// parseFloats reads a comma-separated list of numbers.
func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("expected comma-separated numbers such as -1.5,0,1.5, found %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// sweepResults is the content of results.json.
type sweepResults struct {
	Format      string      `json:"format"`
	Model       string      `json:"model"`
	Spec        string      `json:"spec"`
	Prompts     int         `json:"prompts"`
	Seed        uint64      `json:"seed"`
	MaxTokens   int         `json:"max_tokens"`
	Temperature float64     `json:"temperature"`
	Runs        []steer.Run `json:"runs"`
}

func init() {
	var (
		mf                                 modelFlags
		sf                                 samplingFlags
		specPath, alphas, promptsPath, out string
		svgDir                             string
		limit                              int
	)
	register(&command{
		name:    "steer",
		noArgs:  true,
		summary: "sweep a steering spec over strengths and count the behaviours it causes",
		usage:   "--model PATH --steer SPEC.json --alphas A,B,... --prompts FILE --out results.json [--max-tokens N] [--temperature T] [--seed S] [--chat r1|chatml] [--svg DIR]",
		help: `For each strength A in --alphas, multiplies the strength of every vector in
the spec by A and generates for every prompt, with the same seed each time;
splits each generation into steps at "\n\n", labels them by RISE's keyword
rules and counts them. results.json holds, per strength, the mean numbers of
reflection and backtracking steps, steps and tokens per prompt, the accuracy
when the prompts carry answers (JSON lines with "answer", GSM8K's "#### N"
included; the last number of the generation is compared), and every
generation. --svg DIR draws the dose-response curves as dose.svg and
dose.png. Write strength 1 in the spec to sweep the strength itself.
Without --steer it makes one unsteered run: the model's own accuracy and
behaviour counts.

--prompts is a text file with one prompt per line, or JSON lines with
"prompt" (or "question") and optionally "answer".

Example:

	rise steer --model M --steer reflect.json --alphas -8,-4,0,4,8 --prompts ../shared/data/gsm8k/test.jsonl --limit 20 --out results.json --svg plots`,
		setFlags: func(fs *flag.FlagSet) {
			mf.set(fs)
			fs.StringVar(&specPath, "steer", "", "the steering spec (without one: a single unsteered run)")
			fs.StringVar(&alphas, "alphas", "-1,0,1", "strengths to sweep, comma-separated")
			fs.StringVar(&promptsPath, "prompts", "", "the prompts (required)")
			fs.IntVar(&limit, "limit", 0, "use only the first N prompts (0: all)")
			fs.StringVar(&out, "out", "", "where to write results.json (required)")
			fs.StringVar(&svgDir, "svg", "", "also draw the dose-response chart into DIR")
			sf.set(fs, "tokens to generate per prompt at most", "random seed, the same for every strength")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet) error {
			if promptsPath == "" || out == "" {
				return usagef("--prompts and --out are required")
			}
			strengths, err := parseFloats(alphas)
			if err != nil {
				return usagef("--alphas: %v", err)
			}
			if specPath == "" {
				// No spec: one unsteered run, to measure the model itself.
				strengths = []float64{0}
			}
			if sf.maxTokens < 1 || limit < 0 {
				return usagef("--max-tokens must be at least 1 and --limit not negative")
			}
			b, vs, err := mf.loadSteered(ctx, specPath)
			if err != nil {
				return err
			}
			prompts, err := steer.ReadPrompts(promptsPath)
			if err != nil {
				return err
			}
			if limit > 0 && limit < len(prompts) {
				prompts = prompts[:limit]
			}
			bar := newProgress(e.stderr, "steering sweep")
			runs, err := steer.Sweep(ctx, b, vs, strengths, prompts,
				sf.options(),
				mf.wrapFunc(), func(done, total int) { bar.update(int64(done), int64(total)) })
			bar.done()
			if err != nil {
				return err
			}
			model := mf.model
			if model == "" {
				model = mf.backend
			}
			res := sweepResults{Format: "rise-steer/1", Model: model, Spec: specPath, Prompts: len(prompts), Seed: sf.seed,
				MaxTokens: sf.maxTokens, Temperature: sf.temperature, Runs: runs}
			js, err := json.MarshalIndent(res, "", " ")
			if err != nil {
				return err
			}
			if dir := filepath.Dir(out); dir != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			if err := atomicfile.Write(out, append(js, '\n')); err != nil {
				return err
			}
			if svgDir != "" && len(runs) >= 2 {
				if err := drawDose(svgDir, runs); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stdout, "wrote %s: %d strengths x %d prompts\n", out, len(runs), len(prompts))
			fmt.Fprintf(e.stdout, "%9s  %11s  %13s  %7s  %7s  %s\n", "strength", "reflection", "backtracking", "steps", "tokens", "accuracy")
			for _, r := range runs {
				acc := "-"
				if r.Accuracy != nil {
					acc = fmt.Sprintf("%.3f", *r.Accuracy)
				}
				fmt.Fprintf(e.stdout, "%9g  %11.2f  %13.2f  %7.1f  %7.1f  %s\n", r.Strength, r.ReflectionSteps, r.BacktrackingSteps, r.Steps, r.Tokens, acc)
			}
			return nil
		},
	})
}

// wrapFunc returns the chat template as a function, or nil for none.
func (f *modelFlags) wrapFunc() func(string) (string, bool) {
	if f.chat == "" {
		return nil
	}
	return f.wrap
}

// drawDose writes the dose-response curves as SVG and PNG.
func drawDose(dir string, runs []steer.Run) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	x := make([]float64, len(runs))
	ys := map[string][]float64{"reflection steps": make([]float64, len(runs)), "backtracking steps": make([]float64, len(runs))}
	for i, r := range runs {
		x[i] = r.Strength
		ys["reflection steps"][i] = r.ReflectionSteps
		ys["backtracking steps"][i] = r.BacktrackingSteps
	}
	for _, f := range []atlas.Format{atlas.SVG, atlas.PNG} {
		var b bytes.Buffer
		if err := atlas.RenderCurves(&b, f, "behaviour steps per generation by steering strength", "strength", "steps per generation", x, ys); err != nil {
			return err
		}
		path := filepath.Join(dir, "dose."+string(f))
		if err := atomicfile.Write(path, b.Bytes()); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

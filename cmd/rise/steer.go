package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/activations/label"
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

func init() {
	var (
		mf                                 modelFlags
		sf                                 samplingFlags
		specPath, alphas, promptsPath, out string
		svgDir, rulesPath                  string
		limit, controls                    int
	)
	register(&command{
		name:    "steer",
		noArgs:  true,
		summary: "sweep a steering spec over strengths and count the behaviours it causes",
		usage:   "--model PATH --steer SPEC.json --alphas A,B,... --prompts FILE --out results.json [--max-tokens N] [--temperature T] [--seed S] [--chat r1|chatml|qwen3|qwen3-nothink] [--controls N] [--svg DIR]",
		help: `For each strength A in --alphas, multiplies the strength of every vector in
the spec by A and generates for every prompt, with the same seed each time;
splits each generation into steps at "\n\n", labels them by RISE's keyword
rules and counts them. results.json holds, per strength, the mean numbers of
reflection and backtracking steps, steps and tokens per prompt, the accuracy
when the prompts carry answers (JSON lines with "answer", GSM8K's "#### N"
included; the last number of the generation is compared), and every
generation. Every mean has its 95% bootstrap interval over the prompts,
every behaviour the keyword rules know is counted (and "other"), with the
share of generations that hit --max-tokens, and each strength is tested
against strength 0 on the same prompts and seeds (a paired sign-flip test;
p-values in results.json). Beside the spec, --controls random directions
(default 3) are swept at the same layers, operators, positions and
strengths: results.json holds their runs and the band their means span,
and the table says whether the spec's reflection curve leaves that band.
--svg DIR draws the dose-response curves with their intervals and the
controls' band as dose.svg and dose.png. Write strength 1 in the spec to
sweep the strength itself. --rules FILE adds behaviours to count (a JSON
object mapping each behaviour to its phrases, as rise label --rules reads,
or the workbench's named behaviours).
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
			fs.IntVar(&controls, "controls", 3, "random directions to sweep beside the spec's as controls (0: none)")
			fs.StringVar(&rulesPath, "rules", "", "also count the behaviours of a JSON rules `FILE` (as rise label --rules reads), besides RISE's")
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
			if controls < 0 || controls > 100 {
				return usagef("--controls: expected 0 to 100, found %d", controls)
			}
			if specPath == "" {
				controls = 0 // nothing to control for
			}
			rules := label.DefaultRules()
			if rulesPath != "" {
				extra, err := label.LoadRules(rulesPath)
				if err != nil {
					return err
				}
				rules = append(rules, extra...)
				if err := rules.Validate(); err != nil {
					return fmt.Errorf("%s: %v", rulesPath, err)
				}
			}
			matcher, err := rules.Compile()
			if err != nil {
				return err
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
			// The spec's vectors, then each control, as one progress bar.
			sets := append([]steer.Control{{Name: "spec", Vectors: vs}}, steer.RandomControls(vs, controls, sf.seed)...)
			if controls > 0 {
				if sc, err := steer.ShuffledControl(vs); err == nil {
					sets = append(sets, sc)
				} else {
					fmt.Fprintf(e.stderr, "rise steer: no shuffled-label control: %v\n", err)
				}
			}
			bar := newProgress(e.stderr, "steering sweep")
			runs, ctrl, err := steer.SweepControlled(ctx, b, sets, strengths, prompts, sf.options(), steer.SweepOptions{Wrap: mf.wrapFunc(), Matcher: matcher},
				func(done, total int) { bar.update(int64(done), int64(total)) })
			if err != nil {
				bar.done()
				return err
			}
			bar.done()
			model := mf.model
			if model == "" {
				model = mf.backend
			}
			res := steer.Results{Format: steer.ResultsFormat, Model: model, Spec: specPath, Prompts: len(prompts), Seed: sf.seed,
				MaxTokens: sf.maxTokens, Temperature: sf.temperature, Runs: runs, Controls: ctrl, ControlBand: steer.ControlBand(ctrl, len(strengths))}
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
				if err := drawDose(svgDir, runs, res.ControlBand); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stdout, "wrote %s: %d strengths x %d prompts\n", out, len(runs), len(prompts))
			printDose(e.stdout, runs, res.ControlBand)
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

// printDose writes the sweep as a table: each measure's mean with its 95%
// interval, the p-value against strength 0, and where the controls' means
// lay.
func printDose(w io.Writer, runs []steer.Run, band map[string]steer.MeasureRange) {
	fmt.Fprintf(w, "%9s  %-28s  %-28s  %7s  %6s  %s\n", "strength", "reflection [95%] p", "backtracking [95%] p", "tokens", "limit", "accuracy")
	cell := func(r steer.Run, name string) string {
		iv := r.Behaviours[name]
		c := fmt.Sprintf("%.2f [%.2f, %.2f]", iv.Mean, iv.Lo, iv.Hi)
		if p, ok := r.PValues[name]; ok && r.Strength != 0 {
			c += fmt.Sprintf(" p=%.3g", p)
		}
		return c
	}
	for _, r := range runs {
		acc := "-"
		if r.Accuracy != nil {
			acc = fmt.Sprintf("%.3f", *r.Accuracy)
		}
		fmt.Fprintf(w, "%9g  %-28s  %-28s  %7.1f  %5.0f%%  %s\n", r.Strength, cell(r, "reflection"), cell(r, "backtracking"), r.Tokens, 100*r.LengthStops, acc)
	}
	if rb, ok := band["reflection"]; ok {
		fmt.Fprintf(w, "controls (random directions, shuffled labels), reflection steps per generation:")
		for i, r := range runs {
			v := r.Behaviours["reflection"].Mean
			where := "inside"
			if v < rb.Lo[i] || v > rb.Hi[i] {
				where = "outside"
			}
			fmt.Fprintf(w, " %g: [%.2f, %.2f] %s;", r.Strength, rb.Lo[i], rb.Hi[i], where)
		}
		fmt.Fprintln(w)
	}
}

// drawDose writes the dose-response curves as SVG and PNG: reflection and
// backtracking steps per generation with their 95% intervals, and the
// range of the random controls.
func drawDose(dir string, runs []steer.Run, band map[string]steer.MeasureRange) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	x := make([]float64, len(runs))
	ys := map[string][]float64{}
	var bands []atlas.Band
	for _, b := range []string{"reflection", "backtracking"} {
		name := b + " steps"
		mean, lo, hi := make([]float64, len(runs)), make([]float64, len(runs)), make([]float64, len(runs))
		for i, r := range runs {
			x[i] = r.Strength
			iv := r.Behaviours[b]
			mean[i], lo[i], hi[i] = iv.Mean, iv.Lo, iv.Hi
		}
		ys[name] = mean
		if cb, ok := band[b]; ok {
			bands = append(bands, atlas.Band{Name: b + ": controls", Series: name, Lo: cb.Lo, Hi: cb.Hi, Dashed: true})
		}
		bands = append(bands, atlas.Band{Name: b + ": 95% interval", Series: name, Lo: lo, Hi: hi})
	}
	for _, f := range []atlas.Format{atlas.SVG, atlas.PNG} {
		var b bytes.Buffer
		if err := atlas.RenderCurvesWithBands(&b, f, "behaviour steps per generation by steering strength", "strength", "steps per generation", x, ys, bands); err != nil {
			return err
		}
		path := filepath.Join(dir, "dose."+string(f))
		if err := atomicfile.Write(path, b.Bytes()); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

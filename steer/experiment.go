package steer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"

	"github.com/rise-interp/rise/internal/files"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/steer/model"

	"github.com/rise-interp/rise/activations/label"
)

// Prompt is one prompt of an experiment, with the answer to check the
// generation against when it is known.
type Prompt struct {
	Text   string `json:"prompt"`
	Answer string `json:"answer,omitempty"`
}

// ReadPrompts reads prompts from a file: JSON lines with "prompt" (or
// "question", as in GSM8K) and optionally "answer" (GSM8K's worked answer
// ending "#### 42" counts as 42), or else one prompt per non-empty line.
func ReadPrompts(path string) ([]Prompt, error) {
	f, _, err := files.OpenRegular(path)
	if err != nil {
		return nil, inputerr.Wrap(err)
	}
	defer f.Close()
	var out []Prompt
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		if strings.HasPrefix(s, "{") {
			var raw map[string]any
			if err := json.Unmarshal([]byte(s), &raw); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
			p := Prompt{}
			for _, k := range []string{"prompt", "question"} {
				if v, ok := raw[k].(string); ok {
					p.Text = v
					break
				}
			}
			if p.Text == "" {
				return nil, inputerr.Errorf("%s:%d: expected a \"prompt\" or \"question\" string field", path, line)
			}
			switch a := raw["answer"].(type) {
			case string:
				if _, after, ok := strings.Cut(a, "####"); ok {
					a = after
				}
				p.Answer = strings.TrimSpace(a)
			case float64:
				p.Answer = fmt.Sprint(a)
			}
			out = append(out, p)
			continue
		}
		out = append(out, Prompt{Text: s})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, inputerr.Errorf("%s: no prompts", path)
	}
	return out, nil
}

// Outcome is what one generation did: its steps and their behaviours.
type Outcome struct {
	Prompt  int            `json:"prompt"`
	Text    string         `json:"text"`
	Tokens  int            `json:"tokens"`
	Steps   int            `json:"steps"`
	Counts  map[string]int `json:"counts"` // steps per behaviour label
	Correct *bool          `json:"correct,omitempty"`
	Stop    string         `json:"stop"`
}

// Run is one strength of a sweep: means over the prompts.
type Run struct {
	Strength          float64  `json:"strength"`
	ReflectionSteps   float64  `json:"reflection_steps"`
	BacktrackingSteps float64  `json:"backtracking_steps"`
	Steps             float64  `json:"steps"`
	Tokens            float64  `json:"tokens"`
	Accuracy          *float64 `json:"accuracy"`
	// Behaviours holds the steps per generation of every behaviour the
	// keyword rules know and of "other" (steps with none), each with its
	// 95% bootstrap interval over the prompts; Tokens and Accuracy have
	// theirs in TokensInterval and AccuracyInterval.
	Behaviours       map[string]Interval `json:"behaviours"`
	TokensInterval   Interval            `json:"tokens_interval"`
	AccuracyInterval *Interval           `json:"accuracy_interval,omitempty"`
	// LengthStops is the share of generations that hit the token limit.
	LengthStops float64 `json:"length_stops"`
	// PValues holds, when the sweep has strength 0, the two-sided p-value
	// of a paired sign-flip test of each measure against strength 0 (the
	// same prompts and seeds): every behaviour, "tokens" and "accuracy".
	PValues  map[string]float64 `json:"p_values,omitempty"`
	Outcomes []Outcome          `json:"generations"`
}

// measures returns the per-prompt values of a run's measures: steps of
// each behaviour, tokens, and (when the prompts have answers) correctness
// as 0 or 1.
func (r *Run) measures(behaviours []string) map[string][]float64 {
	m := map[string][]float64{}
	for _, oc := range r.Outcomes {
		for _, b := range behaviours {
			m[b] = append(m[b], float64(oc.Counts[b]))
		}
		m["tokens"] = append(m["tokens"], float64(oc.Tokens))
		if oc.Correct != nil {
			v := 0.0
			if *oc.Correct {
				v = 1
			}
			m["accuracy"] = append(m["accuracy"], v)
		}
	}
	return m
}

// summarise fills in the intervals, the share of length stops and, when a
// run has strength 0, every run's p-values against it. The resampling is
// seeded, so the same runs give the same numbers.
func summarise(runs []Run, seed uint64, m *label.Matcher) {
	behaviours := append(m.Behaviours(), label.Other)
	var base map[string][]float64
	for i := range runs {
		if runs[i].Strength == 0 {
			base = runs[i].measures(behaviours)
			break
		}
	}
	for i := range runs {
		r := &runs[i]
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		ms := r.measures(behaviours)
		r.Behaviours = map[string]Interval{}
		for _, b := range behaviours {
			r.Behaviours[b] = bootstrap(ms[b], rng)
		}
		r.TokensInterval = bootstrap(ms["tokens"], rng)
		if acc := ms["accuracy"]; len(acc) > 0 {
			iv := bootstrap(acc, rng)
			r.AccuracyInterval = &iv
		}
		stops := 0
		for _, oc := range r.Outcomes {
			if oc.Stop == "length" {
				stops++
			}
		}
		r.LengthStops = float64(stops) / float64(max(1, len(r.Outcomes)))
		if base != nil {
			r.PValues = map[string]float64{}
			for k, v := range ms {
				if len(base[k]) == len(v) {
					r.PValues[k] = pairedPValue(v, base[k], rng)
				}
			}
		}
	}
}

// Analyse splits a generated text into steps at "\n\n" and labels them by
// RISE's keyword rules.
func Analyse(text string) (steps []label.Segment, counts map[string]int) {
	return AnalyseWith(label.DefaultMatcher(), text)
}

// AnalyseWith is Analyse with the rules of m.
func AnalyseWith(m *label.Matcher, text string) (steps []label.Segment, counts map[string]int) {
	counts = map[string]int{}
	for _, seg := range label.Split(text, label.SegmentOptions{}) {
		steps = append(steps, seg)
		for _, l := range m.Labels(seg.Text) {
			counts[l]++
		}
	}
	return steps, counts
}

var numberRE = regexp.MustCompile(`-?\d[\d,]*(?:\.\d+)?`)

// Correct reports whether the last number in text equals the answer, as
// sweeps judge a generation.
func Correct(text, answer string) bool {
	nums := numberRE.FindAllString(text, -1)
	if len(nums) == 0 {
		return false
	}
	norm := func(s string) string {
		return strings.TrimSuffix(strings.ReplaceAll(strings.TrimSpace(s), ",", ""), ".0")
	}
	return norm(nums[len(nums)-1]) == norm(answer)
}

// SweepOptions say how a sweep reads its prompts and counts behaviours.
type SweepOptions struct {
	// Wrap, when not nil, turns a prompt into the model's input (a chat
	// template) and says whether special tokens in it are meant.
	Wrap func(string) (string, bool)
	// Matcher labels the generated steps; nil means RISE's keyword rules.
	// Every behaviour it names is counted in every run.
	Matcher *label.Matcher
}

// Sweep generates for every prompt at every strength, each vector's
// strength in vs multiplied by the run's, with the same seed, and counts the
// behaviours of the generated steps.
func Sweep(ctx context.Context, b Backend, vs []Vector, strengths []float64, prompts []Prompt,
	o model.GenerateOptions, so SweepOptions, progress func(done, total int)) ([]Run, error) {
	if so.Matcher == nil {
		so.Matcher = label.DefaultMatcher()
	}
	inputs := make([]string, len(prompts))
	for i, p := range prompts {
		inputs[i] = p.Text
		if so.Wrap != nil {
			inputs[i], o.Special = so.Wrap(p.Text)
		}
	}
	var runs []Run
	for si, a := range strengths {
		if math.IsNaN(a) || math.IsInf(a, 0) {
			return nil, inputerr.Errorf("sweep: strength %v is not a number", a)
		}
		scaled := make([]Vector, len(vs))
		for i, v := range vs {
			v.Strength *= a
			scaled[i] = v
		}
		o.Hooks = Vectors(scaled)
		base := si * len(prompts) * o.MaxTokens
		if progress != nil {
			o.Progress = func(done, _ int) { progress(base+done, len(strengths)*len(prompts)*o.MaxTokens) }
		}
		gens, err := b.Generate(ctx, inputs, o)
		if err != nil {
			return nil, err
		}
		run := Run{Strength: a}
		var right, judged float64
		for i, g := range gens {
			steps, counts := AnalyseWith(so.Matcher, g.Text)
			oc := Outcome{Prompt: i, Text: g.Text, Tokens: len(g.Tokens), Steps: len(steps), Counts: counts, Stop: g.Stop}
			if prompts[i].Answer != "" {
				ok := Correct(g.Text, prompts[i].Answer)
				oc.Correct = &ok
				judged++
				if ok {
					right++
				}
			}
			run.ReflectionSteps += float64(counts["reflection"])
			run.BacktrackingSteps += float64(counts["backtracking"])
			run.Steps += float64(len(steps))
			run.Tokens += float64(len(g.Tokens))
			run.Outcomes = append(run.Outcomes, oc)
		}
		n := float64(len(gens))
		run.ReflectionSteps /= n
		run.BacktrackingSteps /= n
		run.Steps /= n
		run.Tokens /= n
		if judged > 0 {
			acc := right / judged
			run.Accuracy = &acc
		}
		runs = append(runs, run)
	}
	summarise(runs, o.Seed, so.Matcher)
	return runs, nil
}

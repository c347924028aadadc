package steer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"

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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
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
	Strength          float64   `json:"strength"`
	ReflectionSteps   float64   `json:"reflection_steps"`
	BacktrackingSteps float64   `json:"backtracking_steps"`
	Steps             float64   `json:"steps"`
	Tokens            float64   `json:"tokens"`
	Accuracy          *float64  `json:"accuracy"`
	Outcomes          []Outcome `json:"generations"`
}

// Analyse splits a generated text into steps at "\n\n" and labels them by
// RISE's keyword rules.
func Analyse(text string) (steps []label.Segment, counts map[string]int) {
	counts = map[string]int{}
	m := label.DefaultMatcher()
	for _, seg := range label.Split(text, label.SegmentOptions{}) {
		steps = append(steps, seg)
		for _, l := range m.Labels(seg.Text) {
			counts[l]++
		}
	}
	return steps, counts
}

var numberRE = regexp.MustCompile(`-?\d[\d,]*(?:\.\d+)?`)

// correct reports whether the last number in text equals the answer.
func correct(text, answer string) bool {
	nums := numberRE.FindAllString(text, -1)
	if len(nums) == 0 {
		return false
	}
	norm := func(s string) string {
		return strings.TrimSuffix(strings.ReplaceAll(strings.TrimSpace(s), ",", ""), ".0")
	}
	return norm(nums[len(nums)-1]) == norm(answer)
}

// Sweep generates for every prompt at every strength, each vector's
// strength in vs multiplied by the run's, with the same seed, and counts the
// behaviours of the generated steps. wrap, when not nil, turns a prompt
// into the model's input (a chat template) and says whether special tokens
// in it are meant.
func Sweep(ctx context.Context, b Backend, vs []Vector, strengths []float64, prompts []Prompt,
	o model.GenerateOptions, wrap func(string) (string, bool), progress func(done, total int)) ([]Run, error) {
	inputs := make([]string, len(prompts))
	for i, p := range prompts {
		inputs[i] = p.Text
		if wrap != nil {
			inputs[i], o.Special = wrap(p.Text)
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
			steps, counts := Analyse(g.Text)
			oc := Outcome{Prompt: i, Text: g.Text, Tokens: len(g.Tokens), Steps: len(steps), Counts: counts, Stop: g.Stop}
			if prompts[i].Answer != "" {
				ok := correct(g.Text, prompts[i].Answer)
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
	return runs, nil
}

package synth

import (
	"encoding/json"
	"fmt"

	"github.com/rise-interp/rise/activations"
)

// planner lays the dump's rows out as traces of steps, in order. Each trace
// draws from its own stream (seed, trace number), so the plan depends only on
// the seed and the number of rows.
type planner struct {
	seed               uint64
	rows               int // rows in the dump
	planned            int // rows planned so far
	longFraction       float64
	reflect, backtrack float64
	unnamed            float64
	tokenRate          float64
	traces             int           // traces started
	cur                *plannedTrace // trace being laid out
	curID              string
	curStep, curToken  int
	stepCounts         [numLabels]int
	triggerCounts      [numLabels]int // steps whose text carries the token trigger
	lengthSteps        [2]int         // short, long
	lengthTraces       [2]int
	truncated          int
	labelLists         [numLabels][]string
	lengthExtra        [2]map[string]json.RawMessage
	correct            bool
	traceLength        [2]json.RawMessage
}

func newPlanner(cfg Config) *planner {
	p := &planner{
		seed: cfg.Seed, rows: cfg.Rows, longFraction: cfg.LongFraction,
		reflect: cfg.ReflectionRate, backtrack: cfg.BacktrackingRate, unnamed: cfg.UnnamedRate, tokenRate: cfg.TokenRate, correct: true,
	}
	for l := range numLabels {
		p.labelLists[l] = []string{labelNames[l]}
	}
	p.traceLength = [2]json.RawMessage{json.RawMessage(`"` + Short + `"`), json.RawMessage(`"` + Long + `"`)}
	for i := range 2 {
		p.lengthExtra[i] = map[string]json.RawMessage{"length": p.traceLength[i]}
	}
	return p
}

// nextTrace starts the next trace. A long trace that would run past the end
// of the dump is replaced by a short one, and a short one that still does not
// fit is cut after the dump's last row (and counted as truncated), so every
// long trace in a dump is complete and over 8000 tokens.
func (p *planner) nextTrace() {
	r := newRand(p.seed, streamTraces, uint64(p.traces))
	remaining := p.rows - p.planned
	long := r.Float64() < p.longFraction
	t := writeTrace(r, long, p.reflect, p.backtrack, p.unnamed, p.tokenRate)
	if long && len(t.steps) > remaining {
		t = writeTrace(r, false, p.reflect, p.backtrack, p.unnamed, p.tokenRate)
	}
	if len(t.steps) > remaining {
		t.steps = t.steps[:remaining]
		t.complete = false
		p.truncated++
	}
	t.index = p.traces
	p.traces++
	p.cur, p.curStep, p.curToken = t, 0, 0
	p.curID = fmt.Sprintf("synth-%05d", t.index)
	p.lengthTraces[b2i(t.long)]++
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// plan lays out the next n rows: it appends their steps to steps, fills
// conds with each row's condition, and returns the steps and the traces that
// start in these rows. The steps' token positions point into tokens, which
// holds 2n ints.
func (p *planner) plan(n int, conds []uint8, steps []activations.Step, tokens []int) ([]activations.Step, []activations.Trace) {
	var traces []activations.Trace
	for i := range n {
		if p.cur == nil || p.curStep == len(p.cur.steps) {
			p.nextTrace()
			traces = append(traces, p.traceRecord())
		}
		t := p.cur
		s := t.steps[p.curStep]
		// A step's tokens run from its first token to the end of the
		// delimiter after it; the last step has no delimiter after it.
		end := p.curToken + s.tokens
		if p.curStep < len(t.steps)-1 {
			end++
		}
		start, stop := &tokens[2*i], &tokens[2*i+1]
		*start, *stop = p.curToken, end
		steps = append(steps, activations.Step{
			Trace: p.curID, Step: p.curStep, Text: s.text, Labels: p.labelLists[s.label],
			TokenStart: start, TokenEnd: stop, Extra: p.lengthExtra[b2i(t.long)],
		})
		conds[i] = cond(s.label, t.long, s.trigger)
		p.stepCounts[s.label]++
		if s.trigger {
			p.triggerCounts[s.label]++
		}
		p.lengthSteps[b2i(t.long)]++
		p.curToken = end
		p.curStep++
		p.planned++
	}
	return steps, traces
}

// traceRecord returns the traces.jsonl line of the current trace.
func (p *planner) traceRecord() activations.Trace {
	t := p.cur
	tokens := t.tokens()
	rec := activations.Trace{
		Trace: p.curID, Prompt: t.prompt, Response: t.response(), Tokens: &tokens,
		Extra: map[string]json.RawMessage{
			"length":  p.traceLength[b2i(t.long)],
			"problem": json.RawMessage(`"` + t.family + `"`),
		},
	}
	if t.complete {
		rec.Correct = &p.correct
	} else {
		rec.Extra["truncated"] = json.RawMessage(`true`)
	}
	return rec
}

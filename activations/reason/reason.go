// Package reason writes synthetic reasoning traces in RISE's shape, to train
// a small reasoning model on and to study it: arithmetic problems solved in
// steps separated by "\n\n", with reflection steps ("Wait, let me check:
// ...") and backtracking steps ("Alternatively, ...") whose chances depend
// on the context, mistakes that a reflection can catch, and a final answer
// whose correctness is known.
//
// A trace has a hidden disposition, drawn per trace: careful traces reflect
// often, exploring traces try other routes often, most do little of either.
// Harder problems (more operations, larger numbers) make careful traces more
// likely and mistakes more frequent, and a mistake makes the next step more
// likely to be a reflection. A model trained on such traces has to carry the
// disposition in its residual stream to predict the next step, which is the
// state a behaviour vector can move.
package reason

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/rise-interp/rise/activations"
)

// Config describes a set of traces.
type Config struct {
	N      int    // traces (or problems)
	Seed   uint64 // the same seed gives the same traces
	MinOps int    // operations per problem, at least 1; default 2
	MaxOps int    // default 5
	// MaxValue bounds the start value, every intermediate value and the
	// answer: default 99, so that every step is arithmetic on two-digit
	// numbers that a small byte-level model can learn; 999 gives three-digit
	// chains.
	MaxValue int
}

func (c Config) withDefaults() Config {
	if c.MinOps == 0 {
		c.MinOps = 2
	}
	if c.MaxOps == 0 {
		c.MaxOps = 5
	}
	if c.MaxValue == 0 {
		c.MaxValue = 99
	}
	return c
}

// Validate reports a setting out of range.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.N < 1 || c.N > 10_000_000:
		return fmt.Errorf("count: expected 1 to 10000000, found %d", c.N)
	case c.MinOps < 1 || c.MaxOps < c.MinOps || c.MaxOps > 12:
		return fmt.Errorf("operations: expected 1 <= min <= max <= 12, found %d and %d", c.MinOps, c.MaxOps)
	case c.MaxValue < 20 || c.MaxValue > 1_000_000:
		return fmt.Errorf("largest value: expected 20 to 1000000, found %d", c.MaxValue)
	}
	return nil
}

// An op is one operation of a problem.
type op struct {
	kind byte // '+', '-', 'x'
	n    int
}

// Problem is an arithmetic problem: a start value and a chain of
// operations.
type Problem struct {
	Start  int
	ops    []op
	Answer int
	max    int // the largest value a problem of its kind reaches
}

// Ops is the number of operations after the start: a trace has one step
// for each, before any reflection or backtracking.
func (p Problem) Ops() int { return len(p.ops) }

// Prompt is the problem as the model sees it.
func (p Problem) Prompt() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Q: Start with %d.", p.Start)
	for _, o := range p.ops {
		switch o.kind {
		case '+':
			fmt.Fprintf(&b, " Add %d.", o.n)
		case '-':
			fmt.Fprintf(&b, " Subtract %d.", o.n)
		case 'x':
			fmt.Fprintf(&b, " Multiply by %d.", o.n)
		}
	}
	b.WriteString(" What is the result?\nA: ")
	return b.String()
}

// Difficulty is a number from 0 to 1: more operations and larger values
// (above a tenth of the largest value allowed, or above half of it in
// two-digit problems) are harder.
func (p Problem) Difficulty(maxOps int) float64 {
	big := 0.0
	v := p.Start
	bigAt := (p.max + 1) / 10
	if p.max < 100 {
		bigAt = (p.max + 1) / 2
	}
	for _, o := range p.ops {
		v = apply(v, o)
		if v >= bigAt {
			big += 1
		}
	}
	return 0.6*float64(len(p.ops))/float64(maxOps) + 0.4*big/float64(len(p.ops))
}

func apply(v int, o op) int {
	switch o.kind {
	case '+':
		return v + o.n
	case '-':
		return v - o.n
	default:
		return v * o.n
	}
}

// newProblem draws a problem whose every intermediate value stays within
// [0, c.MaxValue]: a start value up to 49 (or half the largest value), sums
// and differences with terms up to 60 and 40 (or 40% of the largest value),
// products by 2 to 9.
func newProblem(r *rand.Rand, c Config) Problem {
	add, sub := min(60, c.MaxValue*4/10), min(40, c.MaxValue*4/10)
	for {
		p := Problem{Start: 2 + r.IntN(min(48, c.MaxValue/2)), max: c.MaxValue}
		k := c.MinOps + r.IntN(c.MaxOps-c.MinOps+1)
		v := p.Start
		ok := true
		for range k {
			var o op
			switch r.IntN(3) {
			case 0:
				o = op{'+', 1 + r.IntN(add)}
			case 1:
				o = op{'-', 1 + r.IntN(sub)}
			default:
				o = op{'x', 2 + r.IntN(8)}
			}
			v = apply(v, o)
			if v < 0 || v > c.MaxValue {
				ok = false
				break
			}
			p.ops = append(p.ops, o)
		}
		if ok {
			p.Answer = v
			return p
		}
	}
}

// Problems draws n problems (for held-out prompts: use another seed than
// the training traces').
func Problems(c Config) []Problem {
	c = c.withDefaults()
	r := rand.New(rand.NewPCG(c.Seed, 0x9e0b1e))
	out := make([]Problem, c.N)
	for i := range out {
		out[i] = newProblem(r, c)
	}
	return out
}

// Disposition of a trace.
const (
	Plain     = "plain"
	Careful   = "careful"
	Exploring = "exploring"
)

// Chances by disposition: of a reflection step after an ordinary step, of a
// backtracking step, and of catching a mistake by reflecting.
var (
	reflectChance = map[string]float64{Plain: 0.04, Careful: 0.55, Exploring: 0.08}
	backChance    = map[string]float64{Plain: 0.03, Careful: 0.05, Exploring: 0.5}
)

// Trace generates one trace for a problem.
func trace(r *rand.Rand, p Problem, maxOps int) (steps []string, correct bool, mistakes int, disposition string) {
	d := p.Difficulty(maxOps)
	switch u := r.Float64(); {
	case u < 0.15+0.35*d:
		disposition = Careful
	case u < 0.15+0.35*d+0.2:
		disposition = Exploring
	default:
		disposition = Plain
	}
	errChance := 0.04 + 0.12*d
	v := p.Start
	for _, o := range p.ops {
		want := apply(v, o)
		got := want
		if r.Float64() < errChance {
			got = want + []int{-10, -2, -1, 1, 2, 10}[r.IntN(6)]
			if got < 0 || got > p.max {
				got = want + 1
				if got > p.max {
					got = want - 1
				}
			}
			mistakes++
		}
		steps = append(steps, stepText(v, o, got))
		// After a step: perhaps reflect, perhaps try another route.
		pr := reflectChance[disposition]
		if got != want {
			pr = min(1, pr*1.6+0.1)
		}
		if r.Float64() < pr {
			if got != want {
				steps = append(steps, fmt.Sprintf("Wait, let me check: %s = %d, not %d.", expr(v, o), want, got))
				got = want
			} else {
				steps = append(steps, fmt.Sprintf("Wait, let me check: %s = %d. Yes.", expr(v, o), want))
			}
		}
		if r.Float64() < backChance[disposition] {
			steps = append(steps, "Alternatively, "+otherRoute(v, o, got)+".")
		}
		v = got
	}
	steps = append(steps, fmt.Sprintf("The answer is %d.", v))
	return steps, v == p.Answer, mistakes, disposition
}

func expr(v int, o op) string { return fmt.Sprintf("%d %c %d", v, o.kind, o.n) }

func stepText(v int, o op, result int) string {
	return fmt.Sprintf("%s = %d.", expr(v, o), result)
}

// otherRoute writes the same operation another way: a product as repeated
// addition or as a sum of two products, a sum in two parts.
func otherRoute(v int, o op, result int) string {
	switch o.kind {
	case 'x':
		if o.n <= 3 {
			parts := make([]string, o.n)
			for i := range parts {
				parts[i] = strconv.Itoa(v)
			}
			return fmt.Sprintf("%s = %d", strings.Join(parts, " + "), result)
		}
		return fmt.Sprintf("%d x %d + %d x %d = %d", v, o.n-1, v, 1, result)
	case '+':
		a := o.n / 2
		return fmt.Sprintf("%d + %d + %d = %d", v, a, o.n-a, result)
	default:
		a := o.n / 2
		return fmt.Sprintf("%d - %d - %d = %d", v, a, o.n-a, result)
	}
}

// Traces generates c.N traces: prompt, response (steps joined by "\n\n"),
// and in the extra fields the answer, whether the final answer is right,
// the number of mistakes, the disposition and the difficulty.
func Traces(c Config) ([]activations.Trace, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	probs := Problems(c)
	r := rand.New(rand.NewPCG(c.Seed, 0x7ace))
	out := make([]activations.Trace, len(probs))
	for i, p := range probs {
		steps, ok, mistakes, disp := trace(r, p, c.MaxOps)
		ok2 := ok
		raw := func(v any) json.RawMessage {
			b, _ := json.Marshal(v)
			return b
		}
		out[i] = activations.Trace{
			Trace: fmt.Sprintf("reason-%06d", i), Prompt: p.Prompt(), Response: strings.Join(steps, "\n\n"), Correct: &ok2,
			Extra: map[string]json.RawMessage{
				"answer": raw(p.Answer), "mistakes": raw(mistakes), "disposition": raw(disp),
				"difficulty": raw(float64(int(p.Difficulty(c.MaxOps)*1000)) / 1000),
			},
		}
	}
	return out, nil
}

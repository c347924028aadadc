package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf8"

	steplabel "github.com/rise-interp/rise/activations/label"
)

// The step texts of a synthetic dump come from a small grammar of arithmetic
// word problems. A problem follows a running total (loaves in a bakery, water
// in a tank, savings, books in a library) through numbered periods; every
// period adds an inflow and takes away an outflow. The "other" steps compute
// those partial results, always with correct arithmetic; reflection steps
// re-check the latest computation with RISE's reflection phrases; backtracking
// steps recompute the total by a different route with RISE's backtracking
// phrases. The templates are written so that RISE's keyword rules label every
// step exactly as it was planned: "other" templates use none of the keywords,
// reflection templates only reflection keywords, backtracking templates only
// backtracking keywords (synth_test.go checks this on many traces).

// label is the planned behaviour of a step.
type label uint8

const (
	labelOther label = iota
	labelReflection
	labelBacktracking
	// labelUnnamed is the planted behaviour whose label is withheld: its
	// steps are written as "other" (Config.UnnamedRate).
	labelUnnamed
	numLabels
)

// labelNames are the labels steps.jsonl carries, by planned label.
var labelNames = [numLabels]string{Other, Reflection, Backtracking, Other}

// Token budgets of a trace's response, in approximate tokens (see
// countTokens). RISE contrasts short responses (under 1000 tokens) with long
// ones (over 8000 tokens).
const (
	shortMaxTokens  = 1000 // a short response stays under this
	longMinTokens   = 8000 // a long response goes over this
	shortTargetLow  = 120
	shortTargetHigh = 700
	longTargetLow   = 8200
	longTargetHigh  = 12000
	maxInsertedRun  = 3 // at most this many reflection/backtracking steps in a row
	// closingReserve keeps room in a short response for the reflection and
	// backtracking steps that may come before its closing answer.
	closingReserve = 200
)

// plannedStep is one step of a planned trace.
type plannedStep struct {
	text   string
	label  label
	tokens int // approximate tokens of text, without the delimiter
	// trigger tells whether text carries TokenTrigger (as RISE's keyword
	// rules match a phrase: case-insensitively, as a whole word).
	trigger bool
}

// triggerMatcher finds TokenTrigger in a step's text.
var triggerMatcher = steplabel.Rules{{Behaviour: Token, Phrases: []string{TokenTrigger}}}.MustCompile()

// hasTrigger reports whether text carries TokenTrigger.
func hasTrigger(text string) bool { return triggerMatcher.Labels(text)[0] == Token }

// withTrigger writes TokenTrigger at the head of text: "Wait, the total ...".
func withTrigger(text string) string {
	r, n := utf8.DecodeRuneInString(text)
	if n > 0 && !(unicode.IsUpper(r) && n < len(text) && unicode.IsUpper(rune(text[n]))) {
		text = string(unicode.ToLower(r)) + text[n:]
	}
	return TokenTrigger + ", " + text
}

// plannedTrace is a whole trace: its problem and its steps.
type plannedTrace struct {
	index    int
	family   string // the kind of word problem
	long     bool
	prompt   string
	steps    []plannedStep
	complete bool // false when the dump's last trace was cut short
}

// tokens returns the response length in approximate tokens: the steps plus
// one token for each "\n\n" delimiter between them.
func (t *plannedTrace) tokens() int {
	n := 0
	for i, s := range t.steps {
		n += s.tokens
		if i > 0 {
			n++
		}
	}
	return n
}

// response joins the steps with the delimiter.
func (t *plannedTrace) response() string {
	parts := make([]string, len(t.steps))
	for i, s := range t.steps {
		parts[i] = s.text
	}
	return strings.Join(parts, "\n\n")
}

// countTokens approximates a tokenizer: a run of letters is one token, every
// digit is its own token (as in the Qwen2 tokenizer of
// DeepSeek-R1-Distill-Qwen, which splits numbers into digits), and every other
// non-space character is one token. Real BPE token counts differ by a small
// factor; the counts only have to place short and long responses on the right
// side of RISE's 1000 and 8000 token marks.
func countTokens(s string) int {
	n := 0
	inWord := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			if !inWord {
				n++
				inWord = true
			}
		case r == ' ' || r == '\n' || r == '\t' || r == '\r':
			inWord = false
		default: // digits and punctuation
			n++
			inWord = false
		}
	}
	return n
}

// family is one kind of word problem.
type family struct {
	name   string
	unit   string // what is counted, plural: "loaves"
	period string // one step of time: "day"
	// setup draws the problem's numbers.
	setup func(r *rand.Rand) problem
	// prompt states the problem for n periods.
	prompt func(p *problem, n int) string
	// round appends the "other" steps that compute period k (from 1); emit
	// is called for each computation, and between computations the writer
	// may insert reflection and backtracking steps.
	round func(p *problem, r *rand.Rand, k int, st *state, emit func(text string, f fact))
}

// problem holds the numbers of one word problem.
type problem struct {
	fam                    *family
	start                  int
	base, step, out, out2  int // meaning depends on the family
	boxes, perBox, boxStep int
}

// fact is one computation a reflection step can re-check.
type fact struct {
	expr   string // e.g. "45 + 29"
	result int
	ok     bool
}

// state is the running total and what led to it.
type state struct {
	k                  int // last completed period, 0 before the first
	cur                int // current total (may be mid-period)
	cumIn, cumOut      int // totals through period k
	lastPrev, lastNew  int // total before and after period k
	lastIn, lastOut    int // inflow and outflow of period k
	last               fact
	lastPeriod         int // the period of last
	period             int // the period being computed, from 1
	inProgress, outNow int // inflow and outflow of the period being computed
}

func pick(r *rand.Rand, options ...string) string { return options[r.IntN(len(options))] }

// between returns a uniform integer in [lo, hi].
func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

// add and sub format "a + b" and "a - b" with the result.
func add(a, b int) fact { return fact{fmt.Sprintf("%d + %d", a, b), a + b, true} }
func sub(a, b int) fact { return fact{fmt.Sprintf("%d - %d", a, b), a - b, true} }

// signed formats "a + b" for b >= 0 and "a - |b|" for b < 0.
func signed(a, b int) fact {
	if b < 0 {
		return sub(a, -b)
	}
	return add(a, b)
}

// addInflow and takeOutflow are the two computations every family shares.
func addInflow(p *problem, r *rand.Rand, k int, st *state, in int, emit func(string, fact)) {
	f := add(st.cur, in)
	u := p.fam.unit
	emit(pick(r,
		fmt.Sprintf("The total grows to %s = %d %s.", f.expr, f.result, u),
		fmt.Sprintf("Adding them gives %s = %d %s.", f.expr, f.result, u),
		fmt.Sprintf("Now there are %s = %d %s.", f.expr, f.result, u),
		fmt.Sprintf("So after the inflow of %s %d we have %s = %d.", p.fam.period, k, f.expr, f.result),
	), f)
	st.cur = f.result
}

func takeOutflow(p *problem, r *rand.Rand, k int, st *state, out int, emit func(string, fact)) {
	f := sub(st.cur, out)
	u := p.fam.unit
	emit(pick(r,
		fmt.Sprintf("Taking away %d leaves %s = %d %s.", out, f.expr, f.result, u),
		fmt.Sprintf("After the %d go out, %s = %d %s remain.", out, f.expr, f.result, u),
		fmt.Sprintf("So %s %d ends with %s = %d %s.", p.fam.period, k, f.expr, f.result, u),
	), f)
	st.cur = f.result
}

// growingInflow is a family whose inflow starts at base in period 1 and
// grows by step every period, while the same amount, out, goes out every
// period.
type growingInflow struct {
	name, unit, period string
	start, base, step  [2]int // the ranges [lo, hi] the numbers are drawn from
	// prompt states the problem from start, base, step, out and the number
	// of periods.
	prompt string
	// first states period 1's inflow; later are the two ways to compute a
	// later period's inflow from k, the expression and its value.
	first string
	later [2]string
}

func (g growingInflow) family() *family {
	return &family{
		name: g.name, unit: g.unit, period: g.period,
		setup: func(r *rand.Rand) problem {
			b := between(r, g.base[0], g.base[1])
			return problem{start: between(r, g.start[0], g.start[1]), base: b, step: between(r, g.step[0], g.step[1]), out: between(r, 5, b-1)}
		},
		prompt: func(p *problem, n int) string {
			return fmt.Sprintf(g.prompt, p.start, p.base, p.step, p.out, n)
		},
		round: func(p *problem, r *rand.Rand, k int, st *state, emit func(string, fact)) {
			in := p.base + (k-1)*p.step
			if k == 1 {
				emit(fmt.Sprintf(g.first, in), fact{})
			} else {
				f := fact{fmt.Sprintf("%d + %d × %d", p.base, k-1, p.step), in, true}
				emit(pick(r,
					fmt.Sprintf(g.later[0], k, f.expr, in),
					fmt.Sprintf(g.later[1], k, f.expr, in),
				), f)
			}
			st.inProgress, st.outNow = in, p.out
			addInflow(p, r, k, st, in, emit)
			takeOutflow(p, r, k, st, p.out, emit)
		},
	}
}

var families = []*family{
	growingInflow{name: "bakery", unit: "loaves", period: "day",
		start: [2]int{20, 200}, base: [2]int{12, 60}, step: [2]int{1, 6},
		prompt: "A bakery starts with %d loaves. On day 1 it bakes %d loaves, and every day after that it bakes %d more loaves than the day before. It sells %d loaves each day. How many loaves does it have at the end of day %d?",
		first:  "On day 1 the bakery bakes %d loaves.",
		later:  [2]string{"On day %d the bakery bakes %s = %d loaves.", "Day %d brings %s = %d new loaves."}}.family(),
	{
		name: "tank", unit: "litres", period: "hour",
		setup: func(r *rand.Rand) problem {
			a := between(r, 20, 80)
			return problem{start: between(r, 100, 900), base: a, out: between(r, 5, a-1), out2: between(r, 5, a-1)}
		},
		prompt: func(p *problem, n int) string {
			return fmt.Sprintf("A tank holds %d litres of water. Every hour a pump adds %d litres, and a drain removes %d litres in odd hours and %d litres in even hours. How much water is in the tank after %d hours?", p.start, p.base, p.out, p.out2, n)
		},
		round: func(p *problem, r *rand.Rand, k int, st *state, emit func(string, fact)) {
			out, parity := p.out, "odd"
			if k%2 == 0 {
				out, parity = p.out2, "even"
			}
			st.inProgress, st.outNow = p.base, out
			f := add(st.cur, p.base)
			emit(pick(r,
				fmt.Sprintf("In hour %d the pump adds %d litres: %s = %d.", k, p.base, f.expr, f.result),
				fmt.Sprintf("Hour %d starts with the pump, so %s = %d litres.", k, f.expr, f.result),
			), f)
			st.cur = f.result
			g := sub(st.cur, out)
			emit(pick(r,
				fmt.Sprintf("Hour %d is %s, so the drain takes %d litres: %s = %d.", k, parity, out, g.expr, g.result),
				fmt.Sprintf("The drain removes %d litres in an %s hour, leaving %s = %d litres.", out, parity, g.expr, g.result),
			), g)
			st.cur = g.result
		},
	},
	growingInflow{name: "savings", unit: "dollars", period: "week",
		start: [2]int{0, 300}, base: [2]int{15, 90}, step: [2]int{2, 9},
		prompt: "Maya has %d dollars. In week 1 she earns %d dollars, and each week she earns %d dollars more than the week before. She spends %d dollars every week. How much money does she have after week %d?",
		first:  "In week 1 Maya earns %d dollars.",
		later:  [2]string{"In week %d she earns %s = %d dollars.", "Her pay for week %d is %s = %d dollars."}}.family(),
	{
		name: "library", unit: "books", period: "month",
		setup: func(r *rand.Rand) problem {
			return problem{start: between(r, 200, 2000), boxes: between(r, 2, 9), perBox: between(r, 6, 24), boxStep: between(r, 1, 3), out: between(r, 3, 12)}
		},
		prompt: func(p *problem, n int) string {
			return fmt.Sprintf("A library has %d books. Each month it buys boxes of %d books: %d boxes in month 1, %d boxes in month 2, %d boxes in month 3, and then the pattern repeats. It gives away %d books every month. How many books does it have after month %d?", p.start, p.perBox, p.boxes, p.boxes+p.boxStep, p.boxes+2*p.boxStep, p.out, n)
		},
		round: func(p *problem, r *rand.Rand, k int, st *state, emit func(string, fact)) {
			boxes := p.boxes + ((k-1)%3)*p.boxStep
			in := boxes * p.perBox
			f := fact{fmt.Sprintf("%d × %d", boxes, p.perBox), in, true}
			emit(pick(r,
				fmt.Sprintf("In month %d the library buys %d boxes, which is %s = %d books.", k, boxes, f.expr, in),
				fmt.Sprintf("Month %d brings %s = %d new books.", k, f.expr, in),
			), f)
			st.inProgress, st.outNow = in, p.out
			addInflow(p, r, k, st, in, emit)
			takeOutflow(p, r, k, st, p.out, emit)
		},
	},
}

// reflectionText re-checks the latest computation. Every template carries at
// least one of RISE's reflection phrases and none of its backtracking ones.
func reflectionText(p *problem, r *rand.Rand, st *state) string {
	u, per := p.fam.unit, p.fam.period
	if !st.last.ok {
		return pick(r,
			fmt.Sprintf("Wait, let me check the starting amount: %d %s.", p.start, u),
			fmt.Sprintf("Let me verify that I read the problem right: we start with %d %s.", p.start, u),
			fmt.Sprintf("Hold on, the problem says the total starts at %d %s. Yes.", p.start, u),
			fmt.Sprintf("Let me make sure of the numbers first: %d %s at the start. That seems right.", p.start, u),
		)
	}
	f, k := st.last, max(st.lastPeriod, 1)
	return pick(r,
		fmt.Sprintf("Wait, let me check that: %s = %d.", f.expr, f.result),
		fmt.Sprintf("Let me verify the last step: %s = %d.", f.expr, f.result),
		fmt.Sprintf("Hold on, is %s really %d? Yes.", f.expr, f.result),
		fmt.Sprintf("%s = %d. That's correct.", f.expr, f.result),
		fmt.Sprintf("Let me make sure about %s %d: %s gives %d.", per, k, f.expr, f.result),
		fmt.Sprintf("Hmm, let me think again about %s %d. %s = %d, so it's correct.", per, k, f.expr, f.result),
		fmt.Sprintf("Wait, %s = %d. Yes, that seems right.", f.expr, f.result),
		fmt.Sprintf("Let me check the total once more: %d %s. It seems right.", st.cur, u),
	)
}

// backtrackingText recomputes the total by another route. Every template
// carries at least one of RISE's backtracking phrases and none of its
// reflection ones.
func backtrackingText(p *problem, r *rand.Rand, st *state) string {
	u, per := p.fam.unit, p.fam.period
	if st.k == 0 {
		return pick(r,
			"Alternatively, I could add up everything that comes in first and subtract everything that goes out at the end.",
			fmt.Sprintf("Another approach would be to follow only the net change for each %s.", per),
			fmt.Sprintf("Let me think differently and set up a table with one row per %s.", per),
		)
	}
	k := st.k
	net := st.lastIn - st.lastOut
	netF := sub(st.lastIn, st.lastOut)
	step := signed(st.lastPrev, net)
	whole := fmt.Sprintf("%d + %d - %d", p.start, st.cumIn, st.cumOut)
	diff := st.lastNew - p.start
	var cmp string
	if diff >= 0 {
		cmp = fmt.Sprintf("%d - %d = %d %s more than at the start", st.lastNew, p.start, diff, u)
	} else {
		cmp = fmt.Sprintf("%d - %d = %d %s fewer than at the start", p.start, st.lastNew, -diff, u)
	}
	return pick(r,
		fmt.Sprintf("Alternatively, I can use the net change: %s = %d, and %s = %d.", netF.expr, net, step.expr, step.result),
		fmt.Sprintf("Alternatively, let me redo the whole total at once: %s = %d.", whole, st.lastNew),
		fmt.Sprintf("Another way to see it: after %s %d, %d %s came in and %d went out, so %s = %d.", per, k, st.cumIn, u, st.cumOut, whole, st.lastNew),
		fmt.Sprintf("Let me try another approach and follow only the net change. In %s %d it was %s = %d, so the total moves from %d to %d.", per, k, netF.expr, net, st.lastPrev, st.lastNew),
		fmt.Sprintf("Let me think differently: the total is the start plus all net changes, %s = %d.", signed(p.start, st.cumIn-st.cumOut).expr, st.lastNew),
		fmt.Sprintf("Maybe another method is simpler: compare with the start. We have %s.", cmp),
		fmt.Sprintf("Perhaps there is another strategy: count the whole inflow, %d, and the whole outflow, %d, so %s = %d.", st.cumIn, st.cumOut, whole, st.lastNew),
	)
}

// unnamedText sums up the running total. Every template carries the
// withheld behaviour's phrase, UnnamedPhrase, and none of RISE's keywords,
// so the keyword rules label it "other".
func unnamedText(p *problem, r *rand.Rand, st *state) string {
	u, per := p.fam.unit, p.fam.period
	k := max(st.lastPeriod, 1)
	return pick(r,
		fmt.Sprintf("To sum up so far: %d %s after %s %d.", st.cur, u, per, k),
		fmt.Sprintf("To sum up, the total now stands at %d %s.", st.cur, u),
		fmt.Sprintf("So, to sum up: we have %d %s at this point.", st.cur, u),
		fmt.Sprintf("To sum up the %s so far, the count is %d %s.", per, st.cur, u),
	)
}

// traceWriter builds the steps of one trace.
type traceWriter struct {
	r         *rand.Rand
	p         problem
	st        state
	steps     []plannedStep
	tokens    int // response tokens so far, delimiters included
	reflect   float64
	backtrack float64
	unnamed   float64
	tokenRate float64 // share of the steps not labelled reflection that get TokenTrigger
}

func (w *traceWriter) add(text string, l label) {
	if w.tokenRate > 0 && l != labelReflection && w.r.Float64() < w.tokenRate {
		text = withTrigger(text)
	}
	n := countTokens(text)
	if len(w.steps) > 0 {
		w.tokens++ // the "\n\n" before this step
	}
	w.tokens += n
	w.steps = append(w.steps, plannedStep{text: text, label: l, tokens: n, trigger: hasTrigger(text)})
}

// inserts draws the reflection and backtracking steps that come before the
// next computation: each is drawn with its rate, so that over a trace their
// shares of the steps approach the configured rates.
func (w *traceWriter) inserts() {
	for range maxInsertedRun {
		u := w.r.Float64()
		switch {
		case u < w.reflect:
			w.add(reflectionText(&w.p, w.r, &w.st), labelReflection)
		case u < w.reflect+w.backtrack:
			w.add(backtrackingText(&w.p, w.r, &w.st), labelBacktracking)
		case u < w.reflect+w.backtrack+w.unnamed:
			w.add(unnamedText(&w.p, w.r, &w.st), labelUnnamed)
		default:
			return
		}
	}
}

// writeTrace plans one trace: a problem, an opening step, periods computed
// until the response reaches a drawn token target, and a closing answer.
// Short traces stay under shortMaxTokens; long ones pass longMinTokens.
func writeTrace(r *rand.Rand, long bool, reflect, backtrack, unnamed, tokenRate float64) *plannedTrace {
	fam := families[r.IntN(len(families))]
	w := &traceWriter{r: r, p: fam.setup(r), reflect: reflect, backtrack: backtrack, unnamed: unnamed, tokenRate: tokenRate}
	w.p.fam = fam
	w.st.cur = w.p.start
	target := between(r, shortTargetLow, shortTargetHigh)
	if long {
		target = between(r, longTargetLow, longTargetHigh)
	}
	u, per := fam.unit, fam.period
	w.add(pick(r,
		fmt.Sprintf("We start with %d %s.", w.p.start, u),
		fmt.Sprintf("Let's follow the total %s by %s, starting from %d %s.", per, per, w.p.start, u),
		fmt.Sprintf("First, the starting amount is %d %s.", w.p.start, u),
	), labelOther)

	emit := func(text string, f fact) {
		w.inserts()
		w.add(text, labelOther)
		if f.ok {
			w.st.last, w.st.lastPeriod = f, w.st.period
		}
	}
	for w.tokens < target {
		saved, nsteps, ntok := w.st, len(w.steps), w.tokens
		k := w.st.k + 1
		prev := w.st.cur
		if k > 1 && r.IntN(8) == 0 {
			w.inserts()
			w.add(pick(r, fmt.Sprintf("Next comes %s %d.", per, k), fmt.Sprintf("Moving on to %s %d.", per, k)), labelOther)
		}
		w.st.period = k
		fam.round(&w.p, r, k, &w.st, emit)
		w.st.k = k
		w.st.lastPrev, w.st.lastNew = prev, w.st.cur
		w.st.lastIn, w.st.lastOut = w.st.inProgress, w.st.outNow
		w.st.cumIn += w.st.inProgress
		w.st.cumOut += w.st.outNow
		w.st.inProgress, w.st.outNow = 0, 0
		if !long && w.tokens+1+countTokens(finalText(&w.p, r, &w.st, false))+closingReserve >= shortMaxTokens {
			// Roll back the period that took the response too far.
			w.st, w.steps, w.tokens = saved, w.steps[:nsteps], ntok
			break
		}
	}
	w.inserts()
	w.add(finalText(&w.p, r, &w.st, true), labelOther)
	return &plannedTrace{family: fam.name, long: long, prompt: fam.prompt(&w.p, w.st.k), steps: w.steps, complete: true}
}

// finalText states the answer. With draw false it returns the variant with
// the most tokens without consuming randomness, for budgeting.
func finalText(p *problem, r *rand.Rand, st *state, draw bool) string {
	u, per := p.fam.unit, p.fam.period
	opts := []string{
		fmt.Sprintf("So at the end of %s %d there are %d %s.", per, st.k, st.cur, u),
		fmt.Sprintf("The answer is %d %s.", st.cur, u),
		fmt.Sprintf("Therefore, after %d %ss the total is %d %s.", st.k, per, st.cur, u),
	}
	if draw {
		return pick(r, opts...)
	}
	longest := opts[0]
	for _, o := range opts[1:] {
		if countTokens(o) > countTokens(longest) {
			longest = o
		}
	}
	return longest
}

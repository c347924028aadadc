package reason

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations/label"
)

var stepRE = regexp.MustCompile(`^(-?\d+) ([+x-]) (\d+) = (-?\d+)\.$`)

// TestTraces checks every trace: ordinary steps are arithmetic on the
// previous value, a reflection either confirms a step or corrects it (and
// the trace goes on from the corrected value), the last step states the
// answer, and the recorded correctness matches it.
func TestTraces(t *testing.T) {
	trs, err := Traces(Config{N: 3000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Traces(Config{N: 3000, Seed: 5})
	a, _ := json.Marshal(trs)
	b, _ := json.Marshal(again)
	if string(a) != string(b) {
		t.Fatal("the same seed gave different traces")
	}
	m := label.DefaultMatcher()
	type tally struct{ traces, steps, reflect, back, right int }
	by := map[string]*tally{Plain: {}, Careful: {}, Exploring: {}}
	for _, tr := range trs {
		steps := strings.Split(tr.Response, "\n\n")
		var answer int
		json.Unmarshal(tr.Extra["answer"], &answer)
		var disp string
		json.Unmarshal(tr.Extra["disposition"], &disp)
		last := steps[len(steps)-1]
		var final int
		if _, err := fmt.Sscanf(last, "The answer is %d.", &final); err != nil {
			t.Fatalf("%s: last step %q", tr.Trace, last)
		}
		if *tr.Correct != (final == answer) {
			t.Fatalf("%s: correct %v but final %d, answer %d", tr.Trace, *tr.Correct, final, answer)
		}
		cur := -1
		for _, s := range steps[:len(steps)-1] {
			labels := m.Labels(s)
			switch {
			case strings.HasPrefix(s, "Wait, let me check: "):
				if labels[0] != "reflection" {
					t.Fatalf("%q labelled %v", s, labels)
				}
				var x, y, want, got int
				var k string
				if n, _ := fmt.Sscanf(s, "Wait, let me check: %d %s %d = %d, not %d.", &x, &k, &y, &want, &got); n == 5 {
					if got != cur {
						t.Fatalf("%s: %q corrects %d, but the value was %d", tr.Trace, s, got, cur)
					}
					cur = want
				}
				by[disp].reflect++
			case strings.HasPrefix(s, "Alternatively, "):
				if labels[0] != "backtracking" {
					t.Fatalf("%q labelled %v", s, labels)
				}
				by[disp].back++
			default:
				g := stepRE.FindStringSubmatch(s)
				if g == nil {
					t.Fatalf("%s: step %q", tr.Trace, s)
				}
				x, _ := strconv.Atoi(g[1])
				if cur >= 0 && x != cur {
					t.Fatalf("%s: step %q starts from %d, the value was %d", tr.Trace, s, x, cur)
				}
				cur, _ = strconv.Atoi(g[4])
			}
			by[disp].steps++
		}
		by[disp].traces++
		if *tr.Correct {
			by[disp].right++
		}
	}
	rate := func(d string, n int) float64 { return float64(n) / float64(by[d].steps) }
	for _, d := range []string{Plain, Careful, Exploring} {
		t.Logf("%-9s %4d traces, reflection %.3f, backtracking %.3f of steps, right %.3f", d, by[d].traces,
			rate(d, by[d].reflect), rate(d, by[d].back), float64(by[d].right)/float64(by[d].traces))
	}
	if !(rate(Careful, by[Careful].reflect) > 4*rate(Plain, by[Plain].reflect)) {
		t.Error("careful traces do not reflect clearly more than plain ones")
	}
	if !(rate(Exploring, by[Exploring].back) > 4*rate(Plain, by[Plain].back)) {
		t.Error("exploring traces do not backtrack clearly more than plain ones")
	}
	if !(float64(by[Careful].right)/float64(by[Careful].traces) > float64(by[Plain].right)/float64(by[Plain].traces)) {
		t.Error("careful traces are not more often right: reflection catches no mistakes")
	}
	if err := (Config{N: 0}).Validate(); err == nil {
		t.Error("zero traces accepted")
	}
}

// TestMaxValue checks that every start, intermediate and final value of
// the default (two-digit) problems is within 0..99 (in the traces without
// a mistake: a wrong result carries on and may leave the range), that three-digit
// chains reach past 99 when asked for, and that a bound out of range is
// refused.
func TestMaxValue(t *testing.T) {
	for _, c := range []struct {
		max     int
		wantBig bool
	}{{0, false}, {999, true}} {
		trs, err := Traces(Config{N: 2000, Seed: 3, MaxValue: c.max})
		if err != nil {
			t.Fatal(err)
		}
		limit := max(c.max, 99)
		big := false
		for _, tr := range trs {
			var mistakes int
			json.Unmarshal(tr.Extra["mistakes"], &mistakes)
			if mistakes > 0 {
				continue
			}
			for _, s := range strings.Split(tr.Response, "\n\n") {
				g := stepRE.FindStringSubmatch(s)
				if g == nil {
					continue
				}
				for _, f := range []string{g[1], g[4]} {
					v, _ := strconv.Atoi(f)
					if v < 0 || v > limit {
						t.Fatalf("max %d: %s: step %q leaves 0..%d", c.max, tr.Trace, s, limit)
					}
					big = big || v > 99
				}
			}
		}
		if big != c.wantBig {
			t.Errorf("max %d: values above 99: %v", c.max, big)
		}
	}
	for _, bad := range []int{-1, 5, 2_000_000} {
		if err := (Config{N: 1, MaxValue: bad}).Validate(); err == nil || !strings.Contains(err.Error(), "largest value") {
			t.Errorf("MaxValue %d: %v", bad, err)
		}
	}
}

// TestOps: a problem's operation count is the number of operations its
// prompt states.
func TestOps(t *testing.T) {
	for _, p := range Problems(Config{N: 200, Seed: 3}) {
		q := p.Prompt()
		n := strings.Count(q, " Add ") + strings.Count(q, " Subtract ") + strings.Count(q, " Multiply by ")
		if p.Ops() != n || n == 0 {
			t.Fatalf("%q: Ops() = %d, the prompt states %d", q, p.Ops(), n)
		}
	}
}

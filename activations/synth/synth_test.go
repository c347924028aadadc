package synth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio/npy"

	"github.com/rise-interp/rise/activations"
)

// RISE's keyword rules (Table 3, from SEAL), written out here independently
// of the generator's templates: case-insensitive, on word boundaries.
var (
	reflectionRule   = regexp.MustCompile(`(?i)\b(?:wait|verify|make sure|hold on|think again|let me check|seems right)\b|'s (?:correct|incorrect)\b`)
	backtrackingRule = regexp.MustCompile(`(?i)\b(?:alternatively|think differently|another (?:way|approach|method|solution|strategy|technique))\b`)
)

// keywordLabel labels a step as RISE's rules would; "both" marks a step that
// matches both behaviours, which the generator must never write.
func keywordLabel(text string) string {
	r, b := reflectionRule.MatchString(text), backtrackingRule.MatchString(text)
	switch {
	case r && b:
		return "both"
	case r:
		return Reflection
	case b:
		return Backtracking
	}
	return Other
}

func TestKeywordMatcher(t *testing.T) {
	for text, want := range map[string]string{
		"Wait, let me check.":                Reflection,
		"That's correct.":                    Reflection,
		"it's incorrect":                     Reflection,
		"Alternatively, add them.":           Backtracking,
		"Let me try another approach.":       Backtracking,
		"The waiter awaits 3 + 4 = 7 loaves": Other,
		"another 5 loaves":                   Other,
		"Hold on, another way":               "both",
	} {
		if got := keywordLabel(text); got != want {
			t.Errorf("keywordLabel(%q) = %s, want %s", text, got, want)
		}
	}
}

// smallConfig is a quick configuration for tests.
func smallConfig(rows, dModel, features int) Config {
	c := DefaultConfig()
	c.Rows, c.DModel, c.Features = rows, dModel, features
	return c
}

func generateT(t *testing.T, dir string, cfg Config) *Truth {
	t.Helper()
	tr, err := Generate(context.Background(), dir, cfg, false, nil)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return tr
}

// ownGroup returns the features truth plants for name (Token or Unnamed),
// failing the test unless there are GroupSize of them, none in the group of
// a behaviour.
func ownGroup(t *testing.T, truth *Truth, name string) []int {
	t.Helper()
	ids := truth.Behaviours[name]
	if len(ids) != truth.GroupSize {
		t.Fatalf("%s group has %d features, expected %d", name, len(ids), truth.GroupSize)
	}
	for _, b := range Behaviours {
		for _, f := range truth.Behaviours[b] {
			if slices.Contains(ids, f) {
				t.Errorf("feature %d is in the %s group and in %s", f, name, b)
			}
		}
	}
	return ids
}

// readJSONLines reads the JSON-lines file in dir, one T a line, with
// encoding/json alone.
func readJSONLines[T any](t *testing.T, dir, file string) []T {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s line %d: %v", file, len(out)+1, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readShard reads a layer's only shard with npyio, independently of the
// package's own reader.
func readShard(t *testing.T, dir string, layer int) ([]float32, []int) {
	t.Helper()
	var m activations.Manifest
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	shards := m.Layers[strconv.Itoa(layer)]
	if len(shards) != 1 {
		t.Fatalf("layer %d: expected one shard, found %v", layer, shards)
	}
	f, err := os.Open(filepath.Join(dir, shards[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := npy.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Trim(r.Header.Descr.Type, "'") != "<f4" || r.Header.Descr.Fortran {
		t.Fatalf("shard header %+v: expected C-order <f4", r.Header.Descr)
	}
	var x []float32
	if err := r.Read(&x); err != nil {
		t.Fatal(err)
	}
	return x, r.Header.Descr.Shape
}

func TestDeterministic(t *testing.T) {
	// Rows span three batches; features <= d_model exercises the QR path,
	// whose GEMMs run in parallel at this size.
	cfg := smallConfig(9000, 256, 200)
	base := t.TempDir()
	dirs := []string{filepath.Join(base, "a"), filepath.Join(base, "b")}
	for i, procs := range []int{1, 4} {
		old := runtime.GOMAXPROCS(procs)
		generateT(t, dirs[i], cfg)
		runtime.GOMAXPROCS(old)
	}
	entries, err := os.ReadDir(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 7 {
		t.Fatalf("dump has %d files, expected at least 7", len(entries))
	}
	for _, e := range entries {
		a, _ := os.ReadFile(filepath.Join(dirs[0], e.Name()))
		b, err := os.ReadFile(filepath.Join(dirs[1], e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between GOMAXPROCS 1 and 4", e.Name())
		}
	}

	cfg.Seed = 2
	other := filepath.Join(base, "c")
	generateT(t, other, cfg)
	for _, name := range []string{"layer12-00000.npy", "steps.jsonl", "truth.npy"} {
		a, _ := os.ReadFile(filepath.Join(dirs[0], name))
		c, err := os.ReadFile(filepath.Join(other, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, c) {
			t.Errorf("%s is the same for seeds 1 and 2", name)
		}
	}
}

func TestDirections(t *testing.T) {
	for _, tc := range []struct {
		name           string
		dModel, feats  int
		orthogonal     bool
		maxCosAtMost   float64
		dtype          activations.DType
		offsetNormWant float64
	}{
		{"orthogonal", 128, 96, true, 1e-5, activations.Float32, 20},
		{"overcomplete", 128, 512, false, 0.5, activations.Float16, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig(100, tc.dModel, tc.feats)
			cfg.DType = tc.dtype
			dir := filepath.Join(t.TempDir(), "d")
			gen := generateT(t, dir, cfg)
			tr, err := ReadTruth(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Orthogonal != tc.orthogonal || tr.DType != tc.dtype || tr.DTypeName != tc.dtype.String() {
				t.Errorf("orthogonal %v dtype %v (%s), want %v %v", tr.Orthogonal, tr.DType, tr.DTypeName, tc.orthogonal, tc.dtype)
			}
			if len(tr.Directions) != tc.feats*tc.dModel || !slicesEqual(tr.Directions, gen.Directions) || !slicesEqual(tr.Offset, gen.Offset) {
				t.Fatal("directions or offset read back differ from those generated")
			}
			D := tc.dModel
			for f := range tc.feats {
				if n := norm(tr.Direction(f)); math.Abs(n-1) > 1e-5 {
					t.Fatalf("direction %d has norm %v, want 1", f, n)
				}
			}
			group := map[int]string{}
			for name, ids := range tr.Behaviours {
				for _, f := range ids {
					group[f] = name
				}
			}
			// Members of a group have a known cosine when the drawn
			// directions are orthonormal; every other pair is as drawn.
			c, g := tr.GroupCoherence, float64(tr.GroupSize)
			within := c*c - (1-c*c)/(g-1)
			maxCos, maxOther := 0.0, 0.0
			for i := range tc.feats {
				for j := i + 1; j < tc.feats; j++ {
					cos := dot(tr.Directions[i*D:(i+1)*D], tr.Directions[j*D:(j+1)*D])
					maxCos = math.Max(maxCos, math.Abs(cos))
					if gi, ok := group[i]; ok && gi == group[j] {
						if tc.orthogonal && math.Abs(cos-within) > 1e-4 {
							t.Errorf("features %d and %d of group %s: cos %.5f, want %.5f", i, j, gi, cos, within)
						}
						if !tc.orthogonal && math.Abs(cos-within) > 0.2 {
							t.Errorf("features %d and %d of group %s: cos %.5f, want about %.5f", i, j, gi, cos, within)
						}
						continue
					}
					maxOther = math.Max(maxOther, math.Abs(cos))
				}
			}
			if math.Abs(maxCos-tr.MaxAbsCos) > 1e-5 || !tr.MaxAbsCosExact || tr.MaxAbsCosPairs != int64(tc.feats*(tc.feats-1)/2) {
				t.Errorf("truth says max |cos| %v over %d pairs (exact %v); recomputed %v over %d", tr.MaxAbsCos, tr.MaxAbsCosPairs, tr.MaxAbsCosExact, maxCos, tc.feats*(tc.feats-1)/2)
			}
			if maxOther > tc.maxCosAtMost {
				t.Errorf("max |cos| outside the groups = %v, want at most %v", maxOther, tc.maxCosAtMost)
			}
			if n := norm(tr.Offset); math.Abs(n-tc.offsetNormWant) > 1e-3 {
				t.Errorf("offset norm %v, want %v", n, tc.offsetNormWant)
			}
		})
	}
}

func TestMaxAbsCosSampled(t *testing.T) {
	// Beyond the budget only the first rows are checked; the statistic
	// must say so and count its pairs.
	F, D := 6000, 512
	dirs, _, err := directions(context.Background(), 1, F, D)
	if err != nil {
		t.Fatal(err)
	}
	st, err := maxAbsCos(context.Background(), dirs, F, D)
	if err != nil {
		t.Fatal(err)
	}
	if st.exact || st.pairs <= 0 || st.pairs >= int64(F)*int64(F-1)/2 || st.max <= 0 || st.max > 0.5 {
		t.Errorf("sampled max |cos| = %+v", st)
	}
}

// TestPlanting checks that the planted behaviour groups can be found in the
// rows: after removing the offset, the mean projection onto a group's
// directions is several times higher on its own steps than on the others,
// while a control group of unplanted features shows no such difference.
func TestPlanting(t *testing.T) {
	cfg := smallConfig(20000, 256, 512)
	dir := filepath.Join(t.TempDir(), "d")
	tr := generateT(t, dir, cfg)
	x, shape := readShard(t, dir, cfg.Layer)
	if len(shape) != 2 || shape[0] != cfg.Rows || shape[1] != cfg.DModel {
		t.Fatalf("shard shape %v, want [%d %d]", shape, cfg.Rows, cfg.DModel)
	}
	steps := readJSONLines[activations.Step](t, dir, "steps.jsonl")
	if len(steps) != cfg.Rows {
		t.Fatalf("steps.jsonl has %d lines, want %d", len(steps), cfg.Rows)
	}
	D := cfg.DModel
	planted := map[int]bool{}
	for _, ids := range tr.Behaviours {
		if len(ids) != tr.GroupSize {
			t.Errorf("group of %d features, want %d", len(ids), tr.GroupSize)
		}
		for _, f := range ids {
			if planted[f] {
				t.Errorf("feature %d is in two groups", f)
			}
			planted[f] = true
		}
	}
	var control []int
	for f := 0; len(control) < tr.GroupSize; f++ {
		if !planted[f] {
			control = append(control, f)
		}
	}
	// Project every row, minus the offset, onto the directions of the
	// groups and the control once.
	need := append([]int(nil), control...)
	for _, ids := range tr.Behaviours {
		need = append(need, ids...)
	}
	col := map[int]int{}
	for i, f := range need {
		col[f] = i
	}
	proj := make([]float64, cfg.Rows*len(need))
	centred := make([]float64, D)
	for row := range cfg.Rows {
		for i := range D {
			centred[i] = float64(x[row*D+i] - tr.Offset[i])
		}
		for j, f := range need {
			d := tr.Direction(f)
			s := 0.0
			for i, v := range d {
				s += centred[i] * float64(v)
			}
			proj[row*len(need)+j] = s
		}
	}
	score := func(row int, ids []int) float64 {
		s := 0.0
		for _, f := range ids {
			s += proj[row*len(need)+col[f]]
		}
		return s / float64(len(ids))
	}
	member := func(s *activations.Step, name string) bool {
		if name == Long {
			var l string
			json.Unmarshal(s.Extra["length"], &l)
			return l == Long
		}
		return s.HasLabel(name)
	}
	for _, name := range Behaviours {
		var in, out, cin, cout float64
		var nin, nout int
		for i := range steps {
			s, c := score(i, tr.Behaviours[name]), score(i, control)
			if member(&steps[i], name) {
				in, cin, nin = in+s, cin+c, nin+1
			} else {
				out, cout, nout = out+s, cout+c, nout+1
			}
		}
		if nin == 0 || nout == 0 {
			t.Fatalf("%s: %d steps in, %d out", name, nin, nout)
		}
		in, out, cin, cout = in/float64(nin), out/float64(nout), cin/float64(nin), cout/float64(nout)
		t.Logf("%-12s group projection %.3f on its steps vs %.3f elsewhere; control %.3f vs %.3f", name, in, out, cin, cout)
		if in < 3*out || in-out < 0.1 {
			t.Errorf("%s: mean projection %.3f on its steps, %.3f elsewhere: planting not visible", name, in, out)
		}
		// Control features fire at the same rates everywhere; only
		// cross-talk from the boosted (not quite orthogonal) directions
		// moves their projection a little.
		if math.Abs(cin-cout) > 0.25*(in-out) {
			t.Errorf("%s: control features project %.3f vs %.3f: expected next to no difference", name, cin, cout)
		}
	}

	// Counts: truth agrees with steps.jsonl, and shares are sensible.
	counts := map[string]int{}
	for i := range steps {
		counts[steps[i].Labels[0]]++
		var l string
		json.Unmarshal(steps[i].Extra["length"], &l)
		counts[l]++
	}
	for k, v := range counts {
		if tr.StepCounts[k] != v {
			t.Errorf("step count %s: truth says %d, steps.jsonl has %d", k, tr.StepCounts[k], v)
		}
	}
	share := func(k string) float64 { return float64(counts[k]) / float64(cfg.Rows) }
	if s := share(Reflection); s < 0.10 || s > 0.20 {
		t.Errorf("reflection share %.3f, want about %.2f", s, cfg.ReflectionRate)
	}
	if s := share(Backtracking); s < 0.03 || s > 0.09 {
		t.Errorf("backtracking share %.3f, want about %.2f", s, cfg.BacktrackingRate)
	}
	if s := share(Long); s < 0.2 || s > 0.8 {
		t.Errorf("long share %.3f, want about half", s)
	}
	if tr.MeanActive < tr.ActivePerRow || tr.MeanActive > 2*tr.ActivePerRow {
		t.Errorf("mean active %.2f, want a little over %v", tr.MeanActive, tr.ActivePerRow)
	}
	var fired int64
	for _, c := range tr.Fired {
		fired += c
	}
	if math.Abs(float64(fired)/float64(cfg.Rows)-tr.MeanActive) > 1e-9 {
		t.Errorf("fired counts sum to %d, mean active %v", fired, tr.MeanActive)
	}
}

// TestStepsAndTraces checks the text side of a dump: every step labelled
// exactly as RISE's keyword rules label it, token positions that add up,
// traces of the right lengths.
func TestStepsAndTraces(t *testing.T) {
	cfg := smallConfig(12000, 16, 64)
	dir := filepath.Join(t.TempDir(), "d")
	tr := generateT(t, dir, cfg)
	steps := readJSONLines[activations.Step](t, dir, "steps.jsonl")
	traces := readJSONLines[activations.Trace](t, dir, "traces.jsonl")
	byID := map[string]*activations.Trace{}
	idPattern := regexp.MustCompile(`^synth-\d{5,}$`)
	for i := range traces {
		if !idPattern.MatchString(traces[i].Trace) {
			t.Errorf("trace id %q", traces[i].Trace)
		}
		byID[traces[i].Trace] = &traces[i]
	}
	if tr.TraceCounts[Short]+tr.TraceCounts[Long] != len(traces) || tr.TraceCounts[Long] == 0 {
		t.Errorf("trace counts %v, traces.jsonl has %d", tr.TraceCounts, len(traces))
	}
	var texts []string
	for i, s := range steps {
		if len(s.Labels) != 1 {
			t.Fatalf("row %d: labels %v, want exactly one", i, s.Labels)
		}
		if got := keywordLabel(s.Text); got != s.Labels[0] {
			t.Errorf("row %d: %q is labelled %s, keyword rules say %s", i, s.Text, s.Labels[0], got)
		}
		trace := byID[s.Trace]
		if trace == nil {
			t.Fatalf("row %d: trace %q is not in traces.jsonl", i, s.Trace)
		}
		if s.Step != len(texts) {
			if s.Step != 0 {
				t.Fatalf("row %d: step %d follows step %d", i, s.Step, len(texts)-1)
			}
			texts = texts[:0]
		}
		texts = append(texts, s.Text)
		if s.TokenStart == nil || s.TokenEnd == nil || *s.TokenEnd <= *s.TokenStart {
			t.Fatalf("row %d: token span %v-%v", i, s.TokenStart, s.TokenEnd)
		}
		if !bytes.Equal(s.Extra["length"], trace.Extra["length"]) {
			t.Errorf("row %d: length %s, trace says %s", i, s.Extra["length"], trace.Extra["length"])
		}
		last := i == len(steps)-1 || steps[i+1].Trace != s.Trace
		if last {
			if strings.Join(texts, "\n\n") != trace.Response {
				t.Errorf("trace %s: response is not its steps joined by the delimiter", s.Trace)
			}
			if *s.TokenEnd != *trace.Tokens {
				t.Errorf("trace %s: last step ends at token %d, trace has %d tokens", s.Trace, *s.TokenEnd, *trace.Tokens)
			}
		}
	}
	for _, trc := range traces {
		var l string
		json.Unmarshal(trc.Extra["length"], &l)
		switch {
		case l == Short && *trc.Tokens >= 1000, l == Long && *trc.Tokens <= 8000, l != Short && l != Long:
			t.Errorf("trace %s: %s with %d tokens", trc.Trace, l, *trc.Tokens)
		}
		if trc.Prompt == "" || (trc.Correct == nil) != (trc.Extra["truncated"] != nil) {
			t.Errorf("trace %s: prompt %q, correct %v, truncated %s", trc.Trace, trc.Prompt, trc.Correct, trc.Extra["truncated"])
		}
	}
}

// TestTexts checks many traces directly: keyword labels, token budgets and
// the arithmetic of every expression.
func TestTexts(t *testing.T) {
	expr := regexp.MustCompile(`((?:\d+ [-+×] )+\d+) = (-?\d+)`)
	counts := map[label]int{}
	for i := range 1500 {
		r := newRand(7, streamTraces, uint64(i))
		long := i%15 == 0
		tr := writeTrace(r, long, 0.15, 0.06, 0.05, 0)
		tok := tr.tokens()
		if long && tok <= longMinTokens || !long && tok >= shortMaxTokens {
			t.Errorf("trace %d (long %v): %d tokens", i, long, tok)
		}
		if want := countTokens(tr.response()) + len(tr.steps) - 1; tok != want { // one token per delimiter
			t.Errorf("trace %d: step tokens add up to %d, response has %d", i, tok, want)
		}
		for j, s := range tr.steps {
			counts[s.label]++
			if s.label == labelUnnamed && !strings.Contains(strings.ToLower(s.text), UnnamedPhrase) {
				t.Fatalf("trace %d step %d: %q planned as the unnamed behaviour lacks %q", i, j, s.text, UnnamedPhrase)
			}
			if got := keywordLabel(s.text); got != labelNames[s.label] {
				t.Fatalf("trace %d step %d: %q planned as %s, keyword rules say %s", i, j, s.text, labelNames[s.label], got)
			}
			for _, m := range expr.FindAllStringSubmatch(s.text, -1) {
				if got, want := evaluate(m[1]), atoi(m[2]); got != want {
					t.Fatalf("trace %d step %d: %q: %s = %d, not %d", i, j, s.text, m[1], got, want)
				}
			}
		}
		if tr.steps[0].label != labelOther || tr.steps[len(tr.steps)-1].label != labelOther {
			t.Errorf("trace %d: expected it to open and close with other steps", i)
		}
	}
	if counts[labelReflection] == 0 || counts[labelBacktracking] == 0 || counts[labelUnnamed] == 0 {
		t.Errorf("label counts %v", counts)
	}
}

// evaluate computes "a op b op c ..." with × before + and -.
func evaluate(s string) int {
	f := strings.Fields(s)
	var terms []int
	var signs []int
	cur, sign := atoi(f[0]), 1
	for i := 1; i+1 < len(f); i += 2 {
		v := atoi(f[i+1])
		switch f[i] {
		case "×":
			cur *= v
		default:
			terms, signs = append(terms, cur), append(signs, sign)
			cur, sign = v, 1
			if f[i] == "-" {
				sign = -1
			}
		}
	}
	terms, signs = append(terms, cur), append(signs, sign)
	total := 0
	for i, v := range terms {
		total += signs[i] * v
	}
	return total
}

func atoi(s string) int {
	v, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return v
}

func TestCountTokens(t *testing.T) {
	for s, want := range map[string]int{
		"":                 0,
		"Hello world":      2,
		"113 + 56 = 169.":  3 + 1 + 2 + 1 + 3 + 1,
		"That's correct.":  1 + 1 + 1 + 1 + 1,
		"a\n\nb":           2,
		"56 × 5 = 280 ok!": 2 + 1 + 1 + 1 + 3 + 1 + 1,
	} {
		if got := countTokens(s); got != want {
			t.Errorf("countTokens(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestCancel(t *testing.T) {
	base := t.TempDir()
	cfg := smallConfig(20000, 1024, 64) // five batches
	t.Run("during", func(t *testing.T) {
		dir := filepath.Join(base, "during")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		calls := 0
		_, err := Generate(ctx, dir, cfg, false, func(done, total int64) {
			calls++
			cancel()
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if calls > 2 {
			t.Errorf("progress called %d times after cancelling", calls)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s exists after cancelling: %v", dir, err)
		}
	})
	t.Run("before", func(t *testing.T) {
		dir := filepath.Join(base, "before")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Generate(ctx, dir, cfg, false, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s exists: %v", dir, err)
		}
	})
	t.Run("keeps an older dump", func(t *testing.T) {
		dir := filepath.Join(base, "older")
		small := smallConfig(50, 16, 16)
		generateT(t, dir, small)
		before, _ := os.ReadFile(filepath.Join(dir, "steps.jsonl"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := Generate(ctx, dir, cfg, true, func(int64, int64) { cancel() })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		after, err := os.ReadFile(filepath.Join(dir, "steps.jsonl"))
		if err != nil || !bytes.Equal(before, after) {
			t.Errorf("the older dump changed: %v", err)
		}
	})
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if e.Name() != "older" {
			t.Errorf("left behind in %s: %s", base, e.Name())
		}
	}
}

func TestExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	cfg := smallConfig(30, 16, 16)
	generateT(t, dir, cfg)
	if _, err := Generate(context.Background(), dir, cfg, false, nil); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second Generate without overwrite: %v, want an error saying the destination exists", err)
	}
	cfg.Rows = 40
	if _, err := Generate(context.Background(), dir, cfg, true, nil); err != nil {
		t.Fatal(err)
	}
	if tr, err := ReadTruth(dir); err != nil || tr.Rows != 40 {
		t.Errorf("after overwrite: %v, %v", tr, err)
	}
}

func TestInvalidConfig(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"no rows", func(c *Config) { c.Rows = 0 }, "rows"},
		{"negative rows", func(c *Config) { c.Rows = -5 }, "rows"},
		{"narrow", func(c *Config) { c.DModel = 1 }, "d_model"},
		{"few features", func(c *Config) { c.Features = 7 }, "features"},
		{"huge", func(c *Config) { c.Features, c.DModel = 1<<20, 1<<16 }, "features × d_model"},
		{"layer", func(c *Config) { c.Layer = -1 }, "layer"},
		{"dtype", func(c *Config) { c.DType = 7 }, "dtype"},
		{"groups", func(c *Config) { c.Features, c.GroupSize = 8, 3 }, "group size"},
		{"too active", func(c *Config) { c.Features, c.ActivePerRow = 8, 5 }, "active"},
		{"negative active", func(c *Config) { c.ActivePerRow = -1 }, "active"},
		{"nan boost", func(c *Config) { c.Boost = nan }, "boost"},
		{"zero boost", func(c *Config) { c.Boost = 0 }, "boost"},
		{"power", func(c *Config) { c.PowerLaw = -1 }, "power law"},
		{"sigma", func(c *Config) { c.MagnitudeSigma = 5 }, "sigma"},
		{"offset", func(c *Config) { c.OffsetNorm = math.Inf(1) }, "offset"},
		{"noise", func(c *Config) { c.NoiseNorm = -1 }, "noise"},
		{"long", func(c *Config) { c.LongFraction = 1.5 }, "long"},
		{"rates", func(c *Config) { c.ReflectionRate, c.BacktrackingRate = 0.6, 0.5 }, "rates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error about %s", err, tc.want)
			}
			dir := filepath.Join(t.TempDir(), "d")
			if _, err := Generate(context.Background(), dir, c, false, nil); err == nil {
				t.Fatal("Generate accepted the configuration")
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s exists after a refused configuration", dir)
			}
		})
	}
	// The smallest valid configuration works.
	c := DefaultConfig()
	c.Rows, c.DModel, c.Features = 1, 2, 8
	dir := filepath.Join(t.TempDir(), "d")
	tr := generateT(t, dir, c)
	for _, name := range Behaviours {
		if len(tr.Behaviours[name]) != 1 {
			t.Errorf("group %s = %v, want one feature", name, tr.Behaviours[name])
		}
	}
	if tr.TraceCounts["truncated"] != 1 || tr.Rows != 1 {
		t.Errorf("one-row dump: %+v", tr.TraceCounts)
	}
}

func TestReadTruthErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	generateT(t, dir, smallConfig(20, 16, 16))
	npyPath := filepath.Join(dir, DirectionsFile)
	good, _ := os.ReadFile(npyPath)
	truthPath := filepath.Join(dir, TruthFile)
	goodTruth, _ := os.ReadFile(truthPath)
	for _, tc := range []struct {
		name       string
		file       string
		data       []byte
		wantInErr  string
		wantInErr2 string
	}{
		{"truncated directions", npyPath, good[:len(good)-3], DirectionsFile, "truncated"},
		{"extra directions", npyPath, append(append([]byte(nil), good...), 0, 0, 0, 0), DirectionsFile, "more bytes follow"},
		{"not npy", npyPath, []byte("hello world, not an array"), DirectionsFile, "magic"},
		{"wrong shape", npyPath, activations.EncodeNpy(make([]float32, 15*16), 15, 16), DirectionsFile, "shape"},
		{"bad json", truthPath, []byte("{"), TruthFile, "malformed"},
		{"bad format", truthPath, bytes.Replace(goodTruth, []byte(TruthFormat), []byte("other/1"), 1), TruthFile, "format"},
		{"bad dtype", truthPath, bytes.Replace(goodTruth, []byte(`"dtype": "float32"`), []byte(`"dtype": "int8"`), 1), TruthFile, "dtype"},
		{"bad features", truthPath, bytes.Replace(goodTruth, []byte(`"features": 16`), []byte(`"features": 17`), 1), TruthFile, "frequencies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(npyPath, good, 0o644)
			os.WriteFile(truthPath, goodTruth, 0o644)
			if err := os.WriteFile(tc.file, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadTruth(dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantInErr) || !strings.Contains(err.Error(), tc.wantInErr2) {
				t.Errorf("ReadTruth: %v, want an error naming %s and saying %s", err, tc.wantInErr, tc.wantInErr2)
			}
		})
	}
	if _, err := ReadTruth(t.TempDir()); err == nil {
		t.Error("ReadTruth of a directory without truth.json succeeded")
	}
}

// BenchmarkGenerate writes 100,000 rows of width 512 from 512 features.
func BenchmarkGenerate(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Rows, cfg.DModel = 100000, 512
	dir := filepath.Join(b.TempDir(), "d")
	for b.Loop() {
		if _, err := Generate(context.Background(), dir, cfg, true, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cfg.Rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func norm(v []float32) float64 { return math.Sqrt(dot(v, v)) }

func dot(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

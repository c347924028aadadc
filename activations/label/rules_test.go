package label

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestDefaultRules(t *testing.T) {
	// RISE (arXiv 2512.23988) Table 3, inherited from SEAL (arXiv 2504.07986).
	want := `{"reflection":["wait","verify","make sure","hold on","think again","'s correct","'s incorrect","let me check","seems right"],` +
		`"backtracking":["alternatively","think differently","another way","another approach","another method","another solution","another strategy","another technique"]}`
	got, err := json.Marshal(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("DefaultRules() =\n%s\nwant\n%s", got, want)
	}
}

func TestLabels(t *testing.T) {
	r, b, o := Reflection, Backtracking, Other
	tests := []struct {
		text string
		want []string
	}{
		{"", []string{o}},
		{"Let me compute 3 + 4 = 7.", []string{o}},
		{"Wait, that is not right.", []string{r}},
		{"wait", []string{r}},
		{"WAIT!", []string{r}},
		{"I am waiting for the result.", []string{o}},
		{"We await the answer.", []string{o}},
		{"Hmm, wait_for it", []string{o}}, // underscore is a word character
		{"(wait)", []string{r}},
		{"wait2", []string{o}},
		{"Let me verify this.", []string{r}},
		{"The verification is done.", []string{o}},
		{"Let me make sure.", []string{r}},
		{"Let me make\n  sure.", []string{r}},
		{"Let me makesure.", []string{o}},
		{"Hold on.", []string{r}},
		{"I should think again", []string{r}},
		{"So it's correct.", []string{r}},
		{"That's correct.", []string{r}},
		{"That\u2019s correct.", []string{r}},
		{"That's incorrect!", []string{r}},
		{"That's correctly computed.", []string{o}},
		{"'s correct", []string{r}},
		{"Let me check: 2+2=4.", []string{r}},
		{"Let me checkout the branch.", []string{o}},
		{"That seems right.", []string{r}},
		{"Alternatively, use induction.", []string{b}},
		{"ALTERNATIVELY", []string{b}},
		{"Let's think differently.", []string{b}},
		{"Is there another way?", []string{b}},
		{"Another approach: complete the square.", []string{b}},
		{"Try another method.", []string{b}},
		{"another solution", []string{b}},
		{"another strategy", []string{b}},
		{"another technique", []string{b}},
		{"another\tapproach", []string{b}},
		{"anotherway", []string{o}},
		{"another wayward thought", []string{o}},
		{"Wait, alternatively, let me verify.", []string{r, b}},
		{"Alternatively... wait.", []string{r, b}}, // rules order, not text order
		{"\u00e9wait", []string{o}},                // a non-ASCII letter is a word character
		{"wait\u00e9", []string{o}},
		{"\u2014wait\u2014", []string{r}},
	}
	m := DefaultMatcher()
	for _, tt := range tests {
		if got := m.Labels(tt.text); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Labels(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestLabelsCustomRules(t *testing.T) {
	rules := Rules{
		{Behaviour: "doubt", Phrases: []string{"  hmm  ", "’s off", "K-means", "straße"}},
		{Behaviour: "answer", Phrases: []string{"\\boxed{", "final answer"}},
	}
	m, err := rules.Compile()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		want []string
	}{
		{"Hmm.", []string{"doubt"}},
		{"hmmm", []string{"other"}},
		{"that's off", []string{"doubt"}},
		{"\u212a-MEANS", []string{"doubt"}}, // KELVIN SIGN folds with k
		{"STRASSE", []string{"other"}},      // simple folding only
		{"Stra\u00dfe", []string{"doubt"}},
		{"so \\boxed{4}", []string{"answer"}},
		{"x\\boxed{4}", []string{"answer"}}, // a phrase that starts with \ needs no boundary
		{"Hmm, the final answer is", []string{"doubt", "answer"}},
	}
	for _, tt := range tests {
		if got := m.Labels(tt.text); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Labels(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
	if got := m.Behaviours(); !reflect.DeepEqual(got, []string{"doubt", "answer"}) {
		t.Errorf("Behaviours() = %q", got)
	}
}

func TestRulesValidate(t *testing.T) {
	tests := []struct {
		rules Rules
		want  string
	}{
		{nil, "expected at least one behaviour, found none"},
		{Rules{{Behaviour: "", Phrases: []string{"x"}}}, `behaviour 0: expected a behaviour name, found ""`},
		{Rules{{Behaviour: "other", Phrases: []string{"x"}}}, `"other" is reserved`},
		{Rules{{Behaviour: "a", Phrases: []string{"x"}}, {Behaviour: "a", Phrases: []string{"y"}}}, `behaviour "a": expected each behaviour once, found it twice`},
		{Rules{{Behaviour: "a"}}, `behaviour "a": expected at least one phrase, found none`},
		{Rules{{Behaviour: "a", Phrases: []string{"x", " \n"}}}, `behaviour "a": phrase 1: expected text, found " \n"`},
	}
	for _, tt := range tests {
		_, err := tt.rules.Compile()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%+v) = %v, want an error containing %q", tt.rules, err, tt.want)
		}
	}
}

func TestLoadRules(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.json")
	os.WriteFile(path, []byte("{\n  \"zeta\": [\"first\"],\n  \"alpha\": [\"second\", \"third\"],\n  \"mid\": [\"x\"]\n}\n"), 0o644)
	rules, err := LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Rules{{"zeta", []string{"first"}}, {"alpha", []string{"second", "third"}}, {"mid", []string{"x"}}}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("LoadRules = %+v, want %+v (the file's order)", rules, want)
	}

	// The default rules survive a round trip through a file.
	data, _ := json.MarshalIndent(DefaultRules(), "", "  ")
	os.WriteFile(path, data, 0o644)
	if rules, err := LoadRules(path); err != nil || !reflect.DeepEqual(rules, DefaultRules()) {
		t.Errorf("LoadRules(default rules) = %+v, %v", rules, err)
	}
}

func TestLoadRulesErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"list", `["wait"]`, "line 1: expected a JSON object mapping behaviour names to lists of phrases, found a list"},
		{"string", `"wait"`, `found the string "wait"`},
		{"empty file", ``, "line 1: expected more JSON, found the end of the file"},
		{"empty object", `{}`, "expected at least one behaviour, found an empty object"},
		{"empty list", "{\n\"reflection\": []\n}", `line 2: behaviour "reflection": expected at least one phrase, found an empty list`},
		{"not a list", "{\"reflection\": \"wait\"}", `behaviour "reflection": expected a list of phrases, found the string "wait"`},
		{"number phrase", "{\"reflection\": [\"wait\",\n 3]}", `line 2: behaviour "reflection": phrase 1: expected a string, found the number 3`},
		{"nested phrase", `{"reflection": [["wait"]]}`, `behaviour "reflection": phrase 0: expected a string, found a list`},
		{"null phrase", `{"reflection": [null]}`, `phrase 0: expected a string, found null`},
		{"blank phrase", `{"reflection": ["  "]}`, `behaviour "reflection": phrase 0: expected text, found "  "`},
		{"other", "{\"a\": [\"x\"],\n\"other\": [\"y\"]}", `line 2: behaviour "other": the behaviour name "other" is reserved`},
		{"empty name", `{"": ["y"]}`, `behaviour "": expected a behaviour name, found ""`},
		{"duplicate", "{\"a\": [\"x\"],\n\"a\": [\"y\"]}", `line 2: behaviour "a": expected each behaviour once, found it again (first on line 1)`},
		{"syntax", `{"a": ["x",]}`, "invalid JSON"},
		{"truncated", `{"a": ["x"`, "line 1:"},
		{"trailing", `{"a": ["x"]} {}`, "expected nothing after the object, found an object"},
		{"trailing garbage", `{"a": ["x"]} x`, "expected nothing after the object, found invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".json")
			os.WriteFile(path, []byte(tt.content), 0o644)
			_, err := LoadRules(path)
			if err == nil {
				t.Fatalf("LoadRules(%s) succeeded, want an error containing %q", tt.content, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadRules(%s) error = %q, want the file name and %q", tt.content, err, tt.want)
			}
		})
	}
	if _, err := LoadRules(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("LoadRules(missing file) error = %v", err)
	}
}

// oracle labels text with one regular expression per behaviour, spelled out
// from the matching rules documented on Rules.
type oracle struct {
	behaviours []string
	res        []*regexp.Regexp
}

func newOracle(rules Rules) *oracle {
	const space = `[\t\n\v\f\r\x{85}\p{Z}]`
	isSpace := regexp.MustCompile(`^` + space + `$`)
	o := &oracle{behaviours: rules.Behaviours()}
	for _, rule := range rules {
		var alts []string
		for _, p := range rule.Phrases {
			p = strings.TrimSpace(p)
			var b strings.Builder
			runes := []rune(p)
			if isWord(runes[0]) {
				b.WriteString(`(?:^|[^\p{L}\p{Nd}\p{M}_])`)
			}
			inSpace := false
			for _, r := range runes {
				switch {
				case isSpace.MatchString(string(r)):
					if !inSpace {
						b.WriteString(space + "+")
					}
					inSpace = true
					continue
				case r == '\'' || r == '\u2019' || r == '\u02bc':
					b.WriteString(`['\x{2019}\x{2bc}]`)
				default:
					b.WriteString(regexp.QuoteMeta(string(r)))
				}
				inSpace = false
			}
			if isWord(runes[len(runes)-1]) {
				b.WriteString(`(?:$|[^\p{L}\p{Nd}\p{M}_])`)
			}
			alts = append(alts, b.String())
		}
		o.res = append(o.res, regexp.MustCompile(`(?i)(?:`+strings.Join(alts, "|")+`)`))
	}
	return o
}

func (o *oracle) Labels(text string) []string {
	var out []string
	for i, re := range o.res {
		if re.MatchString(text) {
			out = append(out, o.behaviours[i])
		}
	}
	if out == nil {
		out = []string{Other}
	}
	return out
}

// TestMatcherAgainstOracle compares the matcher with regular expressions on
// random texts built from pieces of the phrases and tricky characters.
func TestMatcherAgainstOracle(t *testing.T) {
	rules := append(DefaultRules(), Rule{Behaviour: "extra", Phrases: []string{"k-means", "’s off", "\\boxed{", "x_1", "é t"}})
	m := rules.MustCompile()
	o := newOracle(rules)
	pieces := []string{
		"wait", "Wait", "WAIT", "waiting", "a", "verify", "make", "sure", "hold", "on", "think", "again",
		"'s", "\u2019s", "\u02bcs", "correct", "incorrect", "let", "me", "check", "seems", "right", "alternatively",
		"another", "way", "approach", "method", "differently", "k-means", "\u212a", "off", "\\boxed{", "x_1", "é", "t",
		" ", " ", " ", "\n", "\t", "\u00a0", "\u2003", ",", ".", "_", "1", "-", "(", "\u00e9", "\u0301", "ſ", "\xff",
	}
	def, defOracle := DefaultMatcher(), newOracle(DefaultRules())
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		for n := rng.IntN(12); n >= 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		text := b.String()
		if got, want := m.Labels(text), o.Labels(text); !reflect.DeepEqual(got, want) {
			t.Fatalf("Labels(%q) = %q, the regular expressions say %q", text, got, want)
		}
		if got, want := def.Labels(text), defOracle.Labels(text); !reflect.DeepEqual(got, want) {
			t.Fatalf("default rules: Labels(%q) = %q, the regular expressions say %q", text, got, want)
		}
	}
}

// benchSteps returns reasoning-like steps, about one in six of them with a
// keyword.
func benchSteps() []string {
	rng := rand.New(rand.NewPCG(3, 4))
	words := strings.Fields(`so the sum of the first n terms is n(n+1)/2 and we need to compute
		this for n = 100 which gives 5050 then we multiply by 3 to get 15150 let us now
		consider the case where x is negative and the square root of \frac{a}{b} is defined
		since $x^2 + y^2 = r^2$ the radius is 5 therefore the area is 25\pi`)
	keys := []string{"Wait,", "let me check", "Alternatively,", "that's correct.", "another approach"}
	steps := make([]string, 1000)
	for i := range steps {
		var b strings.Builder
		for n := 20 + rng.IntN(60); n > 0; n-- {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		if rng.IntN(6) == 0 {
			b.WriteString(keys[rng.IntN(len(keys))])
		}
		steps[i] = b.String()
	}
	return steps
}

// BenchmarkLabels measures labelling with the default rules; one op is one
// step of a few hundred bytes.
func BenchmarkLabels(b *testing.B) { benchLabels(b, DefaultMatcher().Labels) }

// BenchmarkLabelsRegexp measures the same work done with regular
// expressions, for comparison.
func BenchmarkLabelsRegexp(b *testing.B) { benchLabels(b, newOracle(DefaultRules()).Labels) }

// benchLabels times labels on the steps of benchSteps, one step an op.
func benchLabels(b *testing.B, labels func(string) []string) {
	steps := benchSteps()
	total := 0
	for _, s := range steps {
		total += len(s)
	}
	b.SetBytes(int64(total / len(steps)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		labels(steps[i%len(steps)])
	}
}
